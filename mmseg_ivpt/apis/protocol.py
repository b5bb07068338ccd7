"""The VTAB-1k / FGVC protocol (SPEC section 7) behind tools/protocol.py.

* ``sweep``: every (lr, wd) of the grid trained on train800 (FGVC: train)
  and evaluated on val200 (FGVC: val); the best pair is kept.
* ``final``: that pair trained on train800val200 (FGVC: train + val) and
  evaluated on test, once per seed.
* ``report``: the paper's Table 1 / Table 9 layout, ours beside the paper's.

Methods are variants of the per-task iVPT configs (:data:`METHODS`), applied
to the loaded config, so one config per task serves every baseline and
ablation; every run writes the exact config it used into its work dir.
"""
import glob
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
from typing import Dict, List, Optional

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

# VPT's grid: lr scaled by batch / 256, weight decay
BASE_LRS = (50., 25., 10., 5., 2.5, 1., 0.5, 0.25, 0.1, 0.05)
WEIGHT_DECAYS = (0.01, 1e-3, 1e-4, 0.)

_OFF = dict(dynamic_aggregation=False, ar_tokens=0)
#: method name -> backbone overrides of the iVPT task config
METHODS: Dict[str, dict] = {
    'ivpt': {},  # CDC + DA + AR top-k with the task's N and k
    'cdc_da': dict(ar_tokens=0),  # AR "None" (Table 4)
    'ar_all': dict(ar_mode='all'),  # AR "All" (Table 4)
    'cdc': dict(_OFF),
    'vanilla_cdc': dict(prompt_structure='vanilla_cdc', **_OFF),
    'provp': dict(prompt_structure='provp', **_OFF),
    'vpt_deep': dict(prompt_structure='deep', **_OFF),
    'vpt_shallow': dict(prompt_structure='shallow', **_OFF),
    'linear': dict(num_prompts=0, **_OFF),
    'bias': dict(num_prompts=0, finetune='bias', **_OFF),
    'full': dict(num_prompts=0, finetune='full', **_OFF),
    # GaPT on self-supervised ViT-B/16 (docs/checkpoints.md for the files)
    'gapt_mae': dict(type='GatedViT', out_type='avg_all_tokens',
                     checkpoint='pretrain/mae_pretrain_vit_base.pth'),
    'gapt_mocov3': dict(type='GatedViT', out_type='cls_token',
                        checkpoint='pretrain/linear-vit-b-300ep.pth.tar'),
}
_SHARED = ('arch', 'img_size', 'patch_size', 'out_type', 'final_norm',
           'num_prompts', 'init_cfg')

# the paper's numbers: Table 1 (VTAB-1k) and Table 9 (FGVC), ViT-B/16
VTAB_GROUPS = (('Natural', 7), ('Specialized', 4), ('Structured', 8))
PAPER = {
    'vtab': {
        'full': ([68.9, 87.7, 64.3, 97.2, 86.9, 87.4, 38.8, 79.7, 95.7, 84.2,
                  73.9, 56.3, 58.6, 41.7, 65.5, 57.5, 46.7, 25.7, 29.1],
                 85.84),
        'linear': ([63.4, 85.0, 63.2, 97.0, 86.3, 36.6, 51.0, 78.5, 87.5,
                    68.6, 74.0, 34.3, 30.6, 33.2, 55.4, 12.5, 20.0, 9.6,
                    19.2], 0.04),
        'bias': ([72.8, 87.0, 59.2, 97.5, 85.3, 59.9, 51.4, 78.7, 91.6, 72.9,
                  69.8, 61.5, 55.6, 32.4, 55.9, 66.6, 40.0, 15.7, 25.1],
                 0.14),
        'vpt_deep': ([78.8, 90.8, 65.8, 98.0, 88.3, 78.1, 49.6, 81.8, 96.1,
                      83.4, 68.4, 68.5, 60.0, 46.5, 72.8, 73.6, 47.9, 32.9,
                      37.8], 0.60),
        'ivpt': ([82.7, 94.2, 72.0, 99.1, 91.8, 88.1, 56.6, 87.7, 96.1, 87.1,
                  77.6, 77.1, 62.6, 49.4, 80.6, 82.1, 55.3, 31.8, 47.6],
                 0.60),
    },
    'fgvc': {
        'full': ([87.3, 82.7, 98.8, 89.4, 84.5], 85.98),
        'linear': ([85.3, 75.9, 97.9, 86.2, 51.3], 0.18),
        'vpt_deep': ([88.5, 84.2, 99.0, 90.2, 83.6], 0.85),
        'ivpt': ([89.1, 84.5, 99.5, 90.8, 85.6], 0.41),
    },
}


def benchmark_of(cfg) -> str:
    return 'fgvc' if cfg.train_dataloader.dataset.type == 'FGVC' else 'vtab'


def task_of(cfg) -> str:
    ds = cfg.train_dataloader.dataset
    return ds.name if benchmark_of(cfg) == 'fgvc' else ds.task


def apply_method(cfg, method: str):
    """Turn an iVPT task config into ``method``'s (in place)."""
    if method not in METHODS:
        raise ValueError(f'method={method!r}; allowed: {list(METHODS)}')
    over = dict(METHODS[method])
    bb = cfg.model.backbone
    if over.get('type') == 'GatedViT':
        new = {k: bb[k] for k in _SHARED if k in bb}
        new['init_cfg'] = dict(type='Pretrained',
                               checkpoint=over.pop('checkpoint'))
        new.update(over, gate_init=10., prompt_dropout=0.1)
        cfg.model.backbone = new
    else:
        bb.update(over)
    return cfg


def set_splits(cfg, stage: str):
    """``sweep``: train800 / val200 (FGVC train / val); ``final``: the
    configs' own (train800val200 or train+val, evaluated on test)."""
    if stage == 'final':
        return cfg
    fgvc = benchmark_of(cfg) == 'fgvc'
    cfg.train_dataloader.dataset.split = 'train' if fgvc else 'train800'
    cfg.val_dataloader.dataset.split = 'val' if fgvc else 'val200'
    return cfg


def run_training(cfg, work_dir: str, gpus: int = 1,
                 dry_run: bool = False) -> List[str]:
    """Dump ``cfg`` into ``work_dir`` and train it with tools/."""
    os.makedirs(work_dir, exist_ok=True)
    path = osp.join(work_dir, 'config.py')
    cfg.dump(path)
    if gpus > 1:
        cmd = ['bash', osp.join(ROOT, 'tools', 'dist_train.sh'), path,
               str(gpus), '--work-dir', work_dir]
    else:
        cmd = [sys.executable, osp.join(ROOT, 'tools', 'train.py'), path,
               '--work-dir', work_dir]
    if not dry_run:
        subprocess.run(cmd, check=True)
    return cmd


def last_accuracy(work_dir: str) -> float:
    """The last top-1 accuracy a run logged (its final evaluation)."""
    files = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                      'scalars.json')))
    acc = None
    for f in files:
        with open(f) as fh:
            for line in fh:
                rec = json.loads(line)
                if 'accuracy/top1' in rec:
                    acc = rec['accuracy/top1']
    if acc is None:
        raise FileNotFoundError(f'{work_dir}: no accuracy/top1 logged')
    return float(acc)


def _fmt(x: Optional[float], nd: int = 1) -> str:
    return '-' if x is None else f'{x:.{nd}f}'


def report(results: Dict[str, dict], bench: str, method: str,
           params: Dict[str, int], tasks: List[str]) -> str:
    """Markdown table: per task ours (mean ± std over seeds) and the
    paper's, group means, mean parameters."""
    paper, paper_params = PAPER[bench].get(method, (None, None))
    ours = [results.get(t, {}).get('mean') for t in tasks]
    rows = ['| task | ours | std | seeds | paper |', '|---|---:|---:|---:|---:|']

    def mean(xs):  # None unless every value is there
        return None if not xs or any(x is None for x in xs) else \
            sum(xs) / len(xs)

    groups = VTAB_GROUPS if bench == 'vtab' else (('FGVC', len(tasks)), )
    start, group_means = 0, []
    for g, n in groups:
        for i in range(start, start + n):
            r = results.get(tasks[i], {})
            rows.append(f'| {tasks[i]} | {_fmt(ours[i])} | '
                        f'{_fmt(r.get("std"), 2)} | '
                        f'{len(r.get("seeds", []))} | '
                        f'{_fmt(paper[i] if paper else None)} |')
        ours_g = mean(ours[start:start + n])
        paper_g = mean(paper[start:start + n]) if paper else None
        group_means.append((ours_g, paper_g))
        rows.append(f'| **{g} mean** | {_fmt(ours_g, 2)} | | | '
                    f'{_fmt(paper_g, 2)} |')
        start += n
    if bench == 'vtab':
        rows.append(f'| **group mean** | {_fmt(mean([o for o, _ in group_means]), 2)}'
                    f' | | | {_fmt(mean([p for _, p in group_means]), 2)} |')
    counted = [params[t] for t in tasks if t in params]
    mp = sum(counted) / len(counted) / 1e6 if counted else None
    rows.append(f'| **mean params (M)** | {_fmt(mp, 3)} | | | '
                f'{_fmt(paper_params, 2)} |')
    return '\n'.join(rows)


def summarise_seeds(accs: Dict[int, float]) -> dict:
    vals = list(accs.values())
    return dict(seeds=sorted(accs), accs=accs,
                mean=statistics.mean(vals),
                std=statistics.stdev(vals) if len(vals) > 1 else 0.)
