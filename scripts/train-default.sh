#!/usr/bin/env bash
# The shipped heads and router of the default pair, from the data scripts/router-data.sh wrote:
#
#   1. `train-heads`: the value-head PRM (prms/value-head.json), the hidden-state router probe and
#      every scorer against the rollout labels on held-out problems (prms/heads-report.json).
#   2. A router per advantage (the records' PRM scores, the rollout outcome, the value head's Δ),
#      all on the labelled records only and the same three held-out splits, each scored against
#      the rollout labels: the table docs/router.md chooses the advantage from.
#   3. The shipped router (routers/qwen25-coder-0.5b-1.5b.json) trained with ROUTER_ARGS, with its
#      budget table and early rules.
#
#   scripts/train-default.sh
#
# Env (defaults in brackets): RUNS, comma-separated labelled `generate` runs
# [runs/train/gsm8k-generate,runs/train/gsm8k-generate-b]; ROUTER_ARGS, how the shipped router
# is trained [--advantage outcome]; ARBITRAGE_BIN.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-runs/train/gsm8k-generate,runs/train/gsm8k-generate-b}
router_args=${ROUTER_ARGS:---advantage outcome}
bin=${ARBITRAGE_BIN:-target/release/arbitrage}
[ -n "${ARBITRAGE_BIN:-}" ] || cargo build --release --quiet
data=$(echo "$runs" | sed 's|,|/steps.jsonl,|g')/steps.jsonl
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

"$bin" train-heads --run "$runs" --out-dir prms

head=prms/value-head.json
echo
echo "routers scored against the rollout labels (held-out steps, ROC-AUC), seeds 0 1 2:"
confidence=""
for variant in "prm" "prm --no-balance" "outcome" "outcome --no-balance" \
  "value-head --value-head $head"; do
  aucs=""
  for seed in 0 1 2; do
    # shellcheck disable=SC2086 # the variant is several words
    out=$("$bin" train-router --data "$data" --out "$scratch/router.json" --advantage $variant \
      --labelled-only --held-out 0.3 --seed "$seed" --no-early 2>/dev/null)
    # Scored against the labels: their own row where Δ is the outcome, the extra row otherwise.
    row=$(echo "$out" | grep -E '^router, against outcome labels' || echo "$out" | grep -E '^router \(logistic\)')
    aucs+=" $(echo "$row" | awk '{print $(NF-4) " steps, AUC " $(NF-2) ";"}')"
    if [ "$variant" = outcome ]; then
      row=$(echo "$out" | grep -E '^draft confidence \(')
      confidence+=" $(echo "$row" | awk '{print $(NF-4) " steps, AUC " $(NF-2) ";"}')"
    fi
  done
  echo "  router on ${variant%% --value-head*}:$aucs"
done
echo "  draft confidence alone:$confidence"
echo

# shellcheck disable=SC2086 # ROUTER_ARGS is several words
"$bin" train-router --data "$data" --out routers/qwen25-coder-0.5b-1.5b.json $router_args
