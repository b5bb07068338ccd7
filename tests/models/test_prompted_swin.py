"""PromptedSwin against timm's SwinTransformer (prompts off), against VPT's
way of putting prompts into window attention written out here with timm's
modules and an explicit softmax (prompts on), its arguments, checkpoint
layouts, freezing, and training through tools/train.py (mmpretrain)."""
import copy
import os.path as osp
import subprocess
import sys
import textwrap

import pytest
import timm
import torch
import torch.nn.functional as F
from ivpt_runs import ROOT, make_vtab, ok, run_tool
from timm.models.swin_transformer import (
    SwinTransformer,
    window_partition,
    window_reverse,
)

from mmseg_ivpt.models import (
    CheckpointMismatchError,
    PromptTuning,
    ViTEncoder,
    load_encoder_weights,
)
from mmseg_ivpt.models.prompted_swin import PromptedSwin
from mmseg_ivpt.models.swin import SwinEncoder

# 32x32 images, patch 2: stage 0 is 16x16 (4x4 windows of 4x4, shifted in
# odd blocks), stage 1 is 8x8 (2x2 windows, shifted too).
ARCH = dict(embed_dims=16, depths=(2, 2), num_heads=(2, 4))
KW = dict(arch=ARCH, img_size=32, patch_size=2, window_size=4)


def timm_swin(strict=True, **over):
    kw = dict(img_size=32, patch_size=2, embed_dim=16, depths=(2, 2),
              num_heads=(2, 4), window_size=4, num_classes=0,
              strict_img_size=strict)
    kw.update(over)
    t = SwinTransformer(**kw)
    with torch.no_grad():
        for p in t.parameters():
            p.normal_(0, 0.2)
    return t.eval()


def swin(t, **kw):
    m = PromptedSwin(**{**KW, 'num_prompts': 0, 'out_type': 'avg_featmap',
                        **kw})
    load_encoder_weights(m, t.state_dict())
    return m.eval()


@pytest.mark.parametrize('size,strict,patch', [(32, True, 2),
                                                (36, False, 2),
                                                (32, True, 4)])
def test_prompts_off_equals_timm(size, strict, patch):
    """36x36 (not the configured size) pads the windows and the odd map of
    patch merging: timm's non-strict model does the same. Patch 4: stage 1
    is 4x4, one window, not shifted (as Swin-B's last stage at 224)."""
    t = timm_swin(strict, patch_size=patch)
    m = swin(t, patch_size=patch)
    if patch == 4:
        assert [b.shift for b in m.layers[1].blocks] == [(0, 0), (0, 0)]
    img = torch.randn(2, 3, size, size)
    with torch.no_grad():
        want = t(img)
        got, = m(img)
        assert torch.allclose(got, want, atol=1e-5), (got - want).abs().max()
        m.out_type = 'featmap'
        fmap, = m(img)
        assert torch.allclose(fmap, t.forward_features(img).permute(
            0, 3, 1, 2), atol=1e-5)
    # the plain encoder is the same network
    e = SwinEncoder(**{**KW, 'patch_size': patch})
    load_encoder_weights(e, t.state_dict())
    with torch.no_grad():
        assert torch.allclose(e.eval()(img)[0], fmap, atol=1e-5)


def test_swin_b_matches_timm_names_and_counts():
    """The real Swin-B (224, window 7): every timm tensor name and shape,
    86.7M encoder parameters (paper Table 18: 88M with a 1k head)."""
    with torch.device('meta'):
        t = timm.create_model('swin_base_patch4_window7_224', num_classes=0)
        m = PromptedSwin(arch='b', num_prompts=10, dynamic_aggregation=True)
    want = {k: v.shape for k, v in t.state_dict().items()}
    got = {k: v.shape for k, v in m.state_dict().items()
           if k not in ('prompts', 'da_weights')}
    assert got == want
    assert sum(p.numel() for p in t.parameters()) == 86_743_224
    trainable = sum(p.numel() for p in m.parameters() if p.requires_grad)
    # per stage: depth * N * C (Swin-B widths 128..1024) + (depth-1) * N^2
    assert trainable == 10 * (2 * 128 + 2 * 256 + 18 * 512 + 2 * 1024) + \
        (1 + 1 + 17 + 1) * 100
    assert [b.shift for b in m.layers[3].blocks] == [(0, 0), (0, 0)]


# ------------------------------------------- prompts: VPT's equations
def vpt_block(blk, x, p):
    """One timm Swin block with prompts p (B, N, C) prepended to every
    window as VPT does: the whole sequence [prompts, window] attends with
    an explicit softmax, the relative position bias and the shift mask
    zero-padded for the prompts (VPT's PromptedWindowAttention); the image
    tokens' outputs are returned (VPT-deep drops the prompts' outputs)."""
    b, h, w, c = x.shape
    n, a = p.shape[1], blk.window_area
    attn, heads = blk.attn, blk.attn.num_heads
    y, pn = blk.norm1(x), blk.norm1(p)
    s = blk.shift_size
    y = torch.roll(y, (-s[0], -s[1]), (1, 2))
    win = window_partition(y, blk.window_size).reshape(-1, a, c)
    nw = win.shape[0] // b
    seq = torch.cat([pn.repeat_interleave(nw, 0), win], 1)  # (B*nW, N+A, C)
    q, k, v = attn.qkv(seq).reshape(b * nw, n + a, 3, heads, -1).permute(
        2, 0, 3, 1, 4)
    bias = F.pad(attn._get_rel_pos_bias(), (n, 0, n, 0))  # (1, h, .., ..)
    if blk.attn_mask is not None:
        mask = F.pad(blk.attn_mask, (n, 0, n, 0))  # (nW, N+A, N+A)
        bias = bias + mask.repeat(b, 1, 1).unsqueeze(1)
    logits = q @ k.transpose(-2, -1) * attn.scale + bias
    out = (logits.softmax(-1) @ v).transpose(1, 2).reshape(b * nw, n + a, c)
    out = attn.proj(out)[:, n:].reshape(-1, *blk.window_size, c)
    y = window_reverse(out, blk.window_size, h, w)
    x = x + torch.roll(y, s, (1, 2))
    return x + blk.mlp(blk.norm2(x))


def prompted_inputs(P, G, structure):
    """iVPT's P̂ per block of one stage from P (depth, N, C) and Γ."""
    if structure == 'deep':
        return list(P)
    if structure == 'vanilla_cdc':
        return [P[:j + 1].sum(0) for j in range(len(P))]
    return [P[0]] + [P[j] + (G[j - 1] @ P[j - 1] if G is not None
                             else P[j - 1]) for j in range(1, len(P))]


@pytest.mark.parametrize('structure,da', [('cdc', True), ('cdc', False),
                                          ('vanilla_cdc', False),
                                          ('deep', False)])
def test_prompts_follow_vpt_and_ivpt_equations(structure, da):
    t = timm_swin()
    m = swin(t, num_prompts=3, prompt_structure=structure,
             dynamic_aggregation=da)
    with torch.no_grad():
        m.prompts.normal_()
        if da:
            m.da_weights.normal_(0, 0.5)
    img = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        got, = m(img)
        x = t.patch_embed(img)
        for s, stage in enumerate(t.layers):
            x = stage.downsample(x)
            P = m.stage_prompts(s)
            G = m.stage_da_weights(s) if da else None
            for blk, p in zip(stage.blocks,
                              prompted_inputs(P, G, structure)):
                x = vpt_block(blk, x, p.expand(2, -1, -1))
        want = t.norm(x).mean((1, 2))
    assert torch.allclose(got, want, atol=1e-5), (got - want).abs().max()
    assert not torch.allclose(got, t(img), atol=1e-3)  # prompts act


def test_per_image_prompts_stay_with_their_image():
    """Prompt dropout makes the prompts differ per image: every window
    must attend to its own image's prompts."""
    t = timm_swin()
    m = swin(t)
    x = t.patch_embed(torch.randn(3, 3, 32, 32))
    p = torch.randn(3, 2, 16)
    with torch.no_grad():
        for blk, ref in zip(m.layers[0].blocks, t.layers[0].blocks):
            got, want = blk(x, p), vpt_block(ref, x, p)
            assert torch.allclose(got, want, atol=1e-5)
            x = want


def test_trainable_tensors_and_modes():
    t = timm_swin()
    m = swin(t, num_prompts=(3, 1), dynamic_aggregation=True)
    shapes = {n: tuple(p.shape) for n, p in m.named_parameters()
              if p.requires_grad}
    # stage 0: 2 blocks x 3 x 16, stage 1: 2 x 1 x 32; Γ: 1x3x3 + 1x1x1
    assert shapes == {'prompts': (2 * 3 * 16 + 2 * 1 * 32, ),
                      'da_weights': (9 + 1, )}
    assert m.stage_prompts(1).shape == (2, 1, 32)
    assert torch.equal(m.stage_da_weights(0), torch.eye(3)[None])
    bias = PromptedSwin(**KW, num_prompts=0, finetune='bias')
    names = {n for n, p in bias.named_parameters() if p.requires_grad}
    assert names and all(n.startswith('layers.') and n.endswith('.bias')
                         for n in names)
    assert 'layers.1.downsample.norm.bias' in names
    assert 'layers.0.blocks.1.attn.qkv.bias' in names
    full = PromptedSwin(**KW, finetune='full')
    assert all(p.requires_grad for p in full.parameters())
    # frozen encoder stays in eval mode, prompt dropout trains
    m2 = PromptedSwin(**KW, num_prompts=2, prompt_dropout=0.1).train()
    assert not m2.layers.training and not m2.patch_embed.training
    assert m2.prompt_drop.training
    assert full.train().layers.training


@pytest.mark.parametrize('kwargs,match', [
    (dict(ar_tokens=5), 'ar_tokens=5.*no cls token'),
    (dict(ar_mode='all'), "ar_mode='all'.*no cls token"),
    (dict(prompt_structure='shallow'), "prompt_structure='shallow'"),
    (dict(prompt_structure='provp'), "allowed: \\('deep'"),
    (dict(num_prompts=(1, 2, 3)), 'num_prompts=\\[1, 2, 3\\].*has 2'),
    (dict(num_prompts=-1), 'num_prompts must be ints >= 0'),
    (dict(num_prompts=0, dynamic_aggregation=True), 'needs num_prompts'),
    (dict(prompt_structure='deep', dynamic_aggregation=True),
     "needs prompt_structure='cdc'"),
    (dict(out_type='cls_token'), "out_type='cls_token'"),
    (dict(finetune='head'), "finetune='head'"),
    (dict(arch='huge'), "arch='huge'"),
    (dict(arch=dict(embed_dims=16, depths=(2, 2), num_heads=(3, 4))),
     'stage 0 .* divisible'),
    (dict(img_size=31), 'divisible by patch_size'),
])
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PromptedSwin(**{**KW, **kwargs})


def test_ar_arguments_are_refused_even_off():
    """PromptedSwin has no AR arguments: even the ViT's "off" values are
    the named error; the protocol's AR-less methods do not write them into
    a Swin config (their Swin runs build)."""
    for kw in (dict(ar_tokens=0), dict(ar_mode=None)):
        with pytest.raises(ValueError, match='Swin has no cls token'):
            PromptedSwin(**KW, **kw)
    from mmseg_ivpt.protocol import apply_method, load_task_config
    cfg = load_task_config('configs/vtab/swinb/ivpt_swinb_kitti.py', None,
                           None)
    for method in ('cdc', 'vpt_deep', 'linear', 'cdc_da'):
        bb = apply_method(copy.deepcopy(cfg), method).model.backbone
        assert 'ar_tokens' not in bb and 'ar_mode' not in bb, method


# ----------------------------------------------- a sibling of the ViT
def test_swin_is_a_sibling_of_the_vit_not_a_kind_of_it():
    """Prompt tuning is a mixin on either encoder; a Swin is no ViT (no
    ViT hooks, no cls-token notions such as ``num_extra_tokens``)."""
    assert issubclass(PromptedSwin, PromptTuning)
    assert issubclass(PromptedSwin, SwinEncoder)
    assert not issubclass(PromptedSwin, ViTEncoder)
    assert not issubclass(SwinEncoder, ViTEncoder)
    assert not issubclass(PromptTuning, (ViTEncoder, SwinEncoder))
    m = PromptedSwin(**KW, num_prompts=2)
    assert not isinstance(m, ViTEncoder)
    for vit_only in ('num_extra_tokens', 'run_blocks', 'enter_block',
                     'cls_token'):
        assert not hasattr(m, vit_only), vit_only


@pytest.mark.slow
def test_swin_module_loads_no_vit():
    """``models/swin.py`` and what it imports run without the ViT: in a
    fresh interpreter whose packages are stubbed (so that no package
    ``__init__`` imports everything), importing it loads no
    ``mmseg_ivpt.models.vit``; nor does its source name vit, even in a
    lazy import."""
    import ast
    src = osp.join(ROOT, 'mmseg_ivpt', 'models', 'swin.py')
    named = set()
    for node in ast.walk(ast.parse(open(src).read())):
        if isinstance(node, ast.ImportFrom):
            named.add(node.module or '')
        elif isinstance(node, ast.Import):
            named.update(a.name for a in node.names)
    assert not any(n.split('.')[-1] in ('vit', 'prompt_tuned', 'prompted_vit',
                                        'gated_vit', 'multitask')
                   for n in named), named
    code = textwrap.dedent(f"""
        import os, sys, types
        root = {ROOT!r}
        for pkg in ('mmseg_ivpt', 'mmseg_ivpt.models', 'mmseg_ivpt.utils'):
            mod = types.ModuleType(pkg)
            mod.__path__ = [os.path.join(root, *pkg.split('.'))]
            sys.modules[pkg] = mod
        import mmseg_ivpt.models.swin as swin
        assert swin.__file__.startswith(root), swin.__file__
        loaded = sorted(m for m in sys.modules if m.startswith('mmseg_ivpt'))
        print(loaded)
        assert 'mmseg_ivpt.models.vit' not in loaded, loaded
    """)
    res = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr[-3000:]
    assert 'mmseg_ivpt.models.swin' in res.stdout


def test_frozen_state_dict_keys_follow_finetune():
    """What a prompt-only checkpoint leaves out: the whole encoder, all but
    the tuned biases, or nothing."""
    enc = set(PromptedSwin(**KW).encoder_state_dict_keys())
    assert set(PromptedSwin(**KW).frozen_state_dict_keys()) == enc
    bias = PromptedSwin(**KW, num_prompts=0, finetune='bias')
    tuned = {n for n, p in bias.named_parameters() if p.requires_grad}
    assert set(bias.frozen_state_dict_keys()) == enc - tuned
    assert PromptedSwin(**KW, finetune='full').frozen_state_dict_keys() == []


# ------------------------------------------------------------ checkpoints
def test_original_layout_and_mismatch_errors():
    """Microsoft's release: patch merging at the end of stages 0.., head
    without ``fc``; another architecture is named tensor by tensor."""
    t = timm_swin()
    sd = {}
    for k, v in t.state_dict().items():
        if '.downsample.' in k:
            s = int(k.split('.')[1])
            k = k.replace(f'layers.{s}.', f'layers.{s - 1}.', 1)
        sd[k] = v
    sd['head.weight'] = torch.zeros(5, 32)
    sd['layers.0.blocks.1.attn_mask'] = torch.zeros(16, 16, 16)
    m = PromptedSwin(**KW, num_prompts=2)
    assert load_encoder_weights(m, sd) == 'original'
    assert torch.equal(m.layers[1].downsample.reduction.weight,
                       t.layers[1].downsample.reduction.weight)
    other = PromptedSwin(**{**KW, 'arch': dict(embed_dims=16,
                                               depths=(2, 3),
                                               num_heads=(2, 4))})
    with pytest.raises(CheckpointMismatchError,
                       match=r'missing in the checkpoint \(\d+\): '
                             r'layers\.1\.blocks\.2\.'):
        load_encoder_weights(other, t.state_dict())
    with pytest.raises(CheckpointMismatchError, match='layout'):
        load_encoder_weights(m, {'blocks.0.attn.qkv.weight': torch.zeros(1)})


def test_mmpretrain_layout_equals_mmpretrain_forward(tmp_path):
    """mmpretrain's SwinTransformer (its names, nn.Unfold channel order in
    patch merging), saved as a classifier checkpoint, gives the same
    features once loaded through init_cfg."""
    pytest.importorskip('mmpretrain')
    from mmpretrain.models.backbones import SwinTransformer as MMSwin
    mm = MMSwin(arch=dict(embed_dims=16, depths=[2, 2], num_heads=[2, 4]),
                img_size=32, patch_size=2, window_size=4,
                out_indices=(1, ))
    mm.eval()  # mmpretrain's train() returns None
    with torch.no_grad():
        for p in mm.parameters():
            p.normal_(0, 0.2)
    path = str(tmp_path / 'mm.pth')
    torch.save(dict(state_dict={f'backbone.{k}': v
                                for k, v in mm.state_dict().items()}), path)
    m = PromptedSwin(**KW, num_prompts=0,
                     init_cfg=dict(type='Pretrained', checkpoint=path))
    m.init_weights()
    img = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(m.eval()(img)[0], mm(img)[0], atol=1e-5)


def test_prompt_only_checkpoint_roundtrip(tmp_path):
    t = timm_swin()
    path = str(tmp_path / 'swin.pth')
    torch.save(t.state_dict(), path)
    cfg = dict(type='Pretrained', checkpoint=path)
    a = PromptedSwin(**KW, num_prompts=2, dynamic_aggregation=True,
                     out_type='avg_featmap', init_cfg=cfg)
    a.init_weights()
    with torch.no_grad():
        a.prompts.normal_()
    only = {k: v for k, v in a.state_dict().items()
            if k in ('prompts', 'da_weights')}
    b = PromptedSwin(**KW, num_prompts=2, dynamic_aggregation=True,
                     out_type='avg_featmap', init_cfg=cfg)
    b.load_state_dict(only)
    img = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(a.eval()(img)[0], b.eval()(img)[0])
    c = PromptedSwin(**KW, num_prompts=3, dynamic_aggregation=True)
    with pytest.raises(CheckpointMismatchError, match='prompts'):
        c.load_state_dict(a.state_dict())


# ------------------------------------------------- training (mmpretrain)
@pytest.mark.slow
def test_train_tiny_swin_in_mmpretrain(tmp_path):
    """A tiny Swin trains through tools/train.py from the shipped Swin-B
    VTAB config: only the prompts, DA and the head change."""
    pytest.importorskip('mmpretrain')
    make_vtab(tmp_path / 'vtab', task='eurosat', n=8)
    t = timm_swin()
    pre = str(tmp_path / 'swin.pth')
    torch.save(t.state_dict(), pre)
    cfg = tmp_path / 'cfg.py'
    base = osp.join(ROOT, 'configs/vtab/swinb/ivpt_swinb_eurosat.py')
    cfg.write_text(textwrap.dedent(f"""
        _base_ = [{base!r}]
        model = dict(backbone=dict(arch=dict(_delete_=True, **{ARCH!r}),
                                   img_size=32, patch_size=2, window_size=4,
                                   num_prompts=3,
                                   init_cfg=dict(checkpoint={pre!r})),
                     head=dict(in_channels=32))
        pipe = [dict(type='LoadImageFromFile'),
                dict(type='ResizeEdge', scale=32, edge='short'),
                dict(type='CenterCrop', crop_size=32),
                dict(type='PackInputs')]
        loader = dict(batch_size=4, num_workers=0, persistent_workers=False)
        train_dataloader = dict(**loader, dataset=dict(
            pipeline=pipe, data_root={str(tmp_path / 'vtab')!r}))
        val_dataloader = train_dataloader
        test_dataloader = train_dataloader
        train_cfg = dict(max_epochs=2, val_interval=2)
        default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=2))
    """))
    work = tmp_path / 'work'
    res = ok(run_tool('train.py', cfg, '--work-dir', work))
    assert 'accuracy/top1' in res.stdout + res.stderr
    one, two = (torch.load(work / f'epoch_{i}.pth', weights_only=False)
                ['state_dict'] for i in (1, 2))
    assert set(two) == {'backbone.prompts', 'backbone.da_weights',
                        'head.fc.weight', 'head.fc.bias'}
    for k in two:
        assert not torch.equal(one[k], two[k]), k


@pytest.mark.slow
def test_count_params_prints_swin_b_share():
    res = ok(run_tool('count_params.py',
                      'configs/vtab/swinb/ivpt_swinb_cifar.py',
                      'configs/fgvc/swinb/ivpt_swinb_cub.py'))
    backbone = 10 * (2 * 128 + 2 * 256 + 18 * 512 + 2 * 1024) + 20 * 100
    total = 86_743_224 + backbone
    for name, classes in (('ivpt_swinb_cifar.py', 100),
                          ('ivpt_swinb_cub.py', 200)):
        head = 1025 * classes
        row = (f'| {name} | {backbone + head:,} | {backbone:,} | '
               f'{total + head:,} |')
        assert row in res.stdout, res.stdout
