# GaPT paper Table 3, MoCo-v3 VPT-shallow: 100 prompts at the input, SETR-PUP,
# ViT-B/16, ADE20K. Paper mIoU 34.55 (SS) / 36.18 (MS).
# The MAE config with MoCo-v3's ViT-B/16 (linear-vit-b-300ep.pth.tar as
# MoCo-v3 released it, the file of VPT's model zoo, which GaPT used;
# docs/checkpoints.md; its linear head is ignored).
_base_ = ['./setr_vpt-shallow_vitb16-mae_ade20k.py']
pretrained = 'pretrain/linear-vit-b-300ep.pth.tar'
model = dict(backbone=dict(init_cfg=dict(checkpoint=pretrained)))
