#!/usr/bin/env python3
"""Two router files at the same budget points, timed side by side.

Runs `router` with each file at each target-step fraction on the same GSM8K problems, in rounds:
every (file, fraction) on the first slice of problems, then every one on the next, alternating
which file goes first, so that machine drift touches both files alike. No step cache: every
latency is measured now. Prints, per fraction, each file's accuracy, mean and median latency,
target-step fraction, early decisions and tokens, and the per-problem latency ratio (median of
B over A on the same problems).

    scripts/ab-routers.py A.json B.json [--fractions 0.6,0.45,0.3] [--start 50] [--end 70]
                          [--rounds 4] [--out runs/ab-routers]

Default problems are GSM8K 50-69: outside the reported slice (0-49) and the training problems
(100-326). Run it on a quiet machine (see scripts/timing-guard.py).
"""
import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "target" / "release" / "arbitrage"


def slices(start, end, rounds):
    n = end - start
    rounds = max(1, min(rounds, n))
    size, larger = divmod(n, rounds)
    out, at = [], start
    for r in range(rounds):
        nxt = at + size + (1 if r < larger else 0)
        out.append((at, nxt))
        at = nxt
    return out


def results(d):
    path = d / "results.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--fractions", default="0.6,0.45,0.3")
    ap.add_argument("--start", type=int, default=50)
    ap.add_argument("--end", type=int, default=70)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--out", default="runs/ab-routers")
    args = ap.parse_args()
    fractions = [f.strip() for f in args.fractions.split(",") if f.strip()]
    out = ROOT / args.out
    files = {"A": Path(args.a).resolve(), "B": Path(args.b).resolve()}
    for f in files.values():
        if not f.is_file():
            sys.exit(f"ab-routers: no router file {f}")
    for r, (_, end) in enumerate(slices(args.start, args.end, args.rounds)):
        order = ["A", "B"] if r % 2 == 0 else ["B", "A"]
        for fraction in fractions:
            for name in order:
                d = out / f"{name}-f{fraction}"
                cmd = [str(BIN), "run", "--run-type", "router", "--router", str(files[name]),
                       "--target-fraction", fraction, "--dataset", "gsm8k",
                       "--start", str(args.start), "--end", str(end), "--max-tokens", "1024",
                       "--output-dir", str(d)]
                print(f"ab-routers: round {r + 1}: {name} at {fraction}, problems to {end}",
                      file=sys.stderr, flush=True)
                subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, cwd=ROOT)

    print(f"A = {files['A']}\nB = {files['B']}\nGSM8K {args.start}-{args.end - 1}, "
          f"{args.rounds} rounds, no step cache\n")
    print("| fraction | file | accuracy | mean latency (s) | p50 (s) | target steps | early | "
          "draft tokens | target tokens | discarded draft tokens | B/A latency, median per problem |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for fraction in fractions:
        runs = {name: {r["idx"]: r for r in results(out / f"{name}-f{fraction}")} for name in files}
        for name in files:
            rs = list(runs[name].values())
            steps = [s for r in rs for s in r["steps"]]
            ratio = ""
            if name == "B":
                common = sorted(set(runs["A"]) & set(runs["B"]))
                ratio = "%.3f" % statistics.median(
                    runs["B"][i]["latency_s"] / runs["A"][i]["latency_s"] for i in common)
            print("| %s | %s | %.1f%% | %.2f | %.2f | %.2f | %d | %d | %d | %d | %s |" % (
                fraction, name,
                100 * statistics.mean(1.0 if r["correct"] else 0.0 for r in rs),
                statistics.mean(r["latency_s"] for r in rs),
                statistics.median(r["latency_s"] for r in rs),
                sum(s["model"] == "target" for s in steps) / max(len(steps), 1),
                sum(1 for s in steps if s.get("early")),
                sum(r["tokens"]["draft"] for r in rs),
                sum(r["tokens"]["target"] for r in rs),
                sum(r["tokens"]["discarded_draft"] for r in rs),
                ratio))


if __name__ == "__main__":
    main()
