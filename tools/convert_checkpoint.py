"""Turn the ViT weights you have into the file the configs point at.

    python tools/convert_checkpoint.py SRC DST

SRC may be
* Google's original ``.npz`` (ViT-B/16, ViT-L/16, ...; read by timm),
* a timm ``state_dict`` (``.pth`` / ``.bin`` / ``.safetensors``),
* MAE's ``mae_pretrain_vit_*.pth``, MoCo-v3's ``linear-vit-b-300ep.pth.tar``
  (or a pretraining checkpoint with ``base_encoder.``),
* an mmseg (vit2mmseg) or mmpretrain ViT checkpoint,
* DINOv2's torch-hub ``dinov2_vit*14[_reg4]_pretrain.pth`` or timm's
  ``vit_*_dinov2*``,
* CLIP's image tower: OpenAI's (``visual.*``; their TorchScript ``.pt`` is
  read with ``--jit``) or OpenCLIP's ``open_clip_pytorch_model.bin``.

DST is a plain ``torch.save`` of the encoder's tensors in timm's names (the
backbones' own), checked by building the encoder and loading it, so a file
that converts is a file that loads. A checksum of the tensors rides in the
state dict's ``_metadata`` (keys stay tensor names only) and is verified
whenever the toolbox loads the file. The architecture is read from the
weights, except the number of heads, which is taken from the width for the
standard models (384: 6, 768: 12, 1024: 16, 1280: 16, 1536: 24) and
otherwise must be given with ``--num-heads``; registers, LayerScale,
``norm_pre`` and SwiGLU are read from the tensors too.
"""
import argparse
import math
import os
import os.path as osp
import sys
from collections import OrderedDict

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from tools._venv import ensure  # noqa: E402

ensure('torch', 'timm')  # the repository's .venv unless this python has them

import torch  # noqa: E402

from mmseg_ivpt.models.checkpoint import (  # noqa: E402
    convert_to_timm,
    detect_layout,
    fit_state_dict,
    read_checkpoint,
    unwrap_state_dict,
)
from mmseg_ivpt.models.vit import ViTEncoder  # noqa: E402
from mmseg_ivpt.utils.integrity import CheckpointFileError, add_checksum  # noqa: E402

_HEADS_BY_WIDTH = {384: 6, 768: 12, 1024: 16, 1280: 16, 1536: 24}


def read_npz(path: str):
    """Google's npz through timm's own loader -> timm state dict."""
    import numpy as np
    import timm
    w = np.load(path)
    pre = next((p for p in ('', 'opt/target/', 'params/')
                if f'{p}embedding/kernel' in w), None)
    if pre is None:
        raise ValueError(f'{path}: no embedding/kernel: not a ViT npz')
    p, _, _, d = w[f'{pre}embedding/kernel'].shape
    blocks = {k.split('/')[1] for k in w.files
              if k.startswith(f'{pre}Transformer/encoderblock_')}
    attn = f'{pre}Transformer/encoderblock_0/MultiHeadDotProductAttention_1'
    heads = w[f'{attn}/query/kernel'].shape[1]
    hidden = w[f'{pre}Transformer/encoderblock_0/MlpBlock_3/Dense_0/kernel'
               ].shape[1]
    n_pos = w[f'{pre}Transformer/posembed_input/pos_embedding'].shape[1] - 1
    model = timm.models.VisionTransformer(
        img_size=int(math.isqrt(n_pos)) * p, patch_size=p, embed_dim=d,
        depth=len(blocks), num_heads=heads, mlp_ratio=hidden / d,
        num_classes=0)
    model.load_pretrained(path)
    return model.state_dict(), 'npz'


def read_jit(path: str):
    """OpenAI's CLIP ``.pt`` (a TorchScript archive): its state dict. Runs
    ``torch.jit.load``, which executes the archive's TorchScript; only for
    files from a source you trust (``--jit``)."""
    return torch.jit.load(path, map_location='cpu').state_dict()


def read_any(path: str, jit: bool = False):
    if path.endswith('.npz'):
        return read_npz(path)
    if jit:
        sd = read_jit(path)
    elif path.endswith('.safetensors'):
        from safetensors.torch import load_file
        sd = load_file(path)
    else:
        sd = read_checkpoint(path)
    sd = unwrap_state_dict(sd)
    layout = detect_layout(sd)
    return convert_to_timm(sd, layout), layout


def divisors(n: int):
    return [k for k in range(1, n + 1) if n % k == 0]


def heads_for(d: int, num_heads, src: str) -> int:
    """The number of heads of a ViT of width ``d`` (the file ``src``):
    ``num_heads`` (``--num-heads``) if given, else the standard models'.
    A value that cannot be is a ValueError naming the option, the file and
    the allowed values."""
    allowed = ', '.join(map(str, divisors(d)))
    if num_heads is None:
        if d not in _HEADS_BY_WIDTH:
            raise ValueError(
                f'{src}: embed_dims={d} does not tell the number of heads '
                f'(known widths: {_HEADS_BY_WIDTH}): pass --num-heads, one '
                f'of {allowed}')
        return _HEADS_BY_WIDTH[d]
    if d % num_heads:
        raise ValueError(
            f'--num-heads {num_heads}: {src} has embed_dims={d}, which '
            f'{num_heads} heads do not divide; allowed: {allowed}')
    return num_heads


def encoder_for(sd, num_heads=None, src='the checkpoint') -> ViTEncoder:
    """The encoder these weights are for, read off their shapes."""
    d = sd['cls_token'].shape[-1]
    p = sd['patch_embed.proj.weight'].shape[-1]
    depth = 1 + max(int(k.split('.')[1]) for k in sd
                    if k.startswith('blocks.'))
    arch = dict(embed_dims=d, num_layers=depth,
                num_heads=heads_for(d, num_heads, src),
                feedforward_channels=sd['blocks.0.mlp.fc1.weight'].shape[0])
    fc1 = sd['blocks.0.mlp.fc1.weight'].shape[0]
    swiglu = sd['blocks.0.mlp.fc2.weight'].shape[1] * 2 == fc1
    regs = sd['reg_token'].shape[1] if 'reg_token' in sd else 0
    n = sd['pos_embed'].shape[1]
    side = int(math.isqrt(n))
    no_embed_class = side * side == n  # patches only (DINOv2-reg in timm)
    if not no_embed_class:
        side = int(math.isqrt(n - 1 - regs))
    opts = dict(num_reg_tokens=regs, no_embed_class=no_embed_class,
                pre_norm='norm_pre.weight' in sd,
                layer_scale_init=1e-5 if 'blocks.0.ls1.gamma' in sd else None,
                mlp_type='swiglu' if swiglu else 'mlp',
                act_layer='silu' if swiglu else 'gelu')
    with torch.device('meta'):
        return ViTEncoder(arch=arch, img_size=side * p, patch_size=p,
                          patch_bias='patch_embed.proj.bias' in sd, **opts)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(
            f'{text!r}: a number of heads is a positive integer (a divisor '
            f'of the width: 12 for ViT-B, 16 for ViT-L and ViT-H)')
    return value


def check_paths(parser, src: str, dst: str) -> None:
    """SRC must be a file and DST a writable file path: named errors before
    anything is read."""
    if not osp.isfile(src):
        what = 'is a directory' if osp.isdir(src) else 'does not exist'
        parser.error(f'SRC {src} {what}: give the ViT weights file to '
                     f'convert (docs/checkpoints.md says where to get them)')
    if osp.isdir(dst):
        parser.error(f'DST {dst} is a directory: give the file to write, '
                     f'e.g. {osp.join(dst, "vit.pth")}')
    folder = osp.dirname(osp.abspath(dst))
    while not osp.isdir(folder):  # the part of the path that exists
        folder = osp.dirname(folder)
    if not os.access(folder, os.W_OK | os.X_OK):
        parser.error(f'DST {dst}: {folder} is not writable')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src', help='the ViT weights (npz, timm, MAE, '
                        'MoCo-v3, mmseg, mmpretrain)')
    parser.add_argument('dst', help='the file to write (timm names)')
    parser.add_argument('--jit', action='store_true',
                        help="SRC is OpenAI's TorchScript CLIP .pt (runs "
                        'torch.jit.load: trusted files only)')
    parser.add_argument('--num-heads', type=positive_int,
                        help='only when the width does not tell it (widths '
                        f'{sorted(_HEADS_BY_WIDTH)} do); a divisor of it')
    args = parser.parse_args()
    check_paths(parser, args.src, args.dst)
    try:
        sd, layout = read_any(args.src, args.jit)
        enc = encoder_for(sd, args.num_heads, args.src)
    except ValueError as e:  # CheckpointMismatchError included
        msg = str(e)
        parser.error(msg if args.src in msg else f'{args.src}: {msg}')
    except KeyError as e:
        parser.error(f'{args.src}: not a ViT checkpoint (no tensor {e})')
    except CheckpointFileError as e:  # empty, truncated, text...: named
        parser.error(str(e))
    out = fit_state_dict(enc, sd, source=f'{args.src} ({layout})')
    os.makedirs(osp.dirname(osp.abspath(args.dst)), exist_ok=True)
    sd = OrderedDict((k, v.contiguous()) for k, v in out.items())
    torch.save(add_checksum(sd), args.dst)
    n = sum(v.numel() for v in out.values())
    print(f'{args.src} ({layout}) -> {args.dst}: {len(out)} tensors, '
          f'{n / 1e6:.1f}M parameters, embed_dims={enc.embed_dims}, '
          f'num_layers={enc.num_layers}, patch_size={enc.patch_size}, '
          f'grid={enc.grid_size}')
    if layout == 'clip-openai':
        print("OpenAI's CLIP was trained with QuickGELU: its configs set "
              "act_layer='quick_gelu' (configs/_base_/models/*clip*)")


if __name__ == '__main__':
    main()
