#!/usr/bin/env bash
# `pedagogy bench tokenize --json` prints one JSON object with the figures scripts rely on.
set -euo pipefail
pedagogy=$1
work=$2
rm -rf "$work"
"$pedagogy" init-model --family qwen2 --preset tiny --out "$work/model" >/dev/null
out=$("$pedagogy" bench tokenize --tokenizer "$work/model" --mb 0.05 --json)
for key in mb_per_s tokens_per_s; do
  [[ "$out" == *"\"$key\":"* ]] || { echo "FAIL: no $key in $out" >&2; exit 1; }
done
[ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] || { echo "FAIL: not one line: $out" >&2; exit 1; }
echo "cli_bench_json: ok ($out)"
