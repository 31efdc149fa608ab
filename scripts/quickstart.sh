#!/usr/bin/env bash
# The main job on the embedded default: system packages, both default models (1.6 GB, checked by
# sha256), a release build, then ARBITRAGE on 5 GSM8K problems at the operating point
# docs/results.md recommends (the router sending ~60% of held-out steps to the target). Arguments
# go to `arbitrage run`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/fetch-models.sh draft target
cargo build --release
exec target/release/arbitrage run --run-type router --target-fraction 0.6 --dataset gsm8k --limit 5 "$@"
