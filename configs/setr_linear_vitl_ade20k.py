# Linear probing baseline (Table 7): frozen ViT-L, only the SETR heads train.
_base_ = ['./_base_/setr_pup_vitl_ade20k.py']
model = dict(backbone=dict(num_prompts=0))
