#!/usr/bin/env bash
# Builds llama.cpp's OpenAI-compatible `llama-server` (once, into $CARGO_TARGET_DIR/llama-server,
# default target/) from the llama.cpp tree vendored in the llama-cpp-python source package
# (fetched with pip, pinned), for the opt-in end-to-end test of the remote back-end:
#
#   scripts/build-llama-server.sh && ARBITRAGE_LLAMA_SERVER=target/llama-server/bin/llama-server \
#     cargo test --release --test remote_e2e
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}
pyver=0.3.36
src=$target/llama_cpp_python-$pyver/vendor/llama.cpp
if [ ! -f "$src/tools/server/server.cpp" ]; then
  echo "build-llama-server: fetching llama-cpp-python==$pyver sources" >&2
  python3 -m pip download --no-deps --no-binary=:all: --quiet -d "$target" "llama-cpp-python==$pyver"
  tar xzf "$target/llama_cpp_python-$pyver.tar.gz" -C "$target"
fi
build=$target/llama-server
if [ ! -x "$build/bin/llama-server" ]; then
  echo "build-llama-server: building llama-server from $src (a few minutes)" >&2
  cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF \
    -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON \
    -DLLAMA_BUILD_TOOLS=ON -DBUILD_SHARED_LIBS=OFF >/dev/null
  cmake --build "$build" --target llama-server -j "${JOBS:-$(nproc)}" >/dev/null
fi
echo "$build/bin/llama-server"
