#!/usr/bin/env bash
# Router and PRM training data: `generate` records, then outcome labels and hidden states, in
# chunks of problems so both grow together. Resumable at every level: run it again (with the same
# arguments) after an interruption and it continues where it stopped.
#
#   scripts/router-data.sh [START] [END]        # GSM8K test problems START..END-1 (default 100..400)
#
# Training problems are GSM8K 100-999 only: 0-49 is the reported slice and 1000 and above are kept
# out of all training. Env: OUT (run directory), CHUNK (problems per round), ARBITRAGE_BIN.
set -euo pipefail
cd "$(dirname "$0")/.."
START=${1:-100}
END=${2:-400}
CHUNK=${CHUNK:-10}
OUT=${OUT:-runs/train/gsm8k-generate}
BIN=${ARBITRAGE_BIN:-target/release/arbitrage}
if (( START < 100 || END > 1000 || START >= END )); then
  echo "router-data: training problems must lie in GSM8K 100..999 (got $START..$((END - 1)))" >&2
  exit 2
fi
for ((s = START; s < END; s += CHUNK)); do
  e=$(( s + CHUNK < END ? s + CHUNK : END ))
  # The records' PRM scores stay the `target-logprob` stand-in's, as in every record written so far
  # (the `prm` advantage of train-router reads them); the default PRM is now the value head.
  "$BIN" run --run-type generate --dataset gsm8k --start "$START" --end "$e" --output-dir "$OUT" \
    --prm target-logprob
  "$BIN" -v label --run "$OUT"
done
