# iVPT (N=10, CDC + DA, AR off: the setting of
# setr_ivpt_dinov2-vitl14-reg4_ade20k.py, the iVPT paper's Table 7) on a
# frozen DINOv2 ViT-L/14 with 4 registers, Mask2Former, Cityscapes 518x1036.
# An extension: no paper reports it.
_base_ = ['./_base_/mask2former_dinov2-vitl14-reg4_cityscapes.py']
model = dict(
    backbone=dict(
        num_prompts=10,
        prompt_structure='cdc',
        dynamic_aggregation=True,
        ar_tokens=0))
