#!/usr/bin/env bash
# The training data of the router and value head that ship for the default pair (issue 27), in
# order: MATH500 0-149 and GSM8K 100-399 (327-399 first), each `generate` records and rollout labels
# (scripts/router-data.sh), then whatever hidden states the labels lack, read afterwards (`label
# --states-only --no-judge`: MATH500's, labelled without them). Resumable at every level: run it
# again after an interruption. Many hours on 2 cores (docs/router.md, "MATH-style data"); logs go
# to runs/logs/.
#
#   scripts/training-data.sh
#
# Env: ARBITRAGE_BIN (a prebuilt binary; a copy keeps a long run independent of rebuilds),
# NICE (niceness, default 10), GSM8K_END (one past GSM8K's last problem, default 400; a first
# retrain can stop earlier).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${ARBITRAGE_BIN:-target/release/arbitrage}
export ARBITRAGE_BIN=$BIN
nice=(nice -n "${NICE:-10}")
mkdir -p runs/logs
gsm8k_end=${GSM8K_END:-400}
# GSM8K 327 and on first: the GSM8K-only router and value head were trained on 100-326, so only
# problems past those can score them next to their retrained successors (train-router --compare
# leaves out a compared file's training problems); 100-326 come after.
for part in math500 gsm8k-new gsm8k; do
  set=${part%-new}
  case $part in
    math500) range=(0 150) ;;
    gsm8k-new) range=(327 "$gsm8k_end") ;;
    gsm8k) range=(100 $((gsm8k_end < 327 ? gsm8k_end : 327))) ;;
  esac
  (( range[0] < range[1] )) || continue
  # MATH500's first 120 problems were labelled without states, read afterwards; GSM8K reads them
  # with the labels (the same reads), so that its data can be trained on wherever it stops.
  label_args="--no-judge"
  [ "$set" = math500 ] && label_args="--no-hidden --no-judge"
  DATASET=$set CHUNK=5 PRM=value-head LABEL_ARGS="$label_args" \
    "${nice[@]}" scripts/router-data.sh "${range[@]}" >> "runs/logs/$set-data.log" 2>&1
  # The judge scores are a comparison row of train-heads only: skipped, they would add two reads
  # a record to the three hidden states (with them, MATH500 problems 0-2 took 80 s each on cores
  # shared with a data run, 2026-12-06).
  "${nice[@]}" "$BIN" label --run "runs/train/$set-generate" --states-only --no-judge \
    >> "runs/logs/$set-states.log" 2>&1
done
