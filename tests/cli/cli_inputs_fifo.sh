#!/usr/bin/env bash
# A FIFO given as a config, a problem set or training data is refused at once with exit 2, not
# read until a writer comes (each of these once blocked until killed).
#   <script> PEDAGOGY SOURCE_DIR WORK_DIR
set -u
pedagogy=$1 src=$2 work=$3
rm -rf "$work"
mkdir -p "$work"
cd "$work"
mkfifo f
templates=classroom.templates_dir=$src/prompt_templates
runs=(
  "config show --config f"
  "rollout --config $src/config/tiny.toml --problems f --out o.jsonl $templates"
  "eval --config $src/config/tiny.toml --problems f --out o.json $templates"
  "train --config $src/config/tiny.toml data.train=f logging.run_dir=run $templates"
)
for args in "${runs[@]}"; do
  rc=0
  # shellcheck disable=SC2086 # one command line a string, split on spaces on purpose
  err=$(timeout 30 "$pedagogy" $args 2>&1 </dev/null) || rc=$?
  if [ "$rc" -ne 2 ] || [[ $err != *"f: is a FIFO"* ]]; then
    echo "FAIL: pedagogy $args: exit $rc: ${err:0:400}" >&2
    exit 1
  fi
done
echo "cli_inputs_fifo: ok (${#runs[@]} commands)"
