# GaPT on DINOv2 ViT-L/14 with 4 registers, SETR-PUP, ADE20K 518x518: the
# setting of setr_gapt_vitl_ade20k.py (N=10, gate init 5, learnable
# temperatures, prompt dropout 0.1) on this encoder. An extension: no paper
# reports it. The gated shallow prompts sit after cls and the registers.
_base_ = ['./_base_/setr_pup_dinov2-vitl14-reg4_ade20k.py']
model = dict(
    backbone=dict(
        type='GatedViT',
        num_prompts=10,
        gate_init=5.,
        learn_temperature=True,
        prompt_dropout=0.1))
