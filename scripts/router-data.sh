#!/usr/bin/env bash
# Router and PRM training data: `generate` records, then outcome labels, in chunks of problems so
# both grow together. Resumable at every level: run it again (with the same arguments) after an
# interruption and it continues where it stopped.
#
#   scripts/router-data.sh [START] [END]        # problems START..END-1 of $DATASET
#
# Only each set's training slice is accepted (docs/results.md, "Slices"): GSM8K 100-999, MATH500
# 0-149, OlympiadBench 0-199. Env: DATASET (gsm8k, math500, olympiadbench; default gsm8k), OUT (run
# directory, default runs/train/DATASET-generate), CHUNK (problems per round), MAX_TOKENS (per
# solution), ROLLOUT_MAX_TOKENS (per rollout), PRM (the PRM whose scores the records carry and
# that picks the kept step), LABEL_ARGS (extra `label` flags), CONCURRENCY (problems generated and
# labelled at once, sharing decode rounds; default 1: docs/engine.md says what it gains, and that
# batched kernels round apart from one-sequence ones, so some texts differ at near-ties),
# ARBITRAGE_BIN.
set -euo pipefail
cd "$(dirname "$0")/.."
DATASET=${DATASET:-gsm8k}
case $DATASET in
  # GSM8K keeps its lengths; its records are scored by the value head, as MATH's are, so that a
  # router reading the PRM's score (`train-router --reads-prm`) trains on one PRM across sets.
  gsm8k) lo=100 hi=1000 def_start=100 def_end=400 def_tokens=4096 def_rollout=640 def_prm=value-head ;;
  # MATH-style solutions run longer: on MATH500 150-157 (design slice) the target's took 276-1256
  # tokens, all finished under 2048 (docs/router.md, "MATH-style data").
  math500) lo=0 hi=150 def_start=0 def_end=150 def_tokens=2048 def_rollout=1536 def_prm=value-head ;;
  olympiadbench) lo=0 hi=200 def_start=0 def_end=200 def_tokens=2048 def_rollout=1536 def_prm=value-head ;;
  *) echo "router-data: no training slice for DATASET=$DATASET (gsm8k, math500, olympiadbench)" >&2; exit 2 ;;
esac
START=${1:-$def_start}
END=${2:-$def_end}
CHUNK=${CHUNK:-10}
CONCURRENCY=${CONCURRENCY:-1}
MAX_TOKENS=${MAX_TOKENS:-$def_tokens}
ROLLOUT_MAX_TOKENS=${ROLLOUT_MAX_TOKENS:-$def_rollout}
PRM=${PRM:-$def_prm}
OUT=${OUT:-runs/train/$DATASET-generate}
BIN=${ARBITRAGE_BIN:-target/release/arbitrage}
if (( START < lo || END > hi || START >= END )); then
  echo "router-data: $DATASET training problems must lie in $lo..$((hi - 1)) (got $START..$((END - 1)))" >&2
  exit 2
fi
for ((s = START; s < END; s += CHUNK)); do
  e=$(( s + CHUNK < END ? s + CHUNK : END ))
  "$BIN" run --run-type generate --dataset "$DATASET" --start "$START" --end "$e" \
    --output-dir "$OUT" --max-tokens "$MAX_TOKENS" --prm "$PRM" --concurrency "$CONCURRENCY"
  # shellcheck disable=SC2086 # LABEL_ARGS is several words
  "$BIN" -v label --run "$OUT" --rollout-max-tokens "$ROLLOUT_MAX_TOKENS" \
    --concurrency "$CONCURRENCY" ${LABEL_ARGS:-}
done
