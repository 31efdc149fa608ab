# Sourced by the scripts that run the default pair directly (benchmarks, the vLLM CPU servers):
# where each role's GGUF file is, as scripts/fetch-models.sh saves it.
#
#   . scripts/default-models.sh; default_model draft   # → models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf
default_model() {
  local dir=${ARBITRAGE_MODELS_DIR:-models}
  case $1 in
    draft) echo "$dir/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf" ;;
    target) echo "$dir/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf" ;;
    *) echo "default_model: unknown role $1 (draft or target)" >&2; return 2 ;;
  esac
}
