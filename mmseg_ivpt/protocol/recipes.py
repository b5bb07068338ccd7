"""The protocol's recipes and methods: VPT's seeds and grids, the
reference code's optimizer / batch / warm-up per recipe (``RECIPES``), the
per-method, per-task settings in one form (:class:`TaskSetting`, looked up
by :func:`task_settings`: iVPT's N and k, VPT's N, GaPT's Table 5 batch, N,
gate init and the lr of ``final --paper-lr``, EXPRESS's N), the variants of
the per-task iVPT configs (``METHODS``), and turning a task config into a
method's (:func:`apply_method`, :func:`load_task_config`), its (lr, wd)
grid and splits. docs/reproduction.md lists every setting
beside its source; tests/protocol/test_reproduction.py checks that table
against what this module and the shipped configs produce.

A *method* is a variant of the per-task iVPT configs: backbone overrides and
a *recipe* (optimizer, lr grid, wd grid, batch, warm-up). Applying a method
never drops what the user passes with ``--cfg-options``: those are applied
last, the way ``tools/train.py`` applies them (:func:`load_task_config`).

A config's ``train_dataloader.batch_size`` is, to the protocol, the *total*
batch, as VPT's ``DATA.BATCH_SIZE``: the lr is scaled by it
(:func:`scaled_lr`), and ``--gpus N`` splits it over N processes
(:func:`~mmseg_ivpt.protocol.runs.split_batch`).
"""
import copy
import functools
import inspect
import os.path as osp
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from ..engine.checks import backbone_class
from ..engine.config import apply_cfg_options
from .errors import MethodError
from .tasks import locate, task_of

#: VPT's final-run seeds (tune_vtab.py ``random_seeds``).
VPT_SEEDS = (42, 44, 82, 100, 800)
#: VPT's weight-decay grid (every train type of tune_vtab/tune_fgvc).
VPT_WDS = (0.01, 1e-3, 1e-4, 0.)
#: VPT's 'prompt' and 'linear' base-lr grid (scaled by batch / 256).
PROMPT_LRS = (50., 25., 10., 5., 2.5, 1., 0.5, 0.25, 0.1, 0.05)
#: VPT's 'finetune' base-lr grid (scaled by batch / 256).
FINETUNE_LRS = (0.005, 0.001, 0.0005, 0.0001)
#: GaPT's lr grid (GaPT paper, appendix A.2: "the learning rate was
#: searched among {0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0}"), used as given.
GAPT_LRS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class TaskSetting(NamedTuple):
    """What a method sets per task: the one form of every method's
    per-task settings (:func:`task_settings`). None: the method's recipe
    (or the config) decides, the same for every task."""
    source: str  #: where the numbers are from (a paper's table)
    num_prompts: Optional[int] = None  #: N
    ar_tokens: Optional[int] = None  #: iVPT's k (AR top-k)
    gate_init: Optional[float] = None  #: GaPT (logits start at -gate_init)
    batch: Optional[int] = None  #: the total batch
    lr: Optional[float] = None  #: the paper's lr, as the optimizer gets it

    def backbone(self) -> dict:
        """The backbone arguments it sets."""
        return {k: getattr(self, k) for k in ('num_prompts', 'ar_tokens',
                                              'gate_init')
                if getattr(self, k) is not None}

    def describe(self, task: str) -> str:
        """The per-task part of the recipe (batch, lr), as ``--dry-run``
        prints it; empty where the recipe sets them for every task."""
        if self.batch is None and self.lr is None:
            return ''
        return (f'{self.source} for {task}: batch {self.batch}, N '
                f'{self.num_prompts}, gate init {self.gate_init:g}, lr '
                f'{self.lr:g}, wd 0')


def _rows(**rows) -> Dict[str, TaskSetting]:
    """GaPT Table 5 rows: (BS, # OF PTS, LR, GATE INIT.) per task."""
    return {task: TaskSetting('GaPT Table 5', num_prompts=n,
                              gate_init=float(gate), batch=batch, lr=lr)
            for task, (batch, n, lr, gate) in rows.items()}


#: GaPT paper Table 5 ("Selected hyper-parameters of our method for each
#: downstream task and SSL method"), ssl -> task -> (BS, # of PTs, LR, gate
#: init), in the table's row order, under this toolbox's task names
#: (KITTI-DIST: kitti, RETINOPATHY: diabetic_retinopathy, FLOWERS102: VTAB's
#: oxford_flowers102, FLOWERS: FGVC's oxford_flowers). ``ade20k``: the
#: configs/gapt_ade20k/ configs.
GAPT_TABLE5: Dict[str, Dict[str, TaskSetting]] = {
    'mae': _rows(
        caltech101=(128, 1, 0.5, 5), cifar=(128, 1, 0.25, 5),
        clevr_dist=(128, 1, 0.1, 15), clevr_count=(128, 1, 0.05, 15),
        diabetic_retinopathy=(128, 5, 0.05, 10), dmlab=(128, 1, 0.1, 5),
        dsprites_ori=(128, 1, 0.05, 5), dsprites_loc=(128, 1, 0.1, 5),
        dtd=(128, 1, 0.25, 1), eurosat=(128, 5, 0.1, 1),
        kitti=(128, 5, 0.1, 7), oxford_flowers102=(128, 1, 0.25, 5),
        oxford_iiit_pet=(128, 1, 0.5, 10), patch_camelyon=(128, 1, 0.05, 5),
        resisc45=(128, 10, 0.25, 5), smallnorb_azi=(128, 1, 0.1, 20),
        smallnorb_ele=(128, 1, 0.05, 10), sun397=(128, 1, 0.5, 10),
        svhn=(128, 1, 0.1, 10), cub=(64, 100, 0.1, 5),
        oxford_flowers=(64, 100, 0.1, 15), stanford_cars=(64, 100, 0.25, 5),
        stanford_dogs=(64, 100, 0.5, 15), nabirds=(64, 100, 0.5, 5),
        ade20k=(16, 100, 0.001, 10)),
    'mocov3': _rows(
        caltech101=(128, 10, 2.5, 4), cifar=(128, 10, 1., 15),
        clevr_dist=(128, 5, 1., 10), clevr_count=(128, 5, 0.5, 5),
        diabetic_retinopathy=(128, 5, 0.5, 5), dmlab=(128, 1, 1., 5),
        dsprites_ori=(128, 5, 0.5, 5), dsprites_loc=(128, 5, 0.5, 5),
        dtd=(128, 10, 1., 5), eurosat=(128, 10, 1., 5),
        kitti=(128, 5, 1., 5), oxford_flowers102=(128, 5, 1., 7),
        oxford_iiit_pet=(64, 100, 1., 1), patch_camelyon=(128, 1, 1., 10),
        resisc45=(64, 100, 1., 7), smallnorb_azi=(128, 10, 0.5, 3),
        smallnorb_ele=(128, 5, 0.5, 4), sun397=(128, 1, 1., 4),
        svhn=(128, 5, 1., 10), cub=(64, 100, 1., 5),
        oxford_flowers=(64, 100, 1., 10), stanford_cars=(64, 100, 0.5, 5),
        stanford_dogs=(64, 100, 0.5, 10), nabirds=(64, 100, 1., 5),
        ade20k=(16, 100, 0.001, 10)),
}

#: recipe name -> optimizer, grids, batch and warm-up of the reference;
#: ``default``: the (base lr, wd) a config of the method carries outside the
#: sweep (``tools/train.py`` on it), one point of the grid.
RECIPES: Dict[str, dict] = {
    # configs/base-prompt.yaml + tune_*.py --train-type prompt
    'prompt': dict(optimizer=dict(type='SGD', momentum=0.9),
                   no_decay=('head.fc.bias', ), lrs=PROMPT_LRS, wds=VPT_WDS,
                   scale_lr=True, batch_size=128, warmup_epochs=10,
                   default=(0.25, 1e-4)),
    # configs/base-linear.yaml + --train-type linear
    'linear': dict(optimizer=dict(type='SGD', momentum=0.9),
                   no_decay=('head.fc.bias', ), lrs=PROMPT_LRS, wds=VPT_WDS,
                   scale_lr=True, batch_size=1024, warmup_epochs=10,
                   default=(0.25, 1e-4)),
    # configs/base-finetune.yaml + --train-type finetune (also bias tuning:
    # demo.ipynb runs tinytl-bias on configs/finetune/*.yaml)
    'finetune': dict(optimizer=dict(type='AdamW', betas=(0.9, 0.999),
                                    eps=1e-6),
                     no_decay=('bias', ), lrs=FINETUNE_LRS, wds=VPT_WDS,
                     scale_lr=True, batch_size=384, warmup_epochs=5,
                     default=(0.001, 1e-4)),
    # GaPT: SGD (paper appendix A.2), weight decay 0 and the lr used as
    # given (run.sh; train.py does not scale it), the paper's lr grid;
    # batch, N, gate init and the selected lr per task: GAPT_TABLE5
    'gapt': dict(optimizer=dict(type='SGD', momentum=0.9), no_decay=(),
                 lrs=GAPT_LRS, wds=(0., ), scale_lr=False, batch_size=None,
                 warmup_epochs=10, default=None),
}

#: VPT-deep's prompt length per task (the VPT paper's per-task choice;
#: KMnP/vpt demo.ipynb runs dmlab, eurosat at 100 and sun397 at 5).
VPT_TOKENS = {
    'vtab': dict(cifar=10, caltech101=10, dtd=10, oxford_flowers102=1,
                 oxford_iiit_pet=1, svhn=50, sun397=5, patch_camelyon=100,
                 eurosat=100, resisc45=10, diabetic_retinopathy=1,
                 clevr_count=100, clevr_dist=200, dmlab=100, kitti=100,
                 dsprites_loc=100, dsprites_ori=100, smallnorb_azi=200,
                 smallnorb_ele=200),
    'fgvc': dict(cub=10, nabirds=50, oxford_flowers=5, stanford_dogs=100,
                 stanford_cars=200),
}

#: self-supervised ViT-B/16 files (docs/checkpoints.md) and their pooling:
#: MAE mean of all non-cls tokens + LayerNorm, MoCo-v3 norm + cls token.
SSL = {
    'mae': dict(checkpoint='pretrain/mae_pretrain_vit_base.pth',
                out_type='avg_all_tokens'),
    'mocov3': dict(checkpoint='pretrain/linear-vit-b-300ep.pth.tar',
                   out_type='cls_token'),
}

_OFF = dict(dynamic_aggregation=False, ar_tokens=0)
_VPT_DEEP = dict(prompt_structure='deep', **_OFF)
# GaPT run.sh: shallow prompts, prompt dropout 0.1, learnable temperatures
# (N and gate init per task: GAPT_TABLE5)
_GAPT = dict(type='GatedViT', learn_temperature=True, prompt_dropout=0.1)
#: EXPRESS's prompt length on every task: the N whose mean trainable
#: parameters over VTAB-1k (61·N·D + heads) come closest to the 0.98M of
#: iVPT Table 1 (20: 0.975M; docs/design.md, "EXPRESS's budget")
EXPRESS_TOKENS = 20


def _m(recipe: str, backbone: Optional[dict] = None,
       per_task: Optional[str] = None, ssl: Optional[str] = None,
       replace_backbone=False, save_every: Optional[int] = None) -> dict:
    """``per_task``: whose per-task settings (:data:`PER_TASK`) the method
    takes; None: none (the recipe is the same on every task).
    ``vpt_tokens`` and ``table5`` say the same for the recipe tables of
    docs/reproduction.md (VPT's per-task N, GaPT Table 5). ``save_every``:
    the checkpoint interval in epochs, where not the config's (every
    epoch): a method whose checkpoint is the whole model."""
    return dict(recipe=recipe, backbone=backbone or {}, per_task=per_task,
                ssl=ssl, replace_backbone=replace_backbone,
                vpt_tokens=per_task == 'vpt', table5=per_task == 'gapt',
                save_every=save_every)


#: method name -> recipe and backbone overrides of the iVPT task config.
METHODS: Dict[str, dict] = {
    'ivpt': _m('prompt', per_task='ivpt'),  # CDC + DA + AR top-k
    'cdc_da': _m('prompt', dict(ar_tokens=0), 'ivpt'),  # AR "None" (Table 4)
    'ar_all': _m('prompt', dict(ar_mode='all'), 'ivpt'),  # AR "All" (Table 4)
    'cdc': _m('prompt', dict(_OFF), 'ivpt'),
    'vanilla_cdc': _m('prompt', dict(prompt_structure='vanilla_cdc', **_OFF),
                      'ivpt'),
    'provp': _m('prompt', dict(prompt_structure='provp', **_OFF), 'ivpt'),
    'express': _m('prompt', dict(prompt_structure='express',
                                 num_prompts=EXPRESS_TOKENS, **_OFF),
                  'express'),
    'vpt_deep': _m('prompt', dict(_VPT_DEEP), 'vpt'),
    # demo.ipynb: "we don't use dropout for VPT-shallow"
    'vpt_shallow': _m('prompt', dict(prompt_structure='shallow',
                                     prompt_dropout=0., **_OFF), 'vpt'),
    'linear': _m('linear', dict(num_prompts=0, prompt_dropout=0., **_OFF)),
    'bias': _m('finetune', dict(num_prompts=0, finetune='bias',
                                prompt_dropout=0., **_OFF)),
    # the whole ViT and AdamW's two moments: ~1 GB a checkpoint on ViT-B
    'full': _m('finetune', dict(num_prompts=0, finetune='full',
                                prompt_dropout=0., **_OFF), save_every=10),
    # Table 6: iVPT and VPT-deep on self-supervised ViT-B/16
    'ivpt_mae': _m('prompt', per_task='ivpt', ssl='mae'),
    'ivpt_mocov3': _m('prompt', per_task='ivpt', ssl='mocov3'),
    'vpt_deep_mae': _m('prompt', dict(_VPT_DEEP), 'vpt', ssl='mae'),
    'vpt_deep_mocov3': _m('prompt', dict(_VPT_DEEP), 'vpt', ssl='mocov3'),
    # GaPT as its paper ran it: batch, N, gate init (and the lr of
    # `final --paper-lr`) per task from its Table 5, the rest from its code
    'gapt_mae': _m('gapt', dict(_GAPT), 'gapt', ssl='mae',
                   replace_backbone=True),
    'gapt_mocov3': _m('gapt', dict(_GAPT), 'gapt', ssl='mocov3',
                      replace_backbone=True),
}
#: backbone keys a GaPT backbone takes over from the iVPT task config
_SHARED = ('arch', 'img_size', 'patch_size', 'out_type', 'final_norm',
           'init_cfg')


def recipe_of(method: str) -> dict:
    return RECIPES[_method(method)['recipe']]


def _ivpt_setting(cfg, bench: str, task: str) -> TaskSetting:
    """iVPT's N and k: the task's data set base (``ivpt_tokens``, Tables 16
    and 15), read from the loaded config. They stay in the configs so that
    a task config trains iVPT's recipe by itself (``tools/train.py``); the
    protocol reads them here and never re-applies them (the config's leaf
    already merged them into its backbone)."""
    tokens = cfg.get('ivpt_tokens') or {}
    table = 'iVPT Table 16' if bench == 'vtab' else 'iVPT Table 15'
    return TaskSetting(f'{table} (the task config\'s ivpt_tokens)',
                       num_prompts=tokens.get('num_prompts'),
                       ar_tokens=tokens.get('ar_tokens'))


#: per-task settings source -> (method, config, benchmark, task) -> its
#: :class:`TaskSetting`: iVPT's from the config, VPT's ``VPT_TOKENS``,
#: GaPT's ``GAPT_TABLE5`` (of the method's self-supervised ViT), EXPRESS's
#: ``EXPRESS_TOKENS`` on every task (its backbone's own setting)
PER_TASK = {
    'ivpt': lambda m, cfg, bench, task: _ivpt_setting(cfg, bench, task),
    'vpt': lambda m, cfg, bench, task: TaskSetting(
        "VPT's per-task prompt length",
        num_prompts=VPT_TOKENS[bench][task]),
    'gapt': lambda m, cfg, bench, task: GAPT_TABLE5[m['ssl']][task],
    # the same N on every task: the method's own (EXPRESS_TOKENS)
    'express': lambda m, cfg, bench, task: TaskSetting(
        "EXPRESS's budget (docs/design.md)",
        num_prompts=m['backbone']['num_prompts']),
}


def task_settings(method: str, cfg) -> Optional[TaskSetting]:
    """The one lookup of a method's per-task settings, for the task of
    ``cfg`` (its benchmark from its place in the protocol's table, its
    task from its data set); None for a method whose recipe is the same on
    every task (linear, bias, full)."""
    m = _method(method)
    if m['per_task'] is None:
        return None
    bench = locate(cfg).benchmark
    return PER_TASK[m['per_task']](m, cfg, bench, task_of(cfg, bench))


def paper_lr(method: str, cfg) -> Tuple[float, float]:
    """(lr, wd) the method's paper selected for the task of ``cfg``, as the
    optimizer gets them (``final --paper-lr``): GaPT Table 5's lr, weight
    decay 0. A method whose paper gives no per-task lr is a
    :class:`MethodError`."""
    row = task_settings(method, cfg)
    if row is None or row.lr is None:
        raise MethodError(
            f'method={method!r} has no per-task lr of its paper; --paper-lr '
            'needs one of ' + ', '.join(k for k, v in METHODS.items()
                                        if v['per_task'] == 'gapt') +
            ' (GaPT Table 5); run `sweep` or pass --lr', config=cfg.filename)
    return row.lr, recipe_of(method)['wds'][0]


def describe_recipe(cfg, method: str, gpus: int = 1) -> str:
    """The recipe of ``method`` on ``cfg`` in one line, as ``--dry-run``
    prints it: optimizer, total batch (and its split over ``gpus``),
    warm-up, how the lr is given, and the per-task part where the recipe
    has one (GaPT: its Table 5's row)."""
    r = recipe_of(method)
    opt = cfg.optim_wrapper.optimizer
    batch = cfg.train_dataloader.batch_size
    split = f' ({batch // gpus} per GPU x {gpus})' if gpus > 1 else ''
    row = task_settings(method, cfg)
    per_task = row.describe(task_of(cfg)) if row is not None else ''
    return (f'{method}: {opt.type}, batch {batch}{split}, '
            f'{r["warmup_epochs"]} warm-up epochs of '
            f'{cfg.train_cfg.max_epochs}, lr '
            f'{"base x batch / 256" if r["scale_lr"] else "as given"}'
            + (f'; {per_task}' if per_task else ''))


def _method(method: str) -> dict:
    if method not in METHODS:
        raise MethodError(f'method={method!r}; allowed: {list(METHODS)}')
    return METHODS[method]


def _takes(cls: Optional[type], arg: str) -> bool:
    """Whether backbone class ``cls`` names the argument ``arg`` (an
    unknown class: assumed to)."""
    if cls is None:
        return True
    return arg in inspect.signature(cls.__init__).parameters


def apply_method(cfg, method: str):
    """Turn an iVPT task config into ``method``'s (in place): backbone,
    per-task prompt count, pretrained file and pooling, and the recipe's
    optimizer, no-decay keys, batch and warm-up. Where the method depends
    on the benchmark or backbone (VPT's per-task prompt count, the
    self-supervised ViT-B/16 files), they are the config's place in the
    protocol's table (:func:`~mmseg_ivpt.protocol.tasks.locate`)."""
    m = _method(method)
    where = locate(cfg)  # a task config of the table (UnlistedConfigError)
    bb = cfg.model.backbone
    if m['ssl']:
        backbone = where.backbone
        if backbone != 'vitb16':
            raise MethodError(
                f'method={method!r} runs on the self-supervised ViT-B/16 '
                f'files ({SSL[m["ssl"]]["checkpoint"]}); this config is '
                f'{backbone} ({bb.type}). Use it with a '
                'configs/{vtab,fgvc}/ivpt_vitb16_*.py config',
                config=cfg.filename)
    over = dict(m['backbone'])
    kind = dict(backbone=dict(type=over.get('type', bb.get('type'))))
    if over.get('ar_tokens') == 0 and not _takes(
            backbone_class(kind, cfg.get('default_scope')), 'ar_tokens'):
        # AR off is the only state of a backbone with no AR arguments
        # (PromptedSwin: no cls token, docs/swin.md): nothing to turn off;
        # a method that needs AR (ar_mode=...) still fails there with the
        # backbone's named error
        del over['ar_tokens']
    row = task_settings(method, cfg)
    if row is not None and m['per_task'] != 'ivpt':  # iVPT's: in the config
        over.update(row.backbone())
    if m['ssl']:
        ssl = SSL[m['ssl']]
        over['out_type'] = ssl['out_type']
        over['init_cfg'] = dict(type='Pretrained',
                                checkpoint=ssl['checkpoint'])
        # the config's one name of its pretrained file says the same, so
        # that `--cfg-options pretrained=PATH` replaces this one
        cfg.pretrained = ssl['checkpoint']
    if m['replace_backbone']:
        new = {k: bb[k] for k in _SHARED if k in bb}
        new.update(over)
        cfg.model.backbone = new
    else:
        bb.update(over)
    if m['save_every']:
        cfg.default_hooks.checkpoint.interval = m['save_every']
    if row is None or row.lr is None:
        _apply_recipe(cfg, RECIPES[m['recipe']])
    else:  # Table 5's batch, and its lr as the config's one point
        _apply_recipe(cfg, RECIPES[m['recipe']], row.batch, (row.lr, 0.))
    return cfg


def _apply_recipe(cfg, recipe: dict, batch: Optional[int] = None,
                  default: Optional[Tuple[float, float]] = None) -> None:
    """The recipe's optimizer, no-decay keys, batch and warm-up; ``batch``
    and ``default`` (base lr, wd) where the recipe has them per task."""
    batch = batch or recipe['batch_size']
    base_lr, wd = default or recipe['default']
    scale = batch / 256 if recipe['scale_lr'] else 1.
    cfg.optim_wrapper.optimizer = dict(recipe['optimizer'], lr=base_lr * scale,
                                       weight_decay=wd)
    cfg.optim_wrapper.paramwise_cfg = dict(custom_keys={
        k: dict(decay_mult=0.) for k in recipe['no_decay']})
    cfg.train_dataloader.batch_size = batch
    warm, total = recipe['warmup_epochs'], cfg.train_cfg.max_epochs
    linear, cosine = cfg.param_scheduler  # the base config's, per epoch
    linear.end, cosine.begin = warm + 1, warm  # LinearLR ends at end - 1
    cosine.T_max = total - warm


def scaled_lr(base_lr: float, cfg, method: str) -> float:
    """The lr the optimizer gets from ``base_lr``: ``base x batch / 256``
    where the recipe scales it (VPT's ``tune_*.py`` ``setup``, with the
    total batch ``DATA.BATCH_SIZE`` whatever the number of GPUs: here the
    config's ``train_dataloader.batch_size``), else ``base_lr`` (GaPT)."""
    if not recipe_of(method)['scale_lr']:
        return base_lr
    return base_lr * cfg.train_dataloader.batch_size / 256


def method_grid(method: str) -> List[Tuple[float, float]]:
    """The method's (base lr, wd) grid, in the reference's order."""
    r = recipe_of(method)
    return [(lr, wd) for lr in r['lrs'] for wd in r['wds']]


def lr_grid(cfg, method: str, lrs: Optional[Sequence[float]] = None,
            wds: Optional[Sequence[float]] = None
            ) -> List[Tuple[float, float, float]]:
    """(base lr, wd, lr the optimizer gets) for every run of the sweep, in
    the reference's order (``lrs``, ``wds``: instead of the method's)."""
    r = recipe_of(method)
    return [(lr, wd, scaled_lr(lr, cfg, method)) for lr in (lrs or r['lrs'])
            for wd in (r['wds'] if wds is None else wds)]


def pick_best(scores: Dict[str, dict]) -> dict:
    """The run with the best val top-1; ties go to the smaller lr
    (tune_vtab.find_best_lrwd: "get the smallest lr to break tie for
    stability"), then to the larger wd (an order the reference leaves to
    the file system)."""
    return max(scores.values(),
               key=lambda s: (s['val_top1'], -s['lr'], s['wd']))


def set_splits(cfg, stage: str):
    """``sweep``: train800 / val200 (FGVC: train / val). ``final``: VTAB
    train800val200 / test, FGVC train / test (VPT's tune_fgvc.py trains on
    train.json only; val.json served the choice of lr and wd). The benchmark
    is the config's in the protocol's table."""
    fgvc = locate(cfg).benchmark == 'fgvc'
    if stage == 'sweep':
        train, val = ('train', 'val') if fgvc else ('train800', 'val200')
    else:
        train, val = ('train', 'test') if fgvc else ('train800val200', 'test')
    cfg.train_dataloader.dataset.split = train
    cfg.val_dataloader.dataset.split = val
    cfg.test_dataloader.dataset.split = val
    return cfg


@functools.lru_cache(maxsize=None)
def _parsed(path: str):
    from mmengine.config import Config
    return Config.fromfile(path)  # mmpretrain:: bases: hundreds of files


def load_task_config(path: str, method: Optional[str],
                     cfg_options: Optional[dict]):
    """A task config turned into ``method``'s (None: as it is), the user's
    options last, applied as ``tools/train.py`` applies them
    (:func:`~mmseg_ivpt.engine.config.apply_cfg_options`: ``arch``
    presets, ``pretrained``, ``data_root``); a fresh copy of a cached parse
    of ``path``."""
    cfg = copy.deepcopy(_parsed(osp.abspath(path)))
    if method:
        apply_method(cfg, method)
    apply_cfg_options(cfg, cfg_options)
    return cfg
