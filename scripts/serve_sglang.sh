#!/usr/bin/env bash
# Starts draft and target on SGLang and the PRM and router on vLLM (SGLang's OpenAI-compatible
# server has no /pooling route), named the way configs/remote-sglang.toml expects:
#
#   draft  :30000 (SGLang, GPU $DRAFT_GPU)   target :30001 (SGLang, GPU $TARGET_GPU)
#   prm    :8002  (vLLM,   GPU $PRM_GPU)     router :8003  (vLLM,   GPU $ROUTER_GPU)
#
#   scripts/serve_sglang.sh            # start all, wait until each answers /health
#   scripts/serve_sglang.sh --dry-run  # print the commands only
#
# Needs SGLang and vLLM installed. Models, GPUs and log directory are set as in serve_vllm.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
DRAFT_MODEL=${DRAFT_MODEL-meta-llama/Llama-3.2-1B-Instruct}
TARGET_MODEL=${TARGET_MODEL-meta-llama/Llama-3.1-8B-Instruct}
DRAFT_GPU=${DRAFT_GPU-0} TARGET_GPU=${TARGET_GPU-1}
MEM_FRACTION=${MEM_FRACTION-0.85}
LOG_DIR=${LOG_DIR-logs}
HOST=${HOST-127.0.0.1}
dry=0
[ "${1-}" = "--dry-run" ] && dry=1

serve() {
  local role=$1 port=$2 gpu=$3 model=$4
  local cmd=(python3 -m sglang.launch_server --model-path "$model" --host "$HOST" --port "$port"
    --served-model-name "$role" --mem-fraction-static "$MEM_FRACTION")
  if [ $dry = 1 ]; then
    echo "CUDA_VISIBLE_DEVICES=$gpu ${cmd[*]}"
    return
  fi
  mkdir -p "$LOG_DIR"
  CUDA_VISIBLE_DEVICES=$gpu nohup "${cmd[@]}" >"$LOG_DIR/sglang-$role.log" 2>&1 &
  echo $! >>"$LOG_DIR/sglang.pids"
  echo "serve_sglang: $role ($model) on :$port, GPU $gpu, log $LOG_DIR/sglang-$role.log" >&2
}

serve draft 30000 "$DRAFT_GPU" "$DRAFT_MODEL"
serve target 30001 "$TARGET_GPU" "$TARGET_MODEL"
# The PRM and router on vLLM; serve_vllm.sh skips the roles whose model is empty.
DRAFT_MODEL= TARGET_MODEL= scripts/serve_vllm.sh ${1-}

[ $dry = 1 ] && exit 0
for port in 30000 30001; do
  until curl -sf "http://$HOST:$port/health" >/dev/null; do
    sleep 5
  done
  echo "serve_sglang: :$port is up" >&2
done
