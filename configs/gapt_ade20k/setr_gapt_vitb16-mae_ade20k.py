# GaPT paper Table 3, MAE "Ours": gated prompt tuning with adaptive
# attention shaping, 100 prompts, gate init 10 (Table 5's ADE20K row: BS 16,
# 100 prompts, LR 0.001, gate init 10), SETR-PUP, ViT-B/16, ADE20K.
# Paper mIoU 38.44 (SS) / 39.81 (MS).
# Prompt dropout 0.1, learnable temperatures (GaPT's run.sh). Trainable:
# heads + 100 x 768 prompts + 11 gates + 12 temperatures.
_base_ = ['../_base_/setr_pup_vitb16_ade20k.py']
model = dict(
    backbone=dict(
        type='GatedViT',
        num_prompts=100,
        gate_init=10.,
        learn_temperature=True,
        prompt_dropout=0.1))
