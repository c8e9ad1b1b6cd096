#!/usr/bin/env python3
"""Checks the source tree's layout: the include graph and the size of files and functions.

    python3 tools/check_layout.py [SOURCE_DIR] [--graph]

- Folders by level (LEVELS, lowest first): a file may include files of its own folder and of
  folders below it, never above (no upward arrow). models/ is cut into levels of its own.
- CAF only where actors live: every .cpp under actors/ uses CAF; none of classroom/, models/,
  rl/, inspect/, collectives/, run/ and config/ includes it (runtime/ may, for the job's TLS and
  the version report; jobs/, bench/ and launch/ assemble actors).
- No include cycle between modules (a module is a .hpp and its .cpp; tests and tools excluded).
- No product source file over MAX_FILE_LINES lines; no function body over MAX_FUNCTION_LINES
  lines. Braces that open a table (an initializer after `=`) are not functions.

Size limits not met yet are listed in tools/layout_debt.txt (one "path" or "path: function"
per line): a listed one is reported but does not fail the check; a new one fails it, and so does
a listed one that no longer occurs (the list only shrinks). Include rules have no such list.

--graph prints the folder-level graph (who includes whom, with counts) and exits 0.
Exits 1 and names every violation otherwise; CTest runs it as `lint_layout`.
"""
import collections
import os
import re
import sys

# Lowest first. A folder's files may include only folders at or before it in this list.
LEVELS = [
    "runtime",
    "config",
    "collectives",
    "models/weights",
    "models/text",
    "models/tensor",
    "models/serving",
    "models/training",
    "models/sft",
    "models/ped",
    "models/learner",
    "classroom",
    "inspect",
    "rl",
    "run",
    "actors",
    "jobs",
    "bench",
    "launch",
]
# Folders on the same level that must not include each other (siblings).
SIBLINGS = [{"models/sft", "models/ped"}]
MAX_FILE_LINES = 500
MAX_FUNCTION_LINES = 80

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
CAF_INCLUDE = re.compile(r"^\s*#\s*include\s+<caf/", re.M)
NO_CAF = {"classroom", "rl", "inspect", "collectives", "run", "config"} # and models/*


def folder_of(path):
    """The level a repository path belongs to, or None (tests, tools, generated files)."""
    best = None
    for level in LEVELS:
        if path == level or path.startswith(level + "/"):
            if best is None or len(level) > len(best):
                best = level
    return best


def sources(root):
    for level in LEVELS:
        top = os.path.join(root, level)
        for dirpath, _, files in os.walk(top):
            rel_dir = os.path.relpath(dirpath, root)
            if folder_of(rel_dir) != level:
                continue  # a deeper level's folder (models/x under models)
            for name in sorted(files):
                if name.endswith((".cpp", ".hpp", ".cpp.in")):
                    yield os.path.join(rel_dir, name)


def strip_code(text):
    """The text with comments, string and character literals blanked (newlines kept)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("\n" * text.count("\n", i, j))
            i = j
        elif c == "R" and text.startswith('R"', i) and (i == 0 or not text[i - 1].isalnum()):
            m = re.match(r'R"([^(\s]*)\(', text[i:])
            if not m:
                out.append(c)
                i += 1
                continue
            end = ")" + m.group(1) + '"'
            j = text.find(end, i + m.end())
            j = n if j < 0 else j + len(end)
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(c + c)
            i = j + 1
        else:
            out.append(c)
            i += 1
    # Preprocessor lines end a statement; blank them.
    return "\n".join("" if l.lstrip().startswith("#") else l for l in "".join(out).split("\n"))


def long_functions(text):
    """(first line, lines, head) of every function body longer than MAX_FUNCTION_LINES."""
    code = strip_code(text)
    found = []
    stack = []  # (kind, start line, head)
    statement = []  # the text since the last ; { or } at this level
    line = 1
    for c in code:
        if c == "\n":
            line += 1
            statement.append(" ")
            continue
        if c == "{":
            head = " ".join("".join(statement).split())
            enclosing = stack[-1][0] if stack else "namespace"
            if enclosing in ("namespace", "class"):
                if re.match(r"^(inline\s+)?namespace\b", head) or head.startswith('extern ""'):
                    kind = "namespace"
                elif re.search(r"\b(struct|class|union)\b[^(=]*$", head) or re.search(
                        r"\b(struct|class|union)\b[^=(]*:[^:]", head):
                    kind = "class"
                elif ")" in head and not re.search(r"=\s*$", head) and not head.endswith(","):
                    kind = "function"
                else:
                    kind = "table"
            else:
                kind = "block"
            stack.append((kind, line, head))
            statement = []
        elif c == "}":
            if stack:
                kind, start, head = stack.pop()
                if kind == "function" and line - start + 1 > MAX_FUNCTION_LINES:
                    found.append((start, line - start + 1, head))
            statement = []
        elif c == ";":
            statement = []
        else:
            statement.append(c)
    return found


def main(argv):
    args = [a for a in argv[1:] if not a.startswith("--")]
    root = os.path.abspath(args[0] if args else os.path.join(os.path.dirname(__file__), ".."))
    files = list(sources(root))
    problems = []
    sizes = []  # (debt key, message)
    edges = collections.Counter()
    module_deps = collections.defaultdict(set)
    for path in files:
        text = open(os.path.join(root, path), encoding="utf-8").read()
        here = folder_of(path)
        module = re.sub(r"\.(hpp|cpp|cpp\.in)$", "", path)
        for number, line_text in enumerate(text.splitlines(), 1):
            m = INCLUDE.match(line_text)
            if not m:
                continue
            target = m.group(1)
            there = folder_of(target)
            if there is None:
                continue  # a generated or third-party header
            if not os.path.exists(os.path.join(root, target)):
                problems.append(f"{path}:{number}: includes {target}, which does not exist")
                continue
            edges[(here, there)] += 1
            up = LEVELS.index(there) > LEVELS.index(here)
            sibling = any({here, there} == s for s in SIBLINGS)
            if up or sibling:
                problems.append(f"{path}:{number}: {here}/ includes {target}, a level above it "
                                f"(levels, lowest first: {', '.join(LEVELS)})")
            target_module = re.sub(r"\.(hpp|cpp)$", "", target)
            if target_module != module:
                module_deps[module].add(target_module)
        if (here in NO_CAF or here.startswith("models/")) and CAF_INCLUDE.search(text):
            problems.append(f"{path}: includes CAF, which only actors/ (and the jobs that "
                            f"assemble them) may use")
        if here == "actors" and path.endswith(".cpp") and "caf::" not in text:
            problems.append(f"{path}: an actors/ source that uses no CAF belongs in rl/, inspect/ "
                            f"or models/")
        lines = text.count("\n") + (0 if text.endswith("\n") else 1)
        if lines > MAX_FILE_LINES:
            sizes.append((path, f"{path}: {lines} lines (at most {MAX_FILE_LINES}: split it by "
                                f"concern)"))
        for start, length, head in long_functions(text):
            name = function_name(head)
            sizes.append((f"{path}: {name}", f"{path}:{start}: {name}: a function of {length} "
                                             f"lines (at most {MAX_FUNCTION_LINES})"))
    problems += [f"include cycle: {' -> '.join(c + [c[0]])}" for c in cycles(module_deps)]
    debt_file = os.path.join(root, "tools", "layout_debt.txt")
    debt = set()
    if os.path.exists(debt_file):
        for line in open(debt_file, encoding="utf-8"):
            line = line.split("#", 1)[0].strip()
            if line:
                debt.add(line)
    found = {key for key, _ in sizes}
    known = 0
    for key, message in sizes:
        if key in debt:
            known += 1
        else:
            problems.append(message)
    for key in sorted(debt - found):
        problems.append(f"tools/layout_debt.txt lists '{key}', which is within the limits now: "
                        f"remove the line")
    if "--debt" in argv:
        for key in sorted(found):
            print(key)
        return 0

    if "--graph" in argv:
        for (a, b), count in sorted(edges.items(), key=lambda e: (LEVELS.index(e[0][0]),
                                                                  LEVELS.index(e[0][1]))):
            if a != b:
                print(f"{a:>16} -> {b:<16} {count}")
        return 0
    for p in problems:
        print(p)
    print(f"check_layout: {len(files)} files in {len(LEVELS)} levels, {len(problems)} problems, "
          f"{known} known size excesses (tools/layout_debt.txt)")
    return 1 if problems else 0


def function_name(head):
    """The qualified name in a function's head: `a::b` of `std::string a::b(int x) const`."""
    before = head.split("(", 1)[0].split()
    return before[-1].lstrip("*&") if before else head


def cycles(deps):
    """Each strongly connected component of more than one module, as a list (Tarjan)."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(deps.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    sys.setrecursionlimit(10000)
    for v in sorted(deps):
        if v not in index:
            visit(v)
    return out


if __name__ == "__main__":
    sys.exit(main(sys.argv))
