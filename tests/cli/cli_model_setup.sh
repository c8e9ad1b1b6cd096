#!/usr/bin/env bash
# How a run finds its models, through `pedagogy rollout` on the tiny preset (whose `init` creates
# missing models): a path that reads as a Hugging Face hub id exits 2 with the download command
# and creates nothing (it used to become a random qwen2 model in ./Qwen/...), and a device this
# process cannot use exits 2 naming its key (it used to exit 1 with LibTorch's backend dump).
#   cli_model_setup.sh PEDAGOGY SOURCE_DIR WORK_DIR
set -euo pipefail
pedagogy=$1
src=$2
work=$3
rm -rf "$work"
mkdir -p "$work"
cd "$work" # where the preset's relative model paths would land
fail() { echo "FAIL: $*" >&2; exit 1; }

# expect_refusal WHAT TEXT OVERRIDES...: the rollout exits 2 and stderr holds TEXT.
expect_refusal() {
  local what=$1 text=$2
  shift 2
  local rc=0 err
  err=$(timeout 300 "$pedagogy" rollout --config "$src/config/tiny.toml" \
    --problems "$src/data/problems_test.jsonl" --limit 1 --samples 1 --out "$work/out.jsonl" \
    --force classroom.templates_dir="$src/prompt_templates" "$@" 2>&1 >/dev/null) || rc=$?
  [ "$rc" -eq 2 ] || fail "$what: exit $rc, expected 2: $(echo "$err" | head -5)"
  [[ "$err" == *"$text"* ]] || fail "$what: stderr lacks '$text': $(echo "$err" | head -5)"
  [[ "$err" != *"aten::"* ]] || fail "$what: LibTorch's dump instead of an error"
}

for hub in Qwen/Qwen2.5-0.5B-Instruct meta-llama/Llama-3.2-1B-Instruct; do
  expect_refusal "$hub" "huggingface-cli download $hub --local-dir weights/${hub#*/}" \
    tutor.model="$hub"
  [ ! -e "${hub%%/*}" ] || fail "$hub: created ./${hub%%/*}"
done

"$pedagogy" init-model --family qwen2 --out "$work/model" > /dev/null
# cuda:99: this LibTorch is a CPU-only build, or the machine has fewer GPUs.
expect_refusal "a device not here" "tutor.device: 'cuda:99'" tutor.model="$work/model" \
  student.model="$work/model" tutor.device=cuda:99

# A list of token ids nested 100,000 deep is refused; quoting it in the error must not recurse.
rc=0
err=$(python3 -c "print('[' * 100000 + ']' * 100000)" |
  "$pedagogy" tokenize --decode --model "$work/model" 2>&1 >/dev/null) || rc=$?
[ "$rc" -eq 2 ] && [[ $err == *"is not an integer"* ]] || fail "deep ids: exit $rc: ${err:0:300}"

# logits takes only integer ids, and no more of them than the model has positions for (40,000
# ids once ran for minutes before failing).
rc=0
err=$(echo '[72, 1.5]' | "$pedagogy" logits --model "$work/model" --out "$work/l.safetensors" 2>&1) ||
  rc=$?
[ "$rc" -eq 2 ] && [[ $err == *"token id 1.5 is not an integer"* ]] || fail "logits [1.5]: exit $rc: $err"
rc=0
err=$(python3 -c "import json; n = json.load(open('$work/model/config.json'))['max_position_embeddings']
print([72] * (n + 1))" | "$pedagogy" logits --model "$work/model" --out "$work/l.safetensors" 2>&1) ||
  rc=$?
[ "$rc" -eq 2 ] && [[ $err == *"max_position_embeddings"* ]] || fail "logits past positions: exit $rc: $err"
[ ! -e "$work/l.safetensors" ] || fail "logits wrote output for refused input"

# A path that cannot be what it must be (here a link loop) is bad input with a hint, not a
# bare "filesystem error".
ln -sfn loop-b "$work/loop-a"
ln -sfn loop-a "$work/loop-b"
rc=0
err=$("$pedagogy" tokenize --model "$work/loop-a" < /dev/null 2>&1) || rc=$?
[ "$rc" -eq 2 ] && [[ $err == *"loop-a: Too many levels of symbolic links"*"hint:"* ]] ||
  fail "link loop: exit $rc: $err"

# An empty --config is refused, not read as "no config".
rc=0
err=$("$pedagogy" config show --config '' 2>&1 >/dev/null) || rc=$?
[ "$rc" -eq 2 ] && [[ $err == *"--config: an empty path"* ]] || fail "--config '': exit $rc: $err"

# A corrupted tokenizer.json or tokenizer_config.json is refused, naming the file.
broken() { # broken NAME PYTHON: a copy of the model whose files PYTHON edits
  rm -rf "$work/$1"
  cp -r "$work/model" "$work/$1"
  (cd "$work/$1" && python3 -c "$2")
}
broken dup_id 'import json; t = json.load(open("tokenizer.json"))
a = t["added_tokens"]; a.append(dict(a[0], content="<|dup|>"))
json.dump(t, open("tokenizer.json", "w"))'
expect_refusal "two added tokens with one id" "share the id" tutor.model="$work/model" \
  student.model="$work/dup_id"
broken list_config 'open("tokenizer_config.json", "w").write("[]")'
expect_refusal "tokenizer_config.json not an object" "tokenizer_config.json: is not a JSON object" \
  tutor.model="$work/model" student.model="$work/list_config"
broken dangling_config 'import os; os.remove("tokenizer_config.json"); os.symlink("gone.json", "tokenizer_config.json")'
expect_refusal "tokenizer_config.json links to nothing" "tokenizer_config.json" \
  tutor.model="$work/model" student.model="$work/dangling_config"
echo "cli_model_setup: ok"
