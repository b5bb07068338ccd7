# The frozen DINOv2 ViT-L/14 with 4 registers alone (no prompts; the
# analogue of linear probing: only the neck and the Mask2Former head
# train), Cityscapes 518x1036. The baseline of the prompted configs.
_base_ = ['./_base_/mask2former_dinov2-vitl14-reg4_cityscapes.py']
model = dict(backbone=dict(num_prompts=0))
