#!/usr/bin/env python3
"""Pack a finished sweep's outputs as evidence: what its tables are made from, nothing else.

    scripts/evidence-pack.py SWEEP_DIR evidence/sweeps/NAME.tar.gz --command "arbitrage sweep ..."

The archive holds SWEEP_DIR under its own name: sweep.csv, report.md, every point's
results.jsonl and metrics.json, cost tables (*.json beside sweep.csv, e.g. from
`arbitrage bench --costs`), *.txt, *.log and *.jsonl files beside it (the timing guard's logs
and retimed-first-rows.jsonl), and command.txt with the command given. Left out: step caches,
plots, report.html, steps.jsonl (training records, not figures).
A table in the docs is then fenced with <!-- recompute: ARCHIVE NAME --> (scripts/check-results.py).

A sweep too long for one machine's session is carried to the next in the same form:

    scripts/evidence-pack.py SWEEP_DIR evidence/in-progress/NAME.tar.gz --unfinished --command "..."
    tar xzf evidence/in-progress/NAME.tar.gz -C runs      # on the next machine, then the same command

`--unfinished` packs a sweep that has no sweep.csv yet: every point's results.jsonl is what the
sweep resumes from (a point's metrics.json is rewritten when it finishes).
"""
import argparse
import sys
import tarfile
import tempfile
from pathlib import Path


def members(sweep: Path):
    yield from (p for p in sorted(sweep.iterdir()) if p.is_file() and p.suffix in (".csv", ".md", ".json", ".jsonl", ".txt", ".log"))
    for point in sorted(p for p in sweep.iterdir() if p.is_dir()):
        for name in ("results.jsonl", "metrics.json"):
            if (point / name).is_file():
                yield point / name


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sweep", type=Path)
    ap.add_argument("archive", type=Path)
    ap.add_argument("--command", required=True, help="the command that made the sweep (command.txt)")
    ap.add_argument("--unfinished", action="store_true", help="pack a sweep still running, to resume it elsewhere")
    args = ap.parse_args()
    sweep = args.sweep.resolve()
    if not sweep.is_dir():
        print(f"{args.sweep}: no such folder", file=sys.stderr)
        return 2
    if not args.unfinished and not (sweep / "sweep.csv").is_file():
        print(f"{args.sweep}: no sweep.csv (not a finished sweep; --unfinished packs one to resume)", file=sys.stderr)
        return 2
    if not args.archive.name.endswith(".tar.gz"):
        print(f"{args.archive}: the archive's name must end in .tar.gz", file=sys.stderr)
        return 2
    args.archive.parent.mkdir(parents=True, exist_ok=True)
    files = list(members(sweep))
    with tempfile.TemporaryDirectory() as tmp:
        command = Path(tmp) / "command.txt"
        command.write_text(args.command.strip() + "\n")
        with tarfile.open(args.archive, "w:gz") as tar:
            for f in files:
                tar.add(f, arcname=f"{sweep.name}/{f.relative_to(sweep)}")
            tar.add(command, arcname=f"{sweep.name}/command.txt")
    points = len({f.parent for f in files if f.parent != sweep})
    size = args.archive.stat().st_size
    print(f"{args.archive}: {len(files) + 1} files, {points} points, {size / 1024:.0f} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
