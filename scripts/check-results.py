#!/usr/bin/env python3
"""Recompute every table in the docs that is made from committed run outputs, and check it.

A table made from a sweep's outputs sits in a Markdown file between two comments:

    <!-- recompute: ARCHIVE SWEEP_DIR [REPORT_OPTION...] -->
    ...what `arbitrage report` wrote to SWEEP_DIR/report.md...
    <!-- /recompute -->

ARCHIVE is a folder or a .tar.gz under evidence/ (relative to the repository root); SWEEP_DIR
is the sweep's folder inside it. The script unpacks ARCHIVE into a temporary folder, runs
`arbitrage report --recompute SWEEP_DIR [REPORT_OPTION...]` there (every point's figures rebuilt
from its results.jsonl, not read from sweep.csv or metrics.json; paths in the options are
relative to the unpacked archive, e.g. `--costs run/costs-1.json`), and compares its report.md
with the block. Exit 1 if any block differs (a unified diff says where), 2 on bad input.

    scripts/check-results.py                      # docs/results.md, target/release/arbitrage
    scripts/check-results.py --write docs/engine.md  # rewrite the blocks from the evidence
"""
import argparse
import difflib
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"^<!-- recompute: (?P<spec>.+?) -->\n(?P<body>.*?)^<!-- /recompute -->$", re.M | re.S)


class BadInput(Exception):
    pass


def unpack(archive: Path, into: Path) -> None:
    if archive.is_dir():
        shutil.copytree(archive, into, dirs_exist_ok=True)
    elif archive.name.endswith((".tar.gz", ".tgz")):
        with tarfile.open(archive) as tar:
            # Members must stay inside the folder (the "data" filter refuses absolute paths and
            # `..`); Pythons before 3.12 without it check the names themselves.
            if hasattr(tarfile, "data_filter"):
                tar.extractall(into, filter="data")
            else:
                for m in tar.getmembers():
                    if m.name.startswith("/") or ".." in Path(m.name).parts:
                        raise BadInput(f"{archive}: member {m.name} leaves the archive")
                tar.extractall(into)
    else:
        raise BadInput(f"{archive}: neither a folder nor a .tar.gz")


def recompute(binary: str, spec: str) -> str:
    words = shlex.split(spec)
    if len(words) < 2:
        raise BadInput(f"'{spec}': expected ARCHIVE SWEEP_DIR [REPORT_OPTION...]")
    archive, sweep, *options = words
    path = REPO / archive
    if not path.exists():
        raise BadInput(f"{archive} not found")
    with tempfile.TemporaryDirectory(prefix="check-results-") as tmp:
        unpack(path, Path(tmp))
        if not (Path(tmp) / sweep / "sweep.csv").is_file():
            raise BadInput(f"{archive} has no {sweep}/sweep.csv")
        cmd = [binary, "report", "--recompute", sweep, *options]
        done = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True)
        if done.returncode != 0:
            raise BadInput(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr}")
        # A sweep.csv that disagrees with its records is worth knowing, not a failure: the
        # table is made from the records.
        for line in done.stderr.splitlines():
            if "differs" in line:
                print(f"  note: {line}", file=sys.stderr)
        return (Path(tmp) / sweep / "report.md").read_text()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("docs", nargs="*", type=Path, default=[Path("docs/results.md")])
    ap.add_argument("--bin", default=str(REPO / "target/release/arbitrage"), help="the arbitrage binary")
    ap.add_argument("--write", action="store_true", help="rewrite the blocks instead of checking them")
    args = ap.parse_args()
    checked = differ = 0
    for doc in args.docs:
        if not doc.is_absolute() and not doc.exists():
            doc = REPO / doc
        text = doc.read_text()
        out, last = [], 0
        for m in BLOCK.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            try:
                fresh = recompute(args.bin, m.group("spec"))
            except BadInput as e:
                print(f"{doc}:{line}: {e}", file=sys.stderr)
                return 2
            checked += 1
            body = m.group("body")
            if body.strip() == fresh.strip():
                print(f"{doc}:{line}: {m.group('spec')}: matches")
            elif args.write:
                print(f"{doc}:{line}: {m.group('spec')}: rewritten")
            else:
                differ += 1
                print(f"{doc}:{line}: {m.group('spec')}: differs from the recomputed report", file=sys.stderr)
                sys.stderr.writelines(
                    difflib.unified_diff(
                        body.strip().splitlines(True),
                        fresh.strip().splitlines(True),
                        f"{doc} (line {line})",
                        "recomputed",
                    )
                )
                print(file=sys.stderr)
            out.append(text[last : m.start("body")])
            out.append(fresh.strip() + "\n" if args.write else body)
            last = m.end("body")
        out.append(text[last:])
        if args.write:
            doc.write_text("".join(out))
    if checked == 0:
        print("no <!-- recompute: ... --> blocks found", file=sys.stderr)
        return 2
    print(f"{checked} tables recomputed from committed outputs, {differ} differ")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
