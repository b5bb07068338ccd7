"""Training-step cost of the prompt methods against timm's ViT.

Measures, in one run, the forward+backward time and the peak memory of one
training step (frozen encoder, gradients to the method's parameters) of:

* ``timm``: timm's ``VisionTransformer`` with N register tokens, so it sees
  the same number of tokens (1 + N + M) as the prompted models; only the
  register tokens train;
* ``vpt_shallow``, ``vpt_deep``, ``cdc``, ``cdc_da``, ``cdc_da_ar`` (iVPT)
  from :class:`PromptedViT`, and ``gapt`` from :class:`GatedViT`;

and prints the ratios the targets are stated in (iVPT vs VPT-deep, VPT-deep
vs timm). Measured with the harness of ``mmseg_ivpt.analysis.benchmark``
(docs/benchmarks.md, "How it is measured"): the times in this process, every
method built and their steps interleaved (``interleaved_times``, the order
rotated each round; the median step of each), so that the machine's drifts
hit all methods alike; the peak memory of each method's step alone in a
fresh child process (``peak_memory``).

``--encoder`` runs the same comparison on the foundation encoders
(docs/encoders.md): ``dinov2`` / ``dinov2_reg4`` (LayerScale, registers;
timm's baseline is timm's DINOv2 with N more register tokens, so again
every model sees 1 + R + N + M tokens) and ``clip`` (norm_pre,
QuickGELU)::

    python tools/analysis/benchmark_backbone.py --encoder dinov2 --arch l \
        --patch-size 14 --methods timm vpt_deep cdc_da_ar

Needs only torch and timm (runs on the GPU machine without mm packages)::

    python tools/analysis/benchmark_backbone.py --device cpu --batch-size 8
    python tools/analysis/benchmark_backbone.py --device cuda --amp bf16 \
        --batch-size 64

Memory: the peak of one step (after one warm-up step) above what was
resident before it: CUDA peak allocated bytes; CPU the peak resident set.

``--against CHECKOUT`` compares two revisions of the models in one run: every
prompted method is also built from ``CHECKOUT/mmseg_ivpt/models`` (another
clone or ``git worktree`` of this repository, imported under another name),
given the same weights, checked to give the same outputs and gradients, and
timed interleaved with this checkout's (no memory pass)::

    git worktree add /tmp/before HEAD~1
    python tools/analysis/benchmark_backbone.py --against /tmp/before
"""
import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
from tools._venv import ensure  # noqa: E402

ensure('torch', 'timm')  # only: no .venv needed where python has it

METHODS = ('timm', 'vpt_shallow', 'vpt_deep', 'cdc', 'cdc_da', 'cdc_da_ar',
           'gapt')
#: --encoder: (timm VisionTransformer kwargs, register tokens timm adds for
#: the encoder itself, ViTEncoder kwargs)
ENCODERS = {
    'vit': ({}, 0, {}),
    'dinov2': (dict(init_values=1e-5), 0,
               dict(layer_scale_init=1e-5, pos_interp='dinov2')),
    'dinov2_reg4': (dict(init_values=1e-5, no_embed_class=True), 4,
                    dict(layer_scale_init=1e-5, pos_interp='dinov2',
                         num_reg_tokens=4, no_embed_class=True)),
    'clip': (dict(pre_norm=True, act_layer='quick_gelu'), 0,
             dict(pre_norm=True, patch_bias=False, act_layer='quick_gelu',
                  pos_interp='bicubic_antialias')),
}


def models_of(checkout):
    """The ``mmseg_ivpt.models`` package of another checkout, imported as
    ``mmseg_ivpt_against.models`` (its relative imports stay inside it)."""
    import importlib
    import types
    name = 'mmseg_ivpt_against'
    if name not in sys.modules:
        pkg = types.ModuleType(name)
        pkg.__path__ = [os.path.join(os.path.abspath(checkout),
                                     'mmseg_ivpt')]
        sys.modules[name] = pkg
    return importlib.import_module(f'{name}.models')


def build(name, args, models=None):
    """Method ``name`` built from ``models`` (default: this checkout's
    ``mmseg_ivpt.models``): (module, forward returning (B, D))."""
    import timm

    if models is None:
        import mmseg_ivpt.models as models
    ARCH_SETTINGS, GatedViT, PromptedViT = (
        models.ARCH_SETTINGS, models.GatedViT, models.PromptedViT)
    a = ARCH_SETTINGS[args.arch]
    timm_kw, timm_regs, enc_kw = ENCODERS[getattr(args, 'encoder', 'vit')]
    common = dict(arch=args.arch, img_size=args.img_size,
                  patch_size=args.patch_size, out_type='cls_token', **enc_kw)
    n = args.num_prompts
    if name == 'timm':
        m = timm.models.VisionTransformer(
            img_size=args.img_size, patch_size=args.patch_size,
            embed_dim=a['embed_dims'], depth=a['num_layers'],
            num_heads=a['num_heads'],
            mlp_ratio=a['feedforward_channels'] / a['embed_dims'],
            reg_tokens=n + timm_regs, num_classes=0, **timm_kw)
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


def make_step(name, args, models=None, like=None):
    """Build method ``name`` (from ``models``, with the weights of the
    module ``like`` if given) and return (step function, trainable count,
    module, forward)."""
    import torch
    torch.manual_seed(0)
    dev = torch.device(args.device)
    model, fwd = build(name, args, models)
    if like is not None:
        model.load_state_dict(like.state_dict())
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

    return step, sum(p.numel() for p in params), model, fwd


def memory_step(name, args):
    """``peak_memory``'s child: method ``name``'s step."""
    return make_step(name, args)[0]


def check_same(name, a, b, args):
    """The two builds of ``name`` give the same outputs and gradients of the
    method's tensors on one batch (a named error otherwise)."""
    import torch
    x = torch.randn(2, 3, args.img_size, args.img_size,
                    device=torch.device(args.device))
    outs, grads = [], []
    for model, fwd in (a, b):
        out = fwd(x)
        out.float().square().mean().backward()
        outs.append(out.detach())
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()
                      if p.grad is not None})
        model.zero_grad(set_to_none=True)
    if not torch.allclose(outs[0], outs[1], rtol=1e-5, atol=1e-6) or \
            grads[0].keys() != grads[1].keys() or any(
                not torch.allclose(grads[0][k], grads[1][k], rtol=1e-5,
                                   atol=1e-6) for k in grads[0]):
        raise SystemExit(f'{name}: the two checkouts compute different '
                         'outputs or gradients; not comparing their times')


def compare(args):
    """``--against``: this checkout's methods against the other's, in one
    interleaved run."""
    import torch

    from mmseg_ivpt.analysis.benchmark import (
        device_name,
        interleaved_times,
        summary,
    )
    other = models_of(args.against)
    steps, trainable = {}, {}
    for name in args.methods:
        if name == 'timm':
            continue
        now = make_step(name, args)
        there = make_step(name, args, other, like=now[2])
        check_same(name, now[2:], there[2:], args)
        steps[(name, 'this')], steps[(name, 'against')] = now[0], there[0]
        trainable[name] = (now[1], there[1])
    times = interleaved_times(steps, args.warmup, args.iters, args.device)
    ms = {k: summary([1e3 * t for t in v]) for k, v in times.items()}
    print(f'# {args.arch.upper()}/{args.patch_size} at {args.img_size}, '
          f'batch {args.batch_size}, device={device_name(args.device)}, '
          f'torch {torch.__version__}; this checkout vs {args.against}; '
          f'outputs and gradients checked equal')
    print('| method | trainable (this / against) | fwd+bwd ms this '
          '(min-max) | ms against (min-max) | this / against |')
    print('|---|---:|---:|---:|---:|')
    for name in trainable:
        a, b = ms[(name, 'this')], ms[(name, 'against')]
        print(f"| {name} | {trainable[name][0]:,} / {trainable[name][1]:,} "
              f"| {a['median']:.1f} ({a['min']:.1f}-{a['max']:.1f}) | "
              f"{b['median']:.1f} ({b['min']:.1f}-{b['max']:.1f}) | "
              f"{a['median'] / b['median']:.3f} |")


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--device', default='cpu')
    p.add_argument('--arch', default='b')
    p.add_argument('--encoder', default='vit', choices=list(ENCODERS),
                   help='the encoder options (module docstring)')
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
    p.add_argument('--against', metavar='CHECKOUT',
                   help='compare with the models of another checkout of '
                   'this repository (module docstring)')
    args = p.parse_args()
    import torch

    from mmseg_ivpt.analysis.benchmark import (
        device_name,
        interleaved_times,
        peak_memory,
        summary,
    )
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.against:
        return compare(args)
    best = {name: dict(mem_mb=peak_memory(memory_step, name, args,
                                          device=args.device).mib)
            for name in args.methods}
    steps = {}
    for name in args.methods:
        steps[name], best[name]['trainable'] = make_step(name, args)[:2]
    times = interleaved_times(steps, args.warmup, args.iters, args.device)
    for name, t in times.items():
        s = summary(t)
        best[name].update(ms=1e3 * s['median'],
                          ms_range=[1e3 * s['min'], 1e3 * s['max']])
    dev = device_name(args.device)
    print(f'# {args.encoder} {args.arch.upper()}/{args.patch_size} at '
          f'{args.img_size}, batch {args.batch_size}, N={args.num_prompts}, '
          f'k={args.ar_tokens}, amp={args.amp}, device={dev}, '
          f'torch {torch.__version__}, {args.iters} rounds')
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
