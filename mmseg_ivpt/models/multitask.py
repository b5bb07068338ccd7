"""One frozen ViT, many prompt-tuned tasks, one pass through the blocks.

A prompt-tuned task is its method's tensors (prompts, DA, AR, gates...) on a
frozen ViT that every task shares. :class:`TaskMux` holds that ViT once and
the backbones of any number of tasks whose frozen parts are made *the same
tensors* as its own (:meth:`TaskMux.add`), and runs a batch whose samples
belong to different tasks through the blocks together:

* the batch is cut into *units*: the images of one task and one size,
  (B_u, C, H, W); each unit is embedded by its task's backbone (its position
  embedding: the shared one, or the shared one resampled to its grid, kept
  once per grid);
* before and after every block the mux unpacks each unit's rows, calls its
  task's own hooks on them (:meth:`~.vit.ViTEncoder.enter_block`,
  :meth:`~.vit.ViTEncoder.exit_block`: the one place methods live) and packs
  the units again; the block itself runs once on the packed batch, with the
  units' query scales (GaPT's temperatures) and slot residuals (EXPRESS) as
  per-sample tensors;
* the units' sequences (1 + N + M tokens) may differ in length (N prompts,
  M patches). ``mode='pad'`` runs them all in one pass, padded at the end
  to the longest with an attention mask that hides the padding keys (exact:
  a masked key gets weight 0); ``mode='group'`` runs one pass per sequence
  length, without padding (the default: faster on the CPU, where compute
  is linear in the tokens and padding is wasted work; docs/benchmarks.md,
  "Prompt bank").
* each unit's outputs are what its backbone's ``forward`` returns
  (:meth:`~.vit.ViTEncoder.outputs`: its ``out_indices``, ``final_norm``,
  ``out_type``).

Pure torch: benchmarkable without the OpenMMLab packages. The bank of whole
tasks (configs, checkpoints, heads) is :mod:`mmseg_ivpt.apis.bank`.
"""
import math
import os
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .checkpoint import (
    CheckpointMismatchError,
    convert_to_timm,
    detect_layout,
    load_encoder_weights,
    logger,
    read_checkpoint,
    unwrap_state_dict,
)
from .prompt_tuned import PromptTunedViT
from .vit import ViTEncoder

MUX_MODES = ('pad', 'group')
#: The encoder modules a task backbone takes from the mux (pos_embed apart).
SHARED_MODULES = ('patch_embed', 'norm_pre', 'blocks', 'norm')
#: The encoder options a task backbone must share with the mux's ViT
#: (besides the shapes): a DINOv2 and a supervised ViT are different ViTs.
_OPTIONS = ('num_reg_tokens', 'no_embed_class', 'layer_scale_init',
            'pre_norm', 'act_layer', 'mlp_type', 'pos_interp')


def encoder_signature(m: ViTEncoder) -> Dict[str, object]:
    """What two encoders must agree on to be one: the shapes and the
    settings that are not tensors."""
    blk = m.blocks[0]
    return dict(embed_dims=m.embed_dims, num_layers=m.num_layers,
                num_heads=m.num_heads, patch_size=m.patch_size,
                in_channels=m.patch_embed.proj.in_channels,
                feedforward_channels=blk.mlp.fc1.out_features,
                qkv_bias=blk.attn.qkv.bias is not None,
                patch_bias=m.patch_embed.proj.bias is not None,
                norm_eps=blk.norm1.eps,
                **{k: getattr(m, k) for k in _OPTIONS})


def tensor_bytes(tensors) -> int:
    """Bytes of the distinct storages among ``tensors``."""
    seen, total = set(), 0
    for t in tensors:
        key = (t.device, t.untyped_storage().data_ptr())
        if key not in seen:
            seen.add(key)
            total += t.untyped_storage().nbytes()
    return total


def check_task_backbone(name: str, backbone) -> None:
    """A named error unless ``backbone`` can join a mux: a prompt-tuned
    ViT (PromptedViT, GatedViT) that leaves the encoder frozen."""
    if not isinstance(backbone, PromptTunedViT):
        raise TypeError(f'task {name!r}: the backbone is '
                        f'{type(backbone).__name__}; a bank serves '
                        f'PromptedViT and GatedViT')
    if backbone.finetune != 'prompt':
        raise ValueError(f"task {name!r}: finetune={backbone.finetune!r} "
                         f"trains the encoder's own weights, so it cannot "
                         f"share the frozen ViT; a bank serves "
                         f"finetune='prompt' tasks")


class _Unit:
    """Rows [start, stop) of a packed batch: one task, one image size."""

    def __init__(self, backbone: PromptTunedViT, ctx, start: int, stop: int,
                 length: int, hw: Tuple[int, int]):
        self.backbone, self.ctx = backbone, ctx
        self.start, self.stop = start, stop
        self.length, self.hw = length, hw  # tokens now, patch grid


class _Packed:
    """The units of one pass and the padding of the current layer (the
    ``ctx`` the mux's hooks receive)."""

    def __init__(self, units: List[_Unit]):
        self.units = units
        self.mask: Optional[Tensor] = None
        self._mask_of: Optional[Tuple[int, ...]] = None  # lengths of mask

    def unpack(self, x: Tensor, u: _Unit) -> Tensor:
        """Unit u's rows of x (B, T_max, ...) without the padding."""
        return x[u.start:u.stop, :u.length]

    def pack(self, xs: Sequence[Tensor]) -> Tensor:
        """The units' (B_u, T_u, D), padded at the end to the longest;
        records the lengths and the key mask (None: no padding)."""
        for u, x in zip(self.units, xs):
            u.length = x.shape[1]
        lengths = tuple(u.length for u in self.units)
        t = max(lengths)
        if min(lengths) == t:
            self.mask = None
            return torch.cat(list(xs)) if len(xs) > 1 else xs[0]
        if lengths != self._mask_of:  # lengths change at block 0 only
            per_row = torch.cat([torch.full((u.stop - u.start, ), u.length)
                                 for u in self.units])
            self.mask = (torch.arange(t) < per_row[:, None]).to(
                xs[0].device)[:, None, None, :]
            self._mask_of = lengths
        return torch.cat([F.pad(x, (0, 0, 0, t - x.shape[1])) for x in xs])


class TaskMux(nn.Module):
    """A frozen ViT shared by the backbones of several tasks, and the pass
    that runs a batch of mixed tasks through it (module docstring).

    Args:
        encoder: the frozen ViT (a :class:`~.vit.ViTEncoder` holding the
            pretrained weights at the pretrained file's own grid).

    ``tasks``: name -> backbone (:meth:`add`).
    """

    def __init__(self, encoder: ViTEncoder):
        super().__init__()
        self.encoder = encoder.eval().requires_grad_(False)
        self.tasks = nn.ModuleDict()
        #: '{h}x{w}' -> the shared position table resampled to that grid
        self.pos_tables = nn.ParameterDict()

    @classmethod
    def from_pretrained(cls, path: str, like: ViTEncoder) -> 'TaskMux':
        """A mux whose shared ViT is the pretrained file ``path`` (any
        layout :func:`~.checkpoint.load_pretrained` reads), built like the
        backbone ``like`` (heads, eps... are not in the file) at the file's
        own position grid; its fingerprint is the one prompt-only
        checkpoints record."""
        sd = unwrap_state_dict(read_checkpoint(path))
        pos = convert_to_timm(sd, detect_layout(sd)).get('pos_embed')
        n = like.num_pos_prefix
        side = math.isqrt(pos.shape[1] - n) if pos is not None else 0
        if pos is None or side * side != pos.shape[1] - n:
            shape = None if pos is None else tuple(pos.shape)
            raise CheckpointMismatchError(
                f'{path}: no square grid of position embeddings with {n} '
                f'prefix position(s) (pos_embed {shape})')
        sig = encoder_signature(like)
        enc = ViTEncoder(
            arch={k: sig[k] for k in ('embed_dims', 'num_layers', 'num_heads',
                                      'feedforward_channels')},
            img_size=side * sig['patch_size'], patch_size=sig['patch_size'],
            in_channels=sig['in_channels'], qkv_bias=sig['qkv_bias'],
            norm_eps=sig['norm_eps'], patch_bias=sig['patch_bias'],
            **{k: sig[k] for k in _OPTIONS})
        layout = load_encoder_weights(enc, sd, source=path)
        enc.pretrained_path = path if '://' in path else os.path.abspath(path)
        logger.info('TaskMux: the shared ViT is %s (%s layout, fingerprint '
                    '%s)', enc.pretrained_path, layout,
                    enc.pretrained_fingerprint)
        return cls(enc)

    # ------------------------------------------------------------- tasks
    def add(self, name: str, backbone: PromptTunedViT) -> PromptTunedViT:
        """Make ``backbone``'s frozen ViT the mux's own tensors (its own are
        dropped) and register it as task ``name``; returns it. Load the
        task's checkpoint *after* this: a prompt-only checkpoint then checks
        the fingerprint of the shared ViT it records."""
        if name in self.tasks:
            raise ValueError(f'two tasks are named {name!r}; task names must '
                             f'be unique')
        check_task_backbone(name, backbone)
        want, got = encoder_signature(self.encoder), encoder_signature(
            backbone)
        diff = {k: (got[k], want[k]) for k in want if got[k] != want[k]}
        if diff:
            raise ValueError(f'task {name!r}: its ViT is not the shared one '
                             f'(task vs shared: {diff})')
        enc = self.encoder
        for attr in SHARED_MODULES:
            setattr(backbone, attr, getattr(enc, attr))
        backbone.cls_token = enc.cls_token
        backbone.reg_token = enc.reg_token
        backbone.pos_embed = self._pos_embed(backbone.grid_size)
        backbone.pretrained_fingerprint = getattr(
            enc, 'pretrained_fingerprint', None)
        backbone.pretrained_path = getattr(enc, 'pretrained_path', None)
        backbone.is_init = True
        self.tasks[name] = backbone.eval()
        return backbone

    def _pos_embed(self, grid: Tuple[int, int]) -> nn.Parameter:
        """The shared position embedding resampled to ``grid`` (as loading
        the pretrained file into a backbone of that grid does), once per
        grid."""
        enc = self.encoder
        if tuple(grid) == tuple(enc.grid_size):
            return enc.pos_embed
        key = f'{grid[0]}x{grid[1]}'
        if key not in self.pos_tables:
            with torch.no_grad():
                pos = enc.resized_pos_embed(grid)
            self.pos_tables[key] = nn.Parameter(pos, requires_grad=False)
        return self.pos_tables[key]

    def shared_tensors(self) -> List[Tensor]:
        """The frozen ViT's tensors, held once (resampled position
        embeddings included)."""
        return list(self.encoder.parameters()) + list(
            self.pos_tables.values())

    def own_tensors(self, module: nn.Module) -> List[Tensor]:
        """The parameters and buffers of ``module`` that are not the shared
        ViT's (what the module holds on its own)."""
        shared = {t.untyped_storage().data_ptr()
                  for t in self.shared_tensors()}
        return [t for t in list(module.parameters()) + list(module.buffers())
                if t.untyped_storage().data_ptr() not in shared]

    def task_tensors(self, name: str) -> List[Tensor]:
        """The tensors task ``name``'s backbone holds on its own."""
        return self.own_tensors(self.tasks[name])

    # ----------------------------------------------------------- forward
    def forward(self, units: Sequence[Tuple[str, Tensor]],
                mode: str = 'group') -> List[Tuple[Tensor, ...]]:
        """units: (task name, images (B_u, C, H, W)), the images of a unit
        of one size. Returns per unit what its backbone's ``forward`` gives
        for its images, computed in one pass (``'pad'``) or one pass per
        sequence length (``'group'``)."""
        if mode not in MUX_MODES:
            raise ValueError(f'mode={mode!r}; allowed: {MUX_MODES}')
        for name, img in units:
            if name not in self.tasks:
                raise KeyError(f'unknown task {name!r}; the tasks are '
                               f'{sorted(self.tasks)}')
            if img.ndim != 4:
                raise ValueError(f'task {name!r}: images must be (B, C, H, '
                                 f'W), got {tuple(img.shape)}')
        if not units:
            return []
        if mode == 'pad':
            return self._run(units)
        p = self.encoder.patch_size
        by_len: Dict[int, List[int]] = {}
        for i, (name, img) in enumerate(units):
            m = (-(-img.shape[-2] // p)) * (-(-img.shape[-1] // p))
            n = self.tasks[name].num_extra_tokens + m
            by_len.setdefault(n, []).append(i)
        out: List[Optional[Tuple[Tensor, ...]]] = [None] * len(units)
        for idx in by_len.values():
            for i, o in zip(idx, self._run([units[i] for i in idx])):
                out[i] = o
        return out

    def _run(self, units: Sequence[Tuple[str, Tensor]]
             ) -> List[Tuple[Tensor, ...]]:
        """One pass of the shared blocks over all ``units``."""
        packed, xs, start = _Packed([]), [], 0
        for name, img in units:
            bb = self.tasks[name]
            x, hw = bb.embed(img)
            stop = start + x.shape[0]
            packed.units.append(_Unit(bb, bb.forward_context(), start, stop,
                                      x.shape[1], hw))
            xs.append(x)
            start = stop
        keep = sorted({i for u in packed.units
                       for i in u.backbone.out_indices})
        raw = self.encoder.run_blocks(packed.pack(xs), packed, keep,
                                      hooks=self)
        return [u.backbone.outputs(
            {i: packed.unpack(raw[i], u) for i in u.backbone.out_indices},
            u.hw) for u in packed.units]

    # ------------------------------------- hooks (ViTEncoder.run_blocks)
    def enter_block(self, layer: int, x: Tensor, pk: _Packed) -> Tensor:
        return pk.pack([u.backbone.enter_block(layer, pk.unpack(x, u), u.ctx)
                        for u in pk.units])

    def exit_block(self, layer: int, x_in: Tensor, x_out: Tensor,
                   cls_attn: Optional[Tensor], pk: _Packed) -> Tensor:
        outs = []
        for u in pk.units:
            row = None if cls_attn is None else \
                cls_attn[u.start:u.stop, :, :u.length]
            outs.append(u.backbone.exit_block(
                layer, pk.unpack(x_in, u), pk.unpack(x_out, u), row, u.ctx))
        return pk.pack(outs)

    def needs_cls_attention(self, layer: int, pk: _Packed) -> bool:
        return any(u.backbone.needs_cls_attention(layer, u.ctx)
                   for u in pk.units)

    def attention_mask(self, layer: int, pk: _Packed) -> Optional[Tensor]:
        return pk.mask

    def query_scale(self, layer: int, pk: _Packed) -> Optional[Tensor]:
        """The units' scales as (B, 1, 1, 1) (1 where a task has none)."""
        scales = [u.backbone.query_scale(layer, u.ctx) for u in pk.units]
        if all(s is None for s in scales):
            return None
        ref = next(s for s in scales if s is not None)
        return torch.cat([
            (ref.new_ones(()) if s is None else s).reshape(1).expand(
                u.stop - u.start) for u, s in zip(pk.units, scales)
        ]).view(-1, 1, 1, 1)

    def block_residuals(self, layer: int, pk: _Packed):
        """The units' slot residuals as (B, N_max, C) each (zero where a
        task has none and beyond its N)."""
        res = [u.backbone.block_residuals(layer, u.ctx) for u in pk.units]
        if all(r is None for r in res):
            return None
        ref = next(r for r in res if r is not None)
        n = max(u.backbone.num_prompt_tokens for u in pk.units)
        out = []
        for k, part in enumerate(ref):
            rows = []
            for u, r in zip(pk.units, res):
                b = u.stop - u.start
                if r is None:
                    rows.append(part.new_zeros(b, n, part.shape[-1]))
                else:
                    rk = r[k].expand(b, -1, -1)
                    rows.append(F.pad(rk, (0, 0, 0, n - rk.shape[1])))
            out.append(torch.cat(rows))
        return tuple(out)
