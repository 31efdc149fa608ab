#!/usr/bin/env python3
"""Grade labelled answer pairs with Hugging Face Math-Verify (library defaults).

Prints one JSON line: pairs/s over `--repeats` passes and agreement with `expected`, and, when
the rows carry a `category` (crates/grader/tests/data/generalisation.jsonl), agreement per
category under `by_category`.
With `--values`, the file is latex_values.jsonl instead: each `latex` is parsed by Math-Verify,
evaluated by sympy (`doit()` then `evalf`), and counted when it is within 1e-9 relative of `value` (the grader's own
test uses the same criterion).
With `--wrap`, a bare short answer (no `$`, `\\(`, `\\[` or `\\boxed`, one line, at most 80
characters) is wrapped in `$...$` first: with its defaults Math-Verify reads LaTeX only inside
math delimiters and otherwise takes the last number (`100!` reads as 100).
Usage: bench_mathverify.py PAIRS.jsonl [--repeats N] [--wrap]
       bench_mathverify.py VALUES.jsonl --values
"""
import json
import sys
import time

from math_verify import parse, verify


def values(path: str) -> None:
    rows = [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]
    ok = 0
    for r in rows:
        try:
            want = float(r["value"])
            got = [x for x in parse("$" + r["latex"] + "$") if not isinstance(x, str)]
            e = got[0]
            g = complex((e.doit() if hasattr(e, "doit") else e).evalf(30))
            if abs(g.imag) <= 1e-12 * max(abs(g.real), 1e-300):
                g = g.real
                ok += abs(g - want) <= 1e-9 * max(abs(want), 1e-300) or (want == 0 and abs(g) < 1e-12)
        except Exception:  # noqa: BLE001 - no value counts as a mismatch
            pass
    print(json.dumps({"grader": "math-verify", "values": len(rows), "ok": ok,
                      "agreement": round(ok / len(rows), 4)}))


def main() -> None:
    path = sys.argv[1]
    if "--values" in sys.argv:
        values(path)
        return
    repeats = int(sys.argv[sys.argv.index("--repeats") + 1]) if "--repeats" in sys.argv else 3
    pairs = [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]

    wrap = "--wrap" in sys.argv

    def prep(t: str) -> str:
        bare = not any(m in t for m in ("$", "\\(", "\\[", "\\boxed"))
        return f"${t}$" if wrap and bare and "\n" not in t and len(t) <= 80 else t

    def grade(p):
        try:
            return bool(verify(parse(prep(p["gold"])), parse(prep(p["pred"]))))
        except Exception:  # noqa: BLE001 - a crash counts as "not equal"
            return False

    verdicts = [grade(p) == p["expected"] for p in pairs]
    agree = sum(verdicts)
    by_category: dict = {}
    for p, ok in zip(pairs, verdicts):
        if "category" in p:
            a, n = by_category.get(p["category"], (0, 0))
            by_category[p["category"]] = (a + ok, n + 1)
    start = time.perf_counter()
    graded = 0
    for _ in range(repeats):
        for p in pairs:
            grade(p)
            graded += 1
    secs = time.perf_counter() - start
    print(json.dumps({
        "grader": "math-verify" + (" (bare answers wrapped in $...$)" if wrap else ""),
        "pairs": len(pairs),
        "repeats": repeats,
        "graded": graded,
        "seconds": round(secs, 3),
        "pairs_per_sec": round(graded / secs, 1),
        "agree": agree,
        "agreement": round(agree / len(pairs), 4),
        **({"by_category": {k: f"{a}/{n}" for k, (a, n) in sorted(by_category.items())}}
           if by_category else {}),
    }))


if __name__ == "__main__":
    main()
