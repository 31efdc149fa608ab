#!/usr/bin/env python3
"""`arbitrage serve` on the default embedded models under load: CLIENTS clients each send their
share of REQUESTS chat requests (GSM8K test questions START.., one at a time per client) to a server
started with `--concurrency WORKERS`, for each WORKERS given. Prints requests per minute and
p50/p99 latency per request. Standard library only.

    scripts/serve-load.py [--workers 1,4] [--clients 4] [--requests 12] [--start 50]
                          [--run-type target] [-- EXTRA SERVE ARGS]

Time it on a quiet machine: llama.cpp's thread team slows several-fold when anything else
computes on the same cores.
"""
import argparse
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def percentile(values, q):
    values = sorted(values)
    if not values:
        return float('nan')
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def post(url, body, timeout=900):
    req = urllib.request.Request(url, data=json.dumps(body).encode(),
                                 headers={'Content-Type': 'application/json'})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.load(resp)


def wait_healthy(base, proc, seconds=300):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f'serve-load: the server exited with {proc.returncode}')
        try:
            with urllib.request.urlopen(base + '/health', timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    sys.exit('serve-load: the server did not answer /health in time')


def load(args, workers, questions):
    port = args.port
    base = f'http://127.0.0.1:{port}'
    cmd = [os.path.join(ROOT, 'target/release/arbitrage'), 'serve', '--port', str(port),
           '--concurrency', str(workers), '--run-type', args.run_type] + args.extra
    log = open(os.path.join(args.out, f'serve-w{workers}.log'), 'w')
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_healthy(base, proc)
        latencies, failures = [], []
        lock = threading.Lock()
        share = [questions[i::args.clients] for i in range(args.clients)]

        def client(mine):
            for q in mine:
                t = time.perf_counter()
                try:
                    post(base + '/v1/chat/completions',
                         {'model': 'arbitrage', 'messages': [{'role': 'user', 'content': q}]})
                    with lock:
                        latencies.append(time.perf_counter() - t)
                except Exception as e:  # noqa: BLE001 — every failure is counted and shown
                    with lock:
                        failures.append(repr(e))

        started = time.perf_counter()
        threads = [threading.Thread(target=client, args=(m,)) for m in share]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - started
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    return {'workers': workers, 'clients': args.clients, 'requests': len(latencies),
            'failed': len(failures), 'wall_s': wall,
            'requests_per_min': 60 * len(latencies) / wall,
            'p50_s': percentile(latencies, 0.5), 'p99_s': percentile(latencies, 0.99),
            'failures': failures[:3]}


def main():
    argv = sys.argv[1:]
    extra = []
    if '--' in argv:
        extra = argv[argv.index('--') + 1:]
        argv = argv[:argv.index('--')]
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--workers', default='1,4')
    p.add_argument('--clients', type=int, default=4)
    p.add_argument('--requests', type=int, default=12)
    p.add_argument('--start', type=int, default=50)
    p.add_argument('--run-type', default='target')
    p.add_argument('--port', type=int, default=8197)
    p.add_argument('--out', default=os.path.join(ROOT, 'runs/serve-load'))
    args = p.parse_args(argv)
    args.extra = extra
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(ROOT, 'data/gsm8k/test.jsonl')) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    questions = [r['question'] for r in rows[args.start:args.start + args.requests]]
    print(f'machine: {os.cpu_count()} cores; load {os.getloadavg()[0]:.2f}; '
          f'{args.clients} clients, {len(questions)} requests, run type {args.run_type}')
    print('| workers | requests | failed | wall s | requests/min | p50 s | p99 s |')
    print('|---|---|---|---|---|---|---|')
    results = []
    for workers in [int(w) for w in args.workers.split(',')]:
        r = load(args, workers, questions)
        results.append(r)
        print(f"| {workers} | {r['requests']} | {r['failed']} | {r['wall_s']:.1f} | "
              f"{r['requests_per_min']:.2f} | {r['p50_s']:.1f} | {r['p99_s']:.1f} |", flush=True)
        for f in r['failures']:
            print(f'  failure: {f}')
    with open(os.path.join(args.out, 'serve-load.json'), 'w') as f:
        json.dump(results, f, indent=1)


if __name__ == '__main__':
    main()
