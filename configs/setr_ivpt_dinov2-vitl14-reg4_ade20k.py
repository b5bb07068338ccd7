# iVPT as the paper's segmentation setting (Table 7: N=10, CDC + DA, AR off,
# SETR-PUP) on a frozen DINOv2 ViT-L/14 with 4 registers, ADE20K 518x518.
# An extension: no paper reports it.
_base_ = ['./_base_/setr_pup_dinov2-vitl14-reg4_ade20k.py']
model = dict(
    backbone=dict(
        num_prompts=10,
        prompt_structure='cdc',
        dynamic_aggregation=True,
        ar_tokens=0))
