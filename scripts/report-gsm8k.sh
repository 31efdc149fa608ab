#!/usr/bin/env bash
# The results table in docs/results.md: the embedded default pair on GSM8K test problems 0-49
# (the router was trained on problems 1000-1039, never reported). Runs one after another on an
# otherwise idle machine; each run resumes if interrupted. About 80 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release/arbitrage
common=(--dataset gsm8k --start 0 --end 50 --max-tokens 1024)
out=runs/report-gsm8k-0-50
"$bin" run --run-type router --target-fraction 0.3 "${common[@]}" --output-dir "$out/router-f0.3"
"$bin" run --run-type target "${common[@]}" --output-dir "$out/target"
"$bin" run --run-type rsd --threshold 0.8 "${common[@]}" --output-dir "$out/rsd-0.8"
"$bin" run --run-type draft "${common[@]}" --output-dir "$out/draft"
"$bin" run --run-type router --target-fraction 0.6 "${common[@]}" --output-dir "$out/router-f0.6"
"$bin" run --run-type rsd --threshold 0.9 "${common[@]}" --output-dir "$out/rsd-0.9"
scripts/results-table.py "$out"/*
