"""A bank of tiny random tasks on a tiny random ViT, to try the service and
to benchmark it where no trained task exists (tools/analysis/
benchmark_serve.py, tests/apis/test_serve.py).

Three tasks, built from the shipped configs with a 4-block, 64-channel ViT:
``eurosat`` (iVPT N=3, AR k=2, 32-pixel crops, 10 classes), ``cub`` (VPT-deep
N=5, 32-pixel crops, 200 classes) and ``shapes`` (the demo's SETR on the
shapes set, 64-pixel crops). Their checkpoints are full ones (the ViT inside,
equal to the encoder file) holding the models' random initialisation: no
training, a few seconds on a CPU.
"""
import os
import os.path as osp

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
#: the ViT of the demo bank (ViT-B's layout, 64 channels, 4 blocks)
TINY_ARCH = dict(embed_dims=64, num_layers=4, num_heads=4,
                 feedforward_channels=128)

_CLS = """
_base_ = [{base!r}]
model = dict(backbone=dict(arch=dict(_delete_=True, **{arch!r}),
                           img_size=32, patch_size=8, {backbone}
                           init_cfg=dict(checkpoint={vit!r})),
             head=dict(in_channels=64))
_test = [dict(type='LoadImageFromFile'),
         dict(type='ResizeEdge', scale=36, edge='short'),
         dict(type='CenterCrop', crop_size=32), dict(type='PackInputs')]
test_dataloader = dict(dataset=dict(pipeline=_test))
"""
_SEG = """
_base_ = [{base!r}]
model = dict(backbone=dict(arch=dict(_delete_=True, **{arch!r}),
                           init_cfg=dict(checkpoint={vit!r})),
             decode_head=dict(in_channels=64),
             auxiliary_head=dict(in_channels=64))
"""
TASKS = (
    ('eurosat', 'configs/vtab/ivpt_vitb16_eurosat.py',
     'num_prompts=3, ar_tokens=2,'),
    ('cub', 'configs/fgvc/ivpt_vitb16_cub.py',
     "num_prompts=5, ar_tokens=0, prompt_structure='deep', "
     'dynamic_aggregation=False,'),
    ('shapes', 'configs/demo/setr_ivpt_tiny_shapes.py', None),
)


def write_demo_bank(path: str, seed: int = 0) -> str:
    """Write the bank file ``path`` and, in its folder, the encoder and
    the three tasks' configs and checkpoints (the bank file last, each
    file whole or not at all); returns ``path``. The same ``seed`` writes
    the same tensors."""
    import torch
    import yaml
    from mmengine.registry import DefaultScope

    from ..apis.bank import _registry
    from ..apis.inference import scope_of
    from ..engine.config import read_config
    from ..models import ViTEncoder
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    torch.manual_seed(seed)
    vit = osp.join(folder, 'vit.pth')
    torch.save(ViTEncoder(arch=TINY_ARCH, img_size=64,
                          patch_size=8).state_dict(), vit + '.tmp')
    os.replace(vit + '.tmp', vit)
    entries = []
    for name, base, backbone in TASKS:
        text = (_SEG if backbone is None else _CLS).format(
            base=osp.join(ROOT, base), arch=TINY_ARCH, vit=vit,
            backbone=backbone)
        cfg_path = osp.join(folder, f'{name}.py')
        with open(cfg_path, 'w') as f:
            f.write(text)
        cfg = read_config(cfg_path)
        scope = scope_of(cfg)
        if cfg.get('data_preprocessor'):
            cfg.model.setdefault('data_preprocessor', cfg.data_preprocessor)
        with DefaultScope.overwrite_default_scope(scope):
            model = _registry(scope).MODELS.build(cfg.model)
        model.init_weights()  # the encoder file into the ViT
        head = cfg.model.get('decode_head') or cfg.model.head
        classes = [f'{name}_{i}' for i in range(head.num_classes)]
        ckpt = osp.join(folder, f'{name}.pth')
        torch.save(dict(state_dict=model.state_dict(),
                        meta=dict(dataset_meta=dict(classes=classes))),
                   ckpt + '.tmp')
        os.replace(ckpt + '.tmp', ckpt)
        entries.append(dict(name=name, config=f'{name}.py',
                            checkpoint=f'{name}.pth'))
    with open(path + '.tmp', 'w') as f:
        yaml.safe_dump(dict(encoder='vit.pth', tasks=entries), f,
                       sort_keys=False)
    os.replace(path + '.tmp', path)
    return path
