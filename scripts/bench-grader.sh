#!/usr/bin/env bash
# Throughput and agreement of the Rust grader vs Hugging Face Math-Verify on the same pairs.
#
#   scripts/bench-grader.sh            # crates/grader/tests/data/answer_pairs.jsonl
#
# Env: GRADER_BENCH_PAIRS (another pairs file, e.g. crates/grader/tests/data/generalisation.jsonl), GRADER_BENCH_SECS
# (Rust measuring time, default 3), MV_REPEATS (Math-Verify passes over the file, default 3),
# BENCH_VENV (virtualenv for math-verify, default target/bench-venv), MATH_VERIFY_VERSION
# (default 0.8.0), CARGO_TARGET_DIR (default target/grader), MV_ARGS (e.g. --wrap: bare answers
# wrapped in $...$ for Math-Verify), PYTHON_BENCH=1 (also time the Python package against
# Math-Verify from Python: builds crates/grader-py into the same virtualenv).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
pairs=${GRADER_BENCH_PAIRS:-$root/crates/grader/tests/data/answer_pairs.jsonl}
[[ -f $pairs ]] || { echo "missing $pairs" >&2; exit 1; }
pairs=$(realpath "$pairs")
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target/grader}
export GRADER_BENCH_PAIRS=$pairs

venv=${BENCH_VENV:-$root/target/bench-venv}
if [[ ! -x $venv/bin/python ]]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "math-verify==${MATH_VERIFY_VERSION:-0.8.0}"
fi

echo "== arbitrage-grader (cargo bench -p arbitrage-grader --bench throughput)" >&2
rust=$(cargo bench -q -p arbitrage-grader --bench throughput 2>/dev/null | grep '^{')
echo "$rust"
echo "== math-verify $("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("math-verify"))') (verify(parse(gold), parse(pred)))" >&2
mv=$("$venv/bin/python" scripts/bench_mathverify.py "$pairs" --repeats "${MV_REPEATS:-3}" ${MV_ARGS:-} 2>/dev/null | grep '^{')
echo "$mv"

if [[ ${PYTHON_BENCH:-0} == 1 ]]; then
  echo "== from Python: the arbitrage_grader package (built from crates/grader-py) vs Math-Verify, same process" >&2
  "$venv/bin/pip" install --quiet maturin
  # maturin's build backend runs the `maturin` on PATH: the venv's, as activating it would do.
  PATH="$venv/bin:$PATH" "$venv/bin/pip" install --quiet --no-build-isolation --force-reinstall --no-deps "$root/crates/grader-py"
  "$venv/bin/python" scripts/bench_mathverify.py "$pairs" --vs-arbitrage --repeats "${MV_REPEATS:-3}" \
    --min-secs "${GRADER_BENCH_SECS:-3}" 2>/dev/null
fi

python3 - "$rust" "$mv" <<'PY'
import json, sys
r, m = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print()
print("| grader | pairs/s | agreement with expected |")
print("|---|---:|---:|")
for x in (r, m):
    print(f"| {x['grader']} | {x['pairs_per_sec']:,.0f} | {x['agree']}/{x['pairs']} = {100*x['agreement']:.1f}% |")
print(f"\nthroughput ratio: {r['pairs_per_sec']/m['pairs_per_sec']:,.0f}x")
PY
