#!/usr/bin/env bash
# `pedagogy bench tokenize|classroom|train|ped --json` print one JSON object with the figures
# scripts rely on.
set -euo pipefail
pedagogy=$1
work=$2
templates=$3
rm -rf "$work"
"$pedagogy" init-model --family qwen2 --preset tiny --out "$work/model" >/dev/null
out=$("$pedagogy" bench tokenize --tokenizer "$work/model" --mb 0.05 --json)
for key in mb_per_s tokens_per_s; do
  [[ "$out" == *"\"$key\":"* ]] || { echo "FAIL: no $key in $out" >&2; exit 1; }
done
[ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] || { echo "FAIL: not one line: $out" >&2; exit 1; }
echo "cli_bench_json: ok ($out)"

out=$("$pedagogy" --log-level warn bench classroom --preset tiny --problems 1 --samples 2 \
  --templates "$templates" --json)
for key in async_conversations_per_s lockstep_conversations_per_s async_vs_lockstep; do
  [[ "$out" == *"\"$key\":"* ]] || { echo "FAIL: no $key in $out" >&2; exit 1; }
done
[ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] || { echo "FAIL: not one line: $out" >&2; exit 1; }
echo "cli_bench_json classroom: ok ($out)"

out=$("$pedagogy" --log-level warn bench train --preset tiny --sequences 2 --length 32 --steps 0 --json)
[[ "$out" == *'"learner_tokens_per_s":'* ]] || { echo "FAIL: no learner_tokens_per_s in $out" >&2; exit 1; }
echo "cli_bench_json train: ok ($out)"

# bench ped, shrunk (2 budget steps, a 20-step warm-up): the JSON object and its figures, not the
# learning (tests/ped_train_test.cpp asserts that).
config=$(dirname "$templates")/config/tiny.toml
out=$("$pedagogy" --log-level warn bench ped --steps 2 --warmup-steps 20 --eval-samples 2 \
  --config "$config" --templates "$templates" --json)
for key in off_eval_reward rescue_eval_reward rounds_eval_reward off_rollouts rescue_rollouts \
  rounds_rollouts rescue_score_share rounds_score_share budget_rollouts; do
  [[ "$out" == *"\"$key\":"* ]] || { echo "FAIL: no $key in $out" >&2; exit 1; }
done
[ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] || { echo "FAIL: not one line: $out" >&2; exit 1; }
echo "cli_bench_json ped: ok ($out)"
