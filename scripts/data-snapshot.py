#!/usr/bin/env python3
"""Carry a long data run across sessions and machines: save its text outputs into the repository
(gzip, hidden states stripped: they are large and can be read again from the text), or restore a
saved snapshot into a run directory so that the run resumes where it stopped.

    scripts/data-snapshot.py save RUN_DIR SNAPSHOT_DIR      # e.g. evidence/train/math500-generate
    scripts/data-snapshot.py restore SNAPSHOT_DIR RUN_DIR   # only into an empty or absent RUN_DIR

Saved: results.jsonl, steps.jsonl, labels.jsonl (without *_hidden* fields), metrics.json.
"""
import gzip
import json
import os
import shutil
import sys

FILES = ['results.jsonl', 'steps.jsonl', 'labels.jsonl']


def save(run, snap):
    os.makedirs(snap, exist_ok=True)
    for name in FILES:
        src = os.path.join(run, name)
        if not os.path.exists(src):
            continue
        kept = 0
        with open(src) as f, gzip.open(os.path.join(snap, name + '.gz'), 'wt', compresslevel=9) as out:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    # A line cut short by a crash: the run drops it on resume too.
                    print(f'{src}:{n}: not JSON, left out', file=sys.stderr)
                    continue
                if name == 'labels.jsonl':
                    rec = {k: v for k, v in rec.items() if 'hidden' not in k}
                out.write(json.dumps(rec, ensure_ascii=False) + '\n')
                kept += 1
        print(f'{name}: {kept} lines → {snap}/{name}.gz')
    if os.path.exists(os.path.join(run, 'metrics.json')):
        shutil.copy(os.path.join(run, 'metrics.json'), os.path.join(snap, 'metrics.json'))


def restore(snap, run):
    if os.path.isdir(run) and os.listdir(run):
        sys.exit(f'data-snapshot: {run} is not empty; restore only into an empty or absent directory')
    os.makedirs(run, exist_ok=True)
    for name in FILES:
        src = os.path.join(snap, name + '.gz')
        if os.path.exists(src):
            with gzip.open(src, 'rt') as f, open(os.path.join(run, name), 'w') as out:
                shutil.copyfileobj(f, out)
            print(f'{src} → {run}/{name}')


if __name__ == '__main__':
    if len(sys.argv) != 4 or sys.argv[1] not in ('save', 'restore'):
        sys.exit(__doc__)
    (save if sys.argv[1] == 'save' else restore)(sys.argv[2], sys.argv[3])
