#!/usr/bin/env python3
"""What the loop guard (src/engines/repetition.rs) would have saved on runs made without it.

    scripts/loop-guard-effect.py RUN_DIR [RUN_DIR ...]

Greedy decoding is deterministic, so a run made with `stop_loops = false` tells what the guard
would have done: walk each problem's chosen steps in order, find the first step where the guard
fires (inside the step, or on a long step written for the third time), and drop everything
written after that point (the rest of that step, estimated by its share of bytes, and every later
step). Prints, per run: problems, problems the guard would end,
tokens written and saved, decode seconds saved (each problem's draft and target decode time,
scaled by the share of its tokens saved), and problems whose grade could change (those it ends
that were graded correct: the cut text keeps no answer the full one had, or the answer moves).
The rule is re-implemented here; checked every 4 bytes, so a fire can be found up to 3 bytes late.
"""
import json
import sys

MIN_PERIOD, MAX_PERIOD, REPEATS, MIN_SPAN, MIN_REPEATED_STEP = 8, 1024, 3, 200, 40


def loops_at(b: bytes, e: int) -> bool:
    for p in range(MIN_PERIOD, MAX_PERIOD + 1):
        span = max(REPEATS * p, MIN_SPAN)
        if span > e:
            return False
        if b[e - span:e - p] == b[e - span + p:e]:
            return True
    return False


def first_fire(text: str):
    b = text.encode()
    for e in range(MIN_SPAN, len(b) + 1, 4):
        if loops_at(b, e):
            return e, len(b)
    return None


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    print("| run | problems | ended by the guard | of them graded correct | tokens written | tokens saved | decode s saved |")
    print("|---|---|---|---|---|---|---|")
    for run in sys.argv[1:]:
        results = [json.loads(line) for line in open(f"{run}/results.jsonl") if line.strip()]
        ended = correct_ended = 0
        written = saved = 0
        seconds_saved = 0.0
        for r in results:
            steps = r["steps"]
            tokens = sum(s["tokens"] for s in steps)
            written += tokens
            for i, s in enumerate(steps):
                fire = first_fire(s["text"])
                earlier = [t["text"] for t in steps[:i]]
                if fire is None and len(s["text"].encode()) >= MIN_REPEATED_STEP and earlier.count(s["text"]) + 1 >= REPEATS:
                    fire = (1, 1)  # the step is kept whole; what follows it goes
                if fire is None:
                    continue
                at, n = fire
                lost = s["tokens"] * (n - at) / n + sum(t["tokens"] for t in steps[i + 1:])
                ended += 1
                correct_ended += bool(r["correct"])
                saved += lost
                split = r["time_split_s"]
                decode = split["draft_decode"] + split["target_decode"]
                seconds_saved += decode * lost / max(1, tokens)
                break
        print(f"| {run} | {len(results)} | {ended} | {correct_ended} | {written} | {saved:.0f} ({saved / max(1, written):.0%}) | {seconds_saved:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
