#!/usr/bin/env bash
# One-shot check of a single-GPU machine that has PyTorch (CUDA) and, where present, Hugging Face
# transformers, and no internet: unpacks the Debian packages brought in --debs (see
# ../shared/device/README.md: fetch-debs.sh, unpack-prefix.sh), builds pedagogy against that
# PyTorch's LibTorch, runs the gpu-labelled tests and writes one JSON of figures (--out): versions,
# our logits against transformers' on the same random-init Qwen2/Qwen3/Llama weights, engine
# tokens/s against transformers' generate, learner tokens/s and MFU, weight-sync times. The JSON's
# sections are described in tools/device_check_json.py.
#
# Every step runs under `timeout`, within an overall budget (530 s: under 9 minutes on an H100
# with a cold build); a step that fails or runs out of time marks its own section and the others
# go on. Exit status: 0 when the JSON is valid and no section failed, 1 otherwise.
# Steps, expected time on an H100 and [timeout, cut to what the budget leaves once the later
# sections' least useful time is kept back]: versions ~10 s [60]; unpack ~5 s [60]; configure
# ~30 s [150]; build of pedagogy ~150-250 s [360]; gpu tests' targets ~30 s [240] and run [150];
# per family init-model [120], our fp32 and bf16 logits [90 each], transformers' [150], ~90 s
# for all three; generate: init-model [120], engine [150], transformers [150], ~80 s; learner
# [150] ~30 s; weight sync of 0.5B [120] and 7B [120] parameters ~20 s.
#
#   tools/device-check.sh [--debs .gpu-debs] [--out device-check.json] [--build-dir build-gpu]
#   tools/device-check.sh --cpu --build-dir build --out /tmp/dc.json   # the dry run CI runs:
#       no unpacking or build (reuses --build-dir), the same commands on tiny sizes on the CPU,
#       transformers' parts skipped when it cannot be imported; the JSON is then validated
#
# Options: --debs DIR (.gpu-debs), --prefix DIR (where they are unpacked: /tmp/pedagogy-deps),
# --build-dir DIR (build-gpu; with --cpu: build), --no-build (reuse --build-dir on a GPU too),
# --out FILE (device-check.json), --work DIR (logs and scratch models: a new temporary folder),
# --python PY (the Python with torch: $PYTHON, else python3), --budget SECONDS, --keep (keep the
# scratch models and logits files). PEDAGOGY_PEAK_FLOPS overrides the GPU's peak bf16 FLOP/s.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
here=$root/tools
cpu=false
debs=.gpu-debs
prefix=${TMPDIR:-/tmp}/pedagogy-deps
build_dir=
no_build=false
out="device-check.json"
work=
python=${PYTHON:-}
budget=
keep=false

usage() { sed -n '2,/^set -uo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case $1 in
    --cpu) cpu=true ;;
    --debs) debs=${2:?--debs DIR}; shift ;;
    --prefix) prefix=${2:?--prefix DIR}; shift ;;
    --build-dir) build_dir=${2:?--build-dir DIR}; shift ;;
    --no-build) no_build=true ;;
    --out) out=${2:?--out FILE}; shift ;;
    --work) work=${2:?--work DIR}; shift ;;
    --python) python=${2:?--python PY}; shift ;;
    --budget) budget=${2:?--budget SECONDS}; shift ;;
    --keep) keep=true ;;
    -h|--help) usage; exit 0 ;;
    *) echo "device-check: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

if $cpu; then
  mode=cpu; no_build=true; build_dir=${build_dir:-build}; budget=${budget:-170}; device=cpu
else
  mode=gpu; build_dir=${build_dir:-build-gpu}; budget=${budget:-530}; device=cuda:0
fi
case $build_dir in /*) ;; *) build_dir=$root/$build_dir ;; esac
case $debs in /*) ;; *) debs=$root/$debs ;; esac
case $out in /*) ;; *) out=$PWD/$out ;; esac
if [ -z "$work" ]; then
  work=$(mktemp -d "${TMPDIR:-/tmp}/pedagogy-device-check.XXXXXX")
elif [ -n "$(ls -A "$work" 2>/dev/null)" ] && [ ! -f "$work/meta.txt" ]; then
  echo "device-check: --work $work holds files of something else; give an empty folder" >&2
  exit 2
else
  rm -rf "$work" && mkdir -p "$work"
fi
case $work in /*) ;; *) work=$PWD/$work ;; esac
mkdir -p "$(dirname "$out")"
started=$(date +%s)
deadline=$((SECONDS + budget))
reserve=0
bin=$build_dir/pedagogy

# The Python that has torch (the GPU machines keep it in a venv; Debian's python3-torch is
# /usr/bin/python3's), else plain python3: the JSON side needs only its standard library.
if [ -z "$python" ]; then
  python=python3
  if ! python3 -c 'import torch' >/dev/null 2>&1; then
    for candidate in "${VIRTUAL_ENV:-}/bin/python3" /opt/torch/.venv/bin/python3 /usr/bin/python3; do
      if [ -x "$candidate" ] && "$candidate" -c 'import torch' >/dev/null 2>&1; then
        python=$candidate
        break
      fi
    done
  fi
fi
# shellcheck disable=SC2317  # (these run through step, in a child bash)
json() { "$python" "$here/device_check_json.py" "$@"; }
# shellcheck disable=SC2317
hf() { "$python" "$here/device_check_hf.py" "$@"; }

# make_model FAMILY PRESET VOCAB DTYPE DIR: a random-init model whose vocabulary is VOCAB ids
# (the family's byte-level tokenizer grown to a released model's size, so that the embedding and
# LM head are too), written by init-model.
# shellcheck disable=SC2317
make_model() {
  set -e
  "$bin" init-model --family "$1" --preset tiny --out "$5-tokenizer" --force > /dev/null
  json tokenizer --source "$5-tokenizer" --vocab "$3" --out "$5-tokenizer"
  "$bin" init-model --family "$1" --preset "$2" --seed 1 --dtype "$4" --tokenizer "$5-tokenizer" \
    --out "$5" --force
}
export -f json hf make_model
export python here bin

meta() { printf '%s=%s\n' "$1" "$2" >> "$work/meta.txt"; }
say() { printf '[%4ds] %s\n' $((SECONDS - deadline + budget)) "$*" >&2; }

# record SECTION STEP STATUS [SECONDS]
record() {
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "${4:-0}" >> "$work/steps.tsv"
  say "$1 $2: $3${4:+ (${4} s)}"
}

# The last non-empty line of a file, cut to 300 characters.
last_line() { grep -v '^[[:space:]]*$' "$1" 2>/dev/null | tail -n 1 | cut -c1-300; }
# Why a step failed: its last line that says error, else its last line.
error_line() {
  local line
  line=$(grep -i 'error' "$1" 2>/dev/null | tail -n 1 | cut -c1-300)
  if [ -n "$line" ]; then echo "$line"; else last_line "$1"; fi
}

# step SECTION STEP SECONDS COMMAND...: runs COMMAND under a timeout of SECONDS (less when the
# budget, minus what later sections need, is shorter), stdout to $work/SECTION/STEP.out, stderr
# to STEP.err, and records its status. Returns the command's exit status.
step() {
  local section=$1 name=$2 limit=$3
  shift 3
  local dir=$work/$section
  mkdir -p "$(dirname "$dir/$name")"
  local left=$((deadline - SECONDS - reserve))
  if [ "$left" -lt 5 ]; then
    record "$section" "$name" "skipped: out of time (budget ${budget} s)"
    return 1
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  local command=("$@")
  # A function of this script runs in a child bash (it is exported), as timeout needs a program.
  declare -F "$1" > /dev/null && command=(bash -c '"$@"' _ "$@")
  local begin=$SECONDS rc=0
  timeout --kill-after=10 "$limit" "${command[@]}" > "$dir/$name.out" 2> "$dir/$name.err" \
    < /dev/null || rc=$?
  local took=$((SECONDS - begin))
  if [ "$rc" -eq 0 ]; then
    record "$section" "$name" ok "$took"
  elif [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    record "$section" "$name" "failed: timed out after ${limit} s" "$took"
  else
    local why
    why=$(error_line "$dir/$name.err")
    [ -n "$why" ] || why=$(error_line "$dir/$name.out")
    record "$section" "$name" "failed: exit $rc: ${why:-no output}" "$took"
  fi
  return "$rc"
}

# begin_section NAME SECONDS: later sections keep SECONDS of a 530 s budget for themselves (their
# least useful time, scaled to the budget), so a slow build cannot starve them all.
begin_section() { reserve=$(($2 * budget / 530)); say "== $1"; }

# Sizes: a ~0.5B model (Qwen2.5-0.5B's shape) on a GPU, tiny ones on the CPU.
q05=hidden=896,layers=24,heads=14,kv_heads=2,ffn=4864
declare -A logits_preset
if [ $mode = gpu ]; then
  logits_preset=([qwen2]="hidden=896,layers=4,heads=14,kv_heads=2,ffn=4864"
                 [qwen3]="hidden=1024,layers=4,heads=16,kv_heads=8,ffn=3072,head_dim=128"
                 [llama]="hidden=1024,layers=4,heads=16,kv_heads=4,ffn=4096")
  vocab_qwen=151936 vocab_llama=128256 lengths=128,96,33
  gen_preset=$q05 gen_concurrency=1,64,256 gen_prompt=128 gen_new=128 gen_batch_tokens=8192
  train_preset=$q05 train_sequences=32 train_length=512 train_micro=8
  sync_small=494 sync_large=7615 threads=0
else
  logits_preset=([qwen2]=tiny [qwen3]="hidden=64,layers=2,heads=4,kv_heads=2,ffn=176,head_dim=32"
                 [llama]=tiny)
  vocab_qwen=512 vocab_llama=512 lengths=16,9
  gen_preset=tiny gen_concurrency=1,64,256 gen_prompt=16 gen_new=8 gen_batch_tokens=512
  train_preset=tiny train_sequences=4 train_length=64 train_micro=2
  sync_small=0.494 sync_large=7.615 threads=1
fi
meta budget_s "$budget"
meta device "$device"
meta build_dir "$build_dir"
say "device-check ($mode): work folder $work, python $python, budget $budget s"

# ---- versions, and whether transformers can take part -------------------------------------------
begin_section versions 295
step versions python 60 hf versions
if command -v nvidia-smi >/dev/null; then
  step versions nvidia-smi 20 nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
fi
hf_skip=
if ! "$python" -c 'import torch, transformers' > "$work/hf-import.err" 2>&1; then
  hf_skip="skipped: transformers is not importable by $python ($(last_line "$work/hf-import.err"))"
fi

# ---- deps and build (on a GPU) ------------------------------------------------------------------
begin_section deps 285
if $cpu; then
  record deps unpack "skipped: --cpu uses this machine's packages"
elif $no_build && [ -f "$prefix/env.sh" ]; then
  # shellcheck source=/dev/null
  source "$prefix/env.sh"
  record deps unpack "skipped: --no-build reuses $prefix (its env.sh is sourced)"
  meta deps.prefix "$prefix"
elif $no_build; then
  record deps unpack "skipped: --no-build, and no $prefix/env.sh"
elif ! ls "$debs"/*.deb >/dev/null 2>&1; then
  record deps unpack "skipped: no .deb files in $debs (the machine must have CAF, toml++, \
spdlog, fmt, CLI11, doctest, nlohmann-json, cpp-httplib and Open MPI itself)"
else
  unpack=
  for candidate in "$debs/unpack-prefix.sh" "$root/../shared/device/unpack-prefix.sh" \
                   "$root/shared/device/unpack-prefix.sh"; do
    [ -f "$candidate" ] && { unpack=$candidate; break; }
  done
  if [ -z "$unpack" ]; then
    record deps unpack "failed: no unpack-prefix.sh in $debs or ../shared/device"
  elif step deps unpack 60 bash "$unpack" "$debs" "$prefix"; then
    # shellcheck source=/dev/null
    source "$prefix/env.sh"
    meta deps.prefix "$prefix"
    meta deps.count "$(find "$debs" -name '*.deb' | wc -l)"
  fi
fi

begin_section build 165
if $no_build; then
  record build configure "skipped: --cpu or --no-build reuses $build_dir"
  record build build "skipped: --cpu or --no-build reuses $build_dir"
else
  ask() { "$python" -c "$1" 2>/dev/null; }
  torch_prefix=$(ask 'import torch; print(torch.utils.cmake_prefix_path)')
  # NCCL from the wheel beside torch: a process can hold only one libnccl.so.2.
  nccl_root=$(ask 'import nvidia.nccl; print(list(nvidia.nccl.__path__)[0])' ||
              ask 'import site; print(site.getsitepackages()[0] + "/nvidia/nccl")')
  capability=$(ask 'import torch; print("%d.%d" % torch.cuda.get_device_capability(0))')
  capability=${capability:-9.0}
  meta cuda_arch "${capability/./}"
  generator=()
  command -v ninja >/dev/null && [ ! -f "$build_dir/CMakeCache.txt" ] && generator=(-G Ninja)
  prefix_path=$torch_prefix
  [ -f "$prefix/env.sh" ] && prefix_path="$torch_prefix;$prefix/usr"
  # Debian's CAF 0.17 headers predate GCC 13, whose headers stopped including <cstdint> for them
  # (../shared/reference/dependencies.md §6.3).
  cxx_flags=
  [ "$(c++ -dumpversion 2>/dev/null | cut -d. -f1)" -ge 13 ] 2>/dev/null && cxx_flags="-include cstdint"
  if [ -z "$torch_prefix" ]; then
    record build configure "failed: $python cannot import torch (pass --python)"
    record build build "skipped: not configured"
  elif step build configure 150 cmake -S "$root" -B "$build_dir" "${generator[@]}" \
         -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix_path" -DNCCL_ROOT="$nccl_root" \
         -DCMAKE_CUDA_ARCHITECTURES="${capability/./}" -DTORCH_CUDA_ARCH_LIST="$capability" \
         -DPython3_EXECUTABLE="$(command -v "$python")" -DCMAKE_CXX_FLAGS="$cxx_flags"; then
    step build build 360 cmake --build "$build_dir" --parallel "$(nproc)" --target pedagogy
  else
    record build build "skipped: not configured"
  fi
fi
have_bin=true
if [ ! -x "$bin" ]; then
  have_bin=false
  no_bin="skipped: no $bin (build: $(cut -f3 "$work/steps.tsv" | grep -v '^ok$' | tail -n 1))"
fi
if $have_bin; then
  step versions pedagogy 30 "$bin" --version
else
  record versions pedagogy "$no_bin"
fi

# ---- the gpu-labelled tests ----------------------------------------------------------------------
begin_section gpu_tests 135
mkdir -p "$work/gpu_tests"
if ! $have_bin; then
  record gpu_tests targets "$no_bin"
elif $cpu; then
  # Run from a copy of the build folder's test files, so a CTest already running in the build
  # folder (CI runs this script as one of its tests) keeps its own Testing/ logs. No building.
  # The work folder may lie inside the build folder (CTest's does): the walk leaves it out, and
  # the list is made before anything is copied, so the copy never walks into itself.
  tree=$work/gpu_tests/tree
  mkdir -p "$tree"
  # shellcheck disable=SC2016  # (expanded by the child bash)
  step gpu_tests targets 30 bash -c 'cd "$1" && list=$(find "$PWD" -path "$3" -prune -o \
    -name CTestTestfile.cmake -printf "%P\n") && for f in $list; do cp --parents "$f" "$2/"; done &&
    if find "$2" -path "*/gpu_tests/tree/*/gpu_tests/tree" | grep -q .; then
      echo "the copy of the test files holds itself" >&2; exit 1; fi' \
    _ "$(cd "$build_dir" && pwd -P)" "$tree" "$(cd "$work" && pwd -P)"
  step gpu_tests ctest 120 ctest --test-dir "$tree" -L gpu --output-on-failure \
    --output-junit "$work/gpu_tests/junit.xml"
else
  # The executables of the gpu tests (CTest lists none before they exist), then the tests.
  if step gpu_tests list 30 ctest --test-dir "$build_dir" -N -L gpu --show-only=json-v1 &&
     step gpu_tests known 30 cmake --build "$build_dir" --target help; then
    read -r -a targets <<< "$(json gpu-targets --listing "$work/gpu_tests/list.out" \
      --build-dir "$build_dir" --known "$work/gpu_tests/known.out")"
    if [ "${#targets[@]}" -eq 0 ]; then
      record gpu_tests targets "ok"
    else
      step gpu_tests targets 240 cmake --build "$build_dir" --parallel "$(nproc)" \
        --target "${targets[@]}"
    fi
    step gpu_tests ctest 150 ctest --test-dir "$build_dir" -L gpu --output-on-failure \
      --output-junit "$work/gpu_tests/junit.xml"
  fi
fi

# ---- logits against transformers -----------------------------------------------------------------
begin_section logits 90
for family in qwen2 qwen3 llama; do
  preset=${logits_preset[$family]}
  vocab=$vocab_qwen
  [ $family = llama ] && vocab=$vocab_llama
  meta "logits.$family.preset" "$preset"
  dir=$work/logits/$family
  mkdir -p "$dir"
  if ! $have_bin; then
    for s in init ours_fp32 ours_bf16 hf; do record logits "$family/$s" "$no_bin"; done
    continue
  fi
  models=$work/models
  if step logits "$family/init" 120 make_model $family "$preset" $vocab float32 "$models/$family" &&
     step logits "$family/ids" 30 json ids --model "$models/$family" --lengths $lengths; then
    ok=true
    for dtype in float32 bfloat16; do
      short=fp32
      [ $dtype = bfloat16 ] && short=bf16
      # shellcheck disable=SC2016
      step logits "$family/ours_$short" 90 bash -c '"$1" --log-level warn logits --model "$2" \
        --device "$3" --dtype "$4" --out "$5" < "$6"' _ "$bin" "$models/$family" "$device" $dtype \
        "$dir/ours_$short.safetensors" "$dir/ids.out" || ok=false
    done
    if [ -n "$hf_skip" ]; then
      record logits "$family/hf" "$hf_skip"
    elif $ok; then
      step logits "$family/hf" 150 hf logits --model "$models/$family" --ids "$dir/ids.out" \
        --ours-fp32 "$dir/ours_fp32.safetensors" --ours-bf16 "$dir/ours_bf16.safetensors" \
        --device "$device"
    else
      record logits "$family/hf" "skipped: our logits failed"
    fi
  else
    for s in ours_fp32 ours_bf16 hf; do record logits "$family/$s" "skipped: no model"; done
  fi
done

# ---- engine tokens/s against transformers' generate ----------------------------------------------
begin_section generate 45
meta generate.preset "$gen_preset"
meta generate.dtype bfloat16
meta generate.prompt_tokens "$gen_prompt"
meta generate.new_tokens "$gen_new"
gen_model=$work/models/generate
if ! $have_bin; then
  for s in init engine transformers; do record generate $s "$no_bin"; done
elif step generate init 120 make_model qwen2 "$gen_preset" $vocab_qwen bfloat16 "$gen_model"; then
  step generate engine 150 "$bin" --log-level warn bench generate --model "$gen_model" \
    --device "$device" --dtype bfloat16 --threads "$threads" --concurrency "$gen_concurrency" \
    --prompt-tokens "$gen_prompt" --new-tokens "$gen_new" --max-batch-tokens "$gen_batch_tokens" \
    --throughput-only --json
  if [ -n "$hf_skip" ]; then
    record generate transformers "$hf_skip"
  else
    step generate transformers 150 hf generate --model "$gen_model" --device "$device" \
      --dtype bfloat16 --concurrency "$gen_concurrency" --prompt-tokens "$gen_prompt" \
      --new-tokens "$gen_new"
  fi
else
  record generate engine "skipped: no model"
  record generate transformers "skipped: no model"
fi

# ---- learner tokens/s and MFU --------------------------------------------------------------------
begin_section learner 20
meta learner.preset "$train_preset"
meta learner.sequences "$train_sequences"
meta learner.length "$train_length"
meta learner.precision bfloat16
if [ -n "${PEDAGOGY_PEAK_FLOPS:-}" ]; then
  peak=$PEDAGOGY_PEAK_FLOPS peak_source="PEDAGOGY_PEAK_FLOPS"
elif [ $mode = cpu ]; then
  peak=$(($(nproc) * 80))e9
  peak_source="nominal CPU: $(nproc) cores x 2.5 GHz x 32 float32 FLOP/cycle"
else
  gpu=$(head -n 1 "$work/versions/nvidia-smi.out" 2>/dev/null | cut -d, -f1)
  [ -n "$gpu" ] || gpu=$(grep -o '"gpu": "[^"]*"' "$work/versions/python.out" 2>/dev/null | cut -d'"' -f4)
  case $gpu in
    *H100*PCIe*) peak=756e12 peak_source="H100 PCIe bf16 dense" ;;
    *H100*|*H200*|*H800*) peak=989e12 peak_source="H100/H200 SXM bf16 dense" ;;
    *A100*) peak=312e12 peak_source="A100 bf16 dense" ;;
    *) peak=nan peak_source="unknown GPU '${gpu:-none}': set PEDAGOGY_PEAK_FLOPS" ;;
  esac
fi
meta peak_flops "$peak"
meta peak_source "$peak_source"
if $have_bin; then
  step learner bench 150 "$bin" --log-level warn bench train --device "$device" \
    --preset "$train_preset" --vocab "$vocab_qwen" --sequences "$train_sequences" \
    --length "$train_length" --micro-batch "$train_micro" --steps 0 --threads "$threads" \
    --dtype bfloat16 --json
else
  record learner bench "$no_bin"
fi

# ---- weight sync in one process ------------------------------------------------------------------
begin_section sync 0
meta sync.dtype bfloat16
for size in 0.5b 7b; do
  millions=$sync_small
  [ $size = 7b ] && millions=$sync_large
  if $have_bin; then
    step sync $size 120 "$bin" --log-level warn bench sync --local-only --device "$device" \
      --dtype bfloat16 --millions "$millions" --repeats 3 --json
  else
    record sync $size "$no_bin"
  fi
done

# ---- the report ----------------------------------------------------------------------------------
json assemble --work "$work" --out "$out" --mode $mode --started "$started"
assembled=$?
# The scratch models and logits go (gigabytes on a GPU); the logs stay.
$keep || rm -rf "$work/models" "$work"/logits/*/*.safetensors
if [ $assembled -ne 0 ]; then
  echo "device-check: could not write $out (logs in $work)" >&2
  exit 1
fi
if ! json validate "$out" --mode $mode; then
  echo "device-check: $out is not valid (logs in $work)" >&2
  exit 1
fi
failed=$(json failed "$out")
say "wrote $out in $((SECONDS - deadline + budget)) s (logs in $work)"
if [ -n "$failed" ]; then
  echo "device-check: failed sections: $failed" >&2
  exit 1
fi
exit 0
