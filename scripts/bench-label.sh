#!/usr/bin/env bash
# `label` throughput one problem at a time against several at once (issue 26): one `generate` run
# on GSM8K training problems, labelled from scratch at each width in a copy of its own; wall time,
# problems per minute, and whether every label line equals the one-at-a-time run's.
#
#   scripts/bench-label.sh [START END [WIDTHS]]   # default: 100 110 "1 4"; LABEL_ARGS for `label`
#
# Time it on a quiet machine (scripts/timing-guard.py).
set -euo pipefail
cd "$(dirname "$0")/.."
start=${1:-100}
end=${2:-110}
widths=${3:-1 4}
out=${OUT:-runs/bench-label}
bin=target/release/arbitrage
cargo build --release --quiet
mkdir -p "$out"
echo "machine: $(nproc) cores; $(uptime | sed 's/.*load/load/'); $(date -u +%FT%TZ)"
"$bin" run --run-type generate --dataset gsm8k --start "$start" --end "$end" --max-tokens 1024 \
  --output-dir "$out/gen" 2>&1 | tail -n 2
echo "| problems at once | problems | label lines | wall s | problems/min | vs 1 | lines ≠ 1 at once |"
echo "|---|---|---|---|---|---|---|"
base=""
for n in $widths; do
  dir=$out/label-c$n
  rm -rf "$dir"
  mkdir -p "$dir"
  cp "$out/gen/steps.jsonl" "$out/gen/results.jsonl" "$out/gen/metrics.json" "$dir/"
  t0=$(date +%s.%N)
  # shellcheck disable=SC2086 # LABEL_ARGS is several words
  "$bin" label --run "$dir" --concurrency "$n" ${LABEL_ARGS:-} 2>"$dir/label.log"
  t1=$(date +%s.%N)
  python3 - "$dir" "$n" "$t0" "$t1" "${base:-}" <<'PY'
import json, os, sys
d, n, t0, t1, base = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
def lines(d):
    with open(os.path.join(d, 'labels.jsonl')) as f:
        return {(r['idx'], r['step_index']): r for r in map(json.loads, filter(str.strip, f))}
mine = lines(d)
problems = len({k[0] for k in mine})
wall = t1 - t0
ppm = 60 * problems / wall
ratio, differ = '–', '–'
if base:
    b = lines(base)
    with open(os.path.join(base, 'wall')) as f:
        ratio = f"{ppm / float(f.read()):.2f}"
    differ = f"{sum(mine.get(k) != v for k, v in b.items())}/{len(b)}"
with open(os.path.join(d, 'wall'), 'w') as f:
    f.write(str(ppm))
print(f"| {n} | {problems} | {len(mine)} | {wall:.0f} | {ppm:.2f} | {ratio} | {differ} |")
PY
  [ -n "$base" ] || base=$dir
done
