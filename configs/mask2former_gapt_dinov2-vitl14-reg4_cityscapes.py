# GaPT (N=10, gate init 5, learnable temperatures, prompt dropout 0.1: the
# setting of setr_gapt_dinov2-vitl14-reg4_ade20k.py) on a frozen DINOv2
# ViT-L/14 with 4 registers, Mask2Former, Cityscapes 518x1036.
# An extension: no paper reports it.
_base_ = ['./_base_/mask2former_dinov2-vitl14-reg4_cityscapes.py']
model = dict(
    backbone=dict(
        type='GatedViT',
        num_prompts=10,
        gate_init=5.,
        learn_temperature=True,
        prompt_dropout=0.1))
