"""Runtime cost of prompt-tuning methods side by side (iVPT paper Table 8).

    # the methods of tools/protocol.py on one task config, or on all 19
    python tools/analysis/runtime_report.py configs/vtab/ivpt_vitb16_*.py \
        --methods vpt_deep ivpt gapt_mae
    # any configs, as they are (segmentation ones too)
    python tools/analysis/runtime_report.py configs/setr_*_vitl_ade20k.py \
        --device cuda --batch-size 8
    # parameters and FLOPs only (in place of mmseg's get_flops)
    python tools/analysis/runtime_report.py CONFIG --no-timing

Columns, per model (a config, or a config turned into ``--methods``'s
variant as ``tools/protocol.py`` does):

* trainable parameters: counted for every config given (built on the meta
  device) and averaged: Table 8's "mean over the 19 VTAB-1k tasks" when the
  19 task configs are given; the per-task counts are a second table;
* GFLOPs of one forward of one image (``model(x, mode='tensor')``: the
  classifier's logits, the segmentor's decode head) at the backbone's
  ``img_size``, by mmengine's counter (``mmengine.analysis.FlopAnalyzer``,
  the one ``get_model_complexity_info`` and mmpretrain's ``get_flops`` use;
  fvcore's rules, one multiply-add = one FLOP) with the rule for
  ``scaled_dot_product_attention`` that mmengine lacks
  (``mmseg_ivpt.engine.flops``);
* inference latency: ``model(..., mode='predict')`` of a batch of
  ``--infer-batch-size`` images, no grad;
* training step: data preprocessor, ``mode='loss'``, backward, SGD step, of
  a batch of ``--batch-size`` random images and labels;
* peak memory of the training step: the model alone in a fresh child
  process, one warm-up step, then the peak of one step above what was
  resident before it (CUDA: peak allocated bytes; CPU: the peak resident
  set, coarser).

The costs are measured on the first config given with random weights
(costs do not depend on them), by the harness of
``mmseg_ivpt.analysis.benchmark`` (docs/benchmarks.md, "How it is
measured"): every model built in this one process, their inference and
training steps interleaved with the order rotated each round and the median
taken, so that a busy machine's drifts hit every model alike; the range
(min..max) of the steps is printed beside the median. Peak memory by
``peak_memory``, each model in a child of its own.
"""
import argparse
import copy
import json
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
from tools._venv import ensure  # noqa: E402

ensure()  # the repository's .venv unless this python has the packages


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('configs', nargs='+')
    p.add_argument('--methods', nargs='+',
                   help='variants of the configs (mmseg_ivpt.protocol.'
                   'METHODS); default: the configs as they are')
    p.add_argument('--device', default='cpu')
    p.add_argument('--batch-size', type=int, default=8,
                   help='training-step batch (default 8)')
    p.add_argument('--infer-batch-size', type=int, default=1,
                   help='inference-latency batch (default 1)')
    p.add_argument('--warmup', type=int, default=1)
    p.add_argument('--iters', type=int, default=5,
                   help='timed rounds (every model once per round)')
    p.add_argument('--no-timing', action='store_true',
                   help='parameters and FLOPs only')
    p.add_argument('--no-memory', action='store_true')
    p.add_argument('--threads', type=int, default=0,
                   help='torch CPU threads (0: torch default)')
    p.add_argument('--out', help='also write the markdown here')
    p.add_argument('--json', help='also write the numbers as JSON here')
    from mmengine.config import DictAction
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = p.parse_args(argv)
    for path in args.configs:
        if not osp.isfile(path):
            p.error(f'{path}: no such config')
    from mmseg_ivpt.protocol import METHODS
    for m in args.methods or []:
        if m not in METHODS:
            p.error(f'--methods: {m!r} is not a method; allowed: '
                    f'{list(METHODS)}')
    for name in ('batch_size', 'infer_batch_size', 'iters'):
        if getattr(args, name) < 1:
            p.error(f'--{name.replace("_", "-")} must be >= 1')
    return args


def load_cfg(path, method, args):
    """``path``'s config (``--method``'s variant of it, the user's
    ``--cfg-options`` last), from a cached parse."""
    from mmseg_ivpt.engine.checks import ConfigError
    from mmseg_ivpt.protocol import ProtocolError, load_task_config
    try:
        cfg = load_task_config(path, method, args.cfg_options)
    except ConfigError as e:  # names the option
        raise SystemExit(f'runtime_report.py: {path}: {e}')
    except ProtocolError as e:  # names the file
        raise SystemExit(f'runtime_report.py: {e}')
    cfg.model.setdefault('data_preprocessor',
                         cfg.get('data_preprocessor', None))
    return cfg


def build(cfg, device):
    """The config's model, random weights, on ``device`` (no checkpoint
    read)."""
    from mmengine.registry import MODELS, init_default_scope

    from mmseg_ivpt.apis.inference import scope_of
    init_default_scope(scope_of(cfg))
    model = MODELS.build(copy.deepcopy(cfg.model))
    return model.to(device)


def input_size(model):
    from mmseg_ivpt.analysis.attention import backbone_of
    return backbone_of(model).img_size


def fake_batch(model, scope, batch_size, training):
    """A preprocessed batch of random images (and labels / masks)."""
    import torch
    h, w = input_size(model)
    imgs = [torch.randint(0, 256, (3, h, w), dtype=torch.uint8)
            for _ in range(batch_size)]
    if scope == 'mmseg':
        from mmengine.structures import PixelData
        from mmseg.structures import SegDataSample
        n = model.decode_head.num_classes
        samples = []
        for _ in imgs:
            s = SegDataSample(gt_sem_seg=PixelData(
                data=torch.randint(0, n, (1, h, w))))
            s.set_metainfo(dict(img_shape=(h, w), ori_shape=(h, w),
                                pad_shape=(h, w)))
            samples.append(s)
    else:
        from mmpretrain.structures import DataSample
        n = model.head.num_classes
        samples = [DataSample().set_gt_label(int(torch.randint(0, n, ())))
                   for _ in imgs]
    return model.data_preprocessor(dict(inputs=imgs, data_samples=samples),
                                   training)


def make_steps(model, scope, args):
    """(inference step, training step) closures for one model."""
    import torch
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=1e-3, momentum=0.9)
    train_batch = fake_batch(model, scope, args.batch_size, True)
    infer_batch = fake_batch(model, scope, args.infer_batch_size, False)

    def infer():
        model.eval()
        with torch.no_grad():
            model(**infer_batch, mode='predict')

    def train():
        model.train()
        losses = model(**train_batch, mode='loss')
        loss, _ = model.parse_losses(losses)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return infer, train


def flops_of(model):
    import torch

    from mmseg_ivpt.analysis.complexity import TensorForward, count_flops
    h, w = input_size(model)
    x = torch.randn(1, 3, h, w, device=next(model.parameters()).device)
    model.eval()
    total, by_op = count_flops(TensorForward(model), (x, ))
    attn = by_op.get('scaled_dot_product_attention', 0) + by_op.get(
        'matmul', 0)
    return total, attn


def memory_step(cfg, scope, args):
    """``peak_memory``'s child: the training step of ``cfg``'s model, built
    alone there."""
    import torch

    import mmseg_ivpt  # noqa: F401 (registers the backbones)
    torch.manual_seed(0)
    return make_steps(build(cfg, args.device), scope, args)[1]


def fmt_ms(ts):
    from mmseg_ivpt.analysis.benchmark import summary
    s = summary([1e3 * t for t in ts])
    return f"{s['median']:.1f} ({s['min']:.0f}–{s['max']:.0f})"


def main(argv=None):
    args = parse_args(argv)
    import torch

    import mmseg_ivpt  # noqa: F401
    from mmseg_ivpt.analysis.params import (
        build_model_on_meta,
        count_parameters,
    )
    from mmseg_ivpt.apis.inference import scope_of
    if args.threads:
        torch.set_num_threads(args.threads)
    # (name, method, configs whose parameters are averaged, measured one)
    if args.methods:
        entries = [(m, m, args.configs, args.configs[0])
                   for m in args.methods]
    else:
        entries = [(osp.splitext(osp.basename(c))[0], None, [c], c)
                   for c in args.configs]

    params, res, steps, cfgs = {}, {}, {}, {}
    for name, m, paths, path in entries:
        params[name] = {
            osp.basename(p): count_parameters(build_model_on_meta(
                load_cfg(p, m, args)))['trainable'] for p in paths}
        cfgs[name] = load_cfg(path, m, args)
        res[name] = {}
    from mmseg_ivpt.analysis.benchmark import (
        device_name,
        interleaved_times,
        peak_memory,
    )
    for name in cfgs if not (args.no_timing or args.no_memory) else ():
        res[name]['peak_mb'] = peak_memory(
            memory_step, cfgs[name], scope_of(cfgs[name]), args,
            device=args.device).mib
    for name, cfg in cfgs.items():
        torch.manual_seed(0)
        model = build(cfg, args.device)
        flops, attn = flops_of(model)
        res[name].update(gflops=flops / 1e9, attn_share=attn / flops,
                         input=list(input_size(model)))
        if not args.no_timing:
            steps[(name, 'infer')], steps[(name, 'train')] = make_steps(
                model, scope_of(cfg), args)
    if steps:
        times = interleaved_times(steps, args.warmup, args.iters,
                                  args.device)
        for (name, kind), t in times.items():
            res[name][f'{kind}_s'] = t

    dev = device_name(args.device)
    where = (f'costs on {osp.basename(args.configs[0])}, trainable '
             f'parameters averaged over {len(args.configs)} config(s)'
             if args.methods else 'each config')
    lines = [f'Device: {dev} ({torch.get_num_threads()} threads), torch '
             f'{torch.__version__}; training batch {args.batch_size}, '
             f'inference batch {args.infer_batch_size}; {args.iters} '
             f'interleaved rounds after {args.warmup} warm-up, median '
             f'(range); {where}.', '',
             '| model | input | trainable | GFLOPs | attention share | '
             'latency ms | train step ms | peak MB |',
             '|---|---|---:|---:|---:|---:|---:|---:|']
    for name, _, _, _ in entries:
        r, counts = res[name], list(params[name].values())
        mean = sum(counts) / len(counts)
        lat = fmt_ms(r['infer_s']) if 'infer_s' in r else '-'
        step = fmt_ms(r['train_s']) if 'train_s' in r else '-'
        mem = f"{r['peak_mb']:.0f}" if 'peak_mb' in r else '-'
        lines.append(f'| {name} | {r["input"][0]}x{r["input"][1]} | '
                     f'{mean:,.0f} | {r["gflops"]:.3f} | '
                     f'{100 * r["attn_share"]:.1f}% | {lat} | {step} | '
                     f'{mem} |')
    if args.methods and len(args.configs) > 1:
        names = [e[0] for e in entries]
        lines += ['', '| config | ' + ' | '.join(names) + ' |',
                  '|---|' + '---:|' * len(names)]
        for path in args.configs:
            b = osp.basename(path)
            lines.append(f'| {b} | ' + ' | '.join(
                f'{params[n][b]:,}' for n in names) + ' |')
    text = '\n'.join(lines)
    print(text)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(text + '\n')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(params=params, results=res), f, indent=1)


if __name__ == '__main__':
    main()
