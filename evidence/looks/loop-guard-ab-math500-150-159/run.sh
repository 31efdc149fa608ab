#!/usr/bin/env bash
# Loop guard A/B on MATH500's design slice: the draft alone, with and without the guard.
set -euo pipefail
cd /work/main
BIN=runs/bin/arbitrage-loopab
for round in "150 155" "155 160"; do
  set -- $round
  "$BIN" run --run-type draft --dataset math500 --start "$1" --end "$2" --max-tokens 2048 --output-dir runs/loop-ab/guard
  "$BIN" run --config configs/.noloop.toml --run-type draft --dataset math500 --start "$1" --end "$2" --max-tokens 2048 --output-dir runs/loop-ab/no-guard
done
