# GaPT paper Table 3, MoCo-v3 "Ours": gated prompt tuning with adaptive
# attention shaping, 100 prompts, gate init 10 (Table 5's ADE20K row: BS 16,
# 100 prompts, LR 0.001, gate init 10), SETR-PUP, ViT-B/16, ADE20K.
# Paper mIoU 36.81 (SS) / 38.55 (MS).
# The MAE config with MoCo-v3's ViT-B/16 (linear-vit-b-300ep.pth.tar as
# MoCo-v3 released it, the file of VPT's model zoo, which GaPT used;
# docs/checkpoints.md; its linear head is ignored).
_base_ = ['./setr_gapt_vitb16-mae_ade20k.py']
pretrained = 'pretrain/linear-vit-b-300ep.pth.tar'
model = dict(backbone=dict(init_cfg=dict(checkpoint=pretrained)))
