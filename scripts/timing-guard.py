#!/usr/bin/env python3
"""Keep a sweep's latencies honest on a machine that other work shares.

On 2 cores, llama.cpp's thread team slows 5-10x whenever anything else computes, so a problem
timed during a compile is meaningless. This guard samples CPU use every few seconds, pauses the
sweep's processes (SIGSTOP) while other processes use more than --pause-above % of a core, resumes
them (SIGCONT) after two quiet samples, and logs every sample with how many problems each point has
finished. `contended` then lists, from that log, the problems whose timing window (the samples
since the line any point wrote before the problem's own) saw a pause or other work, plus, unless
the sweep ran with --no-cache, those a later point may have replayed from the step cache (the cache
is per problem, so a replayed cost can only come from the same problem in an earlier point).
`retime` moves the listed rows out of their points' results.jsonl, keeping them and their places
in SWEEP_DIR/retimed-first-rows.jsonl, so that the sweep's own command runs just them again (under
a fresh guard); `contended --retime-log` then judges each moved row by its second timing and every
other row by its first, the first-pass logs still lined up with the rows as they were written.

    scripts/timing-guard.py watch SWEEP_DIR LOG.jsonl [--process arbitrage]
    scripts/timing-guard.py contended SWEEP_DIR LOG.jsonl[,LOG.jsonl...] POINT... [--no-cache] > LIST
    scripts/timing-guard.py retime SWEEP_DIR LIST
    scripts/timing-guard.py contended SWEEP_DIR LOGS POINT... --retime-log RETIME_LOG.jsonl

docs/sweeps.md, "Timing a report sweep", walks through it.
"""
import argparse
import glob
import json
import os
import signal
import sys
import time

RETIMED = 'retimed-first-rows.jsonl'


def busy_ticks():
    with open('/proc/stat') as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v) - v[3] - v[4]  # everything but idle and iowait


def process_ticks():
    out = {}
    for p in os.listdir('/proc'):
        if not p.isdigit():
            continue
        try:
            with open(f'/proc/{p}/stat') as f:
                s = f.read()
        except OSError:
            continue
        name = s[s.index('(') + 1:s.rindex(')')]
        fields = s[s.rindex(')') + 2:].split()
        # utime + stime, cutime + cstime (the time of its children that exited and were reaped),
        # and the parent's pid.
        out[int(p)] = (name, int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14]),
                       int(fields[1]))
    return out


def named(procs, prefix):
    return [pid for pid, (name, *_) in procs.items() if name.startswith(prefix)]


def own_ticks(prev, cur, ours, was_ours):
    """Ticks the sweep's processes used between two samples, exits and starts included.

    A process that started since the last sample spent all its ticks in the interval. One that
    exited took its last ticks with it, but its parent (the sweep) reaped it, so they show in the
    parent's children's time, which counts the child's whole life: the ticks counted for it at the
    earlier samples are taken off again. Left out, a point's start and the previous point's end
    counted as other work and paused the sweep for two samples at every point. The parent need
    not be one of ours (a script that starts `arbitrage run` after `arbitrage run`): the reaped
    time of every parent of our processes counts.

    Where a process and its parent both exited (the sweep's end), nothing shows the process's
    last ticks: they count as other work, and the second value, True, says the sample is the
    sweep's exit (taking its whole life off instead made the sample's own use hugely negative and
    its other work as large)."""
    own = sum(cur[p][1] - (prev[p][1] if p in prev else 0) for p in ours)
    reapers = set(ours) | {prev[p][3] for p in was_ours} | {cur[p][3] for p in ours}
    own += sum(cur[p][2] - prev[p][2] for p in reapers if p in prev and p in cur)
    gone = [p for p in was_ours if p not in cur]
    own -= sum(prev[p][1] for p in gone if prev[p][3] in cur)
    return own, any(prev[p][3] not in cur for p in gone)


def finished(sweep_dir):
    counts = {}
    for path in glob.glob(os.path.join(sweep_dir, '*', 'results.jsonl')):
        with open(path) as f:
            counts[os.path.basename(os.path.dirname(path))] = sum(1 for _ in f)
    return counts


def watch(args):
    hz = os.sysconf('SC_CLK_TCK')
    prev, busy_prev, t_prev = process_ticks(), busy_ticks(), time.time()
    paused, quiet = False, 0
    with open(args.log, 'a') as log:
        while True:
            time.sleep(args.every)
            cur, busy, t = process_ticks(), busy_ticks(), time.time()
            span = (t - t_prev) * hz / 100.0  # ticks per percent of a core
            ours, was_ours = named(cur, args.process), named(prev, args.process)
            own, exited = own_ticks(prev, cur, ours, was_ours)
            own /= span
            other = (busy - busy_prev) / span - own
            if not paused and other > args.pause_above and ours:
                for pid in ours:
                    os.kill(pid, signal.SIGSTOP)
                paused, quiet = True, 0
            elif paused:
                quiet = quiet + 1 if other < args.resume_below else 0
                if quiet >= 2:
                    for pid in ours:
                        os.kill(pid, signal.SIGCONT)
                    paused = False
            sample = {'t': round(t, 1), 'sweep_cpu': round(own), 'foreign_cpu': round(other),
                      'paused': paused, 'done': finished(args.sweep_dir)}
            if exited:
                sample['sweep_exited'] = True
            log.write(json.dumps(sample) + '\n')
            log.flush()
            prev, busy_prev, t_prev = cur, busy, t


def written(sample):
    # A count, not the dict: a point's results.jsonl appears (empty) when its run starts.
    return sum(sample['done'].values())


def timing_windows(samples, point):
    """For each row of `point`, the samples that saw it computed (None where the log did not).

    The sweep runs one problem at a time, so a row was computed during the last stretch of
    samples before it shows as written in which no point's count changed, plus the sample that
    shows it written (whose interval held the row's end). A stretch that spans two sessions' logs
    (the row's first attempt was stopped with its session) counts whole."""
    windows, seen = {}, samples[0]['done'].get(point, 0) if samples else 0
    for k in range(seen):
        windows[k] = None  # written before the log's first sample
    for end, sample in enumerate(samples):
        for k in range(seen, sample['done'].get(point, 0)):
            start = end - 1
            while start > 0 and written(samples[start - 1]) == written(samples[end - 1]):
                start -= 1
            windows[k] = samples[start:end + 1]
        seen = max(seen, sample['done'].get(point, 0))
    return windows


def read_rows(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def read_logs(paths):
    """The samples of comma-separated logs, oldest first."""
    return [sample for path in paths.split(',') for sample in read_rows(path)]


def clean(window, threshold):
    """Whether a row's samples saw neither a pause nor other work above `threshold`. The sweep's
    exit sample is left out: its other work is the exiting process's own last ticks (logs made
    before `sweep_exited` show it as a negative sweep_cpu)."""
    return window is not None and not any(
        s.get('paused') or (s['foreign_cpu'] > threshold
                            and not s.get('sweep_exited') and s['sweep_cpu'] >= 0)
        for s in window)


def retimed_rows(sweep_dir):
    """Each point's moved first rows, {point: {position in the first pass: row}}."""
    path = os.path.join(sweep_dir, RETIMED)
    moved = {}
    if os.path.exists(path):
        for entry in read_rows(path):
            moved.setdefault(entry['point'], {})[entry['position']] = entry['first_row']
    return moved


def first_pass_order(rows, moved):
    """The point's rows in the order the first pass wrote them: the rows that were not moved,
    with the moved first rows put back in their places."""
    moved_idx = {row['idx'] for row in moved.values()}
    kept = [row for row in rows if row['idx'] not in moved_idx]
    rest = iter(kept)
    return [moved[k] if k in moved else next(rest) for k in range(len(kept) + len(moved))]


def contended(args):
    samples = read_logs(args.log)
    retime_samples = read_logs(args.retime_log) if args.retime_log else None
    moved = retimed_rows(args.sweep_dir)
    if moved and retime_samples is None:
        sys.exit(f'timing-guard: {os.path.join(args.sweep_dir, RETIMED)} lists moved rows: '
                 'pass the re-time\'s guard log with --retime-log')
    earlier = set()
    for point in args.points:
        rows = read_rows(os.path.join(args.sweep_dir, point, 'results.jsonl'))
        first = first_pass_order(rows, moved.get(point, {}))
        windows = timing_windows(samples, point)
        # absent from windows: written after the log's last sample
        own = {row['idx'] for k, row in enumerate(first) if not clean(windows.get(k), args.threshold)}
        done = {row['idx'] for row in rows}
        if retime_samples is not None:
            again = {row['idx'] for row in moved.get(point, {}).values()}
            windows = timing_windows(retime_samples, point)
            own -= again
            own |= {row['idx'] for k, row in enumerate(rows)
                    if row['idx'] in again and not clean(windows.get(k), args.threshold)}
            own |= again - done  # moved, not run again yet
        print(point, ' '.join(str(i) for i in sorted(own | (earlier & done))))
        if not args.no_cache:
            earlier |= own


def retime(args):
    """Move the rows `contended` listed out of their points' results.jsonl, keeping them."""
    path = os.path.join(args.sweep_dir, RETIMED)
    if os.path.exists(path):
        sys.exit(f'timing-guard: {path} exists: the sweep was re-timed once already; a second '
                 're-time would lose the first pass\'s order (move the rows by hand)')
    listed = {}
    with open(args.list) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            point, *idx = line.split()
            try:
                listed[point] = {int(i) for i in idx}
            except ValueError:
                sys.exit(f'timing-guard: {args.list}:{n}: expected `point idx...`, got {line.strip()!r}')
    entries, rewrites = [], {}
    for point, idx in listed.items():
        results = os.path.join(args.sweep_dir, point, 'results.jsonl')
        if not os.path.exists(results):
            sys.exit(f'timing-guard: {args.list}: no point {point!r} in {args.sweep_dir}')
        rows = read_rows(results)
        missing = idx - {row['idx'] for row in rows}
        if missing:
            sys.exit(f'timing-guard: {args.list}: {point} has no row for problem(s) '
                     f'{" ".join(map(str, sorted(missing)))}')
        entries += [{'point': point, 'position': k, 'first_row': row}
                    for k, row in enumerate(rows) if row['idx'] in idx]
        rewrites[results] = [row for row in rows if row['idx'] not in idx]
    if not entries:
        print('nothing to move: every listed point\'s timing stands')
        return
    # The record of the moved rows first, so that an interrupted move leaves them on record.
    with open(path, 'w') as f:
        f.writelines(json.dumps(e) + '\n' for e in entries)
    for results, rows in rewrites.items():
        with open(results + '.tmp', 'w') as f:
            f.writelines(json.dumps(row) + '\n' for row in rows)
        os.replace(results + '.tmp', results)
    print(f'moved {len(entries)} rows to {path}; run the sweep\'s command again under a fresh guard, '
          'then `contended ... --retime-log` with its log')


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest='command', required=True)
    w = sub.add_parser('watch')
    w.add_argument('sweep_dir')
    w.add_argument('log')
    w.add_argument('--process', default='arbitrage', help='name prefix of the processes to pause')
    w.add_argument('--every', type=float, default=5.0)
    w.add_argument('--pause-above', type=float, default=40.0)
    w.add_argument('--resume-below', type=float, default=15.0)
    c = sub.add_parser('contended')
    c.add_argument('sweep_dir')
    c.add_argument('log', help="the guard's log; a sweep that spanned sessions: every session's, "
                   'comma-separated, oldest first')
    c.add_argument('points', nargs='+')
    c.add_argument('--no-cache', action='store_true',
                   help='the sweep ran without the step cache: no point replays another\'s costs')
    c.add_argument('--threshold', type=float, default=10.0,
                   help='percent of a core used by other work that marks a window contended')
    c.add_argument('--retime-log', help="the guard's log of the run that re-timed the rows "
                   '`retime` moved (comma-separated if several); each moved row is judged by it')
    r = sub.add_parser('retime')
    r.add_argument('sweep_dir')
    r.add_argument('list', help="contended's output: lines of `point idx...`")
    args = p.parse_args()
    {'watch': watch, 'contended': contended, 'retime': retime}[args.command](args)


if __name__ == '__main__':
    main()
