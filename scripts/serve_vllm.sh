#!/usr/bin/env bash
# Starts the paper's setup on vLLM: one OpenAI-compatible server per role, each on its own port
# and GPU, named the way configs/remote-vllm.toml expects (--served-model-name):
#
#   draft  :8000  (DRAFT_MODEL,  GPU $DRAFT_GPU)     target :8001  (TARGET_MODEL, GPU $TARGET_GPU)
#   prm    :8002  (PRM_MODEL,    GPU $PRM_GPU)       router :8003  (ROUTER_MODEL, GPU $ROUTER_GPU)
#
#   scripts/serve_vllm.sh            # start all four, wait until each answers /health
#   scripts/serve_vllm.sh --dry-run  # print the commands only
#   ROUTER_MODEL= scripts/serve_vllm.sh   # no router server (rsd runs, or a router file)
#
# Needs vLLM installed (pip install vllm) and the weights reachable by vLLM. Logs go to
# $LOG_DIR (default logs/), process ids to $LOG_DIR/vllm.pids; stop with
# `kill $(cat logs/vllm.pids)`. Prefix caching stays on: each step's prompt extends the last.
set -euo pipefail
cd "$(dirname "$0")/.."
DRAFT_MODEL=${DRAFT_MODEL-meta-llama/Llama-3.2-1B-Instruct}
TARGET_MODEL=${TARGET_MODEL-meta-llama/Llama-3.1-8B-Instruct}
PRM_MODEL=${PRM_MODEL-Qwen/Qwen2.5-Math-PRM-7B}
ROUTER_MODEL=${ROUTER_MODEL-}   # a token-classification router checkpoint (the paper's is 1.5B)
DRAFT_GPU=${DRAFT_GPU-0} TARGET_GPU=${TARGET_GPU-1} PRM_GPU=${PRM_GPU-2} ROUTER_GPU=${ROUTER_GPU-3}
MEM=${GPU_MEMORY_UTILIZATION-0.85}
LOG_DIR=${LOG_DIR-logs}
HOST=${HOST-127.0.0.1}
dry=0
[ "${1-}" = "--dry-run" ] && dry=1
ports=()

# role port gpu model extra-args...
serve() {
  local role=$1 port=$2 gpu=$3 model=$4
  shift 4
  [ -n "$model" ] || { echo "serve_vllm: no $role model set; skipping it" >&2; return; }
  local cmd=(vllm serve "$model" --host "$HOST" --port "$port" --served-model-name "$role"
    --gpu-memory-utilization "$MEM" "$@")
  if [ $dry = 1 ]; then
    echo "CUDA_VISIBLE_DEVICES=$gpu ${cmd[*]}"
    return
  fi
  mkdir -p "$LOG_DIR"
  CUDA_VISIBLE_DEVICES=$gpu nohup "${cmd[@]}" >"$LOG_DIR/vllm-$role.log" 2>&1 &
  echo $! >>"$LOG_DIR/vllm.pids"
  ports+=("$port")
  echo "serve_vllm: $role ($model) on :$port, GPU $gpu, log $LOG_DIR/vllm-$role.log" >&2
}

# Generation: the draft's token log-probabilities feed the feature router and generate records.
# --enable-prompt-tokens-details makes usage report the cached prefix (vLLM reports null
# without it), which the client subtracts from the prefill it counts.
serve draft 8000 "$DRAFT_GPU" "$DRAFT_MODEL" --enable-prefix-caching --enable-prompt-tokens-details --max-logprobs 20
serve target 8001 "$TARGET_GPU" "$TARGET_MODEL" --enable-prefix-caching --enable-prompt-tokens-details
# Qwen2.5-Math-PRM: token classification, one [negative, positive] row per <extra_0> on /pooling.
# (The Skywork value-head PRM needs Skywork's vLLM plugin and is read on /v1/embeddings: set
# api = "embeddings" and its tokenizer in the config.)
serve prm 8002 "$PRM_GPU" "$PRM_MODEL" --runner pooling --trust-remote-code
serve router 8003 "$ROUTER_GPU" "$ROUTER_MODEL" --runner pooling --trust-remote-code

[ $dry = 1 ] && exit 0
for port in "${ports[@]}"; do
  until curl -sf "http://$HOST:$port/health" >/dev/null; do
    sleep 5
  done
  echo "serve_vllm: :$port is up" >&2
done
echo "serve_vllm: ready; run e.g. arbitrage run --config configs/remote-vllm.toml --run-type router --dataset math500 --concurrency 8" >&2
