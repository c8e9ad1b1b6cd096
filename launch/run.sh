#!/usr/bin/env bash
# The README's run command: installs what is missing, builds, and runs the main job on its
# embedded default: GRPO training with the tiny CPU preset (random-init tiny tutor and student
# created on first use, the bundled problems, the rule-based leak judge), writing dialogs,
# metrics and checkpoints under runs/tiny (started over on every run). Extra arguments are
# overrides, e.g. train.max_steps=8.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash launch/install-deps.sh
bash launch/build.sh >/dev/null
exec "${BUILD_DIR:-$root/build}/pedagogy" train --config config/tiny.toml --force "$@"
