#!/usr/bin/env bash
# `pedagogy sft` as a person runs it, one case per CTest entry:
#   cli_sft.sh PEDAGOGY SOURCE_DIR WORK_DIR CASE
# learns      a generated chat set on a tiny model from `init-model`: the validation loss drops,
#             the metrics hold every step, and the final checkpoint drives `pedagogy rollout`
#             and `pedagogy eval`
# rerun       a second run on the same folder is refused (exit 2) unless --resume (which finds
#             the run finished) or --force (which starts over)
# bad_input   each kind of bad chat row exits 2 naming the file and its line, and writes nothing
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/fault_common.sh"

"$pedagogy" init-model --family qwen2 --preset tiny --seed 1 --out "$work/tutor" > /dev/null
# The user asks for a word, the assistant answers in a fixed pattern a tiny model learns fast.
for i in $(seq 1 64); do
  w=$(printf 'w%03dq' "$i")
  printf '{"messages": [{"role": "user", "content": "Say %s."}, {"role": "assistant", "content": "Sure: %s. Done."}]}\n' "$w" "$w"
done > "$work/chat.jsonl"
run=$work/run
common=(--config config/tiny.toml tutor.model="$work/tutor" sft.train="$work/chat.jsonl"
  sft.val_fraction=0.125 sft.learning_rate=1e-2 sft.epochs=3 sft.micro_batch_size=2
  sft.gradient_accumulation=2 sft.max_length=256 sft.val_every_steps=5 checkpoint.every_steps=10
  cluster.torch_threads=1 logging.run_dir="$run")
sft() { "$pedagogy" sft "${common[@]}" "$@"; }

case $case in
  learns)
    sft > "$work/out.log" 2>&1 || fail "sft failed: $(tail -n 20 "$work/out.log")"
    grep -q "sft step 21/21" "$work/out.log" || fail "no final progress line: $(cat "$work/out.log")"
    [ "$(whole_lines "$run/sft_metrics.jsonl")" -eq 27 ] || fail "expected 21 step + 6 validation lines"
    first=$(grep val_loss "$run/sft_metrics.jsonl" | head -n 1 | sed 's/.*"val_loss":\([0-9.e+-]*\).*/\1/')
    last=$(grep val_loss "$run/sft_metrics.jsonl" | tail -n 1 | sed 's/.*"val_loss":\([0-9.e+-]*\).*/\1/')
    echo "validation loss $first -> $last"
    awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < 0.5 * a) }' ||
      fail "validation loss did not halve: $first -> $last"
    ckpt=$run/checkpoints/step-000021
    for f in config.json model.safetensors tokenizer.json tokenizer_config.json \
      optimizer.safetensors trainer_state.json; do
      [ -f "$ckpt/$f" ] || fail "checkpoint lacks $f"
    done
    [ -d "$run/checkpoints/step-000020" ] || fail "no checkpoint at step 20 (every 10 steps)"
    # The checkpoint is a model folder the classroom loads as the tutor.
    "$pedagogy" rollout --config config/tiny.toml --limit 1 --samples 1 --out "$work/dialogs.jsonl" \
      tutor.model="$ckpt" student.model="$work/student" > "$work/rollout.log" 2>&1 ||
      fail "rollout with the checkpoint failed: $(tail -n 20 "$work/rollout.log")"
    [ "$(whole_lines "$work/dialogs.jsonl")" -eq 1 ] || fail "no dialog record"
    grep -q '"status":"ok"' "$work/dialogs.jsonl" || fail "dialog failed: $(cat "$work/dialogs.jsonl")"
    # ... and `pedagogy eval` evaluates it as a tutor.
    "$pedagogy" eval --config config/tiny.toml --limit 2 --tutor sft="$ckpt" --out "$work/eval" \
      student.model="$work/student" > "$work/eval.log" 2>&1 ||
      fail "eval of the checkpoint failed: $(tail -n 20 "$work/eval.log")"
    grep -q "| sft | 2 | 2 | 0 |" "$work/eval/results.md" || fail "$(cat "$work/eval/results.md")"
    ;;
  rerun)
    sft sft.epochs=1 > /dev/null 2>&1 || fail "first run"
    set +e
    err=$(sft sft.epochs=1 2>&1 >/dev/null)
    rc=$?
    set -e
    [ $rc -eq 2 ] || fail "exit $rc, expected 2: $err"
    [[ $err == *"holds an earlier run"*"--resume"*"--force"* ]] || fail "message: $err"
    out=$(sft sft.epochs=1 --resume 2>&1) || fail "--resume of a finished run: $out"
    [[ $out == *"resuming from $run/checkpoints/step-000007"* ]] || fail "resume message: $out"
    echo "my notes" > "$run/notes.txt"
    set +e
    err=$(sft sft.epochs=1 --force 2>&1 >/dev/null)
    rc=$?
    set -e
    [ $rc -eq 2 ] && [[ $err == *"--force refuses"*"notes.txt"* ]] || fail "foreign file: $rc $err"
    rm "$run/notes.txt"
    sft sft.epochs=1 --force > /dev/null 2>&1 || fail "--force"
    # 7 steps, and validations before the first, after the 5th and at the end.
    [ "$(whole_lines "$run/sft_metrics.jsonl")" -eq 10 ] || fail "metrics not started over"
    ;;
  bad_input)
    good=$(head -n 1 "$work/chat.jsonl")
    expect_bad() { # NAME ROW MESSAGE: the row on line 2 is refused with MESSAGE
      local file=$work/$1.jsonl
      printf '%s\n%s\n' "$good" "$2" > "$file"
      set +e
      err=$(sft sft.train="$file" logging.run_dir="$work/bad_run" 2>&1 >/dev/null)
      rc=$?
      set -e
      [ $rc -eq 2 ] || fail "$1: exit $rc, expected 2: $err"
      [[ $err == *"error: $file:2: "*"$3"*"hint: "* ]] || fail "$1: message: $err"
    }
    expect_bad no_assistant '{"messages": [{"role": "user", "content": "hi"}]}' "no assistant turn"
    expect_bad unknown_role '{"messages": [{"role": "tool", "content": "x"}, {"role": "assistant", "content": "y"}]}' \
      "messages[0].role is 'tool'"
    expect_bad content_type '{"messages": [{"role": "user", "content": ["x"]}, {"role": "assistant", "content": "y"}]}' \
      "messages[0].content is an array, not a string"
    expect_bad malformed '{"messages": [' "not valid JSON"
    expect_bad too_long "{\"messages\": [{\"role\": \"user\", \"content\": \"$(printf 'x%.0s' $(seq 1 300))\"}, {\"role\": \"assistant\", \"content\": \"y\"}]}" \
      "more than sft.max_length = 256"
    : > "$work/empty.jsonl"
    set +e
    err=$(sft sft.train="$work/empty.jsonl" logging.run_dir="$work/bad_run" 2>&1 >/dev/null)
    rc=$?
    set -e
    [ $rc -eq 2 ] && [[ $err == *"$work/empty.jsonl: no examples"* ]] || fail "empty: $rc $err"
    # Bad input writes nothing but the folders and their locks.
    [ -z "$(find "$work/bad_run" -type f ! -name .pedagogy.lock)" ] ||
      fail "bad input left outputs behind: $(find "$work/bad_run")"
    ;;
  *)
    fail "unknown case"
    ;;
esac
echo "ok: $case"
