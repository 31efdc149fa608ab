#!/usr/bin/env python3
"""The table of scripts/bench-concurrency.sh: for each run type (and llama-server) and number of
problems in flight, problems per minute of wall-clock time, its ratio to one in flight, accuracy,
mean latency per problem, and how many answers and how many solution texts differ from the run with
one in flight.

    scripts/concurrency-table.py OUT_DIR
"""
import json
import os
import re
import sys


def load(run_dir):
    with open(os.path.join(run_dir, 'metrics.json')) as f:
        metrics = json.load(f)
    answers = {}
    with open(os.path.join(run_dir, 'results.jsonl')) as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                answers[r['idx']] = (r.get('pred'), ''.join(s['text'] for s in r['steps']))
    return metrics, answers


def main():
    out = sys.argv[1]
    runs = {}
    for name in sorted(os.listdir(out)):
        m = re.fullmatch(r'(.+)-c(\d+)', name)
        if m and os.path.isfile(os.path.join(out, name, 'metrics.json')):
            runs.setdefault(m.group(1), {})[int(m.group(2))] = load(os.path.join(out, name))
    print('| run | in flight | problems/min | vs 1 | accuracy | mean latency s '
          '| answers ≠ 1 in flight | texts ≠ 1 in flight |')
    print('|---|---|---|---|---|---|---|---|')
    for kind, by_width in runs.items():
        base = by_width.get(1)
        for width in sorted(by_width):
            metrics, answers = by_width[width]
            ppm = metrics['problems_per_minute']
            ratio = f"{ppm / base[0]['problems_per_minute']:.2f}" if base else '–'
            differ = texts = '–'
            if base:
                common = set(answers) & set(base[1])
                differ = f"{sum(answers[i][0] != base[1][i][0] for i in common)}/{len(common)}"
                texts = f"{sum(answers[i][1] != base[1][i][1] for i in common)}/{len(common)}"
            print(f"| {kind} | {width} | {ppm:.2f} | {ratio} | {100 * metrics['accuracy']:.0f}% "
                  f"({metrics['n']}) | {metrics['mean_latency_s']:.1f} | {differ} | {texts} |")


if __name__ == '__main__':
    main()
