#!/usr/bin/env bash
# MATH500 design slice 150-199: draft and target alone (does the target lead the draft by 10
# points on MATH, as issue 27 asks of OlympiadBench before a sweep?). Loop guard on.
set -euo pipefail
cd /work/main
while pgrep -f "runs/loop-ab/run.sh" >/dev/null; do sleep 30; done
BIN=runs/bin/arbitrage-loopab
for round in "150 160" "160 170" "170 180" "180 190" "190 200"; do
  set -- $round
  for rt in draft target; do
    "$BIN" run --run-type $rt --dataset math500 --start "$1" --end "$2" --max-tokens 2048 --output-dir runs/look/math500-design-150-199/$rt
  done
done
