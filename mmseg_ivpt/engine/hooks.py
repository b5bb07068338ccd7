"""Prompt-only checkpoints: save what training changed, not the frozen
encoder; and a checksum of every checkpoint."""
import os.path as osp

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from ..models import PromptTuning
from ..models.prompt_only import prompt_only_state_dict
from ..utils.integrity import add_checksum


@HOOKS.register_module()
class PromptOnlyCheckpointHook(Hook):
    """Drop the frozen encoder tensors from every checkpoint the runner
    saves.

    What goes: the tensors of the pretrained encoder that each prompt-tuned
    backbone (:class:`~mmseg_ivpt.models.PromptTuning`) declares frozen
    (``frozen_state_dict_keys``). What stays: everything else, i.e. every
    tensor that trains (prompts, DA, AR, gates, temperatures, biases in
    bias tuning, the heads), every tensor outside those encoders even when
    frozen (a head layer a user froze), every buffer (the heads' BatchNorm
    statistics), and all of mmengine's own entries (``meta`` with
    ``dataset_meta``: class names and palette; ``optimizer``;
    ``param_schedulers``; ``message_hub``), so the file resumes training and
    serves ``init_model`` like a full one. Loading it needs the pretrained
    encoder it was trained on, which is recorded in the state dict's
    metadata of the backbone (``_metadata['backbone']``: the path as the
    config wrote it, absolute, relative to the checkpoint's folder, and the
    encoder's fingerprint; :mod:`mmseg_ivpt.models.prompt_only` writes and
    reads that record). The backbone finds the file there even if the
    loader dropped ``init_cfg`` (``mmseg.apis.init_model`` does), from any
    working directory, and refuses another encoder.

    Registered in mmengine's root ``HOOKS``, so mmseg and mmpretrain configs
    reach it: ``custom_hooks = [dict(type='PromptOnlyCheckpointHook')]``.
    """

    priority = 'LOW'

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        model = runner.model
        if is_model_wrapper(model):
            model = model.module
        backbones = {name: m for name, m in model.named_modules()
                     if isinstance(m, PromptTuning)}
        sd = checkpoint['state_dict']
        kept = prompt_only_state_dict(sd, backbones, _checkpoint_dir(runner))
        checkpoint['state_dict'] = kept
        checkpoint.setdefault('meta', {})['prompt_only'] = dict(
            dropped_frozen_tensors=len(sd) - len(kept),
            kept_tensors=len(kept))


def _checkpoint_dir(runner) -> str:
    """The folder the runner's CheckpointHook writes into (its ``out_dir``
    once training started, else the work_dir)."""
    for hook in runner.hooks:
        if type(hook).__name__ == 'CheckpointHook':
            out = getattr(hook, 'out_dir', None)
            if isinstance(out, str) and '://' not in out:
                return osp.abspath(out)
    return osp.abspath(runner.work_dir)


@HOOKS.register_module()
class CheckpointChecksumHook(Hook):
    """Write a checksum of every tensor into each checkpoint the runner
    saves (``meta['tensor_checksum']``; see
    :mod:`mmseg_ivpt.utils.integrity`); loading verifies it.

    Runs last among ``before_save_checkpoint`` hooks (priority ``LOWEST``),
    after ``PromptOnlyCheckpointHook`` has dropped the frozen tensors.
    ``tools/train.py`` adds it to every run; in a config of your own:
    ``custom_hooks = [..., dict(type='CheckpointChecksumHook')]``.
    """

    priority = 'LOWEST'

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        add_checksum(checkpoint)
