#!/usr/bin/env python3
"""The value-head PRM served by vLLM against the embedded one, on the same steps.

Two outputs of `cargo run --release --example prm_scores` over the same results files, one
with a configuration whose PRM is the embedded value head, one with the exported head served
by vLLM (`api = "reward"`): the scores are paired by (file, idx, step). Prints the Pearson
correlation, the differences and each side's seconds per scored step.

    python3 scripts/vllm-cpu-prm-compare.py embedded.jsonl served.jsonl
"""

import json
import math
import sys


def load(path):
    out = {}
    for line in open(path):
        if line.strip():
            r = json.loads(line)
            out[(r["file"], r["idx"], r["step"])] = r
    return out


def main() -> int:
    a, b = load(sys.argv[1]), load(sys.argv[2])
    keys = sorted(a.keys() & b.keys())
    xs = [a[k]["score"] for k in keys]
    ys = [b[k]["score"] for k in keys]
    n = len(keys)
    mx, my = sum(xs) / n, sum(ys) / n
    cov = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    r = cov / math.sqrt(sum((x - mx) ** 2 for x in xs) * sum((y - my) ** 2 for y in ys))
    d = sorted(abs(x - y) for x, y in zip(xs, ys))
    same_side = sum((x >= 0.5) == (y >= 0.5) for x, y in zip(xs, ys))
    print(f"steps scored by both: {n} (of {len(a)} and {len(b)})")
    print(f"Pearson r = {r:.4f}")
    print(f"|difference|: median {d[n // 2]:.4f}, 90th percentile {d[int(0.9 * n)]:.4f}, max {d[-1]:.4f}")
    print(f"mean score {mx:.4f} (first) vs {my:.4f} (second); same side of 0.5: {same_side}/{n}")
    for name, rows in (("first", a), ("second", b)):
        secs = sorted(rows[k]["seconds"] for k in keys)
        print(f"{name}: {1000 * sum(secs) / n:.0f} ms per scored step (mean), median {1000 * secs[n // 2]:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
