# The runtime of the classification configs (VTAB-1k, FGVC): mmpretrain's
# default runtime with this toolbox imported, prompt-only checkpoints and
# the first of VPT's five seeds. The ADE20K configs run on mmseg's runtime
# (models/setr_pup_vitl16.py).
_base_ = ['mmpretrain::_base_/default_runtime.py']
custom_imports = dict(imports=['mmseg_ivpt'], allow_failed_imports=False)

# A checkpoint after every epoch, the last one kept (the one --resume, the
# protocol's resumed runs and tools/test.py read: epoch_<max_epochs>.pth at
# the end), so a killed run loses at most the epoch it was in. A
# prompt-only checkpoint is small (docs/cluster.md: its size and the time
# to write it); the protocol's full fine-tuning saves every 10 epochs.
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=1),
    logger=dict(type='LoggerHook', interval=10))
# Checkpoints hold the trained tensors (prompts, head) and what resuming
# needs, not the frozen encoder (docs/checkpoints.md).
custom_hooks = [dict(type='PromptOnlyCheckpointHook')]
randomness = dict(seed=42)  # the first of VPT's five seeds
