#!/usr/bin/env bash
# The serve benchmarks docs/serve.md records (loopback only, bounded: about a minute in all).
#   load:        N = 1, 8, 32 clients against the server on a fake remote engine that takes a fixed
#                time per call; every request answered or refused with 429; p50/p99, throughput
#                against the critical-path bound, overhead per step against the loop alone.
#   first-step:  the embedded smoke model: time to the first streamed step against the loop's own
#                time to its first step, interleaved round by round.
# Timings on a shared machine are noisy: run it when no build or test is running (the load
# average is printed first so the figures come with their conditions).
#
#     scripts/bench-serve.sh [LATENCY_MS STEPS REQUESTS_PER_CLIENT [ROUNDS]]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin arbitrage --example serve_bench
echo "machine: $(nproc) cores; $(uptime | sed 's/.*load/load/')"
target/release/examples/serve_bench load "${1:-50}" "${2:-8}" "${3:-8}"
echo
target/release/examples/serve_bench first-step "${4:-21}"
