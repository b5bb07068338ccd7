"""The HTTP service with batching on and off: throughput and latency under
a bounded load on loopback (docs/serving.md, docs/benchmarks.md).

One local Ray runs the same bank twice, as two Serve applications on one
port: ``on`` (``--max-batch-size``, ``--batch-wait-ms``) under ``/on`` and
``off`` (max batch size 1) under ``/off``, one replica each. For each
round, each concurrency C of ``--concurrency`` and each application (their
order rotated every round, so that the machine's drifts hit both alike),
C client threads send ``--requests`` POST /v1/predict requests in all
(multipart, the bank's tasks in turn, random ``--size`` images), each
waiting for its answer before sending the next. Reported per (C,
application): requests/s (all requests of all rounds over their wall
time) and the p50 / p99 latency seen by the client. Every answer must be
200. Without ``--bank`` a bank of three tiny random tasks is written to a
temporary folder (``mmseg_ivpt/serving/demo.py``).

    python tools/analysis/benchmark_serve.py --requests 96 --rounds 2
    python tools/analysis/benchmark_serve.py --bank bank.yaml --device cuda \\
        --requests 1024 --rounds 3 --max-batch-size 32 --size 224
"""
import argparse
import io
import json
import os
import sys
import tempfile
import threading
import time
import urllib.request
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
from tools._venv import ensure  # noqa: E402

ensure('torch', 'mmengine', 'ray', 'fastapi')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--bank', help='bank YAML (default: tiny random tasks)')
    p.add_argument('--device', help='overrides the bank file')
    p.add_argument('--concurrency', type=int, nargs='+', default=[1, 8, 32])
    p.add_argument('--requests', type=int, default=96,
                   help='requests per (round, concurrency, application)')
    p.add_argument('--rounds', type=int, default=2)
    p.add_argument('--max-batch-size', type=int, default=16)
    p.add_argument('--batch-wait-ms', type=float, default=10.0)
    p.add_argument('--size', type=int, default=64, help='image side')
    p.add_argument('--port', type=int, default=8765)
    p.add_argument('--out', help='JSON of the results')
    args = p.parse_args(argv)
    for name in ('requests', 'rounds', 'max_batch_size', 'size'):
        if getattr(args, name) < 1:
            p.error(f'--{name.replace("_", "-")} must be >= 1')
    if min(args.concurrency) < 1:
        p.error('--concurrency values must be >= 1')
    if args.bank and not os.path.isfile(args.bank):
        p.error(f'--bank {args.bank}: no such file')
    return args


def bodies(tasks, size, n=8):
    """``n`` multipart bodies per task (random images)."""
    import numpy as np
    from PIL import Image
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        for t in tasks:
            buf = io.BytesIO()
            Image.fromarray(rng.integers(0, 256, (size, size, 3),
                                         np.uint8)).save(buf, format='PNG')
            b = uuid.uuid4().hex
            body = (f'--{b}\r\nContent-Disposition: form-data; name="task"'
                    f'\r\n\r\n{t}\r\n--{b}\r\nContent-Disposition: '
                    f'form-data; name="image"; filename="{i}.png"\r\n\r\n'
                    ).encode() + buf.getvalue() + f'\r\n--{b}--\r\n'.encode()
            out.append((body, f'multipart/form-data; boundary={b}'))
    return out


def load(url, reqs, concurrency):
    """Send ``reqs`` (body, content type) from ``concurrency`` threads;
    returns (wall seconds, latencies)."""
    lat, errors, lock = [], [], threading.Lock()
    nxt = iter(range(len(reqs)))

    def client():
        while True:
            with lock:
                i = next(nxt, None)
            if i is None:
                return
            body, ctype = reqs[i]
            t0 = time.perf_counter()
            req = urllib.request.Request(url, data=body,
                                         headers={'Content-Type': ctype})
            try:
                with urllib.request.urlopen(req, timeout=300) as r:
                    r.read()
                    ok = r.status == 200
            except OSError as e:
                ok = False
                errors.append(str(e))
            dt = time.perf_counter() - t0
            with lock:
                lat.append(dt)
                if not ok and not errors:
                    errors.append('status')
    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    t0 = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t0
    if errors:
        raise SystemExit(f'error: {len(errors)} requests failed: '
                         f'{errors[0]}')
    return wall, lat


def main(argv=None):
    args = parse_args(argv)
    import numpy as np

    from mmseg_ivpt.apis.bank import read_bank_yaml
    from mmseg_ivpt.serving.app import ServeConfig, deploy, start_ray, stop
    tmp = None
    bank = args.bank
    if not bank:
        from mmseg_ivpt.serving.demo import write_demo_bank
        tmp = tempfile.TemporaryDirectory()
        bank = write_demo_bank(os.path.join(tmp.name, 'bank.yaml'))
    tasks = [t['name'] for t in read_bank_yaml(bank)['tasks']]
    base = f'http://127.0.0.1:{args.port}'
    apps = {'on': args.max_batch_size, 'off': 1}
    results = {(c, a): ([], 0.0) for c in args.concurrency for a in apps}
    reqs_all = bodies(tasks, args.size)
    reqs = [reqs_all[i % len(reqs_all)] for i in range(args.requests)]
    start_ray('127.0.0.1', args.port, num_cpus=2)
    try:
        for name, mbs in apps.items():
            deploy(ServeConfig(bank=os.path.abspath(bank),
                               device=args.device, max_batch_size=mbs,
                               batch_wait_s=args.batch_wait_ms / 1000),
                   name=name, route_prefix=f'/{name}')
        for name in apps:  # warm-up: every task once
            load(f'{base}/{name}/v1/predict', reqs_all[:len(tasks)], 1)
        order = list(apps)
        for r in range(args.rounds):
            for c in args.concurrency:
                for name in order:
                    wall, lat = load(f'{base}/{name}/v1/predict', reqs, c)
                    prev, w = results[c, name]
                    results[c, name] = (prev + lat, w + wall)
                order = order[1:] + order[:1]
    finally:
        stop()
        if tmp:
            tmp.cleanup()
    rows = []
    print('| concurrency | batching | requests/s | p50 ms | p99 ms |\n'
          '|---|---|---|---|---|')
    for c in args.concurrency:
        for name in apps:
            lat, wall = results[c, name]
            row = dict(concurrency=c, batching=name,
                       max_batch_size=apps[name], requests=len(lat),
                       rps=len(lat) / wall,
                       p50_ms=1000 * float(np.percentile(lat, 50)),
                       p99_ms=1000 * float(np.percentile(lat, 99)))
            rows.append(row)
            print(f'| {c} | {name} (max {apps[name]}) | {row["rps"]:.1f} | '
                  f'{row["p50_ms"]:.0f} | {row["p99_ms"]:.0f} |')
    if args.out:
        with open(args.out + '.tmp', 'w') as f:
            json.dump(dict(args=vars(args), tasks=tasks, rows=rows), f,
                      indent=1)
        os.replace(args.out + '.tmp', args.out)


if __name__ == '__main__':
    main()
