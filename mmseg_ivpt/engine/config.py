"""Reading a config and applying ``--cfg-options`` the one way every tool
of this toolbox does (:func:`read_config`, :func:`apply_cfg_options`):
``arch`` presets that can take options (:func:`expand_arch_presets`), and
options that reach the values a config variable was substituted into
(:func:`repoint_variables`). What the tools repair in a config afterwards
is :mod:`.config_repair`.
"""
import difflib
import re
from typing import Callable, Dict, FrozenSet, List, Optional, Sequence

from ..models.vit import resolve_arch
from .checks import ConfigError


def expand_arch_presets(cfg, options: dict) -> List[str]:
    """``--cfg-options model.backbone.arch.num_layers=12`` on a config whose
    ``arch`` is a preset name ('l'): mmengine cannot merge a key into a
    string (it asks for ``_delete_``), so the preset is first written out as
    its dict. Returns the ``arch`` paths expanded."""
    done = []
    for key in options:
        m = re.fullmatch(r'(.+\.arch)\.\w+', key)
        if not m or m.group(1) in done:
            continue
        *parents, leaf = m.group(1).split('.')
        node = cfg  # a Config, then ConfigDicts
        for part in parents:
            node = node.get(part) if hasattr(node, 'get') else None
        if hasattr(node, 'get') and isinstance(node.get(leaf), str):
            try:
                node[leaf] = resolve_arch(node[leaf])
            except ValueError as e:
                raise ConfigError(f'{m.group(1)}: {e}') from None
            done.append(m.group(1))
    return done


def _explicit(path: str, options) -> bool:
    """Whether ``--cfg-options`` set ``path`` (or a key above it)."""
    return any(path == k or path.startswith(k + '.') for k in options or ())


def repoint_variable(cfg, name: str, before, options=None, *,
                     keys: Optional[Sequence[str]] = None,
                     within: Optional[Callable[[str], bool]] = None,
                     path_prefix: bool = False, convert=None) -> int:
    """``--cfg-options NAME=VALUE`` for a config *variable* ``NAME``: mmengine
    substituted the variable's value into the settings derived from it when
    the file was read, so overriding the variable alone changes nothing.
    Every value that still holds the old one (``before``) is given the new
    one; a value set explicitly in the same command (``options``: the keys
    of ``--cfg-options``) is kept.

    Args:
        keys: only values under these key names (any key when None).
        within: only under the top-level keys for which this is true
            (everywhere when None; the variable itself is always skipped).
        path_prefix: also paths built from the variable
            (``before + '/...'`` becomes ``after + '/...'``).
        convert: applied to the new value (e.g. ``float``).
    Returns how many values changed.
    """
    after = cfg.get(name)
    if before is None or after is None or before == after:
        return 0
    if isinstance(before, str) != isinstance(after, str):
        return 0
    new = convert(after) if convert else after
    head = None
    if path_prefix and isinstance(before, str):
        head = before if before.endswith('/') else before + '/'

    def moved(v):
        """The new value for ``v``, or None to leave it."""
        if isinstance(before, str):
            if not isinstance(v, str):
                return None
        elif isinstance(v, bool) or not isinstance(v, (int, float)):
            return None
        if v == before:
            return new
        if head is not None and v.startswith(head):
            return after.rstrip('/') + '/' + v[len(head):]
        return None

    def visit(obj, path: str) -> int:
        n = 0
        pairs = list(obj.items()) if isinstance(obj, dict) else \
            list(enumerate(obj))
        for k, v in pairs:
            where = f'{path}.{k}'
            if _explicit(where, options):
                continue
            if isinstance(v, (dict, list)):
                n += visit(v, where)
            elif keys is None or k in keys:
                got = moved(v)
                if got is not None:
                    obj[k] = got
                    n += 1
        return n

    total = 0
    for top in list(cfg.keys()):
        if top == name or (within is not None and not within(top)) \
                or _explicit(top, options):
            continue
        value = cfg[top]
        if isinstance(value, (dict, list)):
            total += visit(value, top)
        elif keys is None and moved(value) is not None:
            cfg[top] = moved(value)
            total += 1
    return total


def repoint_pretrained(cfg, before, options=None) -> int:
    """``--cfg-options pretrained=PATH``: the config's ``pretrained``
    variable was already substituted into ``init_cfg`` when the file was
    read, so overriding it alone would change nothing. Every
    ``checkpoint`` of the model that still holds the old value (one set
    explicitly in the same command is kept) is pointed at the new one.
    Returns how many."""
    if not isinstance(before, str) or \
            not isinstance(cfg.get('pretrained'), str):
        return 0
    return repoint_variable(cfg, 'pretrained', before, options,
                            keys=('checkpoint', ),
                            within=lambda top: top == 'model')


def repoint_data_root(cfg, before, options=None) -> int:
    """``--cfg-options data_root=PATH``: every value of the data loaders
    and evaluators derived from the config's ``data_root`` variable (the
    data sets' ``data_root``, and paths built as ``data_root + '/...'``, as
    FGVC's folders are) follows the new one; a value set explicitly in the
    same command is kept. Returns how many."""
    return repoint_variable(
        cfg, 'data_root', before, options, path_prefix=True,
        within=lambda top: top.endswith(('_dataloader', '_evaluator')))


def repoint_prompt_lr_mult(cfg, before, options=None) -> int:
    """``--cfg-options prompt_lr_mult=M`` (the ADE20K configs' variable):
    like ``pretrained``, it was substituted into the optimizer's
    ``paramwise_cfg.method_lr_mult`` (read by
    :class:`~mmseg_ivpt.engine.optim.PromptOptimWrapperConstructor`) when
    the file was read; there it gets the new value unless the same command
    sets it. Returns how many."""
    return repoint_variable(cfg, 'prompt_lr_mult', before, options,
                            keys=('method_lr_mult', ),
                            within=lambda top: top == 'optim_wrapper',
                            convert=float)


#: the config variables ``--cfg-options`` reaches through (see
#: :func:`repoint_variables`)
REPOINTED = {'pretrained': repoint_pretrained,
             'data_root': repoint_data_root,
             'prompt_lr_mult': repoint_prompt_lr_mult}


def repoint_variables(cfg, before: dict, options) -> dict:
    """Apply every ``repoint_*`` of :data:`REPOINTED`; ``before`` holds the
    variables' values before ``options`` were merged. Returns
    ``{variable: values changed}`` for those that changed something."""
    done = {}
    for name, fn in REPOINTED.items():
        n = fn(cfg, before.get(name), options)
        if n:
            done[name] = n
    return done


#: top-level keys an option may add although the config has none: what
#: mmengine's ``Runner.from_cfg`` reads (:func:`runner_keys`) and the keys
#: OpenMMLab's runners and tools read beside them
OTHER_KNOWN_KEYS = frozenset({
    'custom_imports', 'model_wrapper_cfg', 'compile', 'runner_type',
    'strategy', 'sync_bn', 'find_unused_parameters',
    'activation_checkpointing', 'efficient_conv_bn_eval', 'tta_model',
    'tta_pipeline', 'vis_backends', 'dist_params',
})
#: the prefix of an option that adds a top-level key on purpose
#: (``+my_key=1``, Hydra's spelling)
NEW_KEY = '+'


def runner_keys() -> FrozenSet[str]:
    """The top-level keys mmengine's runner reads (the arguments of
    ``Runner.__init__``, which ``Runner.from_cfg`` takes from the config:
    ``work_dir``, ``resume``, ``load_from``, ``randomness``, ``env_cfg``,
    ``default_hooks``, ``custom_hooks``, ``launcher`` ...) and
    :data:`OTHER_KNOWN_KEYS`."""
    import inspect

    from mmengine.runner import Runner
    args = set(inspect.signature(Runner.__init__).parameters) - {'self',
                                                                 'cfg'}
    return frozenset(args) | OTHER_KNOWN_KEYS


def check_option_keys(cfg, options: dict) -> dict:
    """``options`` with their top-level keys checked: each must be a key of
    ``cfg`` or one the runner reads (:func:`runner_keys`), else a
    :class:`ConfigError` naming it, the closest known keys and how to add a
    key on purpose (the prefix :data:`NEW_KEY`: ``+my_key=...``). Returns
    the options with that prefix taken off."""
    out, unknown = {}, []
    known = set(cfg.keys()) | runner_keys()
    for key, value in options.items():
        if key.startswith(NEW_KEY):
            out[key[len(NEW_KEY):]] = value
            continue
        top = key.split('.', 1)[0]
        if top not in known:
            unknown.append((key, top))
        out[key] = value
    if unknown:
        where = getattr(cfg, 'filename', None) or 'the config'
        said = []
        for key, top in unknown:
            near = difflib.get_close_matches(top, sorted(known), n=3,
                                             cutoff=0.6)
            hint = f' (did you mean {" or ".join(near)}?)' if near else ''
            said.append(f'{key}: {top!r} is neither a key of {where} nor '
                        f'one mmengine\'s runner reads{hint}')
        raise ConfigError(
            '--cfg-options ' + '; '.join(said) + '. To add a new top-level '
            f'key on purpose, write it with a leading {NEW_KEY!r}: '
            f'--cfg-options {NEW_KEY}{unknown[0][0]}=...')
    return out


def apply_cfg_options(cfg, options: Optional[dict]) -> Dict[str, int]:
    """``--cfg-options`` applied to ``cfg`` (in place) the one way every tool
    of this toolbox applies them (``tools/train.py``, ``test.py``,
    ``protocol.py``, ``count_params.py``, ``tools/analysis/``): an ``arch``
    preset an option reaches into is written out first
    (:func:`expand_arch_presets`), the options are merged, and the config
    variables of :data:`REPOINTED` carry their new value into the settings
    derived from them (:func:`repoint_variables`). An option whose
    top-level key neither the config nor mmengine's runner has (a typo:
    ``trian_cfg.max_iters=2``), unless written ``+key=...``
    (:func:`check_option_keys`), and an option mmengine cannot merge are
    each a :class:`ConfigError` naming it. Returns
    :func:`repoint_variables`' count of what was repointed."""
    if not options:
        return {}
    options = check_option_keys(cfg, options)
    before = {name: cfg.get(name) for name in REPOINTED}
    expand_arch_presets(cfg, options)
    try:
        cfg.merge_from_dict(options)
    except (TypeError, KeyError) as e:
        raise ConfigError(f'--cfg-options {" ".join(options)}: cannot be '
                          f'merged into the config: {e}') from None
    return repoint_variables(cfg, before, options)


def read_config(path: str, options: Optional[dict] = None):
    """The config at ``path`` with ``options`` applied
    (:func:`apply_cfg_options`)."""
    from mmengine.config import Config
    cfg = Config.fromfile(path)
    apply_cfg_options(cfg, options)
    return cfg
