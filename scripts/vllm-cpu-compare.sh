#!/usr/bin/env bash
# Every run type on GSM8K problems 0-9, embedded and against the vLLM CPU servers
# (scripts/serve_vllm_cpu.sh), then the table docs/remote.md shows (scripts/vllm-cpu-table.py).
#
#   scripts/vllm-cpu-compare.sh embedded draft target router rsd oracle generate
#   scripts/vllm-cpu-compare.sh vllm draft target router          # draft + target servers
#   scripts/vllm-cpu-compare.sh vllm-draft rsd oracle generate    # vLLM draft, embedded target + value head
#   scripts/vllm-cpu-compare.sh served-prm rsd oracle             # embedded pair, the value head on vLLM (:8102)
#   scripts/vllm-cpu-compare.sh vllm-prm rsd oracle generate      # all three on vLLM
#   scripts/vllm-cpu-table.py target/vllm-cpu
#
# Output: target/vllm-cpu/BACKEND/RUN_TYPE/ (results.jsonl, metrics.json); OUT changes it.
# END (default 10) and MAX_TOKENS (default 1024) bound the work.
set -euo pipefail
cd "$(dirname "$0")/.."
backend=$1
shift
OUT=${OUT-target/vllm-cpu}
END=${END-10}
MAX_TOKENS=${MAX_TOKENS-1024}
bin=${ARBITRAGE_BIN-target/release/arbitrage}
case $backend in
  embedded) args=() ;;
  vllm) args=(--config configs/remote-vllm-cpu.toml) ;;
  vllm-draft) args=(--draft-url http://127.0.0.1:8100/v1 --draft-model draft) ;;
  served-prm) args=(--prm-url http://127.0.0.1:8102/v1 --prm-model prm --prm-api reward) ;;
  vllm-prm) args=(--config configs/remote-vllm-cpu.toml --prm-url http://127.0.0.1:8102/v1
    --prm-model prm --prm-api reward) ;;
  *) echo "usage: $0 embedded|vllm|vllm-draft|served-prm|vllm-prm RUN_TYPE..." >&2; exit 2 ;;
esac
for t in "$@"; do
  dir=$OUT/$backend/$t
  echo "== $backend $t -> $dir" >&2
  extra=()
  [ "$t" = router ] && extra=(--target-fraction 0.6)
  "$bin" run "${args[@]}" --run-type "$t" --dataset gsm8k --start 0 --end "$END" \
    --max-tokens "$MAX_TOKENS" --output-dir "$dir" --overwrite "${extra[@]}" ${RUN_ARGS-}
done
