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
With `--vs-arbitrage`, both graders are timed from Python in the same process, both warm (one
untimed pass each first), on the same pairs: Math-Verify's `verify(parse(gold), parse(pred))`,
then the `arbitrage_grader` package's `verify(gold, pred)` one pair at a time on this thread,
then `verify_batch` over all pairs with 1 worker and with one worker per core. Prints one JSON
line per grader and a Markdown table with the ratios.
Usage: bench_mathverify.py PAIRS.jsonl [--repeats N] [--wrap]
       bench_mathverify.py PAIRS.jsonl --vs-arbitrage [--repeats N] [--min-secs S] [--wrap]
       bench_mathverify.py VALUES.jsonl --values
"""
import json
import os
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


def timed(fn, min_secs: float) -> tuple[int, float]:
    """Calls `fn` (one pass over the pairs, returning how many it graded) until `min_secs` have
    passed, at least once; returns (pairs graded, seconds)."""
    graded, start = 0, time.perf_counter()
    while True:
        graded += fn()
        secs = time.perf_counter() - start
        if secs >= min_secs:
            return graded, secs


def wrap_bare(t: str) -> str:
    """`$t$` for a bare short answer (see `--wrap`), `t` otherwise."""
    bare = not any(m in t for m in ("$", "\\(", "\\[", "\\boxed"))
    return f"${t}$" if bare and "\n" not in t and len(t) <= 80 else t


def vs_arbitrage(pairs: list, repeats: int, min_secs: float, wrap: bool) -> None:
    import arbitrage_grader as ag

    golds = [p["gold"] for p in pairs]
    preds = [p["pred"] for p in pairs]
    expected = [p["expected"] for p in pairs]
    # Math-Verify gets the wrapped strings (prepared once, outside the timing); we get them as is.
    mv_golds = [wrap_bare(g) for g in golds] if wrap else golds
    mv_preds = [wrap_bare(p) for p in preds] if wrap else preds

    def mv_grade(g, p):
        try:
            return bool(verify(parse(g), parse(p)))
        except Exception:  # noqa: BLE001 - a crash counts as "not equal"
            return False

    def mv_pass():
        for g, p in zip(mv_golds, mv_preds):
            mv_grade(g, p)
        return len(pairs)

    def ag_pass():
        v = ag.verify
        for g, p in zip(golds, preds):
            v(g, p)
        return len(pairs)

    cores = os.cpu_count() or 1
    rows = []
    # Warm: one untimed pass each (imports, regex compilation, sympy caches).
    mv_agree = sum(mv_grade(g, p) == e for g, p, e in zip(mv_golds, mv_preds, expected))
    ag_agree = sum(v.equal == e for v, e in zip(ag.verify_batch(golds, preds), expected))
    ag_pass()
    n, secs = 0, 0.0
    start = time.perf_counter()
    for _ in range(repeats):
        n += mv_pass()
    secs = time.perf_counter() - start
    mv_name = "math-verify verify(parse, parse)" + (" on $-wrapped bare answers" if wrap else "")
    rows.append((mv_name + ", 1 thread", n, secs, mv_agree))
    rows.append(("arbitrage_grader.verify, 1 thread", *timed(ag_pass, min_secs), ag_agree))
    # Batches as a reward function sends them: the pairs repeated to at least 4096 per call.
    k = -(-4096 // len(pairs))
    big_g, big_p = golds * k, preds * k
    for threads, label in ((1, "1"), (None, f"None ({cores} cores)")):
        n, secs = timed(lambda t=threads: len(ag.verify_batch(big_g, big_p, threads=t)), min_secs)
        rows.append((f"arbitrage_grader.verify_batch, threads={label}, {len(big_g)} pairs a call",
                     n, secs, ag_agree))
    base = rows[0][1] / rows[0][2]
    for name, n, secs, agree in rows:
        print(json.dumps({"grader": name, "pairs": len(pairs), "graded": n,
                          "seconds": round(secs, 3), "pairs_per_sec": round(n / secs, 1),
                          "agree": agree, "agreement": round(agree / len(pairs), 4)}))
    print()
    print(f"| grader ({len(pairs)} pairs, {cores} cores) | pairs/s | vs Math-Verify | agreement |")
    print("|---|---:|---:|---:|")
    for name, n, secs, agree in rows:
        rate = n / secs
        print(f"| {name} | {rate:,.0f} | {rate / base:,.0f}x | {agree}/{len(pairs)} |")


def main() -> None:
    path = sys.argv[1]
    if "--values" in sys.argv:
        values(path)
        return
    if "--vs-arbitrage" in sys.argv:
        pairs = [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]
        repeats = int(sys.argv[sys.argv.index("--repeats") + 1]) if "--repeats" in sys.argv else 3
        min_secs = (float(sys.argv[sys.argv.index("--min-secs") + 1])
                    if "--min-secs" in sys.argv else 3.0)
        vs_arbitrage(pairs, repeats, min_secs, "--wrap" in sys.argv)
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
            # Issue 29's kinds are reported apart from issue 15's categories of the same name.
            key = f'{p["issue"]}:{p["category"]}' if "issue" in p else p["category"]
            a, n = by_category.get(key, (0, 0))
            by_category[key] = (a + ok, n + 1)
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
