"""Training-step cost of the prompt methods against timm's ViT.

Measures, in one run, the forward+backward time and the peak memory of one
training step (frozen encoder, gradients to the method's parameters) of:

* ``timm``: timm's ``VisionTransformer`` with N register tokens, so it sees
  the same number of tokens (1 + N + M) as the prompted models; only the
  register tokens train;
* ``vpt_shallow``, ``vpt_deep``, ``cdc``, ``cdc_da``, ``cdc_da_ar`` (iVPT)
  from :class:`PromptedViT`, and ``gapt`` from :class:`GatedViT`;

and prints the ratios the targets are stated in (iVPT vs VPT-deep, VPT-deep
vs timm). Times come from one child process that builds every method and
runs their steps interleaved round-robin (the median step of each), so that
the machine's drifts hit all methods alike; the peak memory of each method is
measured alone in a child process of its own.

Needs only torch and timm (runs on the GPU machine without mm packages)::

    python tools/analysis/benchmark_backbone.py --device cpu --batch-size 8
    python tools/analysis/benchmark_backbone.py --device cuda --amp bf16 \
        --batch-size 64

Memory: CUDA peak allocated bytes above the model's own; on CPU the growth of
the process's peak resident set during the steps (coarser).
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

METHODS = ('timm', 'vpt_shallow', 'vpt_deep', 'cdc', 'cdc_da', 'cdc_da_ar',
           'gapt')


def build(name, args):
    import timm
    sys.path.insert(0, ROOT)
    from mmseg_ivpt.models import ARCH_SETTINGS, GatedViT, PromptedViT
    a = ARCH_SETTINGS[args.arch]
    common = dict(arch=args.arch, img_size=args.img_size,
                  patch_size=args.patch_size, out_type='cls_token')
    n = args.num_prompts
    if name == 'timm':
        m = timm.models.VisionTransformer(
            img_size=args.img_size, patch_size=args.patch_size,
            embed_dim=a['embed_dims'], depth=a['num_layers'],
            num_heads=a['num_heads'],
            mlp_ratio=a['feedforward_channels'] / a['embed_dims'],
            reg_tokens=n, num_classes=0)
        for p_name, p in m.named_parameters():
            p.requires_grad_(p_name == 'reg_token')
        m.eval()
        return m, lambda x: m.forward_features(x)[:, 0]
    if name == 'gapt':
        m = GatedViT(num_prompts=n, prompt_dropout=0., **common)
    else:
        kw = dict(
            vpt_shallow=dict(prompt_structure='shallow'),
            vpt_deep=dict(prompt_structure='deep'),
            cdc=dict(prompt_structure='cdc'),
            cdc_da=dict(prompt_structure='cdc', dynamic_aggregation=True),
            cdc_da_ar=dict(prompt_structure='cdc', dynamic_aggregation=True,
                           ar_tokens=args.ar_tokens))[name]
        m = PromptedViT(num_prompts=n, **kw, **common)
    m.train()
    return m, lambda x: m(x)[-1]


def make_step(name, args):
    """Build method ``name`` and return (step function, trainable count)."""
    import torch
    torch.manual_seed(0)
    dev = torch.device(args.device)
    model, fwd = build(name, args)
    model.to(dev)
    params = [p for p in model.parameters() if p.requires_grad]
    x = torch.randn(args.batch_size, 3, args.img_size, args.img_size,
                    device=dev)
    amp = dict(bf16=torch.bfloat16, fp16=torch.float16).get(args.amp)

    def step():
        with torch.autocast(dev.type, dtype=amp, enabled=amp is not None):
            loss = fwd(x).float().square().mean()
        loss.backward()
        for p in params:
            p.grad = None
        if dev.type == 'cuda':
            torch.cuda.synchronize()

    return step, sum(p.numel() for p in params)


def child_memory(args):
    """Peak memory of one method's step, alone in this process."""
    import torch
    cuda = args.device.startswith('cuda')
    step, n = make_step(args.method, args)
    if cuda:
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(2):
        step()
    if cuda:
        mem = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        mem = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss -
               rss0) / 1024
    print(json.dumps(dict(method=args.method, mem_mb=mem, trainable=n)))


def child_timing(args):
    """All methods in one process, steps interleaved round-robin (the order
    rotating every round), so that drifts of the machine hit every method
    alike; the median step per method."""
    steps = {name: make_step(name, args)[0] for name in args.methods}
    for step in steps.values():
        for _ in range(args.warmup):
            step()
    times = {name: [] for name in steps}
    names = list(steps)
    for r in range(args.iters):
        for name in names[r % len(names):] + names[:r % len(names)]:
            t0 = time.perf_counter()
            steps[name]()
            times[name].append(time.perf_counter() - t0)
    print(json.dumps({name: 1e3 * statistics.median(t)
                      for name, t in times.items()}))


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--device', default='cpu')
    p.add_argument('--arch', default='b')
    p.add_argument('--img-size', type=int, default=224)
    p.add_argument('--patch-size', type=int, default=16)
    p.add_argument('--batch-size', type=int, default=8)
    p.add_argument('--num-prompts', type=int, default=10)
    p.add_argument('--ar-tokens', type=int, default=10)
    p.add_argument('--amp', choices=['none', 'bf16', 'fp16'], default='none')
    p.add_argument('--warmup', type=int, default=3)
    p.add_argument('--iters', type=int, default=10,
                   help='timed steps per method (interleaved)')
    p.add_argument('--methods', nargs='+', default=list(METHODS),
                   choices=METHODS)
    p.add_argument('--threads', type=int, default=0,
                   help='torch CPU threads (0: torch default)')
    p.add_argument('--out', help='write the results as JSON here')
    p.add_argument('--method', help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    if args.method == 'timing':
        return child_timing(args)
    if args.method:
        return child_memory(args)

    def spawn(method):
        cmd = [sys.executable, os.path.abspath(__file__), '--method',
               method] + sys.argv[1:]
        out = subprocess.run(cmd, check=True, capture_output=True,
                             text=True).stdout.strip().splitlines()[-1]
        return json.loads(out)

    best = {name: spawn(name) for name in args.methods}
    for name, ms in spawn('timing').items():
        best[name]['ms'] = ms
    import torch
    dev = args.device
    if dev.startswith('cuda'):
        dev = torch.cuda.get_device_name()
    print(f'# {args.arch.upper()}/{args.patch_size} at {args.img_size}, '
          f'batch {args.batch_size}, N={args.num_prompts}, '
          f'k={args.ar_tokens}, amp={args.amp}, device={dev}, '
          f'torch {torch.__version__}')
    print('| method | trainable | fwd+bwd ms | peak MB | time vs vpt_deep |'
          ' time vs timm |')
    print('|---|---:|---:|---:|---:|---:|')
    for name in args.methods:
        r = best[name]
        rel = lambda ref: (f"{r['ms'] / best[ref]['ms']:.3f}"  # noqa: E731
                           if ref in best else '-')
        print(f"| {name} | {r['trainable']:,} | {r['ms']:.1f} | "
              f"{r['mem_mb']:.0f} | {rel('vpt_deep')} | {rel('timm')} |")
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(args=vars(args), device=dev, results=best), f,
                      indent=1)


if __name__ == '__main__':
    main()
