#!/usr/bin/env bash
# The training data of the router and value head that ship for the default pair (issue 27), in
# order: MATH500 0-149 and GSM8K 100-399, each `generate` records and rollout labels without
# hidden states (scripts/router-data.sh), then the hidden states read afterwards (`label
# --states-only --no-judge`). Resumable at every level: run it again after an interruption. Many hours on
# 2 cores (docs/router.md, "MATH-style data"); logs go to runs/logs/.
#
#   scripts/training-data.sh
#
# Env: ARBITRAGE_BIN (a prebuilt binary; a copy keeps a long run independent of rebuilds),
# NICE (niceness, default 10).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${ARBITRAGE_BIN:-target/release/arbitrage}
export ARBITRAGE_BIN=$BIN
nice=(nice -n "${NICE:-10}")
mkdir -p runs/logs
for set in math500 gsm8k; do
  case $set in
    math500) range=(0 150) ;;
    gsm8k) range=(100 400) ;;
  esac
  DATASET=$set CHUNK=5 PRM=value-head LABEL_ARGS="--no-hidden --no-judge" \
    "${nice[@]}" scripts/router-data.sh "${range[@]}" >> "runs/logs/$set-data.log" 2>&1
  # The judge scores are a comparison row of train-heads only: skipped, they would add two reads
  # a record to the three hidden states (with them, MATH500 problems 0-2 took 80 s each on cores
  # shared with a data run, 2026-12-06).
  "${nice[@]}" "$BIN" label --run "runs/train/$set-generate" --states-only --no-judge \
    >> "runs/logs/$set-states.log" 2>&1
done
