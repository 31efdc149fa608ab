#!/usr/bin/env python3
"""Print a markdown table of the metrics.json files under the given run directories.

    scripts/results-table.py runs/gsm8k-0-50/*
"""
import json
import sys
from pathlib import Path

rows = []
for arg in sys.argv[1:]:
    path = Path(arg) / "metrics.json"
    if not path.is_file():
        continue
    m = json.loads(path.read_text())
    rows.append(m)
order = {"draft": 0, "target": 1, "rsd": 2, "router": 3, "oracle": 4, "generate": 5}
rows.sort(key=lambda m: (order.get(m["run_type"], 9), m["threshold"]))
print("| run type | threshold | n | accuracy | mean latency (s) | p50 (s) | p90 (s) | target-step fraction | draft tokens | target tokens | discarded draft tokens |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for m in rows:
    t = f'{m["threshold"]:.3g}' if m["run_type"] in ("rsd", "router", "oracle") else "–"
    print(
        f'| {m["run_type"]} | {t} | {m["n"]} | {100 * m["accuracy"]:.1f}% | {m["mean_latency_s"]:.1f} | '
        f'{m["p50_latency_s"]:.1f} | {m["p90_latency_s"]:.1f} | {m["target_step_fraction"]:.2f} | '
        f'{m["draft_tokens"]} | {m["target_tokens"]} | {m["discarded_draft_tokens"]} |'
    )
