#!/usr/bin/env bash
# The main job on the embedded default: system packages, both default models (1.6 GB, checked by
# sha256), a release build, then ARBITRAGE on 5 GSM8K problems. Arguments go to `arbitrage run`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/fetch-models.sh draft target
cargo build --release
exec target/release/arbitrage run --run-type router --dataset gsm8k --limit 5 "$@"
