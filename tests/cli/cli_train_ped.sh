#!/usr/bin/env bash
# `pedagogy train` with Pedagogical RL on the tiny preset's tutor (setting A), in mix mode: the
# ped_teacher's dialogs are sampled (and recorded as such), scored and described in every step's
# metrics, and no dialog record shows the privileged block.
set -euo pipefail
pedagogy=$1
source_dir=$2
work=$3
rm -rf "$work"
mkdir -p "$work"
cd "$source_dir"
timeout 600 "$pedagogy" train --config config/tiny.toml --force ped.mode=mix ped.refresh_steps=1 \
  train.max_steps=2 tutor.model="$work/tutor" student.model="$work/student" \
  logging.run_dir="$work/run" logging.level=warn > "$work/out.log" 2>&1 ||
  { cat "$work/out.log"; echo "FAIL: train exited $?" >&2; exit 1; }
python3 - "$work/run" <<'PY'
import json, sys
run = sys.argv[1]
lines = [json.loads(l) for l in open(f"{run}/metrics.jsonl")]
assert len(lines) == 2, lines
for m in lines:
    p = m["ped"]
    # 4 problems x ped.teacher_samples = 4, refreshed every step; 16 of the policy's own.
    assert p["teacher_dialogs"] == 16, p
    assert p["rollouts"] == m["dialogs"] + 16, (p, m["dialogs"])
    assert 0 <= p["g"] <= 1 and p["score_s"] > 0, p
records = [json.loads(l) for l in open(f"{run}/dialogs.jsonl")]
teacher = [r for r in records if r["ped_teacher"]]
assert len(teacher) == 32 and all(r["id"].endswith("/ped_teacher") for r in teacher), len(teacher)
assert len(records) - len(teacher) == 32
for r in records:
    for message in r["messages"]:
        assert "A private note for you alone" not in message["content"], r["id"]
print("cli_train_ped: ok", lines[-1]["ped"]["g"])
PY
