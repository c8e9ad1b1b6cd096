#!/usr/bin/env bash
# `pedagogy train` under faults, one case per CTest entry:
#   cli_train_faults.sh PEDAGOGY SOURCE_DIR WORK_DIR CASE
# force_foreign   --force next to a file it did not write: refused, nothing deleted
# force_project   checkpoint.dir=. inside a project folder: refused, nothing deleted
# force_own       --force deletes an earlier run's outputs and keeps the model folders inside
# lock            a second run on a folder in use is refused, the first run's files untouched
# full_disk       a log/metrics/dialogs write that fails stops the job (exit 1) naming the file,
#                 and no JSONL file keeps a partial line
# sigint/sigterm  the first signal finishes the step, checkpoints, exits 130/143; --resume goes on
# second_signal   a second signal exits at once
# early_signal    a signal before the first step finished leaves nothing that blocks a rerun
# nan             a non-finite loss stops the job (exit 1) naming the step, and saves no weights
# resume_damaged  --resume skips a truncated newest checkpoint for an intact older one and
#                 removes unfinished checkpoint folders (its own: a user's folder named alike stays)
# stale_dialogs   records of a step left by a run stopped before any checkpoint are not kept by
#                 the same command run again: the file holds what an uninterrupted run writes
# resume_refused  a --resume refused (the checkpoint is past train.max_steps) deletes nothing
# model_in_ckpt   a role's model inside the checkpoint folder is refused before anything is deleted
# live_output     a rollout --force into a live run's dialogs.jsonl is refused; the run completes
# deleted_folder  the run folder deleted mid-run ends the job with exit 1 naming the lost file
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/fault_common.sh"
# A small, quick run: the tiny preset with 2 problems x 2 dialogs per step and short dialogs.
# The models live outside the run folder unless a case says otherwise.
common=(--config config/tiny.toml data.max_problems=8 train.problems_per_step=2
  train.samples_per_problem=2 classroom.number_student_attempts=2 classroom.max_tutor_turns=1
  classroom.max_tokens_per_turn=8 classroom.max_tokens_per_student_attempt=8
  tutor.model="$work/models/tutor" student.model="$work/models/student")
run=$work/run
train() { "$pedagogy" train "${common[@]}" logging.run_dir="$run" "$@"; }
# Starts `train` in the background with a ~25M student created first (over a second), so a
# signal sent once the tutor is made lands before the training loop; sets `pid`.
start_with_slow_student() {
  "$pedagogy" train "${common[@]}" logging.run_dir="$run" student.model="$work/models/base_student" \
    student.init=llama:base "$@" > "$work/out.log" 2>&1 &
  pid=$!
  trap 'kill -9 $pid 2>/dev/null || true' EXIT
  wait_for_text "$work/out.log" "tutor: created" $pid || fail "no tutor: $(cat "$work/out.log")"
}

case $case in
  force_foreign)
    train train.max_steps=1 > /dev/null 2>&1 || fail "first run"
    echo "my notes" > "$run/notes.txt"
    set +e
    err=$(train train.max_steps=1 --force 2>&1 >/dev/null)
    rc=$?
    set -e
    [ $rc -eq 2 ] || fail "exit $rc, expected 2: $err"
    [[ $err == *"notes.txt"* && $err == *"--force refuses"* ]] || fail "message: $err"
    [ -f "$run/notes.txt" ] || fail "notes.txt was deleted"
    [ -f "$run/metrics.jsonl" ] || fail "the earlier run's metrics were deleted"
    ;;
  force_project)
    project=$work/project
    mkdir -p "$project/config" "$project/data"
    echo keep > "$project/config/mine.toml"
    echo keep > "$project/data/mine.jsonl"
    set +e
    err=$(train train.max_steps=1 --force checkpoint.dir="$project" 2>&1 >/dev/null)
    rc=$?
    set -e
    [ $rc -eq 2 ] || fail "exit $rc, expected 2: $err"
    [ -f "$project/config/mine.toml" ] && [ -f "$project/data/mine.jsonl" ] ||
      fail "project files were deleted"
    ;;
  force_own)
    # The models inside the run folder, as the tiny preset has them.
    inside=(tutor.model="$run/weights/tutor" student.model="$run/weights/student")
    train "${inside[@]}" train.max_steps=1 > /dev/null 2>&1 || fail "first run"
    [ -d "$run/checkpoints/step-000001" ] || fail "no checkpoint"
    before=$(sha256sum "$run/weights/tutor/model.safetensors")
    train "${inside[@]}" train.max_steps=1 checkpoint.every_steps=0 logging.save_dialogs=false \
      --force > /dev/null 2>&1 || fail "--force on the run's own outputs"
    [ "$(sha256sum "$run/weights/tutor/model.safetensors")" = "$before" ] || fail "weights changed"
    [ ! -f "$run/dialogs.jsonl" ] || fail "the earlier dialogs.jsonl survived --force"
    [ "$(whole_lines "$run/metrics.jsonl")" -eq 1 ] || fail "metrics not started over"
    ;;
  lock)
    mkdir -p "$run"
    # flock holds the run's lock while a second `train` tries the same folder.
    set +e
    err=$(flock "$run/.pedagogy.lock" "$pedagogy" train "${common[@]}" logging.run_dir="$run" \
      train.max_steps=1 --force 2>&1 >/dev/null)
    rc=$?
    set -e
    [ $rc -eq 2 ] || fail "exit $rc, expected 2: $err"
    [[ $err == *"another pedagogy run"* ]] || fail "message: $err"
    [ ! -f "$run/metrics.jsonl" ] || fail "the refused run wrote metrics"
    # Two run folders sharing one checkpoint.dir: the checkpoint folder is locked too.
    mkdir -p "$work/shared"
    set +e
    err=$(flock "$work/shared/.pedagogy.lock" "$pedagogy" train "${common[@]}" \
      logging.run_dir="$work/other" checkpoint.dir="$work/shared" train.max_steps=1 2>&1 >/dev/null)
    rc=$?
    set -e
    [ $rc -eq 2 ] && [[ $err == *"another pedagogy run"* ]] || fail "shared checkpoint.dir: $rc $err"
    ;;
  full_disk)
    # RLIMIT_FSIZE makes writes past 6 KiB fail (EFBIG) as a full disk would (ENOSPC); the models
    # are made first, without the limit. config.toml (~4 KiB) fits; dialogs.jsonl (~4 KiB a step)
    # passes the limit in step 2, metrics.jsonl (~0.7 KiB a step) in step 9, before the log does.
    # The checkpoint would pass it too, so none is saved before the end.
    train train.max_steps=1 logging.run_dir="$work/warmup" > /dev/null 2>&1 || fail "warm-up run"
    for target in dialogs metrics; do
      rm -rf "$run"
      extra=()
      [ $target = metrics ] && extra=(logging.save_dialogs=false)
      set +e
      err=$( (ulimit -f 6; exec "$pedagogy" train "${common[@]}" logging.run_dir="$run" \
        train.max_steps=12 checkpoint.every_steps=0 "${extra[@]}") 2>&1 >/dev/null)
      rc=$?
      set -e
      [ $rc -eq 1 ] || fail "$target: exit $rc, expected 1: $err"
      [[ $err == *"$target.jsonl"* ]] || fail "$target: the error does not name the file: $err"
      [[ $err != *"done:"* ]] || fail "$target: claimed success: $err"
      whole_lines "$run/$target.jsonl" > /dev/null
    done
    ;;
  sigint | sigterm)
    signal=INT code=130
    [ $case = sigterm ] && signal=TERM code=143
    "$pedagogy" train "${common[@]}" logging.run_dir="$run" train.max_steps=50 \
      checkpoint.every_steps=0 > "$work/out.log" 2>&1 &
    pid=$! # the binary's own pid: a shell function in the background would be a subshell
    trap 'kill -9 $pid 2>/dev/null || true' EXIT
    wait_for_lines "$run/metrics.jsonl" 1 $pid || fail "no step finished: $(cat "$work/out.log")"
    kill -$signal $pid
    expect_exit $pid $code
    grep -q "stopped by signal" "$work/out.log" || fail "no stop message: $(cat "$work/out.log")"
    steps=$(whole_lines "$run/metrics.jsonl")
    [ "$steps" -ge 1 ] && [ "$steps" -lt 50 ] || fail "$steps metrics lines"
    ckpt=$(printf '%s/checkpoints/step-%06d' "$run" "$steps")
    [ -f "$ckpt/trainer_state.json" ] || fail "no checkpoint of step $steps: $(ls "$run/checkpoints")"
    # The run goes on from there.
    train train.max_steps=$((steps + 1)) checkpoint.every_steps=0 --resume > "$work/resume.log" 2>&1 ||
      fail "resume: $(cat "$work/resume.log")"
    [ "$(whole_lines "$run/metrics.jsonl")" -eq $((steps + 1)) ] || fail "resume did not add a step"
    # The resumed step (number $steps + 1) ran under the checkpoint's weights, version $steps.
    python3 - "$run/dialogs.jsonl" "$steps" <<'PY' || fail "resumed dialogs carry the wrong weights version"
import json, sys
records = [json.loads(line) for line in open(sys.argv[1])]
versions = {r["weights_version"] for r in records if r["step"] == int(sys.argv[2]) + 1}
sys.exit(0 if versions == {int(sys.argv[2])} else f"versions {versions}")
PY
    ;;
  second_signal)
    # The first signal lands while the student model is made, so the second one arrives before
    # the graceful stop could finish.
    start_with_slow_student train.max_steps=50
    kill -INT $pid
    wait_for_text "$work/out.log" "stopping after the work in flight" $pid || fail "no first stop"
    kill -INT $pid
    expect_exit $pid 130
    grep -q "second signal, exiting now" "$work/out.log" || fail "no message: $(cat "$work/out.log")"
    ! grep -q "stopped by signal" "$work/out.log" || fail "it stopped gracefully, not at once"
    ;;
  early_signal)
    # A signal before the first step finished: nothing to resume, and the same command (without
    # --force or --resume) starts the run again.
    start_with_slow_student train.max_steps=1
    kill -INT $pid
    expect_exit $pid 130
    grep -q "nothing to resume" "$work/out.log" || fail "message: $(tail -n 3 "$work/out.log")"
    "$pedagogy" train "${common[@]}" logging.run_dir="$run" train.max_steps=1 \
      student.model="$work/models/base_student" > "$work/again.log" 2>&1 ||
      fail "the same command again: $(tail -n 3 "$work/again.log")"
    ;;
  nan)
    # No value in range makes a loss non-finite any more (train.beta = 1e300 once did): the
    # fault is injected as an overflowing reward would make it (runtime/faults.hpp).
    export PEDAGOGY_FAULT_INJECT=non_finite_advantage
    set +e
    err=$(train train.max_steps=2 2>&1 >/dev/null)
    rc=$?
    set -e
    [ $rc -eq 1 ] || fail "exit $rc, expected 1: $err"
    [[ $err == *"step 1/2"* && $err == *"non-finite"* ]] || fail "message: $err"
    ! ls "$run/checkpoints" 2>/dev/null | grep -q step- || fail "a checkpoint was written"
    # With on_non_finite = skip the run goes on, and reports the skipped passes.
    train train.max_steps=1 train.on_non_finite=skip --force > /dev/null 2>&1 ||
      fail "skip policy"
    grep -q '"skipped_passes":2' "$run/metrics.jsonl" || fail "no skipped passes in the metrics"
    ;;
  resume_damaged)
    train train.max_steps=4 checkpoint.every_steps=2 checkpoint.keep_last=0 > /dev/null 2>&1 ||
      fail "first run"
    ckpts=$run/checkpoints
    [ -d "$ckpts/step-000002" ] && [ -d "$ckpts/step-000004" ] || fail "checkpoints: $(ls "$ckpts")"
    truncate -s 1000 "$ckpts/step-000004/model.safetensors"
    # One of ours cut short (it holds the marker it starts with), and a user's named alike.
    mkdir -p "$ckpts/step-000006.tmp" "$ckpts/step-000008.tmp"
    echo '{"written_by":"pedagogy"}' > "$ckpts/step-000006.tmp/.pedagogy-checkpoint"
    echo mine > "$ckpts/step-000008.tmp/notes.txt"
    train train.max_steps=4 checkpoint.every_steps=2 checkpoint.keep_last=0 --resume \
      > "$work/out.log" 2>&1 || fail "resume: $(cat "$work/out.log")"
    grep -q "step-000004 is damaged" "$work/out.log" || fail "no word of the damage: $(cat "$work/out.log")"
    grep -q "resuming from .*step-000002" "$work/out.log" || fail "not resumed from step 2"
    [ ! -e "$ckpts/step-000006.tmp" ] || fail "the unfinished checkpoint folder was left"
    [ -f "$ckpts/step-000008.tmp/notes.txt" ] || fail "a user's folder named like a checkpoint went"
    [ "$(whole_lines "$run/metrics.jsonl")" -eq 4 ] || fail "metrics lines after resume"
    "$pedagogy" chat-template --model "$ckpts/step-000004" -g < tests/data/one_chat.json \
      > /dev/null || fail "the rewritten step-4 checkpoint does not load"
    ;;
  stale_dialogs)
    # What an uninterrupted one-step run writes.
    train train.max_steps=1 logging.run_dir="$work/whole" > /dev/null 2>&1 || fail "whole run"
    expected=$(whole_lines "$work/whole/dialogs.jsonl")
    [ "$expected" -eq 4 ] || fail "$expected records in one step, expected 4"
    # A run stopped after its first records, before any metrics line or checkpoint (as SIGKILL
    # mid-step leaves it), then the same command again.
    mkdir -p "$run"
    head -n 2 "$work/whole/dialogs.jsonl" > "$run/dialogs.jsonl"
    train train.max_steps=1 > "$work/out.log" 2>&1 || fail "the same command: $(tail -3 "$work/out.log")"
    got=$(whole_lines "$run/dialogs.jsonl")
    [ "$got" -eq "$expected" ] || fail "$got records after the rerun, expected $expected"
    ;;
  resume_refused)
    train train.max_steps=2 checkpoint.every_steps=1 > /dev/null 2>&1 || fail "first run"
    ckpts=$run/checkpoints
    mkdir -p "$ckpts/step-000009.tmp"
    echo '{"written_by":"pedagogy"}' > "$ckpts/step-000009.tmp/.pedagogy-checkpoint"
    set +e
    err=$(train train.max_steps=1 --resume 2>&1 >/dev/null)
    rc=$?
    set -e
    [ $rc -eq 2 ] || fail "exit $rc, expected 2: $err"
    [[ $err == *"checkpoint is of step 2, past the run's last step 1"* ]] || fail "message: $err"
    [[ $err != *"done:"* ]] || fail "claimed to be done: $err"
    [ -d "$ckpts/step-000009.tmp" ] || fail "a refused --resume deleted an unfinished checkpoint"
    [ "$(whole_lines "$run/metrics.jsonl")" -eq 2 ] || fail "a refused --resume changed the metrics"
    ;;
  model_in_ckpt)
    train train.max_steps=2 checkpoint.every_steps=1 checkpoint.keep_last=0 > /dev/null 2>&1 ||
      fail "first run"
    model=$run/checkpoints/step-000002
    set +e
    err=$(train train.max_steps=2 checkpoint.every_steps=1 checkpoint.keep_last=1 --force \
      tutor.model="$model" 2>&1 >/dev/null)
    rc=$?
    set -e
    [ $rc -eq 2 ] || fail "exit $rc, expected 2: $err"
    [[ $err == *"inside the checkpoint folder"* ]] || fail "message: $err"
    [ -f "$model/model.safetensors" ] && [ -d "$run/checkpoints/step-000001" ] ||
      fail "a refused run deleted checkpoints: $(ls "$run/checkpoints")"
    ;;
  live_output)
    # Enough steps that the rollout (which loads its models first) meets the run alive.
    "$pedagogy" train "${common[@]}" logging.run_dir="$run" train.max_steps=20 \
      checkpoint.every_steps=0 > "$work/out.log" 2>&1 &
    pid=$!
    trap 'kill -9 $pid 2>/dev/null || true' EXIT
    wait_for_lines "$run/dialogs.jsonl" 1 $pid || fail "no dialog: $(cat "$work/out.log")"
    set +e
    err=$("$pedagogy" rollout "${common[@]}" --limit 1 --samples 2 --out "$run/dialogs.jsonl" \
      --force 2>&1 >/dev/null)
    rc=$?
    set -e
    [ $rc -eq 2 ] || fail "the rollout into a live run's file: exit $rc, expected 2: $err"
    [[ $err == *"another process"* ]] || fail "message: $err"
    expect_exit $pid 0
    [ "$(whole_lines "$run/dialogs.jsonl")" -eq 80 ] || fail "the run's records were cut"
    ;;
  deleted_folder)
    "$pedagogy" train "${common[@]}" logging.run_dir="$run" train.max_steps=200 \
      checkpoint.every_steps=0 > "$work/out.log" 2>&1 &
    pid=$!
    trap 'kill -9 $pid 2>/dev/null || true' EXIT
    wait_for_lines "$run/metrics.jsonl" 1 $pid || fail "no step: $(cat "$work/out.log")"
    rm -rf "$run"
    expect_exit $pid 1
    grep -q "was deleted while being written" "$work/out.log" || fail "no word: $(tail -5 "$work/out.log")"
    ! grep -q "metrics in" "$work/out.log" || fail "it pointed at metrics that are gone"
    ;;
  *)
    fail "unknown case"
    ;;
esac
echo "ok: $case"
