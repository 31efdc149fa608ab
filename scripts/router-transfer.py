#!/usr/bin/env python3
"""How a shipped router and value head carry over to another set's labelled steps.

    scripts/router-transfer.py runs/train/math500-generate [routers/qwen25-coder-0.5b-1.5b.json] [--cv]

Reads a labelled `generate` run (steps.jsonl from `arbitrage run --run-type generate`,
labels.jsonl from `arbitrage label`) and prints, against the outcome label the router is trained
on (y = 1 when only the target's step leads to the gold answer):
- the labels' balance;
- every feature's ROC AUC alone (0.5: no signal; below 0.5: signal with the sign reversed), and
  how often it is non-zero;
- the router's AUC and its per-class accuracy at its default threshold;
- the share of steps its budget table would send at each listed fraction (the full step's
  features only: the early rule, which escalates more, is left out);
- the value head's scores as the records carry them: the draft step's score (low should mean
  escalate) and the target's step's score minus the draft's.
AUCs count ties as half.

With --cv it also asks whether the candidate text features would help a router retrained on
these steps: a class-weighted, L2-regularised logistic regression over the router's features
(with and without the candidates, all four and each alone), 5-fold cross-validation by problem,
5 shuffles; it prints each input set's mean held-out AUC and range.
"""
import json
import math
import random
import re
import sys
from collections import Counter
from pathlib import Path


def auc(scores, ys):
    pos = sorted(s for s, y in zip(scores, ys) if y)
    neg = sorted(s for s, y in zip(scores, ys) if not y)
    if not pos or not neg:
        return float("nan")
    # Rank-sum (Mann-Whitney U) with ties counted half.
    wins = 0.0
    for p in pos:
        lo = hi = 0
        for n in neg:
            lo += n < p
            hi += n <= p
        wins += (lo + hi) / 2
    return wins / len(pos) / len(neg)


MATH_SPAN = re.compile(r"\\\((.*?)\\\)|\\\[(.*?)\\\]|\$\$(.*?)\$\$|\$(.*?)\$", re.S)
CANDIDATES = {
    "LaTeX commands per 100 characters": lambda t: 100 * len(re.findall(r"\\[a-zA-Z]+", t)) / max(1, len(t)),
    "`\\frac`/`\\sqrt` count": lambda t: len(re.findall(r"\\(?:d?frac|sqrt)", t)),
    "share of characters in math mode": lambda t: sum(len("".join(m)) for m in MATH_SPAN.findall(t)) / max(1, len(t)),
    "log characters": lambda t: math.log1p(len(t)),
}


def fit_logistic(rows, ys, l2=1.0, iters=300, lr=0.1):
    """Batch gradient descent on standardised inputs, positives weighted to balance the classes.
    Returns a scoring function (the logit)."""
    n, d = len(rows), len(rows[0])
    mean = [sum(r[j] for r in rows) / n for j in range(d)]
    scale = [max(1e-6, math.sqrt(sum((r[j] - mean[j]) ** 2 for r in rows) / n)) for j in range(d)]
    z = [[(r[j] - mean[j]) / scale[j] for j in range(d)] for r in rows]
    w, b = [0.0] * d, 0.0
    positive_weight = (n - sum(ys)) / max(1, sum(ys))
    for _ in range(iters):
        gw, gb, total = [0.0] * d, 0.0, 0.0
        for x, y in zip(z, ys):
            p = 1 / (1 + math.exp(-(b + sum(a * c for a, c in zip(w, x)))))
            k = positive_weight if y else 1.0
            g = (p - y) * k
            gb += g
            total += k
            for j in range(d):
                gw[j] += g * x[j]
        b -= lr * gb / total
        for j in range(d):
            w[j] -= lr * (gw[j] / total + l2 * w[j] / n)
    return lambda r: b + sum(a * (r[j] - mean[j]) / scale[j] for j, a in enumerate(w))


def cross_validated_auc(rows, ys, groups, folds=5, shuffles=5):
    """Mean, least and greatest AUC over `shuffles` k-fold splits by group (problem)."""
    ids = sorted(set(groups))
    aucs = []
    for seed in range(shuffles):
        order = ids[:]
        random.Random(seed).shuffle(order)
        parts = [set(order[i::folds]) for i in range(folds)]
        predicted = [0.0] * len(rows)
        for part in parts:
            train = [i for i, g in enumerate(groups) if g not in part]
            model = fit_logistic([rows[i] for i in train], [ys[i] for i in train])
            for i, g in enumerate(groups):
                if g in part:
                    predicted[i] = model(rows[i])
        aucs.append(auc(predicted, ys))
    return sum(aucs) / len(aucs), min(aucs), max(aucs)


def read_jsonl(path):
    with open(path) as f:
        for i, line in enumerate(f, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as e:
                    sys.exit(f"{path}:{i}: {e}")


def main() -> int:
    args = [a for a in sys.argv[1:] if a != "--cv"]
    cv = len(args) < len(sys.argv) - 1
    if len(args) not in (1, 2):
        print(__doc__, file=sys.stderr)
        return 2
    run = Path(args[0])
    router = json.loads(Path(args[1] if len(args) == 2 else "routers/qwen25-coder-0.5b-1.5b.json").read_text())
    steps = {(r["idx"], r["step_index"]): r for r in read_jsonl(run / "steps.jsonl")}
    rows = []
    for label in read_jsonl(run / "labels.jsonl"):
        step = steps.get((label["idx"], label["step_index"]))
        if step is not None:
            rows.append((step, int(label["target_correct"] and not label["draft_correct"]), label))
    if not rows:
        print(f"{run}: no labelled steps", file=sys.stderr)
        return 1
    ys = [y for _, y, _ in rows]
    names = rows[0][0]["feature_names"]
    if names != router["features"]:
        print(f"the records' features {names} are not the router's {router['features']}", file=sys.stderr)
        return 1
    outcomes = Counter((lab["draft_correct"], lab["target_correct"]) for _, _, lab in rows)
    print(f"{run}: {len(rows)} labelled steps of {len({s['idx'] for s, _, _ in rows})} problems")
    print(
        f"only the target's step leads to the answer (y = 1): {sum(ys)} ({sum(ys) / len(ys):.1%}); "
        f"only the draft's: {outcomes[(True, False)]}; both: {outcomes[(True, True)]}; "
        f"neither: {outcomes[(False, False)]}"
    )
    print()
    print("| feature | AUC alone | non-zero |")
    print("|---|---|---|")
    for i, name in enumerate(names):
        xs = [s["features"][i] for s, _, _ in rows]
        print(f"| `{name}` | {auc(xs, ys):.3f} | {sum(x != 0 for x in xs)} of {len(xs)} |")

    def y_hat(features):
        z = router["bias"] + sum(
            w * (x - m) / sc for w, x, m, sc in zip(router["weights"], features, router["mean"], router["scale"])
        )
        return 1 / (1 + math.exp(-z))

    ps = [y_hat(s["features"]) for s, _, _ in rows]
    t = router["default_threshold"]
    acc = lambda c: sum((p >= t) == bool(c) for p, y in zip(ps, ys) if y == c) / max(1, sum(y == c for y in ys))
    print()
    print(f"router: AUC {auc(ps, ys):.3f}; at its default threshold {t}: class 0 {acc(0):.2f}, class 1 {acc(1):.2f}")
    print()
    print("| budget: target fraction | threshold | sent here (full-step features, no early rule) |")
    print("|---|---|---|")
    for b in router["budget"]:
        sent = sum(p >= b["threshold"] for p in ps) / len(ps)
        print(f"| {b['target_fraction']:.2f} | {b['threshold']:.3f} | {sent:.2f} |")
    # Candidate text features the router does not read yet (issue 27: MATH may need LaTeX
    # structure), from the draft step's text.
    print()
    print("| candidate text feature | AUC alone | non-zero |")
    print("|---|---|---|")
    for name, f in CANDIDATES.items():
        xs = [f(s["draft_step"]) for s, _, _ in rows]
        print(f"| {name} | {auc(xs, ys):.3f} | {sum(x != 0 for x in xs)} of {len(xs)} |")
    if cv:
        features = [s["features"] for s, _, _ in rows]
        candidates = [[f(s["draft_step"]) for f in CANDIDATES.values()] for s, _, _ in rows]
        groups = [s["idx"] for s, _, _ in rows]
        sets = {"the router's features": features, "… and the four candidates": [a + b for a, b in zip(features, candidates)]}
        for j, name in enumerate(CANDIDATES):
            sets[f"… and {name}"] = [a + [b[j]] for a, b in zip(features, candidates)]
        print()
        print("| inputs of a router retrained here | cross-validated AUC (5 folds by problem, 5 shuffles) | range |")
        print("|---|---|---|")
        for name, inputs in sets.items():
            mean, lo, hi = cross_validated_auc(inputs, ys, groups)
            print(f"| {name} | {mean:.3f} | {lo:.3f}–{hi:.3f} |")
    scored = [(s, y) for s, y, _ in rows if s.get("prm_score") is not None and s.get("target_prm_score") is not None]
    if scored:
        draft = [-s["prm_score"] for s, _ in scored]
        advantage = [s["target_prm_score"] - s["prm_score"] for s, _ in scored]
        sy = [y for _, y in scored]
        print()
        print(f"value head, {len(scored)} steps: 1 − draft step's score AUC {auc(draft, sy):.3f}; "
              f"target's minus draft's score AUC {auc(advantage, sy):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
