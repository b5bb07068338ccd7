"""Prompt-only checkpoints: save what training changed, not the frozen
encoder; a checksum of every checkpoint; and a word where a resumed run
keeps the checkpoint's lr schedule instead of the config's."""
import logging
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


#: what a parameter scheduler's config sets and its state keeps (mmengine
#: restores the whole state on resume, these included)
SCHEDULE_KEYS = ('by_epoch', 'begin', 'end', 'T_max', 'total_iters',
                 'eta_min', 'eta_min_ratio', 'power', 'start_factor',
                 'end_factor', 'factor', 'gamma', 'milestones', 'step_size')


def _schedule(scheduler) -> dict:
    return {k: getattr(scheduler, k) for k in SCHEDULE_KEYS
            if hasattr(scheduler, k)}


def _schedulers(runner) -> list:
    """The runner's parameter schedulers, flat (a dict of lists per
    optimizer: in its order)."""
    s = runner.param_schedulers or []
    if isinstance(s, dict):
        return [x for v in s.values() for x in v]
    return list(s)


@HOOKS.register_module()
class ResumedScheduleHook(Hook):
    """A run resumed (``--resume``) with another schedule than its
    checkpoint's, e.g. a larger ``max_iters`` / ``max_epochs`` and the
    scheduler's ``end`` with it: mmengine restores each parameter
    scheduler's state as it was saved, ``begin`` / ``end`` / ``T_max``
    included, so the checkpoint's schedule wins and, past its end, the lr
    stays at its last value. This hook says so at the start of training,
    scheduler by scheduler, with what it means for the run and how to get
    the config's schedule instead. It changes nothing.

    ``tools/train.py`` adds it to every training
    (:func:`~mmseg_ivpt.engine.config_repair.add_run_hooks`).
    """

    priority = 'LOWEST'

    def before_run(self, runner) -> None:
        # the schedulers as the config built them, before load_or_resume
        self._config = [_schedule(s) for s in _schedulers(runner)]

    def before_train(self, runner) -> None:
        from mmengine.logging import print_log
        said = []
        loop = runner.train_loop
        for i, (cfg, s) in enumerate(zip(getattr(self, '_config', []),
                                         _schedulers(runner))):
            now = _schedule(s)
            diff = [f'{k} {now[k]} (this config: {cfg[k]})' for k in cfg
                    if k in now and now[k] != cfg[k]]
            if not diff:
                continue
            epochs = now.get('by_epoch', False)
            length = loop.max_epochs if epochs else loop.max_iters
            unit = 'epoch' if epochs else 'iteration'
            stays = ''
            if now.get('end', length) < length:
                stays = (f'; it ends at {unit} {now["end"]} of {length}: '
                         f'from there the lr stays at its last value')
            said.append(f'param_scheduler[{i}] {type(s).__name__}: '
                        + ', '.join(diff) + stays)
        if said:
            print_log(
                '--resume: the checkpoint\'s lr schedule replaces this '
                'config\'s (mmengine restores each parameter scheduler as '
                'it was saved, its begin / end / T_max too): ' +
                '; '.join(said) + '. To train on this config\'s schedule '
                'from the checkpoint\'s weights instead, start a new run '
                'without --resume and with --cfg-options load_from=CKPT '
                '(the weights only: a new optimizer and schedule, from '
                'iteration 0).', logger='current', level=logging.WARNING)
