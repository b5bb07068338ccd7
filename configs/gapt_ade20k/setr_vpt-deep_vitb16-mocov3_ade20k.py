# GaPT paper Table 3, MoCo-v3 VPT-deep: 10 prompts per block (x 12), SETR-PUP,
# ViT-B/16, ADE20K. Paper mIoU 35.50 (SS) / 37.15 (MS).
# The MAE config with MoCo-v3's ViT-B/16 (linear-vit-b-300ep.pth.tar as
# MoCo-v3 released it, the file of VPT's model zoo, which GaPT used;
# docs/checkpoints.md; its linear head is ignored).
_base_ = ['./setr_vpt-deep_vitb16-mae_ade20k.py']
pretrained = 'pretrain/linear-vit-b-300ep.pth.tar'
model = dict(backbone=dict(init_cfg=dict(checkpoint=pretrained)))
