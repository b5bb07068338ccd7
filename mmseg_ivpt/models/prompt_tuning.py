"""What every prompt-tuned backbone shares, whatever its encoder: the
argument checks, the method's declared tensors, freezing and the tuning
modes, frozen-eval training, pretrained loading through ``init_cfg`` and
strict / prompt-only checkpoint loading.

:class:`PromptTuning` is a mixin with no encoder base: a backbone is
``class MyMethod(PromptTuning, SomeEncoder)``, the mixin first. It asks the
encoder, through these methods of the encoder (both
:class:`~.vit.ViTEncoder` and :class:`~.swin.SwinEncoder` have them):

* ``encoder_state_dict_keys()``: the names of the pretrained encoder's
  tensors (what a pretrained checkpoint gives);
* ``fit_encoder_state_dict(sd, source)``: the encoder's tensors of a
  pretrained state dict of any layout it reads (used by
  :func:`~.checkpoint.load_pretrained`);
* ``frozen_modules()``: the modules kept in eval mode while a frozen
  encoder trains;
* ``bias_tuned(name)``: whether ``finetune='bias'`` trains the encoder
  parameter ``name``.

Plain torch.
"""
from typing import Dict, List, Optional, Tuple

from torch import nn

from ..utils.safe_load import SETTINGS_KEY, SOURCE_FILE_KEY
from .checkpoint import (
    CheckpointMismatchError,
    MethodMismatchError,
    load_pretrained,
    logger,
)
from .prompt_only import is_prompt_only, load_frozen_encoder

POOL_NORMS = ('fresh', 'pretrained')
FINETUNE_MODES = ('prompt', 'bias', 'full')


class PromptTuning:
    """Prompt tuning of a frozen encoder (mix in before the encoder).

    Args (beyond the encoder's):
        out_type: one of the class's ``out_types``: what ``forward``
            returns (the encoder's maps, ``'featmap'``, for mmseg; pooled
            vectors for mmpretrain).
        finetune: which encoder weights train besides the method's own
            parameters: ``'prompt'`` (none: prompt tuning / linear probing),
            ``'bias'`` (the encoder's ``bias_tuned`` biases: the bias-tuning
            baseline) or ``'full'`` (everything: full fine-tuning).
        prompt_dropout: dropout on the prompt tokens the method writes.
        init_cfg: ``dict(type='Pretrained', checkpoint=PATH)``: a pretrained
            encoder of any layout the encoder reads, detected.
        pool_norm: the norm after ``avg_all_tokens`` pooling (ViT:
            :class:`~.prompt_tuned.PromptTunedViT`), ``'fresh'`` or
            ``'pretrained'``; ``None``: the class's ``default_pool_norm``.

    A method declares its own tensors in ``method_param_names``: attributes
    of the backbone (``backbone.prompts`` in a model), None where a
    setting leaves one out. That declaration is the one list of what a
    method trains: freezing, the optimizer's multipliers and the strict
    loading of checkpoints all read it (:meth:`method_parameters`).

    What the backbone computes is declared the same way, in
    ``recorded_settings``: each class (encoder, this mixin, the method)
    lists the attributes it adds that change what a trained backbone
    computes (structure, DA, AR, N, GaPT's temperatures, the encoder's
    options). Every state dict carries their values
    (:meth:`settings_record`, in the backbone's metadata entry), and every
    load compares them with the model's: a difference is a
    :class:`~.checkpoint.MethodMismatchError` (docs/checkpoints.md).
    """

    #: Names of the method's trainable parameters (docs/design.md).
    method_param_names: Tuple[str, ...] = ()
    #: The settings this class adds to the record (see above).
    recorded_settings: Tuple[str, ...] = ('out_type', 'pool_norm')
    #: Allowed ``out_type`` values.
    out_types: Tuple[str, ...] = ('featmap', )
    #: ``pool_norm`` when the config does not say.
    default_pool_norm: str = 'fresh'

    def __init__(self, *, out_type: str = 'featmap', finetune: str = 'prompt',
                 prompt_dropout: float = 0., init_cfg: Optional[dict] = None,
                 pool_norm: Optional[str] = None, **kwargs):
        if not 0. <= prompt_dropout < 1.:
            raise ValueError(f'prompt_dropout must be in [0, 1), got '
                             f'{prompt_dropout!r}')
        if out_type not in self.out_types:
            raise ValueError(f'out_type={out_type!r}; allowed: '
                             f'{self.out_types}')
        pool_norm = pool_norm or self.default_pool_norm
        if pool_norm not in POOL_NORMS:
            raise ValueError(f'pool_norm={pool_norm!r}; allowed: '
                             f'{POOL_NORMS}')
        if finetune not in FINETUNE_MODES:
            raise ValueError(f'finetune={finetune!r}; allowed: '
                             f'{FINETUNE_MODES}')
        if init_cfg is not None:
            _check_init_cfg(init_cfg)
        super().__init__(**kwargs)  # the encoder's
        self.out_type = out_type
        self.pool_norm = pool_norm
        self.finetune = finetune
        self.init_cfg = init_cfg
        self.prompt_drop = nn.Dropout(prompt_dropout)

    # ------------------------------------------------ what trains, what not
    def method_parameters(self) -> Dict[str, nn.Parameter]:
        """The method's own tensors that this model has, by attribute name
        (``method_param_names`` less those a setting leaves out). The one
        declaration of what a method trains besides the encoder: freezing,
        the optimizer's multipliers (``PromptOptimWrapperConstructor``) and
        the strict loading of checkpoints all read it."""
        return {n: getattr(self, n) for n in self.method_param_names
                if getattr(self, n, None) is not None}

    def tuned(self, name: str) -> bool:
        """Whether ``finetune`` trains the parameter ``name``: the method's
        own always, the encoder's by the mode (``'bias'``: the encoder's
        ``bias_tuned`` rule)."""
        if name.split('.')[0] in self.method_param_names:
            return True
        if self.finetune == 'full':
            return True
        return self.finetune == 'bias' and self.bias_tuned(name)

    def _freeze_encoder(self) -> None:
        """Set requires_grad by :meth:`tuned`; call after the method's
        parameters exist."""
        for name, p in self.named_parameters():
            p.requires_grad_(self.tuned(name))

    def frozen_state_dict_keys(self) -> List[str]:
        """The encoder tensors that do not train (with ``finetune='prompt'``
        all of them, ``'bias'`` all but the tuned biases, ``'full'`` none):
        what a prompt-only checkpoint leaves out, to be read back from the
        pretrained file (:mod:`.prompt_only`)."""
        params = dict(self.named_parameters())
        return [k for k in self.encoder_state_dict_keys()
                if k in params and not params[k].requires_grad]

    def train(self, mode: bool = True):
        """Frozen encoders stay in eval mode (no dropout / drop-path in the
        pretrained part: the encoder's ``frozen_modules``), as in VPT;
        prompt dropout follows ``mode``."""
        super().train(mode)
        if mode and self.finetune != 'full':
            for m in self.frozen_modules():
                m.eval()
        return self

    # ------------------------------------------------------ what it computes
    def settings_record(self) -> Dict[str, object]:
        """The backbone's type and the value of every setting its classes
        declare in ``recorded_settings`` (the method's first), tuples as
        lists: what a state dict records about what this backbone
        computes."""
        rec = dict(type=type(self).__name__)
        for cls in type(self).__mro__:
            for name in vars(cls).get('recorded_settings', ()):
                rec.setdefault(name, _plain(getattr(self, name)))
        return rec

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        """The tensors, and :meth:`settings_record` in this module's
        metadata entry (``_metadata[prefix]['settings']``), which every
        saver of a state dict keeps: torch's ``state_dict``, mmengine's
        checkpoints, prompt-only checkpoints."""
        super()._save_to_state_dict(destination, prefix, keep_vars)
        meta = getattr(destination, '_metadata', None)
        if meta is not None:
            meta.setdefault(prefix[:-1], {})[SETTINGS_KEY] = \
                self.settings_record()

    def _check_settings(self, meta: dict, prefix: str,
                        problems=()) -> None:
        """A :class:`MethodMismatchError` listing every recorded setting of
        the checkpoint (``meta``: this module's metadata entry) that this
        backbone does not share, then the tensor ``problems`` they cause; a
        checkpoint without the record (written before it existed, or its
        metadata dropped) loads with a warning."""
        saved = meta.get(SETTINGS_KEY)
        ckpt = meta.get(SOURCE_FILE_KEY) or 'the checkpoint'
        name = type(self).__name__
        if not isinstance(saved, dict):
            logger.warning(
                '%s records no backbone settings (written before they were '
                'recorded, or its metadata was dropped): it is loaded into '
                '%s without checking that it was trained with this '
                "config's method and encoder options", ckpt, name)
            return
        own = self.settings_record()
        diff = [k for k in saved if saved[k] != own.get(k, _NONE)]
        if not diff:
            return
        where = f'model.{prefix[:-1]}' if prefix else 'this backbone'
        lines = [f'{k}: checkpoint {saved[k]!r}, this model '
                 + (repr(own[k]) if k in own else f'(not a setting of '
                    f'{name})') for k in diff]
        fix = f"set {where}'s settings to the checkpoint's"
        if prefix:
            fix += ' (--cfg-options ' + ' '.join(
                _cfg_option(where, k, saved[k]) for k in diff) + ')'
        raise MethodMismatchError(
            f'{ckpt} was trained with other backbone settings than '
            f'{where} ({name}) has:\n  ' + '\n  '.join(lines) +
            ''.join(f'\n  so {p}' for p in problems) +
            f'\nIts tensors would run a method they were not trained for. '
            f'Load it with the config it was trained with (its work_dir '
            f'holds a copy), or {fix}.')

    # ------------------------------------------------------------- loading
    def init_weights(self) -> None:
        """Load ``init_cfg``'s checkpoint into the encoder (mmengine calls
        this when building a runner)."""
        if self.init_cfg is not None:
            load_pretrained(self, self.init_cfg['checkpoint'],
                            prefix=self.init_cfg.get('prefix'))
        self.is_init = True

    def _load_from_state_dict(self, state_dict, prefix, local_metadata,
                              strict, missing_keys, unexpected_keys,
                              error_msgs):
        """Strict about this backbone's tensors whatever ``strict`` says,
        and able to load a *prompt-only* checkpoint.

        * The settings the checkpoint records must be this backbone's
          (:meth:`_check_settings`), else
          :class:`~.checkpoint.MethodMismatchError`.
        * The method's tensors (``prompts``...) must all be there with this
          model's shapes, and nothing else may sit under this prefix: a
          checkpoint of another model is a :class:`CheckpointMismatchError`,
          not a warning.
        * A checkpoint without any of the frozen encoder tensors (saved by
          ``PromptOnlyCheckpointHook``) is loaded on top of the pretrained
          encoder, which is read first if this model has not been
          initialised yet (:func:`~.prompt_only.load_frozen_encoder`:
          ``init_cfg``'s file if it exists, else the first of the recorded
          paths, relative to the checkpoint then absolute, whose
          fingerprint matches; the loader may have dropped ``init_cfg``:
          ``mmseg.apis.init_model`` does). The encoder must have the
          fingerprint the checkpoint recorded, else
          :class:`~.checkpoint.EncoderMismatchError`
          (override: ``IVPT_ALLOW_OTHER_ENCODER=1``).
        """
        own = {prefix + k: v for k, v in self.state_dict().items()}
        encoder = [prefix + k for k in self.encoder_state_dict_keys()]
        present = [k for k in encoder if k in state_dict]
        problems = []
        for name in self.method_param_names:
            key, p = prefix + name, getattr(self, name)
            if p is None and key in state_dict:
                problems.append(f'{key}: in the checkpoint, not in the model')
            elif p is not None and key not in state_dict:
                problems.append(f'{key}: missing in the checkpoint')
            elif p is not None and state_dict[key].shape != p.shape:
                problems.append(f'{key}: checkpoint '
                                f'{tuple(state_dict[key].shape)} vs model '
                                f'{tuple(p.shape)}')
        # written by PromptOnlyCheckpointHook: frozen tensors were left out
        # (all of them; with finetune='bias' the trained biases stay)
        prompt_only = is_prompt_only(local_metadata) or not present
        if 0 < len(present) < len(encoder) and not prompt_only:
            gone = sorted(set(encoder) - set(present))
            problems.append(f'{len(gone)} frozen ViT tensors missing: '
                            f'{gone[:5]}...')
        foreign = sorted(k for k in state_dict
                         if k.startswith(prefix) and k not in own)
        if foreign:
            problems.append(f'{len(foreign)} tensors this backbone does not '
                            f'have: {foreign[:5]}')
        if any(k.startswith(prefix) for k in state_dict):
            self._check_settings(local_metadata, prefix, problems)
        if problems:
            raise CheckpointMismatchError(
                f'the checkpoint does not fit {type(self).__name__} '
                f'(prefix {prefix!r}); is it of another model?\n  ' +
                '\n  '.join(problems))
        if prompt_only and len(present) < len(encoder):
            load_frozen_encoder(self, local_metadata)
            for k in encoder:
                state_dict.setdefault(k, own[k])
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      strict, missing_keys, unexpected_keys,
                                      error_msgs)


_NONE = object()  # a setting a backbone does not have
#: recorded settings that are fields of the config's ``arch``
_ARCH_FIELDS = ('embed_dims', 'num_layers', 'num_heads', 'depths')


def _plain(value):
    """Tuples as lists (the form a value keeps through a file)."""
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


def _cfg_option(where: str, name: str, value) -> str:
    """``--cfg-options`` text setting ``where``'s ``name`` to ``value``."""
    key = f'{where}.arch.{name}' if name in _ARCH_FIELDS else \
        f'{where}.{name}'
    text = f'{key}={value}'.replace(' ', '')
    return f'"{text}"' if '[' in text else text


def _check_init_cfg(init_cfg) -> None:
    if not isinstance(init_cfg, dict) or init_cfg.get('type') != 'Pretrained':
        raise ValueError(f"init_cfg must be dict(type='Pretrained', "
                         f"checkpoint=PATH), got {init_cfg!r}")
    if not init_cfg.get('checkpoint'):
        raise ValueError("init_cfg=dict(type='Pretrained') needs "
                         "'checkpoint' (a path to the ViT weights)")
