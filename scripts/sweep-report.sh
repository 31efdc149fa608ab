#!/usr/bin/env bash
# A report sweep of docs/results.md: the embedded default pair on a set's report slice (GSM8K
# 0-49 at 1024 tokens a problem, MATH500 200-299 at 2048; docs/results.md, "Slices"), rsd, oracle
# and router at three operating points each, plus the draft and target baselines, then the
# report. SLICE=design runs the same sweep on the set's design slice (GSM8K 50-99, MATH500
# 150-199), where operating points are chosen before the report slice is run once. Each point resumes if interrupted; the step cache (in the output directory) lets points
# share the steps they have in common. Several hours on 2 cores (MATH500: tens).
#
#   scripts/sweep-report.sh SET [OUTPUT_DIR]     # SET: gsm8k or math500
#   SLICE=design scripts/sweep-report.sh SET     # the design slice's sweep
#   scripts/sweep-gsm8k.sh [OUTPUT_DIR]          # the same as SET gsm8k
#
# Env (defaults in brackets):
#   PRM                the PRM of rsd and oracle: target-logprob, target-judge or value-head
#                      [value-head when prms/value-head.json exists, else target-logprob]
#   PRM_HEAD           head file for PRM=value-head [prms/value-head.json]
#   RSD_THRESHOLDS     [0.6,0.45,0.3 on the value head, 0.9,0.8,0.6 on a stand-in]
#   ORACLE_THRESHOLDS  advantage of the target's step that escalates [0,0.02,0.08 on the value
#                      head, 0,0.1,0.2 on a stand-in]
#   ROUTER_FRACTIONS   target-step fractions read from the router file's budget table [0.6,0.3,0.15]
#   RUN_TYPES          run types besides the draft and target baselines [router,rsd,oracle]
#   SLICE              report or design [report]
#   ROUTER             the router file of the router points [the configuration's: the shipped one]
#   CACHE              the step cache file [OUTPUT_DIR/step-cache.redb]; share one between two
#                      sweeps of the same slice (the shipped router's and another's, say) and the
#                      points they have in common replay instead of running again
#   ROUNDS             run the 50 problems in this many slices, every point on a slice before the
#                      next, so that machine drift touches every point alike [1]
#   NO_CACHE           1: no step cache, every latency measured in this sweep [0]
#   ARBITRAGE_BIN      a prebuilt binary (otherwise target/release/arbitrage is built)
#   BASELINES_FROM     a folder with finished `draft` and `target` runs of the same slice and
#                      settings (results.jsonl or results.jsonl.gz, metrics.json), copied in where
#                      the output has none, so the sweep resumes past them: the design slice's
#                      look in evidence/looks/math500-design-150-199, say
#
# The value head's defaults send about 60%, 30% and 15% of the training data's steps to the target
# (docs/results.md), the router's budget points.
set -euo pipefail
cd "$(dirname "$0")/.."
set_name=${1:?usage: scripts/sweep-report.sh gsm8k|math500 [OUTPUT_DIR]}
case $set_name:${SLICE:-report} in
  gsm8k:report) range=(--start 0 --end 50) max_tokens=1024 ;;
  gsm8k:design) range=(--start 50 --end 100) max_tokens=1024 ;;
  math500:report) range=(--start 200 --end 300) max_tokens=2048 ;;
  math500:design) range=(--start 150 --end 200) max_tokens=2048 ;;
  *) echo "sweep-report: no ${SLICE:-report} slice for $set_name (sets gsm8k, math500; SLICE report or design)" >&2; exit 2 ;;
esac
out=${2:-runs/sweep-$set_name-${range[1]}-${range[3]}}
bin=${ARBITRAGE_BIN:-target/release/arbitrage}
[ -n "${ARBITRAGE_BIN:-}" ] || cargo build --release --quiet
head=${PRM_HEAD:-prms/value-head.json}
if [ -z "${PRM:-}" ]; then
  if [ -f "$head" ]; then PRM=value-head; else PRM=target-logprob; fi
fi
prm_args=(--prm "$PRM")
if [ "$PRM" = value-head ]; then
  prm_args+=(--prm-head "$head")
  rsd_default=0.6,0.45,0.3 oracle_default=0,0.02,0.08
else
  rsd_default=0.9,0.8,0.6 oracle_default=0,0.1,0.2
fi
if [ -n "${BASELINES_FROM:-}" ]; then
  for point in draft target; do
    from=$BASELINES_FROM/$point
    [ -e "$out/$point" ] && continue
    [ -f "$from/metrics.json" ] || { echo "sweep-report: no finished $point run in $from" >&2; exit 2; }
    mkdir -p "$out/$point"
    cp "$from/metrics.json" "$out/$point/"
    if [ -f "$from/results.jsonl.gz" ]; then
      gunzip -c "$from/results.jsonl.gz" > "$out/$point/results.jsonl"
    else
      cp "$from/results.jsonl" "$out/$point/"
    fi
  done
fi
extra=(--rounds "${ROUNDS:-1}")
[ "${NO_CACHE:-0}" = 1 ] && extra+=(--no-cache)
[ -n "${CACHE:-}" ] && extra+=(--cache "$CACHE")
[ -n "${ROUTER:-}" ] && extra+=(--router "$ROUTER")
"$bin" sweep --dataset "$set_name" "${range[@]}" --max-tokens "$max_tokens" --output-dir "$out" \
  "${prm_args[@]}" "${extra[@]}" --run-types "${RUN_TYPES:-router,rsd,oracle}" \
  --router-fractions "${ROUTER_FRACTIONS:-0.6,0.3,0.15}" \
  --rsd-thresholds "${RSD_THRESHOLDS:-$rsd_default}" \
  --oracle-thresholds "${ORACLE_THRESHOLDS:-$oracle_default}"
"$bin" report --intervals "$out"
