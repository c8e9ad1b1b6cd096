# Shared by tests/cli_*_faults.sh (sourced): arguments, a fresh work folder, and helpers that
# wait for an observable condition (bounded) instead of sleeping a fixed time.
#   <script> PEDAGOGY SOURCE_DIR WORK_DIR CASE
pedagogy=$1
source_dir=$2
work=$3
case=$4
rm -rf "$work"
mkdir -p "$work"
cd "$source_dir"
fail() {
  echo "FAIL ($case): $*" >&2
  exit 1
}
# True when FILE ends with a newline (an empty file counts as whole).
ends_whole() {
  [ ! -s "$1" ] || [ "$(tail -c 1 "$1" | od -An -c | tr -d ' ')" = '\n' ]
}
# Lines of a JSONL file, failing on a partial last line.
whole_lines() {
  local file=$1
  [ -s "$file" ] || { echo 0; return; }
  ends_whole "$file" || fail "$file ends in a partial line"
  wc -l < "$file" | tr -d ' '
}
# Waits until FILE has at least N lines, or the process PID ended (then fails).
wait_for_lines() {
  local file=$1 n=$2 pid=$3
  for _ in $(seq 1 1200); do
    [ -f "$file" ] && [ "$(wc -l < "$file")" -ge "$n" ] && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
# Waits until FILE contains TEXT, or the process PID ended (then fails).
wait_for_text() {
  local file=$1 text=$2 pid=$3
  for _ in $(seq 1 1200); do
    grep -q "$text" "$file" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}
# Waits for the background process PID and fails unless it exited with CODE.
expect_exit() {
  local pid=$1 code=$2 rc
  set +e
  wait "$pid"
  rc=$?
  set -e
  [ "$rc" -eq "$code" ] || fail "exit $rc, expected $code: $(tail -n 5 "$work/out.log" 2>/dev/null)"
}
