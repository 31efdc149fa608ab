#!/usr/bin/env bash
# The test command: system packages, the smoke model, then every test (release build: llama.cpp
# is far too slow unoptimised, and one profile means one llama.cpp build), then the grader's
# Python package: its wheel built from this checkout and its pytest suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
scripts/fetch-models.sh smoke
cargo test --release --workspace "$@"
crates/grader-py/test.sh
