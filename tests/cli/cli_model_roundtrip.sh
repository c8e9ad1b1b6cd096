#!/usr/bin/env bash
# init-model -> tokenize -> decode -> chat-template through the `pedagogy` binary, for each family;
# ids that are not in the vocabulary are refused.
set -euo pipefail
pedagogy=$1
work=$2
rm -rf "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }
for family in qwen2 qwen3 llama; do
  dir="$work/$family"
  "$pedagogy" init-model --family "$family" --preset tiny --seed 1 --out "$dir" | grep -q "wrote $dir" \
    || fail "init-model $family"
  for f in config.json model.safetensors tokenizer.json tokenizer_config.json; do
    [ -s "$dir/$f" ] || fail "$family: $f missing"
  done
  text='Héllo, wörld 12345 数学 👍'
  ids=$(printf '%s\n' "$text" | "$pedagogy" tokenize --model "$dir")
  back=$(printf '%s\n' "$ids" | "$pedagogy" tokenize --model "$dir" --decode)
  [ "$back" = "$text" ] || fail "$family: decode(encode(text)) = '$back'"
  # Ids that are no integers in [0, vocab) exit 2 naming the id; they used to wrap or vanish
  # (-1 decoded to '', 4294967400 to 'h', 1.5 to id 1) with exit 0.
  for bad in -1 4294967400 1.5 100000; do
    rc=0
    err=$(printf '[104, %s]\n' "$bad" | "$pedagogy" tokenize --model "$dir" --decode 2>&1 >/dev/null) ||
      rc=$?
    [ "$rc" -eq 2 ] || fail "$family: decode [104, $bad] exited $rc: $err"
    [[ "$err" == *"stdin line 1: token id $bad is not an integer in [0, "* ]] ||
      fail "$family: decode [104, $bad] said '$err'"
  done
  rendered=$(echo '[{"role":"user","content":"hi"}]' | "$pedagogy" chat-template --model "$dir" -g)
  case "$family" in
    llama) expect='<|start_header_id|>assistant<|end_header_id|>' ;;
    *) expect='<|im_start|>assistant' ;;
  esac
  [[ "$rendered" == *"$expect"* ]] || fail "$family: chat-template gave '$rendered'"
  # The chat tokens are single ids.
  n=$(echo '[{"role":"user","content":"hi"}]' | "$pedagogy" chat-template --model "$dir" --ids | tr -d '[]' | tr ',' '\n' | awk '$0+0 >= 256' | wc -l)
  [ "$n" -ge 2 ] || fail "$family: special tokens were not single ids"
  # A second init-model into the same directory must refuse and keep the first model.
  before=$(sha256sum "$dir/model.safetensors")
  if "$pedagogy" init-model --family "$family" --seed 2 --out "$dir" 2>/dev/null; then
    fail "$family: overwrote an existing model without --force"
  fi
  [ "$(sha256sum "$dir/model.safetensors")" = "$before" ] || fail "$family: existing model changed"
done
echo "cli_model_roundtrip: ok"
