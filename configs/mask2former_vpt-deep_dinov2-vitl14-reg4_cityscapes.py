# VPT-deep (N=10 independent prompts per block) on a frozen DINOv2 ViT-L/14
# with 4 registers, Mask2Former, Cityscapes 518x1036.
_base_ = ['./_base_/mask2former_dinov2-vitl14-reg4_cityscapes.py']
model = dict(backbone=dict(num_prompts=10, prompt_structure='deep'))
