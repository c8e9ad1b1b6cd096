#!/usr/bin/env bash
# Live inspection of a running `pedagogy train` (tests/CMakeLists.txt runs each case as an entry):
#   <script> PEDAGOGY SOURCE_DIR WORK_DIR CASE
#   live   during a tiny run: /status lists every actor with its role, /metrics passes promtool
#          and its counters move between two reads, /dialogs shows what tutor, student and judges
#          saw; `pedagogy inspect --once/--json` print every actor; the live view under tmux
#          shows the table; after the run, headless chromium runs the page: the actor table holds
#          the run's roles and each chart one point per finished step (screenshot in WORK_DIR);
#          `pedagogy plot` draws the same steps, and names a broken metrics row
#   token  a non-loopback address without a token is refused before anything runs; with one,
#          requests without it get 401 and `pedagogy inspect` says a token is needed
set -u
source "$(dirname "$0")/fault_common.sh"
export PATH="$PATH:/usr/sbin:/usr/bin"

# Every request of the test goes through here: GET URL [TOKEN] -> body on stdout, or fails.
get() {
  python3 - "$@" <<'PY'
import sys, urllib.request
request = urllib.request.Request(sys.argv[1])
if len(sys.argv) > 2:
    request.add_header("Authorization", "Bearer " + sys.argv[2])
try:
    sys.stdout.write(urllib.request.urlopen(request, timeout=10).read().decode())
except urllib.error.HTTPError as e:
    print(f"HTTP {e.code}", file=sys.stderr)
    sys.exit(3)
PY
}

# Waits until /status satisfies the Python expression COND over `s` (bounded), or the job ended.
wait_status() {
  local url=$1 cond=$2 pid=$3
  for _ in $(seq 1 600); do
    kill -0 "$pid" 2>/dev/null || return 1
    if get "$url/status" 2>/dev/null | python3 -c "import json,sys; s=json.load(sys.stdin); sys.exit(0 if ($cond) else 1)" 2>/dev/null; then
      return 0
    fi
    sleep 0.2
  done
  return 1
}

need() {
  command -v "$1" > /dev/null || fail "$1 is not installed (bash launch/install-deps.sh --tests installs it)"
}

run=(--config config/tiny.toml --force tutor.model="$work/w/tutor" student.model="$work/w/student"
     logging.run_dir="$work/run" inspect.heartbeat_ms=200 inspect.linger_s=-1)

case $case in
  live)
    need promtool; need chromium; need tmux
    timeout 600 "$pedagogy" train "${run[@]}" train.max_steps=4 > "$work/out.log" 2>&1 &
    job=$!
    wait_for_text "$work/out.log" "live inspection at" "$job" || { tail "$work/out.log"; fail "no address printed"; }
    url=$(grep -o 'live inspection at http://[0-9.]*:[0-9]*' "$work/out.log" | grep -o 'http.*')
    address=${url#http://}

    # During the run: the first read once a step is done, the second once another is.
    wait_status "$url" "s['run']['completed_steps'] >= 1" "$job" || fail "no step finished"
    get "$url/status" > "$work/status1.json" || fail "/status"
    get "$url/metrics" > "$work/metrics1.txt" || fail "/metrics"
    get "$url/dialogs" > "$work/dialogs1.json" || fail "/dialogs"
    wait_status "$url" "s['run']['completed_steps'] >= 2" "$job" || fail "no second step"
    get "$url/metrics" > "$work/metrics2.txt" || fail "/metrics (second read)"
    python3 - "$work" <<'PY' || fail "the inspector's picture is wrong"
import json, sys, re
work = sys.argv[1]
status = json.load(open(f"{work}/status1.json"))
roles = {a["role"]: a for a in status["actors"]}
for role in ["trainer", "inspector", "tutor", "student", "learner"]:
    assert role in roles, (role, sorted(roles))
    assert roles[role]["rank"] == 0 and roles[role]["node"], roles[role]
    assert roles[role]["state"] != "unresponsive", roles[role]
assert status["run"]["total_steps"] == 4, status["run"]
assert status["latest_step"]["step"] >= 0, status["latest_step"]
def samples(path):
    out = {}
    for line in open(path):
        if line.startswith("#") or not line.strip():
            continue
        name, value = line.rsplit(" ", 1)
        out[name] = float(value)
    return out
one, two = samples(f"{work}/metrics1.txt"), samples(f"{work}/metrics2.txt")
# Counters only grow, and each completed step accounts for its 4 x 4 dialogs. (Whether a counter
# moved between the two reads depends on timing: both may fall in one step's learning phase.)
finished, steps = "pedagogy_dialogs_finished_total", "pedagogy_train_steps_completed"
assert one[steps] >= 1 and two[steps] >= 2, (one[steps], two[steps])
for m in (one, two):
    assert m[finished] >= 16 * m[steps], (m[finished], m[steps])
assert two[finished] >= one[finished] and two[steps] >= one[steps]
tutor = [k for k in one if k.startswith("pedagogy_actor_tokens_total{") and 'role="tutor"' in k]
assert tutor and two[tutor[0]] >= one[tutor[0]] > 0, tutor
dialogs = json.load(open(f"{work}/dialogs1.json"))
assert dialogs["finished"], "no finished dialog"
d = dialogs["finished"][0]
assert d["messages"] and d["student_view"] and d["judgements"] and "reward" in d, d.keys()
print("ok: roles", sorted(roles), "| dialogs finished", one[finished], "->", two[finished])
PY
    promtool check metrics < "$work/metrics1.txt" || fail "promtool rejects /metrics"
    promtool check metrics < "$work/metrics2.txt" || fail "promtool rejects /metrics (second read)"

    # The terminal views.
    "$pedagogy" inspect "$address" --once > "$work/once.txt" || fail "inspect --once failed"
    for role in trainer inspector tutor student learner; do
      grep -q "^$role " "$work/once.txt" || { cat "$work/once.txt"; fail "inspect --once lacks $role"; }
    done
    "$pedagogy" inspect "$address" --json | python3 -c "import json,sys; s=json.load(sys.stdin); assert len(s['actors']) == 5" ||
      fail "inspect --json"
    session="pedagogy-inspect-$$"
    tmux new-session -d -s "$session" -x 220 -y 40 "$pedagogy inspect $address --interval 0.3"
    seen=no
    for _ in $(seq 1 100); do
      tmux capture-pane -p -t "$session" > "$work/tmux.txt" 2>/dev/null
      grep -q "^ROLE " "$work/tmux.txt" && grep -q "^learner " "$work/tmux.txt" && { seen=yes; break; }
      sleep 0.1
    done
    tmux kill-session -t "$session" 2>/dev/null
    [ "$seen" = yes ] || { cat "$work/tmux.txt"; fail "the live view under tmux shows no table"; }

    # After the run: the page in a real browser.
    wait_status "$url" "s['run']['state'] == 'finished'" "$job" || fail "the run did not finish"
    steps=$(get "$url/status" | python3 -c "import json,sys; print(json.load(sys.stdin)['run']['completed_steps'])")
    [ "$steps" -eq 4 ] || fail "completed_steps = $steps"
    browser=(chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage
             --user-data-dir="$work/chromium" --virtual-time-budget=8000)
    timeout 120 "${browser[@]}" --dump-dom "$url/" > "$work/page.html" 2> "$work/chromium.log" ||
      { tail "$work/chromium.log"; fail "chromium could not load the page"; }
    timeout 120 "${browser[@]}" --window-size=1400,1100 --screenshot="$work/inspect_page.png" "$url/" \
      2>> "$work/chromium.log" || fail "chromium could not take a screenshot"
    [ -s "$work/inspect_page.png" ] || fail "no screenshot written"
    python3 - "$work/page.html" "$steps" <<'PY' || fail "the page's DOM is wrong"
import sys
from html.parser import HTMLParser
class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.roles, self.charts, self.ready = [], {}, False
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tr" and "data-role" in a:
            self.roles.append(a["data-role"])
        if tag == "svg" and "chart" in a.get("class", "").split():
            self.charts[a["id"]] = int(a.get("data-points", "-1"))
        if tag == "body" and a.get("data-ready") == "yes":
            self.ready = True
page = Page()
page.feed(open(sys.argv[1]).read())
steps = int(sys.argv[2])
assert page.ready, "the page's script did not run"
assert sorted(page.roles) == sorted(["trainer", "inspector", "tutor", "student", "learner"]), page.roles
assert page.charts and all(n == steps for n in page.charts.values()), (page.charts, steps)
print("ok: page rows", page.roles, "charts", page.charts)
PY

    # The same curves from the run folder, as an SVG; a broken row is named by its line.
    "$pedagogy" plot "$work/run" --out "$work/metrics.svg" > /dev/null || fail "plot failed"
    [ "$(grep -o 'data-points="4"' "$work/metrics.svg" | wc -l)" -eq 8 ] ||
      fail "plot: not 8 charts of 4 points: $(grep -o 'data-points="[0-9]*"' "$work/metrics.svg")"
    mkdir -p "$work/broken"
    sed '2s/.*/{"step": 1, "reward": /' "$work/run/metrics.jsonl" > "$work/broken/metrics.jsonl"
    set +e
    err=$("$pedagogy" plot "$work/broken" --out "$work/broken.svg" 2>&1)
    rc=$?
    set -e
    [ "$rc" -eq 2 ] && [[ $err == *"metrics.jsonl:2: not a JSON object"* ]] ||
      fail "plot of a broken row: rc $rc: $err"
    [ ! -e "$work/broken.svg" ] || fail "plot wrote a picture from a broken file"

    # Ctrl-C ends the lingering inspector; the run had finished, so the exit code is 0.
    grep -q "waiting for Ctrl-C (or SIGTERM), as inspect.linger_s = -1" "$work/out.log" ||
      fail "no word that the inspector lingers, and why"
    pkill -INT -P "$job" # pedagogy itself: timeout would pass the signal on twice
    expect_exit "$job" 0
    echo "ok: live inspection of a 4-step run (screenshot: $work/inspect_page.png)"
    ;;
  token)
    # Refused before anything runs: no models made, no run folder written.
    set +e
    err=$(timeout 120 "$pedagogy" train "${run[@]}" inspect.host=0.0.0.0 2>&1)
    rc=$?
    set -e
    [ "$rc" -eq 2 ] || fail "exit $rc without a token on 0.0.0.0: $err"
    [[ $err == *inspect.host* && $err == *token* ]] || fail "the error does not name inspect.host: $err"
    [ ! -e "$work/run/metrics.jsonl" ] && [ ! -e "$work/w/tutor" ] || fail "it ran before refusing"

    PEDAGOGY_INSPECT_TOKEN=open-sesame timeout 600 "$pedagogy" train "${run[@]}" train.max_steps=1 \
      inspect.host=0.0.0.0 > "$work/out.log" 2>&1 &
    job=$!
    wait_for_text "$work/out.log" "live inspection at" "$job" || { tail "$work/out.log"; fail "no address printed"; }
    grep -q "token required" "$work/out.log" || fail "the start line does not say a token is required"
    port=$(grep -o 'live inspection at http://[0-9.]*:[0-9]*' "$work/out.log" | grep -o '[0-9]*$')
    url="http://127.0.0.1:$port"
    set +e
    get "$url/status" > /dev/null 2> "$work/get.err"
    rc=$?
    set -e
    [ "$rc" -eq 3 ] && grep -q "HTTP 401" "$work/get.err" || fail "no 401 without the token (rc $rc)"
    get "$url/status" open-sesame > /dev/null || fail "the token was not accepted"
    get "$url/?token=open-sesame" | grep -q 'id="actors"' || fail "the page with ?token= was refused"
    set +e
    err=$(env -u PEDAGOGY_INSPECT_TOKEN "$pedagogy" inspect "127.0.0.1:$port" --once 2>&1)
    rc=$?
    set -e
    [ "$rc" -eq 1 ] && [[ $err == *token* ]] || fail "inspect without a token: rc $rc: $err"
    "$pedagogy" inspect "127.0.0.1:$port" --once --token open-sesame | grep -q "^tutor " ||
      fail "inspect --token did not show the actors"
    # Once the step is done and the inspector lingers, Ctrl-C ends the job with the run's 0.
    wait_for_text "$work/out.log" "waiting for Ctrl-C" "$job" || fail "the run did not finish"
    pkill -INT -P "$job"
    expect_exit "$job" 0
    echo "ok: refused without a token; 401 without it, 200 with it"
    ;;
  *)
    fail "unknown case"
    ;;
esac
