#!/usr/bin/env bash
# The latency model against measured one-at-a-time latency (issue 26, item 4): per-model costs
# from `arbitrage bench --costs`, then a sweep of every priced run type on the same problems one
# at a time (`--no-cache --rounds 3`), then the costs again (how far the machine drifted), then
# `arbitrage report --costs`: measured against modelled mean latency per point, per problem, and
# relative to the target. With CONCURRENCY=N (N > 1) it instead runs the same sweep with N problems
# in flight and models its latencies with the cost table already in $OUT: the way a large
# evaluation takes its accuracy from a batched run and its latency from the model. Figures:
# docs/engine.md, "Latency model".
#
#   scripts/bench-latency-model.sh [START END]      # default GSM8K 50 80 (the design slice)
#
# Time the one-at-a-time sweep on a quiet machine (scripts/timing-guard.py): llama.cpp's thread
# team slows several-fold when anything else computes on the same cores. The batched sweep's
# clock is not used, so it may run beside other work.
set -euo pipefail
cd "$(dirname "$0")/.."
start=${1:-50}
end=${2:-80}
dataset=${DATASET:-gsm8k}
depth=${DEPTH:-300}   # where reads are measured; writes at 128 and 1024 tokens deep
concurrency=${CONCURRENCY:-1}
out=${OUT:-runs/latency-model-$dataset-$start-$end}
bin=${ARBITRAGE_BIN:-target/release/arbitrage}
mkdir -p "$out"
# At most 1024 tokens a solution, as docs/results.md's GSM8K sweeps.
grid=(--run-types rsd,router,oracle --rsd-thresholds 0.6 --router-fractions 0.3
  --oracle-thresholds 0.02 --dataset "$dataset" --start "$start" --end "$end" --no-cache
  --max-tokens "${MAX_TOKENS:-1024}")
if (( concurrency == 1 )); then
  echo "machine: $(nproc) cores; $(uptime | sed 's/.*load/load/'); $(date -u +%FT%TZ)" | tee "$out/machine.txt"
  "$bin" bench --costs "$out/costs.json" --depth "$depth" --reps 5 --decode-tokens 64
  "$bin" sweep "${grid[@]}" --rounds 3 --output-dir "$out/one-at-a-time"
  "$bin" bench --costs "$out/costs-after.json" --depth "$depth" --reps 5 --decode-tokens 64
  echo "finished $(date -u +%FT%TZ); $(uptime | sed 's/.*load/load/')" | tee -a "$out/machine.txt"
  "$bin" report "$out/one-at-a-time" --costs "$out/costs.json" | tee "$out/check.txt"
else
  "$bin" sweep "${grid[@]}" --output-dir "$out/in-flight-$concurrency" -- --concurrency "$concurrency"
  "$bin" report "$out/in-flight-$concurrency" --costs "$out/costs.json" | tee "$out/check-in-flight-$concurrency.txt"
fi
