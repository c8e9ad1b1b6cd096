#!/usr/bin/env bash
# Configures and builds pedagogy into ${BUILD_DIR:-build} (Release, Ninja, ccache when present).
# With CI=true warnings are errors. Extra arguments go to the CMake configure step, e.g.
#   launch/build.sh -DCMAKE_PREFIX_PATH="$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')"
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${BUILD_DIR:-$root/build}
# ccache keys on absolute paths; relative to the checkout, a fresh clone (as CI makes) still hits.
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$root}

werror=OFF
if [ "${CI:-}" = "true" ]; then
  werror=ON
fi
generator=()
if command -v ninja >/dev/null && [ ! -f "$build_dir/CMakeCache.txt" ]; then
  generator=(-G Ninja)
fi

cmake -S "$root" -B "$build_dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DPEDAGOGY_WERROR=$werror "$@"
cmake --build "$build_dir" --parallel "$(nproc)"
