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
# learning (tests/jobs/ped_train_test.cpp asserts that).
config=$(dirname "$templates")/config/tiny.toml
out=$("$pedagogy" --log-level warn bench ped --steps 2 --warmup-steps 20 --eval-samples 2 \
  --config "$config" --templates "$templates" --json)
for key in off_eval_reward rescue_eval_reward rounds_eval_reward off_rollouts rescue_rollouts \
  rounds_rollouts rescue_score_share rounds_score_share budget_rollouts; do
  [[ "$out" == *"\"$key\":"* ]] || { echo "FAIL: no $key in $out" >&2; exit 1; }
done
[ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] || { echo "FAIL: not one line: $out" >&2; exit 1; }
echo "cli_bench_json ped: ok ($out)"

# The flags tools/device-check.sh uses: a model directory, chosen concurrencies and sizes, the
# throughput part alone; the weight sync in one process; a device that is not there.
out=$("$pedagogy" --log-level warn bench generate --model "$work/model" --concurrency 1,3 \
  --prompt-tokens 8 --new-tokens 4 --throughput-only --threads 1 --json)
for key in tokens_per_s_concurrency_1 tokens_per_s_concurrency_3 parameters_millions; do
  [[ "$out" == *"\"$key\":"* ]] || { echo "FAIL: no $key in $out" >&2; exit 1; }
done
[[ "$out" != *prefill* ]] || { echo "FAIL: --throughput-only ran the sessions part: $out" >&2; exit 1; }
echo "cli_bench_json generate --model: ok ($out)"

out=$("$pedagogy" --log-level warn bench sync --local-only --millions 0.2 --dtype bfloat16 --json)
for key in local_sync_s local_gb_per_s device_copy_gb_per_s; do
  [[ "$out" == *"\"$key\":"* ]] || { echo "FAIL: no $key in $out" >&2; exit 1; }
done
echo "cli_bench_json sync --local-only: ok ($out)"

if ! nvidia-smi -L >/dev/null 2>&1; then
  err=$("$pedagogy" bench train --device cuda --preset tiny --steps 0 2>&1) &&
    { echo "FAIL: --device cuda ran without a GPU" >&2; exit 1; }
  [[ "$err" == *"no CUDA device is usable"* ]] || { echo "FAIL: unclear refusal: $err" >&2; exit 1; }
  echo "cli_bench_json --device cuda without a GPU: refused ok"
fi

# `pedagogy logits`: one [T, V] float32 tensor per line of ids; ids outside the vocabulary refused.
out=$(printf '[1, 2, 3]\n[4]\n' | "$pedagogy" logits --model "$work/model" --out "$work/logits.safetensors")
[[ "$out" == *'"sequences":2'* && "$out" == *'"tokens":4'* ]] || { echo "FAIL: logits: $out" >&2; exit 1; }
python3 - "$work/logits.safetensors" <<'PY'
import json, struct, sys
with open(sys.argv[1], "rb") as f:
    header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
assert header["logits.0"]["shape"] == [3, 320] and header["logits.1"]["shape"] == [1, 320], header
assert header["logits.0"]["dtype"] == "F32", header
PY
err=$(echo '[1, 99999]' | "$pedagogy" logits --model "$work/model" --out "$work/bad.safetensors" 2>&1) &&
  { echo "FAIL: an id outside the vocabulary was accepted" >&2; exit 1; }
[[ "$err" == *"stdin line 1: token id 99999 is not an integer in [0, "* ]] ||
  { echo "FAIL: unclear refusal: $err" >&2; exit 1; }
echo "cli_bench_json logits: ok ($out)"
