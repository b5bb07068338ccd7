# GaPT baseline: gated shallow prompts (N=10) with per-block attention
# temperatures, on the same ViT-L/16 as the other ADE20K configs. GaPT is
# meant for self-supervised ViTs: for MAE ViT-L pass
#   --cfg-options model.backbone.init_cfg.checkpoint=pretrain/mae_pretrain_vit_large.pth
_base_ = ['./_base_/setr_pup_vitl_ade20k.py']
model = dict(
    backbone=dict(
        type='GatedViT',
        num_prompts=10,
        gate_init=10.,
        learn_temperature=True,
        prompt_dropout=0.1))
