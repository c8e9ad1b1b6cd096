#!/usr/bin/env bash
# `pedagogy eval` end to end on tiny random models, one case per CTest entry:
#   cli_eval.sh PEDAGOGY SOURCE_DIR WORK_DIR CASE
# two_tutors   two tutors and the reward model in one run give one table with two rows, whose
#              numbers are those of the records written beside it
# resume       Ctrl-C keeps what finished (exit 130); --resume runs only the rest; a plain rerun
#              and a resume of something else are refused
# dead_tutor   an unreachable tutor endpoint is a row of failed dialogs (exit 1), not a crash
# solve        plain solve accuracy: pass@1 and pass@k per tutor
# bad_input    a tutor that is not a model, a reward model that is a causal LM: exit 2 before
#              any model loads, nothing written
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/fault_common.sh"
models=$work/models
"$pedagogy" init-model --family qwen2 --seed 1 --out "$models/a" > /dev/null
"$pedagogy" init-model --family qwen2 --seed 2 --out "$models/b" > /dev/null
"$pedagogy" init-model --family qwen2 --seed 3 --head classification --out "$models/rm" > /dev/null
common=(--config config/tiny.toml classroom.max_tutor_turns=2 classroom.max_tokens_per_turn=8
  classroom.max_tokens_per_student_attempt=8 student.model="$models/student"
  tutor.model="$models/default_tutor")

# Checks results.json against the records: the row count and labels, and each row's post-dialog
# solve rate and Ped-RM micro average recomputed from dialogs.jsonl and ped_rm.jsonl.
check_table() {
  python3 - "$1" "$2" <<'PY'
import json, sys, collections
out, labels = sys.argv[1], sys.argv[2].split(",")
res = json.load(open(f"{out}/results.json"))
rows = res["rows"]
assert [r["tutor"] for r in rows] == labels, [r["tutor"] for r in rows]
pre = {}
for line in open(f"{out}/pre_dialog.jsonl"):
    r = json.loads(line)
    pre[r["problem_index"]] = r["reward"]["solve_rate"]
assert len(pre) == res["evaluation"]["problems"], (len(pre), res["evaluation"])
for row in rows:
    recs = [json.loads(l) for l in open(f"{out}/{row['tutor']}/dialogs.jsonl")]
    last = {r["id"]: r for r in recs}
    assert row["dialogs"] == len(last), (row, len(last))
    ok = [r for r in last.values() if r["status"] == "ok"]
    assert row["failed"] == len(last) - len(ok)
    post = collections.defaultdict(list)
    for r in ok:
        post[r["problem_index"]].append(r["reward"]["solve_rate"])
    want = sum(sum(v) / len(v) for v in post.values()) / len(post)
    assert abs(row["post_solve_rate"]["mean"] - want) < 1e-9, (row["post_solve_rate"], want)
    want_pre = sum(pre[p] for p in post) / len(post)
    assert abs(row["pre_solve_rate"]["mean"] - want_pre) < 1e-9
    scores = [json.loads(l) for l in open(f"{out}/{row['tutor']}/ped_rm.jsonl")]
    assert {s["id"] for s in scores} == {r["id"] for r in ok}
    turns = [x for s in scores for x in s["scores"]]
    assert turns and abs(row["ped_rm_micro"]["mean"] - sum(turns) / len(turns)) < 1e-9
    # every tutor turn of these dialogs opens or follows a student turn: one score each
    for s in scores:
        r = last[s["id"]]
        tutor = [m for m in r["messages"] if m["role"] == "tutor"]
        assert len(s["scores"]) == len(tutor), (s, tutor)
print("table ok:", labels)
PY
}

case $case in
  two_tutors)
    "$pedagogy" eval "${common[@]}" --tutor first="$models/a" --tutor "$models/b" --limit 5 \
      --out "$work/out" eval.reward_model="$models/rm" > "$work/out.log" 2>&1 ||
      fail "exit $?: $(tail -n 5 "$work/out.log")"
    check_table "$work/out" first,b
    grep -q "| first | 5 | 5 | 0 |" "$work/out/results.md" || fail "$(cat "$work/out/results.md")"
    grep -q "| b | 5 | 5 | 0 |" "$work/out/results.md" || fail "$(cat "$work/out/results.md")"
    grep -q "ETA" "$work/out.log" || fail "no progress line with an ETA"
    # The same tutor twice is refused: rows are told apart by label.
    set +e
    err=$("$pedagogy" eval "${common[@]}" --tutor "$models/a" --tutor x/a --out "$work/o2" 2>&1)
    rc=$?
    set -e
    [ $rc -eq 2 ] && [[ $err == *"two tutors are labelled 'a'"* ]] || fail "same label: $rc $err"
    ;;
  resume)
    args=("${common[@]}" --tutor "$models/a" --tutor "$models/b" --limit 60 --out "$work/out"
      eval.reward_model="$models/rm")
    "$pedagogy" eval "${args[@]}" > "$work/out.log" 2>&1 &
    pid=$!
    trap 'kill -9 $pid 2>/dev/null || true' EXIT
    wait_for_lines "$work/out/a/dialogs.jsonl" 2 $pid || fail "no dialogs: $(tail "$work/out.log")"
    kill -INT $pid
    expect_exit $pid 130
    grep -q -- "--resume completes it" "$work/out.log" || fail "no hint: $(tail "$work/out.log")"
    ends_whole "$work/out/a/dialogs.jsonl" || fail "a partial record"
    kept=$(whole_lines "$work/out/a/dialogs.jsonl")
    [ "$kept" -lt 60 ] || fail "the run finished before the signal; nothing to resume"
    [ ! -e "$work/out/results.json" ] || fail "a table from an unfinished evaluation"
    set +e
    err=$("$pedagogy" eval "${args[@]}" 2>&1)
    rc=$?
    set -e
    [ $rc -eq 2 ] && [[ $err == *"pass --resume"* ]] || fail "rerun without --resume: $rc $err"
    set +e
    err=$("$pedagogy" eval "${args[@]}" --resume eval.samples_per_problem=2 2>&1)
    rc=$?
    set -e
    [ $rc -eq 2 ] && [[ $err == *"would change 'samples_per_problem' from 1 to 2"* ]] ||
      fail "resume of something else: $rc $err"
    "$pedagogy" eval "${args[@]}" --resume > "$work/resume.log" 2>&1 ||
      fail "resume: $(tail "$work/resume.log")"
    grep -q "eval a: $kept of 60 done already" "$work/resume.log" ||
      fail "did not keep the $kept finished: $(grep 'done already' "$work/resume.log")"
    [ "$(whole_lines "$work/out/a/dialogs.jsonl")" -eq 60 ] || fail "records were run twice"
    [ "$(whole_lines "$work/out/pre_dialog.jsonl")" -eq 60 ] || fail "pre-dialog attempts redone"
    check_table "$work/out" a,b
    # A complete evaluation resumed runs nothing and writes the same table.
    cp "$work/out/results.json" "$work/before.json"
    "$pedagogy" eval "${args[@]}" --resume > "$work/again.log" 2>&1 || fail "again"
    grep -q "eval b: all 60 done already" "$work/again.log" || fail "$(cat "$work/again.log")"
    cmp -s "$work/out/results.json" "$work/before.json" || fail "the table changed"
    ;;
  dead_tutor)
    # An endpoint that cannot be reached at all is refused before anything loads or is written.
    set +e
    "$pedagogy" eval "${common[@]}" --tutor dead=m@http://127.0.0.1:9/v1 --tutor "$models/a" \
      --limit 3 --out "$work/never" > "$work/never.log" 2>&1
    rc=$?
    set -e
    [ $rc -eq 2 ] && grep -q "error: tutor.openai.base_url: cannot reach" "$work/never.log" ||
      fail "unreachable at the start: exit $rc: $(tail -3 "$work/never.log")"
    [ ! -e "$work/never" ] || fail "an output folder was made for a refused evaluation"
    # One that lists its models but drops every completion: its rows fail, the others do not.
    python3 tests/cli/fake_openai.py "$work/port" drop &
    server=$!
    trap 'kill $server 2> /dev/null || true' EXIT
    for _ in $(seq 1 200); do [ -s "$work/port" ] && break; sleep 0.05; done
    [ -s "$work/port" ] || fail "the fake server did not start"
    set +e
    "$pedagogy" eval "${common[@]}" --tutor dead=m@http://127.0.0.1:$(cat "$work/port")/v1 --tutor "$models/a" \
      --limit 3 --out "$work/out" tutor.openai.max_retries=0 tutor.openai.timeout_s=5 \
      > "$work/out.log" 2>&1
    rc=$?
    set -e
    [ $rc -eq 1 ] || fail "exit $rc, expected 1: $(tail "$work/out.log")"
    grep -q "| dead | 3 | 3 | 3 | - |" "$work/out/results.md" || fail "$(cat "$work/out/results.md")"
    grep -q "| a | 3 | 3 | 0 |" "$work/out/results.md" || fail "$(cat "$work/out/results.md")"
    grep -q '"status":"failed"' "$work/out/dead/dialogs.jsonl" || fail "no failed records"
    grep -q "is the server running" "$work/out.log" || fail "no hint: $(tail "$work/out.log")"
    grep -q "dead: 3 of 3 dialogs failed" "$work/out.log" || fail "no summary warning"
    ;;
  solve)
    "$pedagogy" eval "${common[@]}" --solve --tutor "$models/a" --tutor "$models/b" --limit 4 \
      --out "$work/out" eval.solve_samples=3 > "$work/out.log" 2>&1 || fail "$(tail "$work/out.log")"
    python3 - "$work/out" <<'PY'
import json, sys
out = sys.argv[1]
res = json.load(open(f"{out}/results.json"))
assert [r["tutor"] for r in res["rows"]] == ["a", "b"]
for row in res["rows"]:
    recs = [json.loads(l) for l in open(f"{out}/{row['tutor']}/solutions.jsonl")]
    assert len(recs) == 4 and all(len(r["solutions"]) == 3 for r in recs)
    want = sum(sum(s["correct"] for s in r["solutions"]) / 3 for r in recs) / 4
    assert abs(row["pass@1"]["mean"] - want) < 1e-9, (row, want)
    assert "pass@3" in row
print("solve ok")
PY
    grep -q "| model | problems | failed | pass@1 % | pass@3 % |" "$work/out/results.md" ||
      fail "$(cat "$work/out/results.md")"
    ;;
  bad_input)
    expect_refusal() {
      local what=$1 text=$2
      shift 2
      set +e
      err=$("$pedagogy" eval "${common[@]}" --limit 2 --out "$work/out" "$@" 2>&1)
      rc=$?
      set -e
      [ $rc -eq 2 ] && [[ $err == *"$text"* ]] || fail "$what: exit $rc: $err"
      [ ! -e "$work/out" ] || fail "$what: wrote $work/out"
    }
    expect_refusal "no model" "is not a model directory (no config.json)" --tutor "$work/nothing"
    expect_refusal "causal RM" "is a causal LM, not a reward model" --tutor "$models/a" \
      eval.reward_model="$models/b"
    expect_refusal "bad label" "is not a plain name" --tutor "a/b=$models/a"
    expect_refusal "bad endpoint" "an endpoint is SERVED_NAME@http" --tutor "m@ftp://x"
    expect_refusal "mpi" "runs in one process" --tutor "$models/a" cluster.mode=mpi
    expect_refusal "resume nothing" "no evaluation to resume" --tutor "$models/a" --resume
    ;;
  *)
    fail "unknown case"
    ;;
esac
echo "ok: $case"
