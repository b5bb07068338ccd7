# GaPT paper Table 3, MAE VPT-deep: 10 prompts per block (x 12), SETR-PUP,
# ViT-B/16, ADE20K. Paper mIoU 37.76 (SS) / 38.80 (MS).
# Prompt dropout 0.1 (VPT's deep-prompt runs). Trainable: heads + 12 x 10 x
# 768 prompts.
_base_ = ['../_base_/setr_pup_vitb16_ade20k.py']
model = dict(
    backbone=dict(
        num_prompts=10, prompt_structure='deep', prompt_dropout=0.1))
