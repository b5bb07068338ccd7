# The runtime of the classification configs (VTAB-1k, FGVC): mmpretrain's
# default runtime with this toolbox imported, prompt-only checkpoints, one
# checkpoint kept (interval 100: the end of schedules/vpt_sgd_100e.py) and
# the first of VPT's five seeds. The ADE20K configs run on mmseg's runtime
# (models/setr_pup_vitl16.py).
_base_ = ['mmpretrain::_base_/default_runtime.py']
custom_imports = dict(imports=['mmseg_ivpt'], allow_failed_imports=False)

default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=100, max_keep_ckpts=1),
    logger=dict(type='LoggerHook', interval=10))
# Checkpoints hold the trained tensors (prompts, head) and what resuming
# needs, not the frozen encoder (docs/checkpoints.md).
custom_hooks = [dict(type='PromptOnlyCheckpointHook')]
randomness = dict(seed=42)  # the first of VPT's five seeds
