# VPT-deep (N=10 independent prompts per block), SETR-PUP, frozen DINOv2
# ViT-L/14 with 4 registers, ADE20K 518x518 (the Table 7 baseline's setting).
_base_ = ['./_base_/setr_pup_dinov2-vitl14-reg4_ade20k.py']
model = dict(backbone=dict(num_prompts=10, prompt_structure='deep'))
