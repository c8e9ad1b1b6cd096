#!/usr/bin/env bash
# Installs the Debian 12 packages pedagogy needs to build, only those that are missing.
# With --tests also node and npm, which fetch the tokenizer/chat-template reference data, and the
# tools the live-inspection tests drive: headless chromium, promtool (prometheus), tmux.
# Idempotent: a second run installs nothing. Uses apt-get as root, sudo otherwise.
set -euo pipefail

packages=(
  g++ cmake ninja-build pkgconf ccache git clang-format
  libcaf-dev                     # actors (0.17.6; brings libcaf-openssl0.17)
  libssl-dev                     # job TLS credentials (OpenSSL 3), headers libcaf-openssl needs
  libtorch-dev                   # LibTorch 1.13, CPU
  libopenblas0-openmp            # fast BLAS for LibTorch: the default reference BLAS is 15x slower
  libtomlplusplus-dev            # config files
  libspdlog-dev libfmt-dev       # logging
  libcli11-dev                   # command line
  nlohmann-json3-dev             # JSONL records, safetensors headers, tokenizer.json
  libpcre2-dev                   # tokenizer pre-tokenizer regexes (Unicode classes, lookahead)
  libutf8proc-dev                # tokenizer NFC normalization
  libcpp-httplib-dev             # inspection server, OpenAI-compatible client
  libopenmpi-dev openmpi-bin     # multi-process placement
  doctest-dev                    # tests
  python3                        # fake servers in the fault tests (libtorch-dev pulls it in too)
)

missing=()
if [ "${1:-}" = "--tests" ]; then
  if ! { command -v node && command -v npm; } >/dev/null; then
    missing+=(nodejs npm)
  fi
  packages+=(chromium prometheus tmux)
fi
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages are installed"
  exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null; then
    echo "install-deps: missing packages: ${missing[*]}" >&2
    echo "  hint: run this script as root, or install sudo" >&2
    exit 1
  fi
  sudo=(sudo)
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
# --no-install-recommends: libtorch's recommends would pull in Qt, GTK and mesa.
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
