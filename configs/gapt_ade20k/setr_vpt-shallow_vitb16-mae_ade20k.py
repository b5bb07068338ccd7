# GaPT paper Table 3, MAE VPT-shallow: 100 prompts at the input, SETR-PUP,
# ViT-B/16, ADE20K. Paper mIoU 34.20 (SS) / 35.23 (MS).
# No prompt dropout (VPT's demo.ipynb: "we don't use dropout for
# VPT-shallow"). Trainable: heads + 100 x 768 prompts.
_base_ = ['../_base_/setr_pup_vitb16_ade20k.py']
model = dict(
    backbone=dict(
        num_prompts=100, prompt_structure='shallow', prompt_dropout=0.))
