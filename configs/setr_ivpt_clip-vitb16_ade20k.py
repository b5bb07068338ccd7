# iVPT as the paper's segmentation setting (Table 7: N=10, CDC + DA, AR off,
# SETR-PUP) on a frozen CLIP ViT-B/16 image tower (OpenAI), ADE20K 512x512.
# An extension: no paper reports it.
_base_ = ['./_base_/setr_pup_clip-vitb16_ade20k.py']
model = dict(
    backbone=dict(
        num_prompts=10,
        prompt_structure='cdc',
        dynamic_aggregation=True,
        ar_tokens=0))
