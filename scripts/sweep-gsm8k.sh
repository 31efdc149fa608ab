#!/usr/bin/env bash
# The sweep in docs/results.md: the embedded default pair on GSM8K test problems 0-49, rsd and
# router at several thresholds, oracle at 0, plus the draft and target baselines, then the report.
# Each point resumes if interrupted; the step cache (in the output directory) lets points share
# the steps they have in common. Several hours on 2 cores.
#
#   scripts/sweep-gsm8k.sh [OUTPUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/sweep-gsm8k-0-50}
bin=${ARBITRAGE_BIN:-target/release/arbitrage}
[ -n "${ARBITRAGE_BIN:-}" ] || cargo build --release --quiet
"$bin" sweep --dataset gsm8k --start 0 --end 50 --max-tokens 1024 --output-dir "$out" \
  --run-types router,rsd,oracle --router-fractions 0.6,0.3,0.15 --rsd-thresholds 0.9,0.8,0.6 \
  --oracle-thresholds 0
"$bin" report "$out"
