#!/usr/bin/env bash
# The shipped heads and router of the default pair, from the data scripts/training-data.sh wrote
# (issue 27: MATH500 0-149 and GSM8K 100-399, hidden states read):
#
#   1. `train-heads`: the value-head PRM (prms/value-head.json), the hidden-state router probe and
#      every scorer against the rollout labels on held-out problems, by set, next to the head it
#      replaces (prms/heads-report.json).
#   2. A router per advantage (the records' PRM scores, the rollout outcome, the value head's Δ)
#      and per candidate of issue 27 (weights by set, routers that read the value head's score),
#      all on the labelled records only, each scored against the rollout labels over the same ten
#      held-out splits, by set: the table docs/router.md chooses the shipped router from.
#   3. The shipped router (routers/qwen25-coder-0.5b-1.5b.json) trained with ROUTER_ARGS, with its
#      budget table (calibrated by replaying held-out problems) and early rules, scored by set next
#      to the router it replaces.
#
#   scripts/train-default.sh
#
# Env (defaults in brackets): RUNS, comma-separated labelled `generate` runs with hidden states
# [runs/train/math500-generate,runs/train/gsm8k-generate]; ROUTER_ARGS, how the shipped router is
# trained [--advantage outcome --labelled-only]; SPLITS, held-out splits of the tables [10];
# ARBITRAGE_BIN.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-runs/train/math500-generate,runs/train/gsm8k-generate}
router_args=${ROUTER_ARGS:---advantage outcome --labelled-only}
splits=${SPLITS:-10}
bin=${ARBITRAGE_BIN:-target/release/arbitrage}
[ -n "${ARBITRAGE_BIN:-}" ] || cargo build --release --quiet
data=$(echo "$runs" | sed 's|,|/steps.jsonl,|g')/steps.jsonl
router=routers/qwen25-coder-0.5b-1.5b.json
head=prms/value-head.json
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
# What the retrain replaces, scored on the same held-out steps as the new files.
compare_head=() compare_router=()
[ -f "$head" ] && cp "$head" "$scratch/value-head-before.json" &&
  compare_head=(--compare-head "$scratch/value-head-before.json")
[ -f "$router" ] && cp "$router" "$scratch/router-before.json" &&
  compare_router=(--compare "$scratch/router-before.json")

"$bin" train-heads --run "$runs" --out-dir prms "${compare_head[@]}"

echo
echo "routers scored against the rollout labels (held-out steps, mean ROC-AUC (range) over $splits splits; all / gsm8k / math500):"
# The advantage each router learns, then the candidates of issue 27 on the outcome labels: weights
# by set, and the routers that read the value head's score (the records' head, the one that wrote
# them; then the retrained head, read out of fold so that the router meets the scores of a head
# that never saw the problem, as a run does).
for variant in "prm" "prm --no-balance" "outcome" "outcome --no-balance" \
  "value-head --value-head $head" "outcome --per-set-weights" "outcome --reads-prm" \
  "outcome --reads-prm --per-set-weights" \
  "outcome --reads-prm --prm-head $head --prm-out-of-fold 5" \
  "outcome --reads-prm --per-set-weights --prm-head $head --prm-out-of-fold 5"; do
  # shellcheck disable=SC2086 # the variant is several words
  out=$("$bin" train-router --data "$data" --out "$scratch/router.json" --advantage $variant \
    --labelled-only --splits "$splits" --no-early "${compare_router[@]}" 2>"$scratch/err") ||
    { echo "  router on $variant: failed: $(tail -1 "$scratch/err")"; continue; }
  # Scored against the labels: their own rows where Δ is the outcome, the extra rows otherwise.
  rows() { # SHORT FULL: a scorer's short name and full name in train-router's table
    local cells=()
    for set in "" " · gsm8k" " · math500"; do
      row=$( (echo "$out" | grep -F "$1, against outcome labels$set " ||
        echo "$out" | grep -F "$2$set ") | head -1)
      cells+=("$(echo "$row" | awk '{printf "%s (%s)", $(NF-3), $(NF-2)}')")
    done
    echo "${cells[0]} / ${cells[1]} / ${cells[2]}"
  }
  echo "  router on ${variant%% --value-head*}: $(rows router 'router (logistic)')"
  if [ "$variant" = outcome ]; then
    echo "  draft confidence alone: $(rows 'draft confidence' 'draft confidence (1 - exp mean logprob)')"
    [ -z "${compare_router[*]}" ] ||
      echo "  the router it replaces: $(rows router-before 'router-before (compared)')"
  fi
done
echo

# shellcheck disable=SC2086 # ROUTER_ARGS is several words
"$bin" train-router --data "$data" --out "$router" --splits "$splits" "${compare_router[@]}" $router_args
