"""docs/reproduction.md and the shipped configs cannot drift apart: every
setting the recipe tables state is rendered here from the configs (each
VTAB-1k and FGVC task config with each protocol method applied, and the
ADE20K configs) and compared cell by cell; and the recipe pieces that are
behaviour (VPT's per-epoch warm-up + cosine, the pooled MAE output, GaPT's
projected temperatures) are checked against formulas written here."""
import copy
import math
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch
from ivpt_runs import ROOT
from mmengine.config import Config

from mmseg_ivpt.protocol import (
    METHODS,
    VPT_SEEDS,
    VPT_TOKENS,
    apply_method,
    load_task_config,
    lr_grid,
    pick_best,
    set_splits,
)
from mmseg_ivpt.protocol.recipes import paper_lr

DOC = osp.join(ROOT, 'docs', 'reproduction.md')
VTAB = osp.join(ROOT, 'configs', 'vtab', 'ivpt_vitb16_{}.py')
FGVC = osp.join(ROOT, 'configs', 'fgvc', 'ivpt_vitb16_{}.py')


def doc_table(title: str):
    """The markdown table under the heading ``title``: list of row dicts."""
    text = open(DOC).read()
    m = re.search(r'^#+ ' + re.escape(title) + r'\s*$', text, re.M)
    assert m, f'docs/reproduction.md has no heading {title!r}'
    lines = []
    for line in text[m.end():].splitlines():
        if line.startswith('|'):
            lines.append([c.strip() for c in line.strip('|').split('|')])
        elif lines:  # the first table after the heading ends
            break
    head, rows = lines[0], lines[2:]
    return [dict(zip(head, r)) for r in rows]


def _num(xs):
    return ', '.join(f'{x:g}' for x in xs)


def render_method(cfg, method):
    """The per-method settings as docs/reproduction.md words them."""
    bb, opt = cfg.model.backbone, cfg.optim_wrapper.optimizer
    per_task = METHODS[method]['table5']  # the "GaPT per task" table
    if bb.type == 'GatedViT':
        backbone = 'GatedViT, gate init per task' if per_task else \
            f'GatedViT, gate init {bb.gate_init:g}'
    elif bb.num_prompts == 0:
        backbone = 'PromptedViT, no prompts'
    else:
        backbone = 'PromptedViT ' + bb.prompt_structure
        if bb.get('dynamic_aggregation'):
            backbone += ' + DA'
        if bb.get('ar_tokens'):
            backbone += f" + AR {bb.get('ar_mode', 'topk')}"
    trains = dict(prompt='method tensors + head', bias="blocks' biases + head",
                  full='everything')[bb.get('finetune', 'prompt')]
    if opt.type == 'SGD':
        optimizer = f'SGD, momentum {opt.momentum:g}'
    else:
        optimizer = (f'{opt.type}, betas {tuple(opt.betas)}, '
                     f'eps {opt.eps:g}')
    grid = lr_grid(cfg, method)
    batch = cfg.train_dataloader.batch_size
    base_lrs = list(dict.fromkeys(b for b, _, _ in grid))
    wds = list(dict.fromkeys(w for _, w, _ in grid))
    scaled = all(math.isclose(lr, b * batch / 256) for b, _, lr in grid)
    assert scaled or all(lr == b for b, _, lr in grid)
    keys = cfg.optim_wrapper.get('paramwise_cfg', {}).get('custom_keys', {})
    no_decay = [k for k, v in keys.items() if v.get('decay_mult') == 0]
    out_type = bb.out_type
    if out_type == 'avg_all_tokens':
        norm = bb.get('pool_norm') or (
            'pretrained' if bb.type == 'GatedViT' else 'fresh')
        pooling = f'mean of non-cls tokens, {norm} LayerNorm'
    else:
        assert out_type == 'cls_token' and bb.final_norm
        pooling = 'final norm, cls token'
    return {
        'backbone': backbone, 'trains': trains,
        'prompt dropout': f"{bb.get('prompt_dropout', 0.):g}",
        'optimizer': optimizer, 'base lr grid': _num(base_lrs),
        'lr used': 'base x batch / 256' if scaled else 'base',
        'wd grid': _num(wds), 'no weight decay on': ', '.join(no_decay) or '-',
        'batch': 'GaPT per task' if per_task else str(batch),
        'warm-up epochs': str(cfg.param_scheduler[1].begin),
        'pooling': pooling, 'pretrained': bb.init_cfg.checkpoint,
    }


def render_prompt_count(cfg, method, task_cfg, bench, task):
    n = cfg.model.backbone.get('num_prompts', 0)
    if METHODS[method]['vpt_tokens']:
        assert n == VPT_TOKENS[bench][task], (method, task)
        return 'VPT per task'
    if METHODS[method]['table5']:
        return 'GaPT per task'
    if 'num_prompts' in METHODS[method]['backbone']:
        return str(n)
    assert n == task_cfg.model.backbone.num_prompts, (method, task)
    return 'iVPT per task'


def render_shared(cfg):
    """Settings every method shares."""
    lin, cos = cfg.param_scheduler
    w, total = cos.begin, cfg.train_cfg.max_epochs
    assert lin.end == w + 1  # mmengine's LinearLR reaches 1 at end - 1
    assert lin.type == 'LinearLR' and lin.start_factor <= 1e-6
    assert cos.type == 'CosineAnnealingLR' and cos.eta_min == 0
    assert (cos.begin, cos.end, cos.T_max) == (w, total, total - w)
    assert lin.by_epoch and cos.by_epoch
    assert not lin.get('convert_to_iter_based') and \
        not cos.get('convert_to_iter_based')
    head = cfg.model.head.init_cfg
    assert (head.type, head.layer, head.mode, head.distribution,
            head.bias_prob) == ('Kaiming', 'Linear', 'fan_out', 'normal',
                                0.01)
    return {
        'epochs': str(total),
        'schedule': 'per epoch: linear from 0, then cosine to 0',
        'head init': 'Kaiming normal (fan-out), bias -log(99)',
        'mean / std': _num(cfg.data_preprocessor.mean) + ' / ' +
        _num(cfg.data_preprocessor.std),
    }


def render_pipeline(pipeline):
    words = []
    for t in pipeline:
        t = dict(t)
        kind = t.pop('type')
        if kind in ('LoadImageFromFile', 'PackInputs'):
            continue
        if kind == 'Resize':
            assert t['keep_ratio'] is False
            words.append(f"resize to {t['scale'][0]}x{t['scale'][1]} "
                         f"({t['interpolation']}, {t['backend']})")
        elif kind == 'ResizeEdge':
            words.append(f"resize {t['edge']} side to {t['scale']} "
                         f"({t['interpolation']}, {t['backend']})")
        elif kind == 'RandomCrop':
            words.append(f"random crop {t['crop_size']}")
        elif kind == 'CenterCrop':
            words.append(f"centre crop {t['crop_size']}")
        elif kind == 'RandomFlip':
            words.append(f"{t['direction']} flip p={t['prob']:g}")
        else:
            words.append(kind)
    return ', '.join(words)


def _load(path):
    return load_task_config(path, None, None)


def method_cfg(path, method):
    """``method`` applied to a fresh copy of the task config."""
    return load_task_config(path, method, None)


def _task_paths(bench):
    from mmseg_ivpt.datasets import FGVC_DATASETS, VTAB_TASKS
    names = VTAB_TASKS if bench == 'vtab' else FGVC_DATASETS
    pattern = VTAB if bench == 'vtab' else FGVC
    return [(n, pattern.format(n)) for n in names]


@pytest.mark.parametrize('bench', ['vtab', 'fgvc'])
def test_method_table_matches_every_task_config(bench):
    table = {r['method']: r for r in doc_table('Methods')}
    assert set(table) == set(METHODS), 'every method has a row'
    for task, path in _task_paths(bench):
        task_cfg = _load(path)
        for method, row in table.items():
            cfg = method_cfg(path, method)
            got = render_method(cfg, method)
            got['N'] = render_prompt_count(cfg, method, task_cfg, bench,
                                           task)
            for key, value in got.items():
                assert row[key] == value, (task, method, key)


@pytest.mark.parametrize('bench', ['vtab', 'fgvc'])
def test_shared_table_matches_every_task_config(bench):
    rows = {r['setting']: r for r in doc_table('Shared by every method')}
    title = 'VTAB-1k' if bench == 'vtab' else 'FGVC'
    for task, path in _task_paths(bench):
        for method in METHODS:
            cfg = method_cfg(path, method)
            got = render_shared(cfg)
            got['train pre-processing'] = render_pipeline(
                cfg.train_dataloader.dataset.pipeline)
            got['test pre-processing'] = render_pipeline(
                cfg.test_dataloader.dataset.pipeline)
            sweep = set_splits(copy.deepcopy(cfg), 'sweep')
            got['sweep: train / val split'] = (
                f'{sweep.train_dataloader.dataset.split} / '
                f'{sweep.val_dataloader.dataset.split}')
            final = set_splits(copy.deepcopy(cfg), 'final')
            got['final: train / test split'] = (
                f'{final.train_dataloader.dataset.split} / '
                f'{final.test_dataloader.dataset.split}')
            for key, value in got.items():
                assert rows[key][title] == value, (task, method, key)
    assert rows['final runs: seeds'][title] == _num(VPT_SEEDS)


def test_per_task_table():
    rows = {r['task']: r for r in doc_table('Per task')}
    for bench in ('vtab', 'fgvc'):
        for task, path in _task_paths(bench):
            cfg = _load(path)
            bb = cfg.model.backbone
            assert rows[task] == dict(
                task=task, classes=str(cfg.model.head.num_classes),
                **{'iVPT N': str(bb.num_prompts), 'iVPT k': str(bb.ar_tokens),
                   'VPT-deep N': str(VPT_TOKENS[bench][task])}), task


GAPT_SSL = {'MAE': 'mae', 'MoCo-v3': 'mocov3'}


def gapt_ade20k(ssl):
    return osp.join(ROOT, 'configs', 'gapt_ade20k',
                    f'setr_gapt_vitb16-{ssl}_ade20k.py')


def render_gapt_row(cfgs):
    """One row of "GaPT per task": {column: cell} from the configs the
    protocol builds for gapt_mae / gapt_mocov3 (or the ADE20K ones)."""
    row = {}
    for title, cfg in cfgs.items():
        bb = cfg.model.backbone
        batch = cfg.train_dataloader.batch_size
        if 'max_iters' in cfg.train_cfg:  # ADE20K: 8 GPUs x the config's
            batch *= 8
        row.update({f'{title} batch': str(batch),
                    f'{title} N': str(bb.num_prompts),
                    f'{title} lr': f'{cfg.optim_wrapper.optimizer.lr:g}',
                    f'{title} gate init': f'{bb.gate_init:g}'})
    return row


def test_gapt_per_task_table():
    """The "GaPT per task" table is what the protocol builds for each task
    (tests/protocol/test_gapt_recipes.py checks the same against the
    paper's Table 5) and what the ADE20K GaPT configs hold;
    `final --paper-lr` trains at the lr column."""
    rows = {r['task']: r for r in doc_table('GaPT per task')}
    for bench in ('vtab', 'fgvc'):
        for task, path in _task_paths(bench):
            cfgs = {t: method_cfg(path, f'gapt_{s}')
                    for t, s in GAPT_SSL.items()}
            for t, cfg in cfgs.items():
                assert paper_lr(f'gapt_{GAPT_SSL[t]}', cfg) == (
                    cfg.optim_wrapper.optimizer.lr, 0.)
            assert rows.pop(task) == dict(task=task,
                                          **render_gapt_row(cfgs)), task
    cfgs = {t: Config.fromfile(gapt_ade20k(s)) for t, s in GAPT_SSL.items()}
    assert rows.pop('ADE20K') == dict(task='ADE20K', **render_gapt_row(cfgs))
    assert rows == {}


ADE = {
    'setr_ivpt_vitl_ade20k.py': 'iVPT / VPT / bias / linear',
    'setr_gapt_vitl_ade20k.py': 'GaPT ViT-L (extension)',
    'gapt_ade20k/setr_gapt_vitb16-mae_ade20k.py': 'GaPT paper, MAE',
    'gapt_ade20k/setr_gapt_vitb16-mocov3_ade20k.py': 'GaPT paper, MoCo-v3',
}


def test_ade20k_table():
    rows = {r['setting']: r for r in doc_table('ADE20K')}
    for name, column in ADE.items():
        cfg = Config.fromfile(osp.join(ROOT, 'configs', name))
        opt = cfg.optim_wrapper.optimizer
        keys = cfg.optim_wrapper.paramwise_cfg.custom_keys
        # every method tensor has the multiplier: the constructor asks the
        # model for them (tests/engine/test_optim.py); no config names them
        assert cfg.optim_wrapper.constructor == \
            'PromptOptimWrapperConstructor'
        assert not [k for k in keys if k.startswith('backbone')], keys
        method = {'prompts': cfg.optim_wrapper.paramwise_cfg.method_lr_mult}
        sched = cfg.param_scheduler[0]
        got = {
            'optimizer': f'{opt.type}, lr {opt.lr:g}, momentum '
                         f'{opt.momentum:g}, weight decay '
                         f'{opt.weight_decay:g}',
            'heads lr multiplier': f"{keys['head'].lr_mult:g}",
            'method tensors lr multiplier': f'{method["prompts"]:g}',
            'schedule': f'{sched.type}, power {sched.power:g}, '
                        f'eta_min {sched.eta_min:g}',
            'iterations': str(cfg.train_cfg.max_iters),
            'batch': f'8 x {cfg.train_dataloader.batch_size}',
            'crop': f'{cfg.crop_size[0]}x{cfg.crop_size[1]}',
            'pretrained': cfg.model.backbone.init_cfg.checkpoint,
            'backbone': f"ViT-{cfg.model.backbone.arch.upper()}/16, "
                        f"out_indices "
                        f"{tuple(cfg.model.backbone.out_indices)}, "
                        f"final_norm {cfg.model.backbone.final_norm}",
            'auxiliary heads on blocks': ', '.join(
                str(cfg.model.backbone.out_indices[h.in_index])
                for h in cfg.model.auxiliary_head),
        }
        for key, value in got.items():
            assert rows[key][column] == value, (name, key)
    # every ADE20K config of a column shares its optimizer
    for other in ('setr_vpt-deep', 'setr_bias', 'setr_linear',
                  'setr_ivpt-n100'):
        cfg = Config.fromfile(osp.join(ROOT, 'configs',
                                       f'{other}_vitl_ade20k.py'))
        assert cfg.optim_wrapper == Config.fromfile(osp.join(
            ROOT, 'configs', 'setr_ivpt_vitl_ade20k.py')).optim_wrapper
    for ssl in GAPT_SSL.values():
        for other in ('vpt-shallow', 'vpt-deep'):
            cfg = Config.fromfile(gapt_ade20k(ssl).replace('_gapt_',
                                                           f'_{other}_'))
            gapt = Config.fromfile(gapt_ade20k(ssl))
            assert cfg.optim_wrapper == gapt.optim_wrapper
            assert cfg.model.backbone.init_cfg == gapt.model.backbone.init_cfg


def test_prompt_lr_mult_from_the_command_line():
    """`--cfg-options prompt_lr_mult=M` reaches every method tensor's
    multiplier (the variable was substituted when the file was read)."""
    import argparse

    from mmseg_ivpt.engine.runner import load_config
    args = argparse.Namespace(
        config=osp.join(ROOT, 'configs', 'setr_ivpt_vitl_ade20k.py'),
        launcher='none', cfg_options={'prompt_lr_mult': 30}, work_dir=None,
        local_rank=0)
    paramwise = load_config(args).optim_wrapper.paramwise_cfg
    mults = {k: v.lr_mult for k, v in paramwise.custom_keys.items()}
    assert mults.pop('head') == 10
    assert mults == {}, mults  # the method's: paramwise_cfg.method_lr_mult
    assert paramwise.method_lr_mult == 30.


# --------------------------------------------------- recipe behaviour
def test_schedule_is_vpts_per_epoch_warmup_cosine():
    """The configs' schedulers, stepped by mmengine, give VPT's
    WarmupCosineSchedule (src/solver/lr_scheduler.py) epoch by epoch:
    lr(e) = e / w for e < w, else 0.5 (1 + cos(pi (e - w) / (T - w)))."""
    from mmengine.optim.scheduler import CosineAnnealingLR, LinearLR
    for method, warm in (('ivpt', 10), ('full', 5)):
        cfg = apply_method(Config.fromfile(VTAB.format('cifar')), method)
        p = torch.nn.Parameter(torch.zeros(1))
        base = 0.3
        opt = torch.optim.SGD([p], lr=base)
        s = []
        for c in cfg.param_scheduler:
            c = dict(c)
            kind = dict(LinearLR=LinearLR,
                        CosineAnnealingLR=CosineAnnealingLR)[c.pop('type')]
            s.append(kind(opt, **c))
        total = cfg.train_cfg.max_epochs
        for e in range(total):
            want = e / warm if e < warm else \
                0.5 * (1 + math.cos(math.pi * (e - warm) / (total - warm)))
            assert opt.param_groups[0]['lr'] == pytest.approx(
                base * want, abs=1e-7), (method, e)
            opt.step()
            for sch in s:
                sch.step()


def test_sweep_tie_goes_to_the_smaller_lr():
    scores = {
        'a': dict(lr=0.5, wd=0., val_top1=80.),
        'b': dict(lr=0.05, wd=0.01, val_top1=80.),
        'c': dict(lr=0.05, wd=0., val_top1=80.),
        'd': dict(lr=5., wd=0., val_top1=79.),
    }
    assert pick_best(scores) is scores['b']


def test_pooled_mae_output_is_the_equation():
    """PromptedViT ``avg_all_tokens``: LN(mean over the L-th block's
    non-cls tokens, prompts included), LN without affine weights (VPT's
    frozen fresh fc_norm); GatedViT: the pretrained final norm (GaPT)."""
    from ivpt_helpers import IMG, PATCH, TINY, prompted, timm_tokens, timm_vit

    from mmseg_ivpt.models import GatedViT, load_encoder_weights
    t = timm_vit()
    img = torch.randn(2, 3, IMG, IMG)
    m = prompted(t, num_prompts=3, prompt_structure='deep',
                 out_type='avg_all_tokens')
    with torch.no_grad():
        got = m(img)[0]
        x = timm_tokens(t, img)
        for i, blk in enumerate(t.blocks):
            p = m.prompts[i].expand(2, -1, -1)
            x = torch.cat([x[:, :1], p, x[:, 1 + (3 if i else 0):]], 1)
            x = blk(x)
        pooled = x[:, 1:].mean(1)
        mu = pooled.mean(-1, keepdim=True)
        var = pooled.var(-1, unbiased=False, keepdim=True)
        want = (pooled - mu) / torch.sqrt(var + 1e-6)
    assert torch.allclose(got, want, atol=1e-5)
    assert not torch.allclose(t.norm(pooled), want, atol=1e-3)
    g = GatedViT(arch=TINY, img_size=IMG, patch_size=PATCH, num_prompts=3,
                 out_type='avg_all_tokens').eval()
    load_encoder_weights(g, t.state_dict())
    assert g.pool_norm == 'pretrained'
    with torch.no_grad():
        toks, _ = g.forward_tokens(img, norm=False)
        assert torch.allclose(g(img)[0], t.norm(toks[-1][:, 1:].mean(1)),
                              atol=1e-6)
    with pytest.raises(ValueError, match='pool_norm'):
        prompted(t, num_prompts=3, pool_norm='learned')


def test_gapt_temperature_is_projected_and_keeps_its_gradient():
    """One SGD step pushes a temperature below its range; the next forward
    projects the stored parameter back (GaPT's reinit_temp) and the
    gradient reaching it is not zero."""
    from ivpt_helpers import IMG, PATCH, TINY

    from mmseg_ivpt.models import GatedViT
    m = GatedViT(arch=TINY, img_size=IMG, patch_size=PATCH, num_prompts=2,
                 out_type='cls_token').eval()
    lo, hi = m.temperature_range
    opt = torch.optim.SGD([m.temperatures], lr=1.)
    img = torch.randn(2, 3, IMG, IMG)
    m.temperatures.grad = torch.zeros_like(m.temperatures)
    m.temperatures.grad[1] = 5.  # tau_1: 1 - 5 = -4, far below the range
    opt.step()
    assert float(m.temperatures.detach()[1]) < lo
    m(img)[0].pow(2).sum().backward()
    t = m.temperatures.detach()
    assert ((t >= torch.tensor(lo)) & (t <= torch.tensor(hi))).all()
    assert t[1] == torch.tensor(lo)  # projected onto the bound (float32)
    assert m.temperatures.grad[1] != 0
    # and the forward used the projected value: same as a fresh model
    # whose temperature was set to the bound
    m2 = GatedViT(arch=TINY, img_size=IMG, patch_size=PATCH, num_prompts=2,
                  out_type='cls_token').eval()
    m2.load_state_dict(m.state_dict())
    with torch.no_grad():
        assert torch.equal(m(img)[0], m2(img)[0])


def small_model_and_optimizer(cfg):
    """The config's model at a tiny width, and its optimizer as mmengine
    builds it from ``cfg.optim_wrapper``."""
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import MODELS, init_default_scope
    cfg.model.backbone.arch = dict(embed_dims=64, num_layers=3, num_heads=4,
                                   feedforward_channels=64)
    cfg.model.backbone.pop('init_cfg')
    cfg.model.head.in_channels = 64
    init_default_scope('mmpretrain')
    model = MODELS.build(cfg.model)
    return model, build_optim_wrapper(model, cfg.optim_wrapper)


@pytest.mark.parametrize('method', ['gapt_mae', 'gapt_mocov3'])
def test_gapt_methods_have_no_weight_decay(method):
    """GaPT trains with weight decay 0 (run.sh): nothing pulls the gate
    logits from -gate_init towards 0."""
    cfg = apply_method(Config.fromfile(VTAB.format('dtd')), method)
    assert [w for _, w, _ in lr_grid(cfg, method)] == [0.] * 7
    model, wrapper = small_model_and_optimizer(cfg)
    names = {id(p): n for n, p in model.named_parameters()}
    seen = set()
    for group in wrapper.optimizer.param_groups:
        for p in group['params']:
            seen.add(names[id(p)])
            assert group['weight_decay'] == 0, names[id(p)]
    assert {'backbone.gate_logits', 'backbone.temperatures',
            'backbone.prompts'} <= seen


def test_vpt_methods_decay_all_but_the_head_bias():
    cfg = apply_method(Config.fromfile(VTAB.format('dtd')), 'vpt_deep')
    cfg.optim_wrapper.optimizer.weight_decay = 1e-3
    model, wrapper = small_model_and_optimizer(cfg)
    names = {id(p): n for n, p in model.named_parameters()}
    decay = {names[id(p)]: g['weight_decay']
             for g in wrapper.optimizer.param_groups for p in g['params']
             if p.requires_grad}
    assert decay == {'backbone.prompts': 1e-3, 'head.fc.weight': 1e-3,
                     'head.fc.bias': 0.}


@pytest.mark.slow
def test_dry_run_prints_the_reference_grids(tmp_path):
    """`sweep --dry-run` prints what tune_vtab.py / GaPT would run and
    writes nothing."""
    root = tmp_path / 'runs'
    expect = {
        'ivpt': ('SGD, batch 128', 40, '50,0.01->25'),
        'vpt_deep': ('SGD, batch 128', 40, '0.05,0->0.025'),
        'full': ('AdamW, batch 384', 16, '0.005,0.01->0.0075'),
        'gapt_mae': ('SGD, batch 128', 7, '0.25,0->0.25'),
    }
    for method, (words, runs, point) in expect.items():
        res = subprocess.run(
            [sys.executable, osp.join(ROOT, 'tools', 'protocol.py'), 'sweep',
             VTAB.format('cifar'), '--method', method, '--dry-run',
             '--work-root', str(root)], cwd=tmp_path, capture_output=True,
            text=True)
        assert res.returncode == 0, res.stderr[-3000:]
        assert f'cifar: {runs} runs; {method}: {words}' in res.stdout
        assert point in res.stdout
        assert res.stdout.count('-m mmseg_ivpt.engine.train ') == runs
    assert not root.exists() and list(tmp_path.iterdir()) == [], \
        'a dry run writes nothing'
