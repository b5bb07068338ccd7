"""How far the prompt tensors move, and what mIoU they reach, under mmseg's
SETR ADE20K optimizer for a range of learning-rate multipliers on the
method's tensors (those its backbone declares: ``prompts``, ``da_weights``,
``ar_prompts``, EXPRESS's residuals, ``gate_logits``, ``temperatures``).
Behind the ``prompt_lr_mult`` default of
configs/_base_/setr_pup_vitl_ade20k.py (docs/reproduction.md).

    python tools/analysis/seg_prompt_lr.py --mults 1 10 100 1000 --iters 600

Runs on the demo task (generated shapes, a frozen random tiny ViT, iVPT
CDC + DA, SETR-PUP heads: configs/demo/setr_ivpt_tiny_shapes.py) with the
optimizer of mmseg's ``setr_vit-l_pup_8xb2-160k_ade20k-512x512.py``: SGD,
lr 0.001, momentum 0.9, weight decay 0, heads x10, PolyLR (power 0.9,
eta_min 1e-4). Prints a markdown table: multiplier, the prompts' relative
displacement ``||P_end - P_0|| / ||P_0||``, the DA matrices' distance from
the identity, val mIoU. Every run is in-process and seeded alike.
"""
import argparse
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
from tools._venv import ensure  # noqa: E402

ensure()  # the repository's .venv unless this python has the packages
CONFIG = osp.join(ROOT, 'configs', 'demo', 'setr_ivpt_tiny_shapes.py')


def setr_optimizer(mult: float, iters: int) -> dict:
    """mmseg's SETR ADE20K optimizer and schedule, the method's tensors
    (what the backbone declares: ``PromptOptimWrapperConstructor``) x
    mult."""
    return dict(
        optim_wrapper=dict(
            type='OptimWrapper', constructor='PromptOptimWrapperConstructor',
            optimizer=dict(type='SGD', lr=0.001, momentum=0.9,
                           weight_decay=0.0),
            paramwise_cfg=dict(custom_keys={'head': dict(lr_mult=10.)},
                               method_lr_mult=mult)),
        param_scheduler=[dict(type='PolyLR', eta_min=1e-4, power=0.9,
                              begin=0, end=iters, by_epoch=False)])


def run_one(mult: float, iters: int, work_dir: str) -> dict:
    import torch
    from mmengine.config import Config
    from mmengine.hooks import Hook

    from mmseg_ivpt.engine.runner import build_runner

    class Record(Hook):
        """Method tensors after init (before_train) and the val metrics."""
        def before_train(self, runner):
            bb = runner.model.backbone
            self.start = {n: p.detach().clone()
                          for n, p in bb.method_parameters().items()}

        def after_val_epoch(self, runner, metrics=None):
            self.metrics = dict(metrics or {})

    cfg = Config.fromfile(CONFIG)
    cfg.update(setr_optimizer(mult, iters))
    cfg.train_cfg.max_iters = cfg.train_cfg.val_interval = iters
    cfg.default_hooks.checkpoint.interval = iters
    cfg.work_dir = osp.join(work_dir, f'mult{mult:g}')
    cfg.experiment_name = f'mult{mult:g}'
    runner = build_runner(cfg, 'train')
    rec = Record()
    runner.register_hook(rec)
    model = runner.train()
    bb = model.backbone
    p0, p1 = rec.start['prompts'], bb.prompts.detach()
    out = dict(mult=mult, prompt_move=float((p1 - p0).norm() / p0.norm()),
               miou=float(rec.metrics.get('mIoU', float('nan'))))
    if bb.da_weights is not None:
        eye = torch.eye(bb.da_weights.shape[-1])
        out['da_move'] = float((bb.da_weights.detach() - eye).norm()
                               / eye.expand_as(bb.da_weights).norm())
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--mults', type=float, nargs='+',
                   default=[1., 10., 100., 1000.])
    p.add_argument('--iters', type=int, default=600)
    p.add_argument('--work-dir', default='work_dirs/seg_prompt_lr')
    args = p.parse_args()

    import torch
    from mmengine.config import Config

    import mmseg_ivpt  # noqa: F401
    from mmseg_ivpt.datasets import generate_shapes_dataset
    from mmseg_ivpt.models import ViTEncoder
    cfg = Config.fromfile(CONFIG)
    data_root = osp.join(ROOT, cfg.data_root)
    pretrained = osp.join(ROOT, cfg.pretrained)
    generate_shapes_dataset(data_root, num_train=200, num_val=40)
    if not osp.isfile(pretrained):  # as tools/demo.py writes it
        torch.manual_seed(0)
        torch.save(ViTEncoder(arch=cfg.tiny_vit, img_size=cfg.crop_size,
                              patch_size=8).state_dict(), pretrained)
    import os
    os.chdir(ROOT)  # the demo config's paths are relative to the root
    rows = [run_one(m, args.iters, args.work_dir) for m in args.mults]
    print('\n| prompt lr mult | prompt lr | ||P-P0||/||P0|| | '
          '||Γ-I||/||I|| | val mIoU |')
    print('|---:|---:|---:|---:|---:|')
    for r in rows:
        print(f"| {r['mult']:g} | {0.001 * r['mult']:g} | "
              f"{r['prompt_move']:.4f} | {r.get('da_move', float('nan')):.4f}"
              f" | {r['miou']:.2f} |")


if __name__ == '__main__':
    main()
