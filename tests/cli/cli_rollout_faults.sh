#!/usr/bin/env bash
# `pedagogy rollout` under faults, one case per CTest entry:
#   cli_rollout_faults.sh PEDAGOGY SOURCE_DIR WORK_DIR CASE
# force_non_records  --force aimed at a config, weights or a template refuses and keeps the file;
#                    so does --force on records another rollout is writing
# full_disk          a write that fails stops the run (exit 1) naming the file, records whole
# hung_endpoint      a signal while an HTTP request hangs exits at once (130), records kept whole
# prompt_exit        with a healthy OpenAI-compatible student, the command ends right after its
#                    last dialog, not a request timeout (timeout_s + 30 s) later
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/fault_common.sh"
common=(--config config/tiny.toml --samples 2 classroom.max_tutor_turns=1
  classroom.max_tokens_per_turn=8 classroom.max_tokens_per_student_attempt=8
  tutor.model="$work/models/tutor" student.model="$work/models/student")

case $case in
  force_non_records)
    "$pedagogy" rollout "${common[@]}" --limit 2 --out "$work/records.jsonl" > /dev/null 2>&1 ||
      fail "first"
    cp config/tiny.toml "$work/tiny.toml"
    cp prompt_templates/tutor.txt "$work/tutor.txt"
    for victim in "$work/tiny.toml" "$work/tutor.txt" "$work/models/tutor/model.safetensors"; do
      before=$(sha256sum "$victim")
      set +e
      err=$("$pedagogy" rollout "${common[@]}" --limit 2 --out "$victim" --force 2>&1 >/dev/null)
      rc=$?
      set -e
      [ $rc -eq 2 ] && [[ $err == *"overwrites only dialog records"* ]] ||
        fail "--out $victim: exit $rc: $err"
      [ "$(sha256sum "$victim")" = "$before" ] || fail "$victim was changed"
    done
    # A file another rollout is writing (flock holds its lock) is refused, and left as it was.
    before=$(sha256sum "$work/records.jsonl")
    set +e
    err=$(flock "$work/records.jsonl" "$pedagogy" rollout "${common[@]}" --limit 2 \
      --out "$work/records.jsonl" --force 2>&1 >/dev/null)
    rc=$?
    set -e
    [ $rc -eq 2 ] && [[ $err == *"another process"* ]] || fail "concurrent: $rc $err"
    [ "$(sha256sum "$work/records.jsonl")" = "$before" ] || fail "the locked file was changed"
    # An earlier rollout's records may be overwritten.
    "$pedagogy" rollout "${common[@]}" --limit 2 --out "$work/records.jsonl" --force \
      > /dev/null 2>&1 ||
      fail "--force over records"
    ;;
  hung_endpoint)
    # An OpenAI-compatible "server" on loopback that lists its models (the check before anything
    # loads) and never answers a completion; the student's first request hangs there (timeout
    # 60 s), and Ctrl-C must not wait for it.
    python3 tests/cli/fake_openai.py "$work/port" hang "$work/accepted" &
    server=$!
    trap 'kill $server 2>/dev/null || true; kill -9 ${pid:-0} 2>/dev/null || true' EXIT
    for _ in $(seq 1 200); do [ -s "$work/port" ] && break; sleep 0.05; done
    [ -s "$work/port" ] || fail "the fake server did not start"
    "$pedagogy" rollout "${common[@]}" --limit 2 --out "$work/records.jsonl" \
      student.backend=openai \
      student.init='""' student.openai.base_url="http://127.0.0.1:$(cat "$work/port")/v1" \
      student.openai.model=m student.openai.timeout_s=60 > "$work/out.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 1200); do
      [ -s "$work/accepted" ] && break
      kill -0 $pid 2>/dev/null || fail "rollout ended early: $(cat "$work/out.log")"
      sleep 0.05
    done
    [ -s "$work/accepted" ] || fail "no request reached the server"
    start=$(date +%s)
    kill -INT $pid
    set +e
    wait $pid
    rc=$?
    set -e
    took=$(($(date +%s) - start))
    [ $rc -eq 130 ] || fail "exit $rc, expected 130: $(tail -n 3 "$work/out.log")"
    [ $took -le 10 ] || fail "took $took s to stop; the hung request was waited for"
    grep -q "stopped by signal" "$work/out.log" || fail "no message: $(cat "$work/out.log")"
    ends_whole "$work/records.jsonl" || fail "a partial record"
    ;;
  prompt_exit)
    # A server on loopback that answers every chat completion at once, with n choices.
    python3 - "$work/port" <<'PY' &
import json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
class Answer(BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        n = int(body.get("n", 1))
        reply = json.dumps({"id": "x", "object": "chat.completion", "choices": [
            {"index": i, "message": {"role": "assistant", "content": "So \\boxed{4}."},
             "finish_reason": "stop"} for i in range(n)],
            "usage": {"prompt_tokens": 5, "completion_tokens": 4 * n, "total_tokens": 5 + 4 * n}})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply.encode())
    def log_message(self, *args):
        pass
server = HTTPServer(("127.0.0.1", 0), Answer)
open(sys.argv[1], "w").write(str(server.server_address[1]))
server.timeout = 120
server.serve_forever()
PY
    server=$!
    trap 'kill $server 2>/dev/null || true' EXIT
    for _ in $(seq 1 200); do [ -s "$work/port" ] && break; sleep 0.05; done
    [ -s "$work/port" ] || fail "the fake server did not start"
    start=$(date +%s)
    timeout 120 "$pedagogy" rollout "${common[@]}" --limit 2 --out "$work/records.jsonl" \
      student.backend=openai student.init='""' \
      student.openai.base_url="http://127.0.0.1:$(cat "$work/port")/v1" student.openai.model=m \
      student.openai.timeout_s=60 > "$work/out.log" 2>&1 || fail "rollout: $(tail -3 "$work/out.log")"
    took=$(($(date +%s) - start))
    [ "$(whole_lines "$work/records.jsonl")" -eq 4 ] || fail "not 4 records"
    # Loading the tutor and 4 short dialogs take seconds; waiting on a request's guard took 90.
    [ $took -le 30 ] || fail "took $took s: the process outlived its last dialog"
    ;;
  full_disk)
    # Records pass 4 KiB (RLIMIT_FSIZE standing in for a full disk) after a few dialogs: exit 1
    # naming the file, no claim of success, and the records written so far are whole lines.
    "$pedagogy" rollout "${common[@]}" --limit 1 --out "$work/warmup.jsonl" > /dev/null 2>&1 ||
      fail "warm-up"
    set +e
    err=$( (ulimit -f 4; exec "$pedagogy" rollout "${common[@]}" --limit 8 \
      --out "$work/records.jsonl") 2>&1)
    rc=$?
    set -e
    [ $rc -eq 1 ] || fail "exit $rc, expected 1: $err"
    [[ $err == *"records.jsonl"* ]] || fail "the error does not name the file: $err"
    [[ $err != *"wrote "* ]] || fail "claimed success: $err"
    [ -s "$work/records.jsonl" ] || fail "no record was kept"
    ends_whole "$work/records.jsonl" || fail "a partial record"
    ;;
  *)
    fail "unknown case"
    ;;
esac
echo "ok: $case"
