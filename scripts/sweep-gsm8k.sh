#!/usr/bin/env bash
# The sweep in docs/results.md: the embedded default pair on GSM8K test problems 0-49, rsd,
# oracle and router at three operating points each, plus the draft and target baselines, then the
# report. Each point resumes if interrupted; the step cache (in the output directory) lets points
# share the steps they have in common. Several hours on 2 cores.
#
#   scripts/sweep-gsm8k.sh [OUTPUT_DIR]
#
# Env (defaults in brackets):
#   PRM                the PRM of rsd and oracle: target-logprob, target-judge or value-head
#                      [value-head when prms/value-head.json exists, else target-logprob]
#   PRM_HEAD           head file for PRM=value-head [prms/value-head.json]
#   RSD_THRESHOLDS     [0.9,0.8,0.6]
#   ORACLE_THRESHOLDS  advantage of the target's step that escalates [0,0.1,0.2]
#   ROUTER_FRACTIONS   target-step fractions read from the router file's budget table [0.6,0.3,0.15]
#   ARBITRAGE_BIN      a prebuilt binary (otherwise target/release/arbitrage is built)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/sweep-gsm8k-0-50}
bin=${ARBITRAGE_BIN:-target/release/arbitrage}
[ -n "${ARBITRAGE_BIN:-}" ] || cargo build --release --quiet
head=${PRM_HEAD:-prms/value-head.json}
if [ -z "${PRM:-}" ]; then
  if [ -f "$head" ]; then PRM=value-head; else PRM=target-logprob; fi
fi
prm_args=(--prm "$PRM")
[ "$PRM" != value-head ] || prm_args+=(--prm-head "$head")
"$bin" sweep --dataset gsm8k --start 0 --end 50 --max-tokens 1024 --output-dir "$out" \
  "${prm_args[@]}" --run-types router,rsd,oracle \
  --router-fractions "${ROUTER_FRACTIONS:-0.6,0.3,0.15}" \
  --rsd-thresholds "${RSD_THRESHOLDS:-0.9,0.8,0.6}" \
  --oracle-thresholds "${ORACLE_THRESHOLDS:-0,0.1,0.2}"
"$bin" report "$out"
