#!/usr/bin/env bash
# The main job on the embedded default: system packages, both default models (1.6 GB, checked by
# sha256), a release build, then a small GSM8K run. Arguments are passed to the final command.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/fetch-models.sh draft target
cargo build --release
exec target/release/arbitrage steps --dataset gsm8k --index 0 "$@"
