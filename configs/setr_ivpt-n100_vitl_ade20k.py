# iVPT (Table 7) with N=100 prompts.
_base_ = ['./setr_ivpt_vitl_ade20k.py']
model = dict(backbone=dict(num_prompts=100))
