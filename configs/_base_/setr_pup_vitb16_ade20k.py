# ADE20K on SETR-PUP with a frozen, prompted ViT-B/16, GaPT's recipe (GaPT
# paper Sec. 5.1, appendix A.2 and Table 5): SETR-PUP's defaults
# (models/setr_pup_vitb16.py: mmseg's SETR-PUP ADE20K recipe, 512x512, 160k
# iterations, SGD lr 0.001 with the heads x10, PolyLR, batch 16 = 8 GPUs x 2:
# Table 5's BS 16) and the method's tensors at the same lr 0.001 (Table 5's
# LR; the paper states no multiplier for them, unlike this toolbox's ViT-L
# configs, which train them at x1000). Prompt-only checkpoints. The method:
# each config of configs/gapt_ade20k/. One GPU trains batch 2: how to match
# the 16, docs/segmentation.md ("Batch 16 is 8 GPUs x 2 images").
_base_ = ['./models/setr_pup_vitb16.py']

custom_hooks = [dict(type='PromptOnlyCheckpointHook')]

# the method's tensors (prompts, GaPT's gates and temperatures) train at
# prompt_lr_mult x 0.001 (PromptOptimWrapperConstructor asks the backbone
# which tensors they are); 1: GaPT's lr 0.001. --cfg-options prompt_lr_mult=M
prompt_lr_mult = 1.
optim_wrapper = dict(
    constructor='PromptOptimWrapperConstructor',
    paramwise_cfg=dict(method_lr_mult=prompt_lr_mult))
