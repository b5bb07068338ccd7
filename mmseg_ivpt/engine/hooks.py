"""Prompt-only checkpoints: save what training changed, not the frozen ViT."""
from collections import OrderedDict

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from ..models import PromptTunedViT


@HOOKS.register_module()
class PromptOnlyCheckpointHook(Hook):
    """Drop the frozen parameters from every checkpoint the runner saves.

    What stays: every parameter that trains (prompts, DA, AR, gates,
    temperatures, biases in bias tuning, the heads), every buffer (the heads'
    BatchNorm statistics), and all of mmengine's own entries (``meta`` with
    ``dataset_meta``: class names and palette; ``optimizer``;
    ``param_schedulers``; ``message_hub``), so the file resumes training and
    serves ``init_model`` like a full one. Loading it needs the pretrained
    ViT the backbone's ``init_cfg`` names: its path is written into the
    state dict's metadata of the backbone (``_metadata['backbone']
    ['pretrained']``), where the backbone finds it when loading even if the
    loader dropped ``init_cfg`` (``mmseg.apis.init_model`` does); see
    ``PromptTunedViT._load_from_state_dict``.

    Registered in mmengine's root ``HOOKS``, so mmseg and mmpretrain configs
    reach it: ``custom_hooks = [dict(type='PromptOnlyCheckpointHook')]``.
    """

    priority = 'LOW'

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        model = runner.model
        if is_model_wrapper(model):
            model = model.module
        frozen = {n for n, p in model.named_parameters()
                  if not p.requires_grad}
        sd = checkpoint['state_dict']
        kept = OrderedDict((k, v) for k, v in sd.items() if k not in frozen)
        kept._metadata = OrderedDict(
            (k, dict(v)) for k, v in getattr(sd, '_metadata', {}).items())
        for name, m in model.named_modules():
            if isinstance(m, PromptTunedViT) and m.init_cfg:
                kept._metadata.setdefault(name, {})['pretrained'] = \
                    m.init_cfg['checkpoint']
        checkpoint['state_dict'] = kept
        checkpoint.setdefault('meta', {})['prompt_only'] = dict(
            dropped_frozen_tensors=len(sd) - len(kept),
            kept_tensors=len(kept))
