# iVPT (Table 7): N=10 prompts, CDC + DA, AR off (segmentation), SETR-PUP,
# ViT-L/16, ADE20K. Trainable: heads + 24*10*1024 prompts + 23*10*10 DA.
_base_ = ['./_base_/setr_pup_vitl_ade20k.py']
model = dict(
    backbone=dict(
        num_prompts=10,
        prompt_structure='cdc',
        dynamic_aggregation=True,
        ar_tokens=0))
