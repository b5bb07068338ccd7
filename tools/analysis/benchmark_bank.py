"""Serving T prompt-tuned tasks: T separate models against one prompt bank.

A batch of ``--batch-size`` images, spread round-robin over T tasks (image j
goes to task j % T), is classified by each task's backbone and its own
``nn.Linear(D, 100)`` head, on a ViT with random weights, in three ways:

* ``separate``: every task its own full model (its own copy of the ViT), one
  forward per task, one after the other;
* ``bank-pad``: one :class:`~mmseg_ivpt.models.multitask.TaskMux` holding the
  T backbones on one shared ViT, the whole mixed batch in one pass through
  the blocks, sequences padded to the longest with a key mask;
* ``bank-group``: the same mux, one pass per distinct sequence length 1+N+M.

The tasks cycle through ``TASK_CYCLE`` (so N and the method differ between
tasks; T=1 is iVPT alone); their method tensors get N(0, 0.02) noise on top
of their init so that zero-initialised ones (AR) matter. Reported per
(T, configuration):

* images/s: the median over ``--iters`` rounds after ``--warmup``, all
  (T, configuration) pairs built in this process and run interleaved
  (``mmseg_ivpt.analysis.benchmark.interleaved_times``: the order rotated
  every round), so that the machine's drifts hit all alike (the range over
  the rounds is in the JSON);
* peak MB of the forward: each pair alone in a fresh child process
  (``peak_memory``), one warm-up forward, then the peak of one forward above
  what was resident before it (CUDA: ``max_memory_allocated``; CPU: the peak
  resident set, reset through ``/proc/self/clear_refs`` so that the build
  does not hide it; coarser); docs/benchmarks.md, "How it is measured";
* weights MB: the distinct tensors held (separate: each model's; bank: the
  shared ViT once plus every task's own tensors and head, by
  ``tensor_bytes``), and what one more task costs (separate: a whole model;
  bank: its backbone's own tensors and its head).

Before timing, a small check per T (one image per task, float32): the
logits of both bank modes equal the separate models' (max abs diff,
tolerance 1e-4). Everything runs under ``torch.inference_mode()``, models in
eval. Needs only torch (runs on the GPU machine without mm packages)::

    python tools/analysis/benchmark_bank.py --device cpu --batch-size 16 \
        --warmup 1 --iters 5 --out bank_cpu.json
    python tools/analysis/benchmark_bank.py --device cuda --amp bf16 \
        --batch-size 64 --tasks 1 4 16 64 --out bank_cuda.json
"""
import argparse
import gc
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
from tools._venv import ensure  # noqa: E402

ensure('torch')  # only: no .venv needed where python has it

CONFIGS = ('separate', 'bank-pad', 'bank-group')
NUM_CLASSES = 100
TOL = 1e-4


def _vpt(n, structure='deep'):
    return (f'vpt_{structure}{n}', 'PromptedViT',
            dict(num_prompts=n, prompt_structure=structure))


# The mix of tasks, cycled: task i is TASK_CYCLE[i % 9]. iVPT (CDC + DA + AR,
# N = k = 10) first; VPT-deep at the per-task prompt lengths VPT chose on
# VTAB (N in 1, 5, 10, 50, 100, 200); VPT-shallow and GaPT at N = 100. The
# order mixes methods early: T = 4 already has four methods and three
# sequence lengths, T = 16 six lengths (198 to 397 tokens at 224/16).
TASK_CYCLE = [
    ('ivpt', 'PromptedViT', dict(num_prompts=10, prompt_structure='cdc',
                                 dynamic_aggregation=True, ar_tokens=10)),
    _vpt(50), ('gapt100', 'GatedViT', dict(num_prompts=100)),
    _vpt(100, 'shallow'), _vpt(1), _vpt(200), _vpt(5), _vpt(100), _vpt(10),
]


class Builder:
    """Builds, on the device, the tasks' models: the separate ones once (the
    first T serve T tasks) and one mux per T, from the same seeds, so a
    task's prompts and head are the same in every configuration."""

    def __init__(self, args):
        import torch

        from mmseg_ivpt.models import GatedViT, PromptedViT, ViTEncoder
        from mmseg_ivpt.models.multitask import TaskMux, tensor_bytes
        self.torch, self.TaskMux, self.nbytes = torch, TaskMux, tensor_bytes
        self.classes = dict(PromptedViT=PromptedViT, GatedViT=GatedViT)
        self.ViTEncoder = ViTEncoder
        self.dev = torch.device(args.device)
        self.common = dict(arch=args.arch, img_size=args.img_size,
                           patch_size=args.patch_size)
        torch.manual_seed(0)
        with self.dev:
            self.enc = ViTEncoder(**self.common).eval()  # the shared ViT
        self.separate, self.banks = [], {}

    def task(self, i):
        """(name, backbone, head) of task i. The random init of the ViT it
        is built with is skipped (its weights are overwritten by the shared
        ViT's, or dropped by the mux; on CPU that init is most of the build
        time); the method's tensors keep theirs."""
        torch, nn = self.torch, self.torch.nn
        label, cls, kw = TASK_CYCLE[i % len(TASK_CYCLE)]
        torch.manual_seed(1000 + i)
        skip = [(self.ViTEncoder, '_init_encoder_weights'),
                (nn.Linear, 'reset_parameters'),
                (nn.Conv2d, 'reset_parameters')]
        saved = [getattr(c, n) for c, n in skip]
        try:
            for c, n in skip:
                setattr(c, n, lambda self: None)
            with self.dev:
                bb = self.classes[cls](out_type='cls_token', **self.common,
                                       **kw)
        finally:
            for (c, n), f in zip(skip, saved):
                setattr(c, n, f)
        with self.dev:
            head = nn.Linear(bb.embed_dims, NUM_CLASSES)
        with torch.no_grad():
            for n in bb.method_param_names:
                p = getattr(bb, n)
                if p is not None:
                    p.add_(torch.randn_like(p), alpha=0.02)
        return f'{i:02d}-{label}', bb.eval(), head.eval()

    def tasks(self, T, config):
        """[(name, backbone, head)] of the T tasks and the mux (or None)."""
        if config == 'separate':
            while len(self.separate) < T:
                name, bb, head = self.task(len(self.separate))
                own = bb.state_dict()
                with self.torch.no_grad():  # its own copy of the shared ViT
                    for k, v in self.enc.state_dict().items():
                        own[k].copy_(v)
                self.separate.append((name, bb, head))
            return self.separate[:T], None
        if T not in self.banks:
            mux, heads = self.TaskMux(self.enc), []
            for i in range(T):
                name, bb, head = self.task(i)
                mux.add(name, bb)  # its own ViT is dropped here
                heads.append((name, bb, head))
            self.banks[T] = heads, mux.eval()
            gc.collect()
        return self.banks[T]

    def weights(self, T, config):
        """(resident bytes of the weights, bytes of each task)."""
        tasks, mux = self.tasks(T, config)
        per = []
        for name, bb, head in tasks:
            own = (list(bb.parameters()) + list(bb.buffers())
                   if mux is None else mux.task_tensors(name))
            per.append(self.nbytes(own + list(head.parameters())))
        shared = 0 if mux is None else self.nbytes(mux.shared_tensors())
        return shared + sum(per), per

    def forward(self, T, config):
        """f(parts) -> the logits of each task on its images parts[t]."""
        tasks, mux = self.tasks(T, config)
        if mux is None:
            return lambda parts: [h(bb(p)[-1])
                                  for (_, bb, h), p in zip(tasks, parts)]
        mode = config.split('-')[1]

        def fwd(parts):
            outs = mux([(n, p) for (n, _, _), p in zip(tasks, parts)],
                       mode=mode)
            return [h(o[-1]) for (_, _, h), o in zip(tasks, outs)]
        return fwd


def split(x, T):
    """Round-robin: image j to task j % T; the images of each task that gets
    any."""
    return [x[t::T].contiguous() for t in range(min(T, x.shape[0]))]


def make_step(b, T, config, x, args):
    torch = b.torch
    fwd, parts = b.forward(T, config), split(x, T)
    amp = dict(bf16=torch.bfloat16, fp16=torch.float16).get(args.amp)

    def step():
        with torch.inference_mode(), torch.autocast(
                b.dev.type, dtype=amp, enabled=amp is not None):
            return fwd(parts)
    return step


def images(b, n, args):
    return b.torch.randn(n, 3, args.img_size, args.img_size, device=b.dev)


def memory_step(args, T, config):
    """``peak_memory``'s child: the forward of (T, config) alone, and the
    weights it holds."""
    b = Builder(args)
    step = make_step(b, T, config, images(b, args.batch_size, args), args)
    weights, per_task = b.weights(T, config)
    return step, dict(weight_bytes=weights, task_bytes=per_task)


def check_and_time(args):
    """Every (T, configuration) in this process: the check, then the
    interleaved timing."""
    from mmseg_ivpt.analysis.benchmark import interleaved_times
    b = Builder(args)
    torch = b.torch
    check, steps = {}, {}
    for T in args.tasks:
        tasks, _ = b.tasks(T, 'bank-pad')
        lengths = [1 + bb.num_prompt_tokens + bb.num_patches
                   for _, bb, _ in tasks]
        used = [(len(range(t, args.batch_size, T)), n)  # (images, length)
                for t, n in enumerate(lengths) if t < args.batch_size]
        x = images(b, T, args)  # one image per task, float32
        with torch.inference_mode():
            want = b.forward(T, 'separate')(split(x, T))
            diff = {c: max((g - w).abs().max().item() for g, w in zip(
                b.forward(T, c)(split(x, T)), want)) for c in CONFIGS[1:]}
        check[T] = dict(max_abs_diff=diff, ok=max(diff.values()) <= TOL,
                        tasks=[n for n, _, _ in tasks],
                        lengths=sorted({n for _, n in used}),
                        pad_real=sum(r * n for r, n in used) /
                        (args.batch_size * max(n for _, n in used)))
        x = images(b, args.batch_size, args)
        for c in CONFIGS:
            steps[(T, c)] = make_step(b, T, c, x, args)
    times = interleaved_times(steps, args.warmup, args.iters, b.dev)
    return check, times


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--device', default='cpu')
    p.add_argument('--arch', default='b')
    p.add_argument('--img-size', type=int, default=224)
    p.add_argument('--patch-size', type=int, default=16)
    p.add_argument('--batch-size', type=int, default=16)
    p.add_argument('--tasks', type=int, nargs='+', default=[1, 4, 16])
    p.add_argument('--amp', choices=['none', 'bf16', 'fp16'], default='none')
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--iters', type=int, default=10,
                   help='timed rounds (every T and configuration each)')
    p.add_argument('--threads', type=int, default=0,
                   help='torch CPU threads (0: torch default)')
    p.add_argument('--no-memory', action='store_true',
                   help='skip the memory children')
    p.add_argument('--out', help='write the results as JSON here')
    args = p.parse_args()
    import torch

    from mmseg_ivpt.analysis.benchmark import device_name, peak_memory, summary
    if args.threads:
        torch.set_num_threads(args.threads)

    def memory(T, c):
        peak = peak_memory(memory_step, args, T, c, device=args.device)
        return dict(mem_mb=peak.mib, **peak.info)

    t_start = time.time()
    keys = [(T, c) for T in args.tasks for c in CONFIGS]
    res = {k: {} if args.no_memory else memory(*k) for k in keys}
    check, times = check_and_time(args)
    for (T, c), r in res.items():
        t = summary(times[(T, c)])
        r.update(T=T, config=c, img_s=args.batch_size / t['median'],
                 img_s_range=[args.batch_size / t['max'],
                              args.batch_size / t['min']],
                 times_s=times[(T, c)])
    dev = device_name(args.device)
    print(f'# {args.arch.upper()}/{args.patch_size} at {args.img_size}, '
          f'batch {args.batch_size} round-robin over T tasks, '
          f'amp={args.amp}, device={dev}, torch {torch.__version__}, '
          f'{args.iters} rounds after {args.warmup}')
    ok = all(c['ok'] for c in check.values())
    for T, c in check.items():
        d = c['max_abs_diff']
        print(f"- T={T}: logits vs separate, max abs diff pad "
              f"{d['bank-pad']:.1e}, group {d['bank-group']:.1e} "
              f"({'ok' if c['ok'] else 'MISMATCH'}, tol {TOL}); "
              f"timed batch: lengths {c['lengths']} -> "
              f"{len(c['lengths'])} group pass(es); pad: "
              f"{100 * c['pad_real']:.0f}% of the padded tokens are real")
    print('\n| T | config | img/s (range) | vs separate | peak MB | '
          'weights MB | MB per added task |')
    print('|---:|---|---:|---:|---:|---:|---:|')
    mb = lambda n: f'{n / 2**20:.1f}' if n else '-'  # noqa: E731
    for T, c in keys:
        r, ref = res[(T, c)], res[(T, 'separate')]
        lo, hi = r['img_s_range']
        per = r.get('task_bytes') or [0]
        mem = f"{r['mem_mb']:.0f}" if 'mem_mb' in r else '-'
        print(f"| {T} | {c} | {r['img_s']:.2f} ({lo:.2f}-{hi:.2f}) | "
              f"{r['img_s'] / ref['img_s']:.2f}x | {mem} | "
              f"{mb(r.get('weight_bytes', 0))} | {mb(sum(per) / len(per))} |")
    if not args.no_memory:
        T = max(args.tasks)
        per = res[(T, 'bank-pad')]['task_bytes']
        print(f'\nPer task in the bank (T={T}): ' + ', '.join(
            f'{n} {b / 1024:.0f} KB' for n, b in zip(check[T]['tasks'], per)))
    print(f'\nwall time {time.time() - t_start:.0f} s')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(args=vars(args), device=dev,
                           torch=torch.__version__, check=check,
                           results=list(res.values())), f, indent=1)
    if not ok:
        sys.exit('the bank does not give the separate models\' logits')


if __name__ == '__main__':
    main()
