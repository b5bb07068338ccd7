# GaPT on ViT-L/16 MAE, ADE20K: an EXTENSION of this toolbox, run by no
# paper. GaPT's own ADE20K experiments (GaPT paper Sec. 5.1, Tables 3 and 5)
# are on ViT-B/16 MAE and MoCo-v3 with 100 prompts, gate init 10 and every
# tensor at SETR-PUP's lr: configs/gapt_ade20k/. This config instead sets
# GaPT beside the iVPT paper's Table 7 rows: the ViT-L/16 SETR-PUP recipe of
# the other configs of this folder (512x512, 160k iterations, batch 16, the
# heads at blocks 9/14/19/23 without MAE's final norm, final_norm=False) and
# their x1000 lr for the method's tensors (prompt_lr_mult), on MAE's ViT-L/16
# (mae_pretrain_vit_large.pth as released, docs/checkpoints.md), with N=10
# as the N=10 rows of Table 7. Gate init 5 is our choice (GaPT's README runs
# CUB with it; no paper gives a ViT-L ADE20K setting). Gated shallow prompts
# with per-block attention temperatures.
_base_ = ['./_base_/setr_pup_vitl_ade20k.py']
pretrained = 'pretrain/mae_pretrain_vit_large.pth'
model = dict(
    backbone=dict(
        type='GatedViT',
        num_prompts=10,
        gate_init=5.,
        learn_temperature=True,
        prompt_dropout=0.1,
        init_cfg=dict(checkpoint=pretrained)))
