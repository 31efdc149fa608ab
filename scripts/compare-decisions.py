#!/usr/bin/env python3
"""Do two runs decide the same? Compares, problem by problem, what two `results.jsonl` files
decided: each step's author, text and rejected draft, the prediction and the verdict (timings
aside). Exit status 0 when identical, 1 otherwise, with the first differences printed.

    scripts/compare-decisions.py RUN_DIR_A RUN_DIR_B [RUN_DIR_A2 RUN_DIR_B2 ...]

For checking that a change of structure (not of behaviour) leaves a run's outputs alone, e.g. the
same smoke runs from the binary before and after a refactoring.
"""
import json
import sys
from pathlib import Path


def decisions(run_dir):
    out = {}
    for n, line in enumerate((Path(run_dir) / 'results.jsonl').read_text().splitlines(), 1):
        if not line.strip():
            continue
        r = json.loads(line)
        steps = [(s['model'], s['text'], s.get('rejected_draft_text')) for s in r['steps']]
        out[r['idx']] = {'pred': r['pred'], 'correct': r['correct'], 'steps': steps}
    return out


def main(args):
    if len(args) < 2 or len(args) % 2:
        sys.exit(__doc__)
    same = True
    for a, b in zip(args[0::2], args[1::2]):
        da, db = decisions(a), decisions(b)
        if da.keys() != db.keys():
            print(f'{a} vs {b}: problems differ: {sorted(da)} vs {sorted(db)}')
            same = False
            continue
        diff = [i for i in sorted(da) if da[i] != db[i]]
        steps = sum(len(d['steps']) for d in da.values())
        if diff:
            same = False
            i = diff[0]
            print(f'{a} vs {b}: {len(diff)} of {len(da)} problems differ; first, problem {i}:')
            print(f'  A: {json.dumps(da[i])[:600]}')
            print(f'  B: {json.dumps(db[i])[:600]}')
        else:
            print(f'{a} vs {b}: identical ({len(da)} problems, {steps} steps)')
    return 0 if same else 1


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
