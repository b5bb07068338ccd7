# Bias-tuning baseline (Table 7): the ViT-L blocks' biases (270,336) + heads.
_base_ = ['./_base_/setr_pup_vitl_ade20k.py']
model = dict(backbone=dict(num_prompts=0, finetune='bias'))
