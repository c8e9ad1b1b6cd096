#!/usr/bin/env python3
"""Runs the documentation's commands, as a reader would, twice in a row in a fresh copy of the tree.

    python3 tests/cli/readme_test.py SOURCE_DIR BUILD_DIR WORK_DIR [--list] [--keep-going]
                                 [--passes N] [--timeout SECONDS]

Every fenced shell block (```sh, and bash/shell/console for safety) of README.md and docs/*.md
must carry a mark on the line before it (blank lines between are allowed):

    <!-- runnable -->                      run by this test
    <!-- not-runnable: REASON -->          skipped, counted under REASON (needs a GPU, ...)

An unmarked shell block, a mark that no shell block follows, a runnable block that would build
or install (launch/run.sh, tests/run.sh, launch/build.sh, install-deps.sh, cmake, ninja), a shell
block that bash cannot parse, and a relative link to a file that does not exist all fail the test.

WORK_DIR/tree becomes a copy of SOURCE_DIR's files (`git ls-files`, plus untracked files git does
not ignore; without git, everything but build/ and runs/), with `build` a link to BUILD_DIR and
PEDAGOGY_BIN=BUILD_DIR/pedagogy exported. The runnable blocks run in order (README.md first, then
docs/*.md by name) with `bash -euo pipefail` in that folder, then all of them once more in the same
folder: a second pass catches outputs that collide (a file left in a run folder that a later
--force refuses, an --out that already exists). Any non-zero exit fails the test; each block's
output is kept in WORK_DIR/logs. Standard library only.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

SHELL_LANGUAGES = {"sh", "bash", "shell", "console", "zsh"}
MARK = re.compile(r"^\s*<!--\s*(runnable|not-runnable)\s*(?::\s*(.*?))?\s*-->\s*$")
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})\s*([\w+-]*)")
# Commands that build or install: CI runs them itself, and a second build in BUILD_DIR would race
# the one that made it.
BUILDING = re.compile(
    r"(launch/run\.sh|tests/run\.sh|launch/build\.sh|install-deps\.sh|(^|[\s;&|(])(cmake|ninja)\s)")
LINK = re.compile(r"\]\(([^)\s]+)\)")
TREE_MARKER = ".readme-test-tree"


@dataclass
class Block:
    file: str  # relative to the tree, e.g. "README.md"
    line: int  # of the opening fence, 1-based
    language: str
    runnable: bool
    reason: str  # why it is skipped (not-runnable)
    text: str

    @property
    def where(self):
        return f"{self.file}:{self.line}"


def documents(root):
    """README.md, then docs/*.md by name."""
    out = []
    if (root / "README.md").is_file():
        out.append(root / "README.md")
    if (root / "docs").is_dir():
        out += sorted(p for p in (root / "docs").glob("*.md") if p.is_file())
    return out


def parse(path, root, errors):
    """The fenced blocks of one Markdown file with their marks; problems go to `errors`."""
    rel = str(path.relative_to(root))
    lines = path.read_text(encoding="utf-8").split("\n")
    blocks = []
    pending = None  # (line, runnable, reason) of a mark not yet used
    i = 0
    while i < len(lines):
        line = lines[i]
        mark = MARK.match(line)
        if mark:
            if pending:
                errors.append(f"{rel}:{pending[0]}: a mark that no shell block follows")
            runnable = mark.group(1) == "runnable"
            reason = (mark.group(2) or "").strip()
            if runnable and reason:
                errors.append(f"{rel}:{i + 1}: '<!-- runnable -->' takes no reason")
            if not runnable and not reason:
                errors.append(f"{rel}:{i + 1}: '<!-- not-runnable: REASON -->' needs a reason")
            pending = (i + 1, runnable, reason)
            i += 1
            continue
        fence = FENCE.match(line)
        if not fence:
            if line.strip() and pending:
                errors.append(f"{rel}:{pending[0]}: a mark that no shell block follows")
                pending = None
            i += 1
            continue
        opener, language = fence.group(1), fence.group(2).lower()
        start = i
        body = []
        i += 1
        while i < len(lines) and not re.match(r"^ {0,3}" + re.escape(opener[0]) + "{" +
                                              str(len(opener)) + r",}\s*$", lines[i]):
            body.append(lines[i])
            i += 1
        if i == len(lines):
            errors.append(f"{rel}:{start + 1}: a code block that is never closed")
        i += 1
        if language in SHELL_LANGUAGES:
            if not pending:
                errors.append(f"{rel}:{start + 1}: a ```{language} block without a mark: put "
                              "'<!-- runnable -->' or '<!-- not-runnable: REASON -->' before it")
                continue
            blocks.append(Block(rel, start + 1, language, pending[1], pending[2],
                                "\n".join(body) + "\n"))
        elif pending:
            errors.append(f"{rel}:{pending[0]}: the mark is followed by a ```{language or 'plain'} "
                          "block; only shell blocks are marked")
        pending = None
    if pending:
        errors.append(f"{rel}:{pending[0]}: a mark that no shell block follows")
    return blocks


def check_links(path, root, errors):
    """Relative links must name files of the tree (no links outside it, none to missing files)."""
    rel = path.relative_to(root)
    in_code = False
    for number, line in enumerate(path.read_text(encoding="utf-8").split("\n"), 1):
        if FENCE.match(line):
            in_code = not in_code
            continue
        if in_code:
            continue
        for target in LINK.findall(re.sub(r"`[^`]*`", "", line)):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                continue  # a URL or an anchor
            target = target.split("#")[0]
            resolved = (path.parent / target).resolve()
            try:
                resolved.relative_to(root.resolve())
            except ValueError:
                errors.append(f"{rel}:{number}: link to '{target}', outside the repository")
                continue
            if not resolved.exists():
                errors.append(f"{rel}:{number}: link to '{target}', which does not exist")


def source_files(source):
    """The files a checkout of SOURCE_DIR holds, relative to it."""
    try:
        out = subprocess.run(
            ["git", "-C", str(source), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            check=True, capture_output=True).stdout.decode()
        return sorted({f for f in out.split("\0") if f})
    except (OSError, subprocess.CalledProcessError):
        files = []
        for dirpath, dirnames, filenames in os.walk(source):
            here = Path(dirpath).relative_to(source)
            if here == Path("."):
                dirnames[:] = [d for d in dirnames if d not in ("build", "runs", ".git")]
            files += [str(here / f) for f in filenames]
        return sorted(files)


def make_tree(source, build, work):
    tree = work / "tree"
    if tree.exists() or tree.is_symlink():
        if not (tree / TREE_MARKER).exists():
            sys.exit(f"error: {tree} exists and was not made by this test; remove it or choose "
                     "another WORK_DIR")
        shutil.rmtree(tree)
    tree.mkdir(parents=True)
    (tree / TREE_MARKER).write_text("made by tests/cli/readme_test.py; removed by its next run\n")
    copied = 0
    for rel in source_files(source):
        src = source / rel
        if not (src.is_file() or src.is_symlink()) or rel.split("/")[0] in ("build", "runs"):
            continue  # deleted in the working tree, a submodule, or an output
        if src.resolve() == work or work in src.resolve().parents:
            continue  # WORK_DIR inside the source tree: never copy the test's own files
        dst = tree / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst, follow_symlinks=False)
        copied += 1
    (tree / "build").symlink_to(build)
    return tree, copied


def run_block(block, tree, env, log, timeout):
    """Runs one block; returns (exit code, seconds). The output goes to `log`."""
    start = time.monotonic()
    with open(log, "wb") as out:
        out.write(f"# {block.where}\n{block.text}# ----\n".encode())
        out.flush()
        # A process group of its own, so that a timeout also ends what the block started.
        proc = subprocess.Popen(["bash", "-euo", "pipefail", "-c", block.text], cwd=tree, env=env,
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
            out.write(f"\n# timed out after {timeout} s\n".encode())
            code = 124
    return code, time.monotonic() - start


def tail(path, lines=30):
    text = Path(path).read_text(encoding="utf-8", errors="replace").rstrip("\n").split("\n")
    return "\n".join("    " + line for line in text[-lines:])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("source", type=Path, help="the source tree (holds README.md)")
    parser.add_argument("build", type=Path, help="the build folder (holds pedagogy)")
    parser.add_argument("work", type=Path, help="a scratch folder; WORK_DIR/tree is made afresh")
    parser.add_argument("--list", action="store_true", help="only list the blocks and their marks")
    parser.add_argument("--keep-going", action="store_true",
                        help="run every block even after one failed (later ones may depend on it)")
    parser.add_argument("--passes", type=int, default=2, help="times to run the blocks (2)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per block (600)")
    args = parser.parse_args()
    source, build, work = args.source.resolve(), args.build.resolve(), args.work.resolve()

    errors = []
    blocks = []
    docs = documents(source)
    if not docs:
        sys.exit(f"error: {source} has no README.md")
    for path in docs:
        blocks += parse(path, source, errors)
        check_links(path, source, errors)
    for b in blocks:
        if b.runnable and BUILDING.search(b.text):
            errors.append(f"{b.where}: a runnable block builds or installs "
                          f"('{BUILDING.search(b.text).group(0).strip()}'); mark it not-runnable")
        syntax = subprocess.run(["bash", "-n"], input=b.text.encode(), capture_output=True)
        if syntax.returncode != 0:
            errors.append(f"{b.where}: bash cannot parse the block: "
                          f"{syntax.stderr.decode().strip()}")

    runnable = [b for b in blocks if b.runnable]
    skipped = {}
    for b in blocks:
        if not b.runnable:
            skipped.setdefault(b.reason, []).append(b.where)
    if args.list:
        for b in blocks:
            print(f"{b.where:28} {'runnable' if b.runnable else 'skipped: ' + b.reason}")
    if errors:
        print("readme_test: the documentation's blocks are not in order:", file=sys.stderr)
        for e in errors:
            print(f"  {e}", file=sys.stderr)
        return 1
    if args.list:
        return 0

    binary = build / "pedagogy"
    if not os.access(binary, os.X_OK):
        sys.exit(f"error: {binary} is not an executable; build first")
    work.mkdir(parents=True, exist_ok=True)
    tree, copied = make_tree(source, build, work)
    logs = work / "logs"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir()
    env = dict(os.environ, PEDAGOGY_BIN=str(binary))
    print(f"readme_test: {len(runnable)} runnable blocks of {len(blocks)}, {args.passes} passes, "
          f"in {tree} ({copied} files, build -> {build})", flush=True)

    failures = []
    total_start = time.monotonic()
    for run in range(1, args.passes + 1):
        for b in runnable:
            log = logs / f"pass{run}-{b.file.replace('/', '_')}-{b.line}.log"
            code, seconds = run_block(b, tree, env, log, args.timeout)
            status = "ok" if code == 0 else f"FAILED (exit {code})"
            print(f"pass {run}  {b.where:28} {seconds:6.1f} s  {status}", flush=True)
            if code != 0:
                failures.append((run, b, code, log))
                print(tail(log), flush=True)
                if not args.keep_going:
                    break
        if failures and not args.keep_going:
            break
    total = time.monotonic() - total_start

    print(f"\nreadme_test: ran {len(runnable)} blocks x {args.passes} passes in {total:.0f} s; "
          f"skipped {sum(len(v) for v in skipped.values())}:")
    for reason, where in sorted(skipped.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        print(f"  {len(where):3}  {reason}  ({', '.join(where)})")
    if failures:
        print(f"readme_test: {len(failures)} block(s) failed:", file=sys.stderr)
        for run, b, code, log in failures:
            print(f"  pass {run}  {b.where}: exit {code} (output: {log})", file=sys.stderr)
        return 1
    print("readme_test: every runnable block passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
