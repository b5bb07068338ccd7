# Linear probing (Table 7's baseline setting): frozen DINOv2 ViT-L/14 with 4
# registers, only the SETR-PUP heads train, ADE20K 518x518.
_base_ = ['./_base_/setr_pup_dinov2-vitl14-reg4_ade20k.py']
model = dict(backbone=dict(num_prompts=0))
