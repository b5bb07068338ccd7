# ADE20K on SETR-PUP with a frozen, prompted ViT-L/16: mmseg's own recipe
# (setr_vit-l_pup_8xb2-160k_ade20k-512x512: heads, data, SGD lr 0.001 with
# head lr x10, PolyLR, 160k iterations, batch 16 = 8 GPUs x 2) on the model
# of models/setr_pup_vitl16.py, with two additions: the method's tensors
# train at their own lr multiplier, and checkpoints are prompt-only. The
# method's arguments come from each config.
_base_ = ['./models/setr_pup_vitl16.py']

# Checkpoints hold the trained tensors (prompts, heads) and what resuming and
# init_model need, not the frozen ViT (1.2 GB). `custom_hooks = []` in a
# config (or --cfg-options custom_hooks=[]) saves full checkpoints instead.
custom_hooks = [dict(type='PromptOnlyCheckpointHook')]

# mmseg's SETR recipe trains at SGD lr 0.001 (heads x10), a rate meant for
# fine-tuning the ViT itself. The method's tensors (prompts, DA, AR, GaPT's
# gates and temperatures) are another kind of parameter: at lr 0.001 they
# barely move (0.09% of their norm in 300 demo iterations; classification
# trains them at SGD lr 0.025-25). They get their own multiplier, chosen by
# measurement (tools/analysis/seg_prompt_lr.py, docs/reproduction.md):
# x1000 puts them at lr 1.0, inside the classification range. Which
# tensors they are, the backbone declares (method_parameters());
# PromptOptimWrapperConstructor (mmseg_ivpt/engine/optim.py) gives them
# method_lr_mult, whatever the custom_keys. Change it with
# --cfg-options prompt_lr_mult=M.
prompt_lr_mult = 1000.
optim_wrapper = dict(
    constructor='PromptOptimWrapperConstructor',
    paramwise_cfg=dict(method_lr_mult=prompt_lr_mult))
