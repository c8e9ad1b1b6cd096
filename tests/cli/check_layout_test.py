#!/usr/bin/env python3
"""tools/check_layout.py on small trees made here: a clean one passes, and each kind of
violation (an upward include, a cycle, CAF outside actors/, an actors/ file without CAF, a long
file, a long function, a stale debt entry) fails naming it.

    python3 tests/cli/check_layout_test.py SOURCE_DIR
"""
import os
import subprocess
import sys
import tempfile

CHECKER = os.path.join(sys.argv[1], "tools", "check_layout.py")


def run(files, debt=None):
    """The checker's exit code and output on a tree holding `files` ({path: text})."""
    with tempfile.TemporaryDirectory() as root:
        for path, text in files.items():
            os.makedirs(os.path.dirname(os.path.join(root, path)), exist_ok=True)
            with open(os.path.join(root, path), "w", encoding="utf-8") as f:
                f.write(text)
        if debt is not None:
            os.makedirs(os.path.join(root, "tools"), exist_ok=True)
            with open(os.path.join(root, "tools", "layout_debt.txt"), "w") as f:
                f.write(debt)
        r = subprocess.run([sys.executable, CHECKER, root], capture_output=True, text=True)
        return r.returncode, r.stdout + r.stderr


def function(name, lines):
    return f"int {name}(int x) {{\n" + "  x += 1;\n" * lines + "  return x;\n}\n"


CLEAN = {
    "runtime/errors.hpp": "#pragma once\n",
    "models/tensor/rope.hpp": '#pragma once\n#include "runtime/errors.hpp"\n',
    "rl/step.hpp": '#pragma once\n#include "models/tensor/rope.hpp"\n',
    "actors/trainer.cpp": '#include "rl/step.hpp"\n#include <caf/all.hpp>\nvoid f(caf::actor a);\n',
}

failures = []


def expect(what, files, needle, debt=None):
    code, out = run(files, debt)
    if needle is None:
        if code != 0:
            failures.append(f"{what}: exit {code}, expected 0:\n{out}")
    elif code == 0 or needle not in out:
        failures.append(f"{what}: exit {code}, expected 1 and '{needle}' in:\n{out}")


expect("a clean tree", CLEAN, None)
expect("an upward include", {**CLEAN, "runtime/bad.hpp": '#include "rl/step.hpp"\n'},
       "runtime/ includes rl/step.hpp, a level above it")
expect("a cycle", {**CLEAN, "rl/a.hpp": '#include "rl/b.hpp"\n', "rl/b.hpp": '#include "rl/a.hpp"\n'},
       "include cycle: rl/a -> rl/b -> rl/a")
expect("CAF outside actors/", {**CLEAN, "rl/bad.hpp": "#include <caf/all.hpp>\n"},
       "rl/bad.hpp: includes CAF")
expect("an actors/ file without CAF", {**CLEAN, "actors/plain.cpp": "int f() { return 1; }\n"},
       "actors/plain.cpp: an actors/ source that uses no CAF")
expect("a long file", {**CLEAN, "rl/long.cpp": "// a line\n" * 501}, "rl/long.cpp: 501 lines")
expect("a long function", {**CLEAN, "rl/fn.cpp": function("too_long", 80)},
       "rl/fn.cpp:1: too_long: a function of 83 lines")
expect("a table is not a function",
       {**CLEAN, "rl/table.cpp": "const int t[] = {\n" + "  1,\n" * 100 + "};\n"}, None)
expect("a listed long function", {**CLEAN, "rl/fn.cpp": function("too_long", 80)}, None,
       debt="rl/fn.cpp: too_long\n")
expect("a stale debt entry", CLEAN, "lists 'rl/gone.cpp', which is within the limits now",
       debt="rl/gone.cpp\n")

for f in failures:
    print("FAIL:", f)
print(f"check_layout_test: {10 - len(failures)} of 10 cases as expected")
sys.exit(1 if failures else 0)
