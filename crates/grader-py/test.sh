#!/usr/bin/env bash
# Build the grader's Python package from this checkout and run its pytest suite, as CI does
# (scripts/test.sh calls this): a virtual environment (target/grader-py-venv, or $GRADER_PY_VENV),
# maturin and pytest installed into it by name from the package index, the wheel built here from
# the Rust sources (no prebuilt binary is fetched), then pytest. Prints how long each part took.
set -euo pipefail
cd "$(dirname "$0")/../.."
say() { echo "grader-py: $*" >&2; }
py=${PYTHON:-python3}
command -v "$py" >/dev/null || { say "error: $py not found (Python 3.9+ with venv and pip is needed)"; exit 1; }
venv=${GRADER_PY_VENV:-target/grader-py-venv}
start=$(date +%s)
if [ ! -x "$venv/bin/python" ]; then
  "$py" -m venv "$venv" || { say "error: cannot create a virtual environment with $py (install python3-venv)"; exit 1; }
fi
pip() { "$venv/bin/python" -m pip --disable-pip-version-check -q "$@"; }
# Without build isolation, maturin's build backend runs the `maturin` command it finds on PATH
# (maturin 1.16 does), so the venv's bin goes first, as activating it would do.
export PATH="$(cd "$venv/bin" && pwd):$PATH"
pip install maturin pytest
t1=$(date +%s)
pip install --no-build-isolation --force-reinstall --no-deps ./crates/grader-py
t2=$(date +%s)
"$venv/bin/python" -m pytest -q crates/grader-py/tests
t3=$(date +%s)
say "tools $((t1 - start)) s, wheel build and install $((t2 - t1)) s, pytest $((t3 - t2)) s"
