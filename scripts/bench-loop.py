#!/usr/bin/env python3
"""The speculation loop's own speed, next to `arbitrage bench` at the same context depth.

Runs, back to back and repeated, on the same GSM8K problems: `draft` alone, `target` alone, and
`router` with and without verification (the mixed runs, both models loaded and switching). For
every run and role it reports in-loop decode and prefill tokens/s (tokens over the seconds the
time split gives that role), then `arbitrage bench` for each role at the loop's mean context depth,
so that machine noise and the loop's own overhead can be told apart. Medians over repetitions.

    scripts/bench-loop.py [--start 50] [--end 56] [--reps 2] [--target-fraction 0.3] [--out DIR]

Run it on a quiet machine (nothing else computing: see scripts/timing-guard.py). Prints a Markdown
table; every run directory stays under --out.
"""
import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "target" / "release" / "arbitrage"


def run(args, name, extra, out):
    d = out / name
    cmd = [str(BIN), "run", "--dataset", "gsm8k", "--start", str(args.start), "--end", str(args.end),
           "--output-dir", str(d), "--overwrite"] + extra
    print(f"bench-loop: {name}: {' '.join(cmd[1:])}", file=sys.stderr, flush=True)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
    results = [json.loads(line) for line in (d / "results.jsonl").read_text().splitlines() if line.strip()]
    metrics = json.loads((d / "metrics.json").read_text())
    return results, metrics


def rates(results, role):
    """In-loop (decode tok/s, prefill tok/s) of one role over a run's results."""
    tokens = sum(r["tokens"][role] for r in results)
    decode_s = sum(r["time_split_s"][f"{role}_decode"] for r in results)
    prefill_tokens = sum(r["prefill_tokens"][role] for r in results)
    prefill_s = sum(r["time_split_s"][f"{role}_prefill"] for r in results)
    # The first token of each call comes from the prefill's logits, not from a decode.
    if role == "draft":
        calls = sum(len(r["steps"]) for r in results) if tokens else 0
    else:
        calls = sum(1 for r in results for s in r["steps"] if s["model"] == "target")
    decoded = max(tokens - calls, 0)
    return (decoded / decode_s if decode_s > 0 else None,
            prefill_tokens / prefill_s if prefill_s > 0 else None,
            prefill_tokens / max(calls, 1))


def prompt_lengths(results_draft):
    """Prompt tokens per problem: a draft-alone run reads its prompt once, then one token a step."""
    return {r["idx"]: r["prefill_tokens"]["draft"] - (len(r["steps"]) - 1) for r in results_draft}


def mean_depth(results, role, prompts):
    """Token-weighted mean context length at which `role` wrote its tokens in a run."""
    total, weighted = 0, 0.0
    for r in results:
        pos = prompts.get(r["idx"], 0)
        for s in r["steps"]:
            n = s["tokens"]
            if s["model"] == role or (role == "draft" and s.get("rejected_draft_text")):
                written = n if s["model"] == role else len(s["rejected_draft_text"]) / 4
                total += written
                weighted += written * (pos + written / 2)
            pos += n
    return int(weighted / total) if total else None


def bench(role, depth, chunk, reps):
    out = subprocess.run([str(BIN), "bench", "--roles", role, "--depth", str(depth), "--prompt-tokens", str(chunk),
                          "--decode-tokens", "64", "--reps", str(reps), "--json"],
                         check=True, capture_output=True, text=True, cwd=ROOT).stdout
    r = json.loads(out.strip().splitlines()[-1])["result"]
    return r["decode_tok_s"], r["prefill_tok_s"]


def fmt(x):
    return "–" if x is None else f"{x:.1f}"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--start", type=int, default=50)
    p.add_argument("--end", type=int, default=56)
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--target-fraction", type=float, default=0.3)
    p.add_argument("--early-entropy", default="", help="comma-separated --early-entropy values: one more router run each")
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-loop")
    args = p.parse_args()
    if not BIN.exists():
        sys.exit(f"bench-loop: build first (cargo build --release): {BIN} is missing")
    runs = {
        "draft": ["--run-type", "draft"],
        "target": ["--run-type", "target"],
        "router": ["--run-type", "router", "--target-fraction", str(args.target_fraction)],
        "router-no-verify": ["--run-type", "router", "--target-fraction", str(args.target_fraction), "--no-verify"],
    }
    for h in filter(None, args.early_entropy.split(",")):
        runs[f"router-early{h}"] = ["--run-type", "router", "--target-fraction", str(args.target_fraction),
                                     "--early-entropy", h]
    samples = {name: [] for name in runs}
    for rep in range(args.reps):
        for name, extra in runs.items():
            results, metrics = run(args, name, extra, args.out / f"rep{rep}")
            samples[name].append((results, metrics))
    prompts = prompt_lengths(samples["draft"][0][0])
    chunk = 40
    bench_cache = {}

    print(f"GSM8K problems {args.start}–{args.end - 1}, {args.reps} repetitions (medians); "
          f"`arbitrage bench` at each run's token-weighted mean depth for the role, prefill of {chunk} tokens, "
          "decode of 64, median of 3.\n")
    print("| run | role | depth | in-loop decode tok/s | bench decode tok/s | ratio | in-loop prefill tok/s | bench prefill tok/s | ratio | mean tokens read per call |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in runs:
        for role in ("draft", "target"):
            per_rep = [rates(results, role) for results, _ in samples[name]]
            if all(r[0] is None for r in per_rep):
                continue
            depth = mean_depth(samples[name][0][0], role, prompts)
            # Depths within 5% share a bench measurement.
            key = (role, round(depth / 50) * 50)
            if key not in bench_cache:
                bench_cache[key] = bench(role, key[1], chunk, 3)
            dec = statistics.median([r[0] for r in per_rep if r[0] is not None])
            pre = statistics.median([r[1] for r in per_rep if r[1] is not None]) if any(r[1] for r in per_rep) else None
            read = statistics.median([r[2] for r in per_rep])
            bd, bp = bench_cache[key]
            print(f"| {name} | {role} | {key[1]} | {fmt(dec)} | {fmt(bd)} | {dec / bd:.2f} | {fmt(pre)} | {fmt(bp)} | "
                  f"{'–' if pre is None else f'{pre / bp:.2f}'} | {read:.0f} |")
    print("\n| run | accuracy | mean latency (s) | target steps | draft decode | draft read | target decode | target read+verify | router | other | draft tokens kept by verification |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name in runs:
        ms = [m for _, m in samples[name]]
        lat = statistics.median([m["mean_latency_s"] for m in ms])
        m = ms[0]
        n = m["n"]
        split = {k: statistics.median([x["time_split_s"][k] / n for x in ms]) for k in m["time_split_s"]}
        print(f"| {name} | {100 * m['accuracy']:.0f}% | {lat:.1f} | {100 * m['target_step_fraction']:.0f}% | "
              f"{split['draft_decode']:.1f} | {split['draft_prefill']:.1f} | {split['target_decode']:.1f} | "
              f"{split['target_prefill']:.1f} | {split['router']:.2f} | {split['other']:.2f} | {m.get('accepted_draft_tokens', 0)} |")


if __name__ == "__main__":
    main()
