# A new user's first hour, as the README leads it (tests/CMakeLists.txt runs each case):
#   <script> PEDAGOGY SOURCE_DIR WORK_DIR CASE
#   one_folder      plot, then the quick start's train (--force), then --resume, in one folder:
#                   the picture belongs to the run folder, so none of them refuses
#   step_numbers    steps count from 1 in the log, metrics.jsonl, checkpoints, dialog records and
#                   ids, and the inspector's /status
#   progress        the step line carries elapsed, ETA, flat groups, failures, KL, gradient norm,
#                   learning rate and token rates; without a terminal, a line within a step
#   early_errors    a port in use, an unreachable endpoint, a run folder that cannot be made, a
#                   missing model folder and a GPU asked of this build: exit 2, nothing written,
#                   no model loaded
#   resume_meaning  --resume with a changed samples_per_problem is refused naming both values;
#                   --resume step-N continues from the chosen checkpoint
#   plot_runs       two runs in one picture: every chart has a series per run and a legend
#   plan            `config plan`: the tiny preset on the CPU, "unknown" without config.json,
#                   and the shapes folder reachable with --shapes
set -u
source "$(dirname "$0")/fault_common.sh"
run=$work/run
models=(tutor.model="$work/w/tutor" student.model="$work/w/student")
train() {
  "$pedagogy" train --config config/tiny.toml logging.run_dir="$run" "${models[@]}" \
    inspect.port=0 train.max_steps=2 "$@"
}
# The steps of a JSONL file's records, one per line.
steps_of() {
  python3 -c 'import json, sys
for line in open(sys.argv[1]): print(json.loads(line)["step"])' "$1"
}

case $case in
  one_folder)
    train --force > "$work/1.log" 2>&1 || fail "first train: $(tail -5 "$work/1.log")"
    "$pedagogy" plot "$run" > "$work/plot.log" 2>&1 || fail "plot: $(cat "$work/plot.log")"
    [ -s "$run/metrics.svg" ] || fail "plot RUN did not write RUN/metrics.svg"
    # What launch/run.sh runs: train --force in the same folder.
    train --force > "$work/2.log" 2>&1 || fail "train --force after plot: $(tail -5 "$work/2.log")"
    [ ! -e "$run/metrics.svg" ] || fail "--force kept the old run's picture"
    "$pedagogy" plot "$run" > "$work/plot2.log" 2>&1 || fail "plot again: $(cat "$work/plot2.log")"
    train --resume train.max_steps=3 > "$work/3.log" 2>&1 ||
      fail "--resume after plot: $(tail -5 "$work/3.log")"
    [ -s "$run/metrics.svg" ] || fail "--resume removed the picture"
    [ "$(whole_lines "$run/metrics.jsonl")" -eq 3 ] || fail "not 3 steps after the resume"
    ;;
  step_numbers)
    # The inspector stays up after the run (inspect.linger_s), so /status of the finished run
    # can be read: step 2 of 2, 2 done (0-based counting said step 1).
    train --force checkpoint.every_steps=1 checkpoint.keep_last=0 inspect.linger_s=120 \
      > "$work/out.log" 2>&1 &
    pid=$!
    wait_for_text "$work/out.log" "live inspection at" $pid || fail "no inspector: $(cat "$work/out.log")"
    address=$(grep -o 'pedagogy inspect [0-9.]*:[0-9]*' "$work/out.log" | head -1 | cut -d' ' -f3)
    wait_for_text "$work/out.log" "done: 2 steps" $pid || fail "the run did not finish: $(tail -5 "$work/out.log")"
    "$pedagogy" inspect "$address" --json > "$work/status.json" 2> /dev/null ||
      fail "inspect --json failed"
    kill -INT $pid # ends the lingering inspector; the run had finished
    expect_exit $pid 0
    [ "$(steps_of "$run/metrics.jsonl" | tr '\n' ' ')" = "1 2 " ] || fail "metrics steps: $(steps_of "$run/metrics.jsonl")"
    grep -qE "step 1/2 \| [0-9]+:[0-9]{2}:[0-9]{2}, ETA" "$work/out.log" &&
      grep -qE "step 2/2 \| [0-9]+:[0-9]{2}:[0-9]{2}, ETA" "$work/out.log" || fail "log steps"
    [ -d "$run/checkpoints/step-000001" ] && [ -d "$run/checkpoints/step-000002" ] ||
      fail "checkpoints: $(ls "$run/checkpoints")"
    python3 - "$run" "$work/status.json" <<'PY' || fail "records, ids or /status count from 0"
import json, sys
run, status = sys.argv[1], json.load(open(sys.argv[2]))
records = [json.loads(l) for l in open(run + "/dialogs.jsonl")]
assert {r["step"] for r in records} == {1, 2}, {r["step"] for r in records}
for r in records:
    step, problem, sample = (int(x) for x in r["id"].split("/")[:3])
    assert step == r["step"] and problem == r["problem_index"] + 1 and sample == r["sample"], r["id"]
    assert 1 <= sample <= 4, r["id"]
assert {r["sample"] for r in records} == {1, 2, 3, 4}
state = json.load(open(run + "/checkpoints/step-000001/trainer_state.json"))
assert state["step"] == 1 and state["weights_version"] == 1, state
s = status["run"]
assert s["state"] == "finished" and s["step"] == 2 and s["completed_steps"] == 2, s
assert status["latest_step"]["step"] == 2, status["latest_step"]
PY
    ;;
  progress)
    train --force logging.progress_s=1 > "$work/out.log" 2>&1 || fail "train: $(tail -5 "$work/out.log")"
    # After step 1 of 2, the ETA is one more step at the pace so far: about the time elapsed.
    first=$(grep -oE 'step 1/2 \| [0-9:]+, ETA [0-9:]+' "$work/out.log") || fail "no step line 1/2"
    python3 - "$first" <<'PY' || fail "ETA after step 1 of 2: $first"
import sys
def seconds(t):
    h, m, s = (int(x) for x in t.split(":"))
    return 3600 * h + 60 * m + s
elapsed, eta = sys.argv[1].split("| ")[1].split(", ETA ")
assert abs(seconds(eta) - seconds(elapsed)) <= 1, (elapsed, eta)
PY
    line=$(grep -oE 'step 2/2 \| [0-9]+:.*' "$work/out.log" | tail -1)
    for field in "ETA 0:00:00" "| reward " "| solve " "| rejected " "| flat " "| failed " "| loss " \
                 "| kl " "| grad " "| lr " " tok/s rollout, " " tok/s learn |" "(rollout "; do
      [[ $line == *"$field"* ]] || fail "the step line lacks '$field': $line"
    done
    [[ $line =~ ^step\ 2/2\ \|\ [0-9]+:[0-9]{2}:[0-9]{2}, ]] || fail "no elapsed time: $line"
    # Not a terminal: within a step, a log line at least every logging.progress_s (the tiny
    # step takes several seconds).
    grep -qE 'step [12]/2 \| (dialogs [0-9]+/16|learning|sending weights|saving)' "$work/out.log" ||
      fail "no progress line within the step: $(cat "$work/out.log")"
    grep -q '"flat_groups"' "$run/metrics.jsonl" || fail "metrics.jsonl has no flat_groups"
    # On a terminal (script(1) gives it one): a live line rewritten in place, which every log
    # line clears first, so no log line starts in the middle of a row.
    script -qefc "$(printf '%q ' "$pedagogy" train --config config/tiny.toml --force \
      logging.run_dir="$run" "${models[@]}" inspect.port=0 train.max_steps=1)" /dev/null \
      > "$work/tty.log" 2>&1 || fail "train on a terminal: $(tail -5 "$work/tty.log")"
    python3 - "$work/tty.log" <<'PY' || fail "the live line on a terminal"
import re, sys
out = open(sys.argv[1], "rb").read().decode("utf-8", "replace")
live = re.findall(r"\rstep 1/1 \| (dialogs \d+/16|learning)", out)
assert live, "no live line"
# Every log line starts a row: at the start of the output, after a newline, or after the live
# line was cleared ("\r\x1b[K").
for m in re.finditer(r"\[20\d\d-\d\d-\d\d ", out):
    before = out[max(0, m.start() - 4):m.start()]
    assert m.start() == 0 or before.endswith("\n") or before.endswith("\r\x1b[K"), repr(out[m.start() - 80:m.start() + 40])
PY
    ;;
  early_errors)
    # Each mistake: exit 2 before a model loads (none is created either) or a file is written.
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1); time.sleep(300)' "$port" &
    holder=$!
    trap 'kill $holder 2> /dev/null || true' EXIT
    for _ in $(seq 1 100); do
      ss -ltnH "sport = :$port" | grep -q . && break
      sleep 0.05
    done
    touch "$work/a_file"
    i=0
    for mistake in "inspect.port=$port|inspect.port" \
                   "student.backend=openai student.init='\"\"' student.openai.base_url=http://127.0.0.1:9/v1|student.openai.base_url" \
                   "logging.run_dir=$work/a_file/run|logging.run_dir" \
                   "tutor.model=$work/nowhere tutor.init='\"\"'|tutor.model" \
                   "tutor.device=cuda|tutor.device"; do
      i=$((i + 1))
      args=${mistake%%|*}
      key=${mistake##*|}
      [ "$key" = tutor.device ] && "$pedagogy" --version | grep -q "CUDA build" && continue
      # shellcheck disable=SC2086 # the overrides are words
      eval "set -- $args"
      "$pedagogy" train --config config/tiny.toml logging.run_dir="$work/run$i" \
        tutor.model="$work/w$i/tutor" student.model="$work/w$i/student" "$@" > "$work/$i.log" 2>&1
      code=$?
      [ $code = 2 ] || fail "$key: exit $code, not 2: $(tail -3 "$work/$i.log")"
      grep -q "error: $key" "$work/$i.log" || fail "$key not named: $(cat "$work/$i.log")"
      ! grep -q "generator ready\|learner ready\|created a random-init" "$work/$i.log" ||
        fail "$key: a model loaded or was made first: $(cat "$work/$i.log")"
      [ ! -e "$work/run$i" ] && [ ! -e "$work/w$i" ] || fail "$key: files were written: $(ls "$work")"
    done
    [ $i = 5 ] || fail "$i cases"
    ;;
  resume_meaning)
    train --force checkpoint.every_steps=1 checkpoint.keep_last=0 > "$work/1.log" 2>&1 ||
      fail "train: $(tail -5 "$work/1.log")"
    train --resume train.max_steps=3 train.samples_per_problem=2 > "$work/2.log" 2>&1
    code=$?
    [ $code = 2 ] || fail "a changed group size resumed (exit $code)"
    grep -q "train.samples_per_problem: 2 vs 4" "$work/2.log" || fail "no key named: $(cat "$work/2.log")"
    ! grep -q "generator ready" "$work/2.log" || fail "models loaded before the refusal"
    # Changing how long it runs is not a change of meaning; and step-1 can be chosen.
    train --resume step-1 > "$work/3.log" 2>&1 || fail "--resume step-1: $(tail -5 "$work/3.log")"
    grep -q "resuming from .*step-000001 (step 1)" "$work/3.log" || fail "not from step 1: $(cat "$work/3.log")"
    [ "$(steps_of "$run/metrics.jsonl" | tr '\n' ' ')" = "1 2 " ] || fail "steps after resume"
    # A history rewritten from step 1 leaves no newer checkpoint behind for a later --resume.
    train --resume step-1 train.max_steps=1 > "$work/5.log" 2>&1 || fail "resume at the end: $(tail -3 "$work/5.log")"
    [ "$(ls "$run/checkpoints")" = step-000001 ] || fail "newer checkpoints kept: $(ls "$run/checkpoints")"
    grep -q "removed .*step-000002: newer than the checkpoint resumed from" "$work/5.log" ||
      fail "no word about the removed checkpoint: $(cat "$work/5.log")"
    train --resume step-7 > "$work/4.log" 2>&1
    [ $? = 2 ] && grep -q "no checkpoint 'step-7'" "$work/4.log" || fail "step-7: $(cat "$work/4.log")"
    ;;
  plot_runs)
    for seed in 1 2; do
      "$pedagogy" train --config config/tiny.toml --force logging.run_dir="$work/run$seed" \
        "${models[@]}" inspect.port=0 train.max_steps=2 train.seed=$seed > "$work/$seed.log" 2>&1 ||
        fail "train $seed: $(tail -5 "$work/$seed.log")"
    done
    "$pedagogy" plot "$work/run1" "$work/run2" > "$work/plot.log" 2>&1 && fail "two runs without --out"
    grep -q "out" "$work/plot.log" || fail "no hint about --out: $(cat "$work/plot.log")"
    "$pedagogy" plot "$work/run1" "$work/run2" --out "$work/both.svg" --smooth 2 > "$work/plot.log" 2>&1 ||
      fail "plot: $(cat "$work/plot.log")"
    python3 - "$work/both.svg" <<'PY' || fail "not two series per chart"
import sys, xml.etree.ElementTree as ET
svg = ET.parse(sys.argv[1]).getroot()
ns = "{http://www.w3.org/2000/svg}"
charts = [g for g in svg.iter(ns + "g") if g.get("class") == "chart"]
assert len(charts) >= 6, len(charts)
for chart in charts:
    runs = {e.get("data-series") for e in chart.iter() if e.get("class") == "series"}
    assert runs == {"run1", "run2"}, (chart.get("data-title"), runs)
text = "".join(svg.itertext())
assert "run1" in text and "run2" in text, "no legend"
PY
    ;;
  plan)
    "$pedagogy" config plan --config config/tiny.toml > "$work/tiny.log" 2>&1 || fail "tiny plan"
    grep -q "cpu" "$work/tiny.log" && ! grep -q "cuda:0" "$work/tiny.log" || fail "tiny planned on a GPU: $(cat "$work/tiny.log")"
    ! grep -q "fits" "$work/tiny.log" || fail "the CPU plan says fits"
    "$pedagogy" config plan --config config/qwen2.5-7b.toml cluster.device_memory_gib=79 \
      > "$work/7b.log" 2>&1 || fail "7b plan without weights: $(cat "$work/7b.log")"
    grep -q "verdict: unknown" "$work/7b.log" || fail "no unknown verdict: $(cat "$work/7b.log")"
    ! grep -q "plan fits" "$work/7b.log" || fail "it says fits without shapes"
    # 141 GB: an H200 (its plan does not fit 80 GB, which the same command says with 79).
    "$pedagogy" config plan --config config/qwen2.5-7b.toml --shapes tests/data/shapes \
      cluster.device_memory_gib=141 > "$work/shapes.log" 2>&1 || fail "shapes: $(cat "$work/shapes.log")"
    grep -q "verdict: the plan fits" "$work/shapes.log" || fail "no verdict: $(cat "$work/shapes.log")"
    "$pedagogy" config plan --config config/qwen2.5-7b.toml --shapes tests/data/shapes \
      cluster.device_memory_gib=79 > "$work/80gb.log" 2>&1
    [ $? = 2 ] && grep -q "needs .* GiB, its device has 79.0 GiB" "$work/80gb.log" ||
      fail "80 GB: $(cat "$work/80gb.log")"
    ;;
  *)
    fail "unknown case"
    ;;
esac
echo "ok: $case"
