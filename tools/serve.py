"""Serve a prompt bank over HTTP on Ray Serve (docs/serving.md).

    python tools/serve.py BANK.yaml [--host 127.0.0.1] [--port 8000] \
        [--replicas 1] [--max-batch-size 16] [--batch-wait-ms 10] \
        [--device cpu|cuda] [--address RAY_ADDRESS] [--task-root DIR] \
        [--demo]

BANK.yaml is the file of tools/multitask_infer.py (docs/bank.md). Without
--address a local Ray starts in this process (no other service to run);
with it the application joins that Ray cluster. Requests of any tasks that
arrive within --batch-wait-ms go through the bank's one shared ViT as one
batch of up to --max-batch-size images. POST /v1/tasks and DELETE
/v1/tasks/NAME need ``Authorization: Bearer $IVPT_SERVE_TOKEN`` (the
variable --token-env names) and are off without it; added tasks' files
must be under --task-root. Prints the URL; Ctrl-C or SIGTERM stops it.
--demo first writes a bank of tiny random tasks at BANK.yaml if there is
none (mmseg_ivpt/serving/demo.py).
"""
import argparse
import os
import os.path as osp
import signal
import sys
import threading

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from tools._venv import ensure  # noqa: E402

ensure('torch', 'mmengine', 'ray', 'fastapi')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('bank', help='the bank YAML file (docs/bank.md)')
    p.add_argument('--demo', action='store_true',
                   help='if BANK does not exist, first write there a bank '
                   'of three tiny random tasks (to try the service)')
    p.add_argument('--host', default='127.0.0.1',
                   help='address to listen on (0.0.0.0: every interface; '
                   'see docs/serving.md, "Security")')
    p.add_argument('--port', type=int, default=8000)
    p.add_argument('--replicas', type=int, default=1,
                   help='copies of the bank, each in its own process')
    p.add_argument('--max-batch-size', type=int, default=16,
                   help='images per call of the bank (1: no batching)')
    p.add_argument('--batch-wait-ms', type=float, default=10.0,
                   help='how long a batch waits to fill')
    p.add_argument('--device', help='overrides the bank file (cpu, cuda)')
    p.add_argument('--mode', choices=('pad', 'group'),
                   help='overrides the bank file; see docs/bank.md')
    p.add_argument('--address', help='join this Ray cluster (e.g. '
                   'HEAD:6379 or auto) instead of starting a local Ray')
    p.add_argument('--num-cpus', type=int,
                   help='CPUs of the local Ray (default: replicas + 1)')
    p.add_argument('--replica-cpus', type=float, default=1.0,
                   help='CPUs Ray reserves for each replica')
    p.add_argument('--max-upload-mb', type=float, default=16.0,
                   help='largest image file accepted')
    p.add_argument('--max-pixels', type=int, default=4096 * 4096,
                   help='largest width x height accepted')
    p.add_argument('--token-env', default='IVPT_SERVE_TOKEN',
                   help='environment variable holding the bearer token of '
                   'POST/DELETE /v1/tasks (unset: those are off)')
    p.add_argument('--task-root', help='folder the files of tasks added '
                   'over HTTP must be under (unset: adding is off)')
    args = p.parse_args(argv)
    if not osp.isfile(args.bank) and not args.demo:
        p.error(f'bank {args.bank}: no such file (--demo writes one)')
    checks = [('--port', args.port, 1 <= args.port <= 65535, '1..65535'),
              ('--replicas', args.replicas, args.replicas >= 1, '>= 1'),
              ('--max-batch-size', args.max_batch_size,
               args.max_batch_size >= 1, '>= 1'),
              ('--batch-wait-ms', args.batch_wait_ms,
               args.batch_wait_ms >= 0, '>= 0'),
              ('--replica-cpus', args.replica_cpus, args.replica_cpus >= 0,
               '>= 0'),
              ('--max-upload-mb', args.max_upload_mb,
               args.max_upload_mb > 0, '> 0'),
              ('--max-pixels', args.max_pixels, args.max_pixels > 0, '> 0')]
    for name, value, good, allowed in checks:
        if not good:
            p.error(f'{name} {value}: allowed {allowed}')
    if args.num_cpus is not None and args.num_cpus < 1:
        p.error(f'--num-cpus {args.num_cpus}: allowed >= 1')
    if args.task_root and not osp.isdir(args.task_root):
        p.error(f'--task-root {args.task_root}: no such folder')
    return args


def bank_error(path: str):
    """The bank file's named error (None if the bank builds): the replicas
    build it themselves, this process only to report it in one line."""
    from mmseg_ivpt.apis.bank import PromptBank
    from mmseg_ivpt.models import CheckpointMismatchError
    try:
        PromptBank.from_yaml(path, device='cpu')
    except (ValueError, TypeError, FileNotFoundError, OSError,
            CheckpointMismatchError) as e:
        return f'{path}: {e}'
    return None


def main(argv=None):
    args = parse_args(argv)
    if args.demo and not osp.isfile(args.bank):
        from mmseg_ivpt.serving.demo import write_demo_bank
        write_demo_bank(args.bank)
        print(f'wrote a bank of random tasks: {args.bank}', flush=True)
    from mmseg_ivpt.apis.bank import read_bank_yaml
    try:  # its structure, before anything starts
        read_bank_yaml(args.bank)
    except (ValueError, TypeError, OSError) as e:
        sys.exit(f'error: {e}' if args.bank in str(e) else
                 f'error: {args.bank}: {e}')
    # the bank is built here to name its errors while Ray starts
    checked = {}
    check = threading.Thread(target=lambda: checked.update(
        error=bank_error(args.bank)), daemon=True)
    check.start()
    from mmseg_ivpt.serving.app import (
        ServeConfig,
        deploy,
        start_ray,
        stop,
        token_digest,
    )
    from mmseg_ivpt.serving.inputs import Limits
    config = ServeConfig(
        bank=osp.abspath(args.bank), device=args.device, mode=args.mode,
        max_batch_size=args.max_batch_size,
        batch_wait_s=args.batch_wait_ms / 1000,
        limits=Limits(int(args.max_upload_mb * 2**20), args.max_pixels),
        token_sha256=token_digest(os.environ.get(args.token_env)),
        task_root=osp.abspath(args.task_root) if args.task_root else None)
    done = threading.Event()

    def on_signal(*_):
        done.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    try:
        start_ray(args.host, args.port, args.address, args.num_cpus or max(
            2, int(args.replicas * args.replica_cpus) + 1))
        check.join()
        if checked.get('error', 'failed'):  # failed: a traceback above
            sys.exit(f'error: {checked.get("error", args.bank)}')
        deploy(config, args.replicas, args.replica_cpus)
        url = f'http://{args.host}:{args.port}'
        for sig in (signal.SIGINT, signal.SIGTERM):  # Ray may set its own
            signal.signal(sig, on_signal)
        print(f'serving {args.bank} at {url} (tasks: GET {url}/v1/tasks; '
              f'adding tasks: {"on" if config.token_sha256 else "off"})',
              flush=True)
        done.wait()
    finally:
        print('stopping', flush=True)
        stop(joined=bool(args.address))


if __name__ == '__main__':
    main()
