#!/usr/bin/env bash
# Install the system packages the build and tests need (llama.cpp is built from source by the
# llama-cpp-2 crate: it needs cmake and libclang). Skips what is already there.
#
#   scripts/install-deps.sh [--test]
set -euo pipefail
missing=()
command -v cmake >/dev/null || missing+=(cmake)
# bindgen needs libclang.so; Debian ships it in libclang-dev (via libclang-NN-dev).
if ! ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 && ! ldconfig -p 2>/dev/null | grep -q 'libclang[-.0-9]*\.so'; then
  missing+=(libclang-dev)
fi
command -v c++ >/dev/null || missing+=(g++)
# The sweep plots measure and draw text with a TrueType font.
ls /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf >/dev/null 2>&1 || missing+=(fonts-dejavu-core)
# `--test`: the report test opens the HTML page in headless Chromium.
if [ "${1:-}" = --test ]; then
  command -v chromium >/dev/null || command -v chromium-browser >/dev/null || missing+=(chromium)
fi
command -v cargo >/dev/null || { echo "install-deps: cargo is required (https://rustup.rs)" >&2; exit 1; }
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
echo "install-deps: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
if ! command -v apt-get >/dev/null; then
  echo "install-deps: please install ${missing[*]} with your package manager" >&2
  exit 1
fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
