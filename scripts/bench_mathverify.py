#!/usr/bin/env python3
"""Grade shared/grading/answer_pairs.jsonl with Hugging Face Math-Verify (library defaults).

Prints one JSON line: pairs/s over `--repeats` passes and agreement with `expected`.
Usage: bench_mathverify.py PAIRS.jsonl [--repeats N]
"""
import json
import sys
import time

from math_verify import parse, verify


def main() -> None:
    path = sys.argv[1]
    repeats = int(sys.argv[sys.argv.index("--repeats") + 1]) if "--repeats" in sys.argv else 3
    pairs = [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]

    def grade(p):
        try:
            return bool(verify(parse(p["gold"]), parse(p["pred"])))
        except Exception:  # noqa: BLE001 - a crash counts as "not equal"
            return False

    agree = sum(grade(p) == p["expected"] for p in pairs)
    start = time.perf_counter()
    graded = 0
    for _ in range(repeats):
        for p in pairs:
            grade(p)
            graded += 1
    secs = time.perf_counter() - start
    print(json.dumps({
        "grader": "math-verify",
        "pairs": len(pairs),
        "repeats": repeats,
        "graded": graded,
        "seconds": round(secs, 3),
        "pairs_per_sec": round(graded / secs, 1),
        "agree": agree,
        "agreement": round(agree / len(pairs), 4),
    }))


if __name__ == "__main__":
    main()
