# The frozen DINOv2 ViT-L/14 with 4 registers alone (no prompts; the
# analogue of linear probing: only the neck and the Mask2Former head
# train), ADE20K 518x518. The baseline of the prompted configs.
_base_ = ['./_base_/mask2former_dinov2-vitl14-reg4_ade20k.py']
model = dict(backbone=dict(num_prompts=0))
