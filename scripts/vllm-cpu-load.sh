#!/usr/bin/env bash
# Load and faults against the vLLM CPU servers (scripts/serve_vllm_cpu.sh start):
#
#   scripts/vllm-cpu-load.sh concurrency   # draft run type, GSM8K 0-15, --concurrency 1 2 4 8
#   scripts/vllm-cpu-load.sh kill          # target run, 2 in flight; the target server is
#                                          # stopped mid-run and restarted
#
# Output under target/vllm-cpu/load/ (OUT changes it); each prints its table on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT-target/vllm-cpu/load}
bin=${ARBITRAGE_BIN-target/release/arbitrage}
cfg=configs/remote-vllm-cpu.toml

case ${1-} in
  concurrency)
    LEVELS=${LEVELS-1 2 4 8}
    for c in $LEVELS; do
      "$bin" run --config "$cfg" --run-type draft --dataset gsm8k --start 0 --end "${END-16}" \
        --max-tokens "${MAX_TOKENS-512}" --concurrency "$c" --output-dir "$OUT/c$c" --overwrite \
        2>"$OUT-c$c.log" || { tail "$OUT-c$c.log" >&2; exit 1; }
    done
    echo "| in flight | problems | wall s | problems per minute | mean latency s | errors |"
    echo "|---|---|---|---|---|---|"
    for c in $LEVELS; do
      python3 - "$OUT/c$c/metrics.json" "$c" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
print(f"| {sys.argv[2]} | {m['n']} | {m['wall_time_s']:.0f} | {60 * m['n'] / m['wall_time_s']:.2f} "
      f"| {m['mean_latency_s']:.1f} | {m.get('errors', 0)} |")
PY
    done ;;
  kill)
    dir=$OUT/kill
    mkdir -p "$OUT"
    "$bin" run --config "$cfg" --run-type target --dataset gsm8k --start 10 --end "${KILL_END-16}" \
      --max-tokens "${MAX_TOKENS-512}" --concurrency 2 --output-dir "$dir" --overwrite \
      2>"$OUT-kill.log" &
    run=$!
    sleep "${KILL_AFTER_S-45}"
    echo "kill: $(grep -c . "$dir/results.jsonl" 2>/dev/null || echo 0) problems done when the target server is stopped" >&2
    scripts/serve_vllm_cpu.sh stop target
    down=$(date +%s)
    scripts/serve_vllm_cpu.sh start target
    echo "kill: the target server was down $(( $(date +%s) - down )) s" >&2
    wait $run
    python3 - "$dir/results.jsonl" "${KILL_END-16}" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
idx = [r["idx"] for r in rows]
want = set(range(10, int(sys.argv[2])))
print(f"problems done {len(set(idx))} of {len(want)}, duplicated {len(idx) - len(set(idx))}, "
      f"lost {len(want - set(idx))}, with an error {sum(1 for r in rows if r.get('error'))}")
PY
    echo "retries logged: $(grep -c -i 'retry' "$OUT-kill.log" || true)" ;;
  *) echo "usage: $0 concurrency|kill" >&2; exit 2 ;;
esac
