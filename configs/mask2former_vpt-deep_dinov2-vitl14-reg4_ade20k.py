# VPT-deep (N=10 independent prompts per block) on a frozen DINOv2 ViT-L/14
# with 4 registers, Mask2Former, ADE20K 518x518.
_base_ = ['./_base_/mask2former_dinov2-vitl14-reg4_ade20k.py']
model = dict(backbone=dict(num_prompts=10, prompt_structure='deep'))
