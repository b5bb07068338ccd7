# VPT-deep baseline (Table 7): N=10 independent prompts per layer.
_base_ = ['./_base_/setr_pup_vitl_ade20k.py']
model = dict(backbone=dict(num_prompts=10, prompt_structure='deep'))
