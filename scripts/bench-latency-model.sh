#!/usr/bin/env bash
# The latency model against measured one-at-a-time latency (issue 26, item 4): a sweep of every
# priced run type on the same problems one at a time, in rounds (every point on a slice of the
# problems before the next slice), with per-model costs (`arbitrage bench --costs`) measured before
# every round and after the last, then `arbitrage report --costs` with all of them (averaged):
# measured against modelled mean latency per point, per problem, and relative to the target.
# The machine's speed drifts by ~10% over half an hour here, so the costs are taken across the
# sitting rather than once. With CONCURRENCY=N (N > 1) it instead runs the same sweep with N
# problems in flight and models its latencies with the cost tables already in $OUT: the way a
# large evaluation takes its accuracy from a batched run and its latency from the model.
# Figures: docs/engine.md, "Latency model".
#
#   scripts/bench-latency-model.sh [START END]      # default GSM8K 50 80 (the design slice)
#
# Env: DATASET (gsm8k), ROUNDS (3), DEPTH (where reads are measured, 300), MAX_TOKENS (1024, as
# docs/results.md's GSM8K sweeps), OUT, ARBITRAGE_BIN. Time the one-at-a-time sweep on a quiet
# machine (scripts/timing-guard.py): llama.cpp's thread team slows several-fold when anything else
# computes on the same cores. The batched sweep's clock is not used, so it may run beside others.
set -euo pipefail
cd "$(dirname "$0")/.."
start=${1:-50}
end=${2:-80}
dataset=${DATASET:-gsm8k}
rounds=${ROUNDS:-3}
depth=${DEPTH:-300}
concurrency=${CONCURRENCY:-1}
out=${OUT:-runs/latency-model-$dataset-$start-$end}
bin=${ARBITRAGE_BIN:-target/release/arbitrage}
mkdir -p "$out"
grid=(--run-types rsd,router,oracle --rsd-thresholds 0.6 --router-fractions 0.3
  --oracle-thresholds 0.02 --dataset "$dataset" --start "$start" --no-cache
  --max-tokens "${MAX_TOKENS:-1024}")
costs() {
  "$bin" bench --costs "$1" --depth "$depth" --reps 5 --decode-tokens 64
}
if (( concurrency == 1 )); then
  echo "machine: $(nproc) cores; $(uptime | sed 's/.*load/load/'); $(date -u +%FT%TZ)" | tee "$out/machine.txt"
  n=$(( end - start ))
  for (( r = 1; r <= rounds; r++ )); do
    costs "$out/costs-$r.json"
    "$bin" sweep "${grid[@]}" --end $(( start + n * r / rounds )) --output-dir "$out/one-at-a-time"
  done
  costs "$out/costs-$(( rounds + 1 )).json"
  echo "finished $(date -u +%FT%TZ); $(uptime | sed 's/.*load/load/')" | tee -a "$out/machine.txt"
else
  "$bin" sweep "${grid[@]}" --end "$end" --output-dir "$out/in-flight-$concurrency" -- --concurrency "$concurrency"
fi
dir=$out/one-at-a-time
(( concurrency == 1 )) || dir=$out/in-flight-$concurrency
args=()
for f in "$out"/costs-*.json; do args+=(--costs "$f"); done
"$bin" report "$dir" "${args[@]}" | tee "$out/check-$(basename "$dir").txt"
