#!/usr/bin/env bash
# Problems per minute with several problems in flight on the embedded engine (issue 26): `target`,
# `router` and `rsd` over the same GSM8K problems at each width, then llama.cpp's own server
# (`llama-server --parallel N`, the target model, the same prompts and step calls through our
# remote engine) as what a user would run instead. Each run's outputs go to $OUT/<type>-c<N>; the
# table (throughput, its ratio to one in flight, answers that differ from one in flight) is printed
# by scripts/concurrency-table.py. Figures: docs/engine.md.
#
#   scripts/bench-concurrency.sh [START END [WIDTHS [RUN_TYPES]]]   # default: 50 70 "1 2 4" "target router rsd"
#   (RUN_TYPES "" runs only llama-server; LLAMA_SERVER=0 skips it)
#
# Time it on a quiet machine (scripts/timing-guard.py): llama.cpp's thread team slows several-fold
# when anything else computes on the same cores.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/default-models.sh
. scripts/default-models.sh
start=${1:-50}
end=${2:-70}
widths=${3:-1 2 4}
types=${4-target router rsd}
out=${OUT:-runs/bench-concurrency}
bin=target/release/arbitrage
port=${PORT:-8190}
cargo build --release --quiet
server=$(scripts/build-llama-server.sh)
mkdir -p "$out"
echo "machine: $(nproc) cores; $(uptime | sed 's/.*load/load/'); $(date -u +%FT%TZ)" | tee "$out/machine.txt"
# Router at a 30% target-step budget and RSD on the value head at 0.45: the middle points of the
# GSM8K sweep (scripts/sweep-gsm8k.sh).
rule() {
  case $1 in
    router) echo "--target-fraction 0.3" ;;
    rsd) echo "--threshold 0.45" ;;
    *) echo "" ;;
  esac
}
for t in $types; do
  for n in $widths; do
    echo "== $t, $n in flight"
    # shellcheck disable=SC2046 # rule gives several words
    "$bin" run --run-type "$t" $(rule "$t") --dataset gsm8k --start "$start" --end "$end" \
      --concurrency "$n" --output-dir "$out/$t-c$n" --overwrite 2>&1 | tail -n 8
  done
done
for n in $widths; do
  [ "${LLAMA_SERVER:-1}" = 1 ] || break
  echo "== llama-server --parallel $n (target), $n in flight"
  "$server" -m "$(default_model target)" -t "$(nproc)" -tb "$(nproc)" --parallel "$n" \
    -c $((8192 * n)) --host 127.0.0.1 --port "$port" >"$out/llama-server-c$n.log" 2>&1 &
  pid=$!
  for _ in $(seq 120); do
    curl -sf "http://127.0.0.1:$port/health" >/dev/null && break
    sleep 1
  done
  "$bin" run --run-type target --dataset gsm8k --start "$start" --end "$end" --concurrency "$n" \
    --target-url "http://127.0.0.1:$port/v1" --target-model target \
    --output-dir "$out/llama-server-c$n" --overwrite 2>&1 | tail -n 8 || true
  kill "$pid"
  wait "$pid" 2>/dev/null || true
done
python3 scripts/concurrency-table.py "$out"
