#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, and runs the whole test suite
# through CTest. Extra arguments go to ctest, e.g. -L unit or -R config.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
build_dir=${BUILD_DIR:-$root/build}
bash launch/install-deps.sh --tests
bash launch/build.sh
cd "$build_dir"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
# Cases run in parallel, one per core by default: much of a case's time is LibTorch starting up,
# which overlaps well. Slow tests carry a COST in tests/CMakeLists.txt, so they start first.
jobs=${CTEST_PARALLEL_LEVEL:-$(nproc)}
set +e
ctest --output-on-failure --parallel "$jobs" "$@" 2>&1 | tee ctest.log
status=${PIPESTATUS[0]}
set -e
# End with CTest's summary line, so that it is the last thing a reader (or CI) sees.
grep -E '^[0-9]+% tests passed' ctest.log | tail -n 1
exit "$status"
