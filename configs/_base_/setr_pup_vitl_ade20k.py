# SETR-PUP on a frozen ViT-L/16, ADE20K 512x512, 160k iterations, batch 16
# (8 GPUs x 2): mmseg's own recipe (setr_vit-l_pup_8xb2-160k_ade20k-512x512:
# heads, data, SGD lr 0.001 with head lr x10, PolyLR), with the backbone
# replaced by this toolbox's. The method's arguments come from each config.
_base_ = ['mmseg::setr/setr_vit-l_pup_8xb2-160k_ade20k-512x512.py']
custom_imports = dict(imports=['mmseg_ivpt'], allow_failed_imports=False)

# The one place that names the pretrained ViT-L/16 (ImageNet-21k). Make it
# with `python tools/convert_checkpoint.py` from timm or Google's npz: see
# docs/checkpoints.md. Any timm / mmseg / mmpretrain ViT-L file works.
pretrained = 'pretrain/vit-large-p16_in21k.pth'

model = dict(
    backbone=dict(
        _delete_=True,
        type='PromptedViT',
        arch='l',
        img_size=(512, 512),
        patch_size=16,
        out_indices=(9, 14, 19, 23),
        final_norm=False,  # as mmseg's SETR ViT-L
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)))

# Checkpoints hold the trained tensors (prompts, heads) and what resuming and
# init_model need, not the frozen ViT (1.2 GB). `custom_hooks = []` in a
# config (or --cfg-options custom_hooks=[]) saves full checkpoints instead.
custom_hooks = [dict(type='PromptOnlyCheckpointHook')]
