#!/usr/bin/env bash
# The test command: system packages, the smoke model, then every test (release build: llama.cpp
# is far too slow unoptimised, and one profile means one llama.cpp build; llama.cpp's own server is
# built first for the remote back-end's end-to-end test), then the grader's
# Python package: its wheel built from this checkout and its pytest suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
scripts/fetch-models.sh smoke
# llama.cpp's own server, for the end-to-end test of the remote back-end (tests/remote_e2e.rs).
ARBITRAGE_LLAMA_SERVER=$(scripts/build-llama-server.sh)
export ARBITRAGE_LLAMA_SERVER
cargo test --release --workspace "$@"
crates/grader-py/test.sh
