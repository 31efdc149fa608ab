#!/usr/bin/env bash
# The README's two commands, run as a new user would: clone this repository's committed HEAD into an
# empty temporary folder (so no ../shared or other team files lie beside it, and nothing untracked
# or ignored comes along), then run `scripts/quickstart.sh` and `scripts/test.sh` there, timing each.
#
#   scripts/fresh-clone-check.sh [--skip-quickstart] [--keep] [--models-from DIR]
#
# --skip-quickstart    only the test command (no 1.6 GB model download, no run of the default pair)
# --keep               leave the clone (and its build) in place; its path is printed
# --models-from DIR    link the GGUF files found in DIR into the clone's models/ first, to spare a
#                      warm machine the download (the fetch script still checks every hash)
#
# Models are fetched into the clone's models/ like a new user's. Cargo's own download cache is the
# machine's, as it would be for anyone with a Rust toolchain. CI runs this (`.ci/run`).
set -euo pipefail

skip_quickstart=0
keep=0
models_from=""
while [ $# -gt 0 ]; do
  case $1 in
    --skip-quickstart) skip_quickstart=1 ;;
    --keep) keep=1 ;;
    --models-from) models_from=${2:?--models-from needs a folder}; shift ;;
    *) echo "fresh-clone-check: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
# The clone's own layout is what users have: a models folder elsewhere is not passed through.
unset ARBITRAGE_MODELS_DIR ARBITRAGE_DATA_DIR ARBITRAGE_CONFIG

say() { echo "fresh-clone-check: $*" >&2; }
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
workdir=$(mktemp -d "${TMPDIR:-/tmp}/arbitrage-fresh.XXXXXX")
if [ $keep = 0 ]; then
  trap 'rm -rf "$workdir"' EXIT
fi
clone="$workdir/arbitrage"
git clone --quiet --no-local "$repo_root" "$clone"
[ ! -e "$workdir/shared" ] || { say "error: $workdir/shared exists"; exit 1; }
say "cloned $(git -C "$clone" rev-parse --short HEAD) into $clone"
if [ -n "$models_from" ]; then
  mkdir -p "$clone/models"
  for f in "$models_from"/*.gguf; do
    [ -e "$f" ] || continue
    ln "$f" "$clone/models/" 2>/dev/null || cp "$f" "$clone/models/"
  done
  say "linked the models of $models_from into the clone"
fi

timings=()
phase() { # name command...
  local name=$1 start end
  shift
  say "== $name: $*"
  start=$(date +%s)
  (cd "$clone" && "$@")
  end=$(date +%s)
  timings+=("$name: $((end - start)) s")
  say "== $name took $((end - start)) s"
}

if [ $skip_quickstart = 0 ]; then
  phase quickstart scripts/quickstart.sh
fi
phase test scripts/test.sh

say "all passed in a fresh clone without ../shared"
for t in "${timings[@]}"; do say "  $t"; done
if [ -d "$clone/target" ]; then
  say "  build output: $(du -sh "$clone/target" | cut -f1), models: $(du -sh "$clone/models" 2>/dev/null | cut -f1)"
fi
[ $keep = 0 ] || say "kept $clone"
