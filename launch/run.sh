#!/usr/bin/env bash
# The README's run command: installs what is missing, builds, and runs the main job on its
# embedded default, the tiny CPU preset. Until training lands (issue [5]) the most complete job
# is resolving and printing that config. Extra arguments are overrides, e.g. train.mu=1.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash launch/install-deps.sh
bash launch/build.sh >/dev/null
exec "${BUILD_DIR:-$root/build}/pedagogy" config show --config config/tiny.toml "$@"
