#!/usr/bin/env bash
# Engine throughput, side by side with llama.cpp's own llama-bench on the same GGUF files and
# thread count. The llama-cpp-sys-2 crate ships llama.cpp without the llama-bench sources, so
# llama-bench is built (once, into target/llama-bench) from the llama.cpp tree vendored in the
# llama-cpp-python source package (fetched with pip, pinned), with the same native CPU flags.
#
#   scripts/bench-engine.sh [THREADS] [REPS]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/default-models.sh
. scripts/default-models.sh
threads=${1:-$(nproc)}
reps=${2:-5}
pyver=0.3.36
src=target/llama_cpp_python-$pyver/vendor/llama.cpp
if [ ! -f "$src/tools/llama-bench/llama-bench.cpp" ]; then
  echo "bench-engine: fetching llama-cpp-python==$pyver sources for llama-bench" >&2
  python3 -m pip download --no-deps --no-binary=llama-cpp-python --quiet -d target "llama-cpp-python==$pyver"
  tar xzf "target/llama_cpp_python-$pyver.tar.gz" -C target
fi
build=target/llama-bench
if [ ! -x "$build/bin/llama-bench" ]; then
  echo "bench-engine: building llama-bench from $src" >&2
  cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_TOOLS=ON \
    -DBUILD_SHARED_LIBS=OFF >/dev/null
  cmake --build "$build" --target llama-bench -j "$(nproc)" >/dev/null
fi
cargo build --release --quiet
for role in draft target; do
  model=$(default_model "$role")
  echo "== $role: $model, $threads threads, $reps repetitions"
  "$build/bin/llama-bench" -m "$model" -t "$threads" -p 512 -n 128 -r "$reps" -o md 2>/dev/null
  target/release/arbitrage bench --roles "$role" --prompt-tokens 512 --decode-tokens 128 --reps "$reps" 2>/dev/null
done
