#!/usr/bin/env bash
# Builds one of llama.cpp's own programs (once, into $CARGO_TARGET_DIR/llama-server, default
# target/) from the llama.cpp tree vendored in the llama-cpp-python source package (fetched with
# pip, pinned), and prints its path. The default is `llama-server`, for the end-to-end test of the
# remote back-end (scripts/test.sh builds it); `llama-batched-bench` is what a user would measure
# batched decoding with (scripts/bench-batch.sh).
#
#   scripts/build-llama-server.sh [llama-server|llama-batched-bench|llama-bench]
#
# The compiler's output goes to $build/build.log; its last lines are shown if the build fails.
set -euo pipefail
cd "$(dirname "$0")/.."
program=${1:-llama-server}
target=${CARGO_TARGET_DIR:-target}
pyver=0.3.36
src=$target/llama_cpp_python-$pyver/vendor/llama.cpp
if [ ! -f "$src/tools/server/server.cpp" ]; then
  echo "build-llama-server: fetching llama-cpp-python==$pyver sources" >&2
  # Only this package as source: its build requirements may come as wheels (building them from
  # source, cmake and ninja included, takes far longer than llama.cpp itself).
  python3 -m pip download --no-deps --no-binary=llama-cpp-python --quiet -d "$target" \
    "llama-cpp-python==$pyver"
  tar xzf "$target/llama_cpp_python-$pyver.tar.gz" -C "$target"
fi
build=$target/llama-server
if [ ! -x "$build/bin/$program" ]; then
  echo "build-llama-server: building $program from $src (a few minutes)" >&2
  mkdir -p "$build"
  if ! { cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
      -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
      -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TOOLS=ON -DBUILD_SHARED_LIBS=OFF &&
    cmake --build "$build" --target "$program" -j "${JOBS:-$(nproc)}"; } >"$build/build.log" 2>&1; then
    tail -n 30 "$build/build.log" >&2
    echo "build-llama-server: building $program failed; the whole log is $build/build.log" >&2
    exit 1
  fi
fi
echo "$build/bin/$program"
