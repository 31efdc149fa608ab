#!/usr/bin/env bash
# Does decoding several sequences in one batch pay on these cores? Total decode tokens/s with
# 1, 2, 4 and 8 sequences in one llama_decode, ~300 tokens of context each, for the default draft
# and target: our engine (`arbitrage bench --batch`) next to llama.cpp's own `llama-batched-bench`
# on the same GGUF files and threads (what a user would measure with). Figures: docs/engine.md.
#
#   scripts/bench-batch.sh [THREADS] [REPS]
#
# Time it on a quiet machine: llama.cpp's thread team slows several-fold when anything else
# computes on the same cores.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/default-models.sh
. scripts/default-models.sh
threads=${1:-$(nproc)}
reps=${2:-5}
batched=$(scripts/build-llama-server.sh llama-batched-bench)
cargo build --release --quiet
for role in draft target; do
  model=$(default_model "$role")
  echo "== $role: $model, $threads threads"
  target/release/arbitrage bench --roles "$role" --batch 1,2,4,8 --depth 300 --decode-tokens 64 \
    --reps "$reps" 2>/dev/null
  # S_TG is the decode rate over all sequences; PP (the prompts) is not what batching changes.
  for kv in --no-kv-unified --kv-unified; do
    echo "-- llama-batched-bench $kv"
    "$batched" -m "$model" -t "$threads" -tb "$threads" -c 4096 -b 2048 -ub 512 -npp 300 -ntg 64 \
      -npl 1,2,4,8 "$kv" 2>/dev/null | grep -E '^\|'
  done
done
