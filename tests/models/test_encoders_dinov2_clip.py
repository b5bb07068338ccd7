"""DINOv2 (registers, LayerScale, SwiGLU) and CLIP (norm_pre, QuickGELU) as
options of the one ViT encoder, checked against timm's models of the same
names on the same random weights, their checkpoint layouts, every prompt
method on them, and a real tools/train.py run of a DINOv2 config of each
kind (docs/encoders.md)."""
import os.path as osp

import pytest
import timm
import torch
import torch.nn.functional as F
from ivpt_runs import ROOT, make_vtab, run_tool
from timm.models.vision_transformer import (
    _convert_dinov2,
    _convert_openai_clip,
)

from mmseg_ivpt.models import GatedViT, PromptedViT, ViTEncoder
from mmseg_ivpt.models.checkpoint import (
    ArchitectureMismatchError,
    load_pretrained,
)
from mmseg_ivpt.models.multitask import TaskMux


def arch(d, depth, heads, ff):
    return dict(embed_dims=d, num_layers=depth, num_heads=heads,
                feedforward_channels=ff)


_DINO = dict(patch_size=14, layer_scale_init=1e-5,
             pos_interp='bicubic_antialias')  # timm's resampling
_CLIP = dict(pre_norm=True, patch_bias=False, norm_eps=1e-5,
             pos_interp='bicubic_antialias')
# timm name -> (timm kwargs, our kwargs, pretraining image size)
CASES = {
    'vit_base_patch14_reg4_dinov2': (
        dict(embed_dim=64, depth=3, num_heads=4),
        dict(arch=arch(64, 3, 4, 256), num_reg_tokens=4, no_embed_class=True,
             **_DINO), 56),
    'vit_small_patch14_dinov2': (
        dict(embed_dim=48, depth=2, num_heads=4),
        dict(arch=arch(48, 2, 4, 192), **_DINO), 56),
    'vit_giant_patch14_dinov2': (  # SwiGLU: fc1 = int(96 * 5.33334) = 512
        dict(embed_dim=96, depth=2, num_heads=4),
        dict(arch=arch(96, 2, 4, 512), mlp_type='swiglu', act_layer='silu',
             **_DINO), 56),
    'vit_base_patch16_clip_224': (
        dict(embed_dim=64, depth=3, num_heads=4),
        dict(arch=arch(64, 3, 4, 256), **_CLIP), 64),
    'vit_base_patch16_clip_quickgelu_224': (
        dict(embed_dim=64, depth=3, num_heads=4),
        dict(arch=arch(64, 3, 4, 256), act_layer='quick_gelu', **_CLIP), 64),
    'vit_large_patch14_clip_224': (
        dict(embed_dim=64, depth=2, num_heads=4),
        dict(arch=arch(64, 2, 4, 256), patch_size=14, **_CLIP), 56),
}


def randomize(model, seed=0):
    """Weights far from any init (LayerScale's gamma and the norms too),
    so each option shows."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in model.named_parameters():
            p.copy_(torch.randn(p.shape, generator=g) * .2 +
                    (1. if n.endswith(('norm1.weight', 'norm2.weight',
                                       'norm.weight', 'norm_pre.weight'))
                     else 0.))
    return model


@pytest.fixture(scope='module')
def pairs():
    """name -> (timm model with random weights, our encoder with them)."""
    out = {}
    for name, (tk, ok, size) in CASES.items():
        t = timm.create_model(name, pretrained=False, num_classes=0,
                              img_size=size, dynamic_img_size=True, **tk)
        randomize(t.eval())
        ours = ViTEncoder(img_size=size, out_indices=(0, -1), **ok).eval()
        ours.load_state_dict(t.state_dict())
        out[name] = (t, ours)
    return out


def timm_outputs(t, x, layers):
    """timm's block outputs at ``layers`` (raw) and its forward_features."""
    got = {}
    hooks = [t.blocks[i].register_forward_hook(
        lambda m, a, o, i=i: got.__setitem__(i, o)) for i in layers]
    try:
        with torch.no_grad():
            final = t.forward_features(x)
    finally:
        for h in hooks:
            h.remove()
    return got, final


@pytest.mark.parametrize('name', sorted(CASES))
def test_equals_timm_prompts_off(pairs, name):
    t, ours = pairs[name]
    size = CASES[name][2]
    p = ours.patch_size
    prefix = ours.num_prefix_tokens
    assert prefix == t.num_prefix_tokens
    for hw in [(size, size), (size + 2 * p, size + p)]:  # and another size
        x = torch.randn(2, 3, *hw)
        got, final = timm_outputs(t, x, [0])
        with torch.no_grad():
            toks, grid = ours.forward_tokens(x)
            maps = ours(x)
        assert grid == (hw[0] // p, hw[1] // p)
        for mine, ref in [(toks[0], got[0]), (toks[1], final)]:
            assert mine.shape == ref.shape
            assert (mine[:, 0] - ref[:, 0]).abs().max() <= 1e-5  # cls
            assert (mine[:, prefix:] - ref[:, prefix:]).abs().max() <= 1e-5
        ref_map = final[:, prefix:].transpose(1, 2).reshape(2, -1, *grid)
        assert (maps[-1] - ref_map).abs().max() <= 1e-5


def test_dinov2_interpolation_is_dinov2s(pairs):
    """pos_interp='dinov2' at another grid: what timm's model gives when
    its table is resampled as DINOv2's interpolate_pos_encoding does
    (scale factor (h0 + 0.1) / M, bicubic, no antialias)."""
    t, ours = pairs['vit_base_patch14_reg4_dinov2']
    enc = ViTEncoder(img_size=56, **dict(CASES[
        'vit_base_patch14_reg4_dinov2'][1], pos_interp='dinov2')).eval()
    enc.load_state_dict(t.state_dict())
    M, d, h0, w0 = 4, enc.embed_dims, 6, 5
    grid = t.pos_embed.detach().reshape(1, M, M, d).permute(0, 3, 1, 2)
    ref = F.interpolate(grid, scale_factor=((h0 + .1) / M, (w0 + .1) / M),
                        mode='bicubic', antialias=False)
    fixed = timm.create_model('vit_base_patch14_reg4_dinov2', num_classes=0,
                              img_size=(h0 * 14, w0 * 14),
                              **CASES['vit_base_patch14_reg4_dinov2'][0])
    sd = dict(t.state_dict(), pos_embed=ref.permute(0, 2, 3, 1).reshape(
        1, h0 * w0, d))
    fixed.load_state_dict(sd)
    x = torch.randn(1, 3, h0 * 14, w0 * 14)
    with torch.no_grad():
        mine = enc.forward_tokens(x)[0][-1]
        want = fixed.eval().forward_features(x)
        other = ours.forward_tokens(x)[0][-1]  # timm's antialiased way
    assert (mine - want).abs().max() <= 1e-5
    assert (other - want).abs().max() > 1e-5  # the modes do differ


# ------------------------------------------------------------ checkpoints
def _hub_dinov2(timm_sd, chunked=False, swiglu=False):
    """A DINOv2 torch-hub state dict holding timm's weights: registers as
    register_tokens, a cls position split off the cls token, mask_token,
    SwiGLU as w12/w3, blocks in chunks of 2 (training checkpoints)."""
    sd, cls_pos = {}, torch.randn(1, 1, timm_sd['cls_token'].shape[-1])
    for k, v in timm_sd.items():
        if swiglu:
            k = k.replace('mlp.fc1', 'mlp.w12').replace('mlp.fc2', 'mlp.w3')
        if chunked and k.startswith('blocks.'):
            i = int(k.split('.')[1])
            k = f'blocks.{i // 2}.{i}.' + k.split('.', 2)[2]
        sd[k] = v.clone()
    if 'reg_token' in sd:
        sd['register_tokens'] = sd.pop('reg_token')
        sd['cls_token'] = sd['cls_token'] - cls_pos
        sd['pos_embed'] = torch.cat([cls_pos, sd['pos_embed']], 1)
    sd['mask_token'] = torch.zeros(1, sd['cls_token'].shape[-1])
    return sd


def _openai_clip(timm_sd, openai=True):
    """A whole CLIP model's state dict (image tower under visual., a
    stand-in text tower) holding timm's image-tower weights."""
    swaps = [('patch_embed.proj', 'conv1'), ('norm_pre', 'ln_pre'),
             ('blocks.', 'transformer.resblocks.'), ('norm1', 'ln_1'),
             ('norm2', 'ln_2'), ('attn.qkv.', 'attn.in_proj_'),
             ('attn.proj', 'attn.out_proj'), ('mlp.fc1', 'mlp.c_fc'),
             ('mlp.fc2', 'mlp.c_proj')]
    sd = {}
    for k, v in timm_sd.items():
        if k == 'cls_token':
            sd['visual.class_embedding'] = v.reshape(-1).clone()
            continue
        if k == 'pos_embed':
            sd['visual.positional_embedding'] = v[0].clone()
            continue
        if k.startswith('norm.'):
            k = k.replace('norm.', 'ln_post.')
        for a, b in swaps:
            k = k.replace(a, b)
        sd['visual.' + k] = v.clone()
    d = timm_sd['cls_token'].shape[-1]
    sd['visual.proj'] = torch.randn(d, 32)
    sd['transformer.resblocks.0.ln_1.weight'] = torch.ones(d)  # text tower
    sd['token_embedding.weight'] = torch.randn(10, d)
    if openai:
        sd['input_resolution'] = torch.tensor(224)
    return sd


def _same_outputs(a, b, size):
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        for u, v in zip(a(x), b(x)):
            assert (u - v).abs().max() <= 1e-5


@pytest.mark.parametrize('name,layout', [
    ('vit_base_patch14_reg4_dinov2', 'timm'),
    ('vit_base_patch14_reg4_dinov2', 'dinov2'),
    ('vit_base_patch14_reg4_dinov2', 'dinov2-chunked'),
    ('vit_small_patch14_dinov2', 'dinov2'),
    ('vit_giant_patch14_dinov2', 'dinov2'),
    ('vit_base_patch16_clip_224', 'timm'),
    ('vit_base_patch16_clip_224', 'openclip'),
    ('vit_base_patch16_clip_quickgelu_224', 'clip-openai'),
])
def test_checkpoint_layouts_load(pairs, tmp_path, name, layout):
    t, ours = pairs[name]
    tsd = {k: v for k, v in t.state_dict().items()}
    if layout.startswith('dinov2'):
        sd = _hub_dinov2(tsd, chunked=layout.endswith('chunked'),
                         swiglu='giant' in name)
        if not layout.endswith('chunked'):  # our layout is timm's reading
            back = _convert_dinov2(dict(sd), t)
            assert set(back) == set(tsd)
            assert all(torch.allclose(back[k], tsd[k], atol=1e-6)
                       for k in tsd)
        sd = {'model': sd} if 'small' in name else sd
    elif layout in ('openclip', 'clip-openai'):
        sd = _openai_clip(tsd, openai=layout == 'clip-openai')
        back = _convert_openai_clip(dict(sd), t)
        assert all(torch.equal(back[k], tsd[k]) for k in tsd)
        sd = {'state_dict': sd} if layout == 'openclip' else sd
    else:
        sd = tsd
    path = str(tmp_path / 'w.pth')
    torch.save(sd, path)
    size = CASES[name][2]
    fresh = ViTEncoder(img_size=size, out_indices=(0, -1),
                       **CASES[name][1]).eval()
    got = load_pretrained(fresh, path)
    assert got == ('clip' if layout == 'openclip' else
                   layout.replace('-chunked', ''))
    _same_outputs(fresh, ours, size)


def test_foreign_architecture_is_a_named_error(pairs, tmp_path):
    t, _ = pairs['vit_base_patch14_reg4_dinov2']
    path = str(tmp_path / 'dinov2.pth')
    torch.save(_hub_dinov2(t.state_dict()), path)
    clip = ViTEncoder(img_size=56, **dict(
        CASES['vit_large_patch14_clip_224'][1], arch=arch(64, 3, 4, 256)))
    with pytest.raises(ArchitectureMismatchError,
                       match=r'dinov2\.pth is a ViT with LayerScale '
                             r'\(DINOv2.*CLIP image tower'):
        load_pretrained(clip, path)
    t, _ = pairs['vit_base_patch16_clip_quickgelu_224']
    torch.save(_openai_clip(t.state_dict()), path)
    gelu = ViTEncoder(img_size=64, **CASES['vit_base_patch16_clip_224'][1])
    with pytest.raises(ArchitectureMismatchError, match='quick_gelu'):
        load_pretrained(gelu, path)
    sup = ViTEncoder(arch=arch(64, 3, 4, 256), img_size=64)
    with pytest.raises(ArchitectureMismatchError, match='CLIP image tower'):
        load_pretrained(sup, path)


@pytest.mark.slow
def test_convert_checkpoint_reads_hub_dinov2(pairs, tmp_path):
    t, ours = pairs['vit_base_patch14_reg4_dinov2']
    src, dst = tmp_path / 'hub.pth', tmp_path / 'out.pth'
    torch.save(_hub_dinov2(t.state_dict()), src)
    res = run_tool('convert_checkpoint.py', src, dst, '--num-heads', '4',
                   cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert '(dinov2)' in res.stdout
    fresh = ViTEncoder(img_size=56, out_indices=(0, -1),
                       **CASES['vit_base_patch14_reg4_dinov2'][1]).eval()
    assert load_pretrained(fresh, str(dst)) == 'timm'
    _same_outputs(fresh, ours, 56)


# ---------------------------------------------------- methods on them
DINO_REG = dict(arch=arch(32, 3, 4, 64), img_size=56, num_reg_tokens=4,
                no_embed_class=True, patch_size=14, layer_scale_init=1e-5,
                pos_interp='dinov2')
CLIP_B = dict(arch=arch(32, 3, 4, 64), img_size=64, patch_size=16,
              pre_norm=True, patch_bias=False, norm_eps=1e-5,
              act_layer='quick_gelu', pos_interp='bicubic_antialias')
METHODS = {
    'shallow': dict(prompt_structure='shallow'),
    'deep': dict(prompt_structure='deep'),
    'vanilla_cdc': dict(prompt_structure='vanilla_cdc'),
    'cdc+DA+AR': dict(prompt_structure='cdc', dynamic_aggregation=True,
                      ar_tokens=3),
    'provp': dict(prompt_structure='provp'),
    'express': dict(prompt_structure='express'),
    'ar_all': dict(prompt_structure='deep', ar_tokens=1, ar_mode='all'),
}


@pytest.mark.parametrize('enc', ['dinov2_reg4', 'clip'])
@pytest.mark.parametrize('method', sorted(METHODS) + ['gapt'])
def test_every_method_trains_on_them(enc, method):
    kw = DINO_REG if enc == 'dinov2_reg4' else CLIP_B
    torch.manual_seed(0)
    if method == 'gapt':
        bb = GatedViT(num_prompts=3, out_type='cls_token', **kw)
    else:
        bb = PromptedViT(num_prompts=3, out_type='cls_token',
                         **METHODS[method], **kw)
    bb.train()
    x = torch.randn(2, 3, kw['img_size'], kw['img_size'])
    (bb(x)[-1] ** 2).sum().backward()
    trained = bb.method_parameters()
    assert trained and all(p.grad is not None and p.grad.abs().sum() > 0
                           for p in trained.values())
    assert all(p.grad is None for n, p in bb.named_parameters()
               if n not in trained)  # the encoder stays frozen
    # the registers stay the pretrained tokens; the slot comes after them
    x0, _ = bb.embed(x)
    s = bb.num_prefix_tokens
    slot = bb.enter_block(0, x0, bb.forward_context())
    assert torch.equal(slot[:, :s], x0[:, :s])
    assert torch.equal(slot[:, s + 3:], x0[:, s:])


def test_ar_never_selects_a_register_or_a_prompt():
    """Registers and prompts get the largest saliency; AR still picks the
    k most salient *patches*, as indices into the patches."""
    torch.manual_seed(0)
    bb = PromptedViT(num_prompts=3, prompt_structure='deep', ar_tokens=4,
                     **DINO_REG).eval()
    R, N, M = 4, 3, bb.num_patches
    s = 1 + R + N
    b, heads = 2, bb.num_heads
    attn = torch.rand(b, heads, 1 + R + N + M) * .01
    attn[:, :, 1:s] = 1.  # registers and prompts: the most attended keys
    order = torch.randperm(M)[:4]
    for j, i in enumerate(order):
        attn[:, :, s + i] = .5 - .1 * j
    x = torch.zeros(b, s + M, bb.embed_dims)
    with torch.no_grad():
        bb.ar_prompts.normal_()
    with bb.record_attention() as rec:
        out = bb.exit_block(0, x, x, attn, None)
    assert torch.equal(rec.ar_indices[0], order.expand(b, -1))
    assert torch.equal(out[:, :s], x[:, :s])  # no register nor prompt moved
    moved = (out[:, s:] != 0).any(-1)
    assert moved.sum(1).tolist() == [4, 4]
    # and in a real forward: the recorded selections index the patches
    with bb.record_attention() as rec:
        bb(torch.randn(b, 3, 56, 70))
    for layer, idx in rec.ar_indices.items():
        sal = rec.cls_attn[layer][:, :, s:].mean(1)
        assert torch.equal(idx, sal.topk(4, dim=1).indices)


def test_taskmux_refuses_a_dinov2_task_beside_a_sup21k_task():
    torch.manual_seed(0)
    dino = PromptedViT(num_prompts=2, prompt_structure='deep', **DINO_REG)
    gapt = GatedViT(num_prompts=3, **DINO_REG)
    mux = TaskMux(ViTEncoder(**DINO_REG))
    mux.add('dino-deep', dino)
    mux.add('dino-gapt', gapt)
    x1, x2 = torch.randn(2, 3, 56, 56), torch.randn(1, 3, 70, 56)
    with torch.no_grad():
        outs = mux([('dino-deep', x1), ('dino-gapt', x2)], mode='pad')
        for o, (bb, x) in zip(outs, [(dino, x1), (gapt, x2)]):
            assert (o[-1] - bb.eval()(x)[-1]).abs().max() < 1e-5
    sup = PromptedViT(num_prompts=2, prompt_structure='deep',
                      arch=DINO_REG['arch'], img_size=64, patch_size=16)
    with pytest.raises(ValueError, match='not the shared one'):
        mux.add('sup21k', sup)
    same_grid = PromptedViT(num_prompts=2, prompt_structure='deep',
                            arch=DINO_REG['arch'], img_size=56, patch_size=14)
    with pytest.raises(ValueError, match='layer_scale_init.*num_reg_tokens'
                       '|num_reg_tokens'):
        mux.add('sup21k', same_grid)


# ------------------------------------------------------ tools/train.py
def _train(cfg, cwd, *opts):
    """tools/train.py CONFIG from another cwd, the model shrunk by
    --cfg-options."""
    return run_tool('train.py', osp.join(ROOT, cfg), '--work-dir',
                    cwd / 'work', '--cfg-options', *opts, cwd=cwd)


TINY_ARCH = arch(32, 2, 2, 64)
SHRINK = ['model.backbone.arch._delete_=True'] + [
    f'model.backbone.arch.{k}={v}' for k, v in TINY_ARCH.items()]


def _hub_file(path, img_size, **kw):
    """A random tiny DINOv2 in the torch-hub layout (detected on load)."""
    enc = ViTEncoder(arch=TINY_ARCH, img_size=img_size, patch_size=14,
                     layer_scale_init=1e-5, **kw)
    torch.save(_hub_dinov2(enc.state_dict()), path)
    return str(path)


def _ok(res, work):
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-5000:]
    log = res.stdout + res.stderr
    assert 'dinov2 layout' in log  # the hub file was read as such
    return log


@pytest.mark.slow
def test_ade20k_dinov2_config_trains(tmp_path):
    from mmseg_ivpt.datasets import generate_shapes_dataset
    data = generate_shapes_dataset(str(tmp_path / 'shapes'), num_train=4,
                                   num_val=2)
    pre = _hub_file(tmp_path / 'hub.pth', 518, num_reg_tokens=4,
                    no_embed_class=True)
    opts = SHRINK + [
        f'pretrained={pre}', f'model.backbone.init_cfg.checkpoint={pre}',
        'model.backbone.out_indices=[0,1]', 'model.backbone.num_prompts=2',
        'model.decode_head.in_channels=32', 'model.decode_head.channels=8',
        'model.decode_head.in_index=1', 'model.decode_head.num_convs=2',
        'model.auxiliary_head=None',
        'val_cfg=None', 'val_dataloader=None', 'val_evaluator=None',
        'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        'train_cfg.max_iters=2',
        'default_hooks.checkpoint.interval=2',
        'default_hooks.logger.interval=1', 'param_scheduler.0.end=2',
        f'train_dataloader.dataset.data_root={data}',
    ]
    res = _train('configs/setr_ivpt_dinov2-vitl14-reg4_ade20k.py', tmp_path,
                 *opts)
    _ok(res, tmp_path / 'work')
    sd = torch.load(tmp_path / 'work' / 'iter_2.pth',
                    weights_only=False)['state_dict']
    assert sd['backbone.prompts'].shape == (2, 2, 32)  # prompt-only
    assert not any(k.startswith('backbone.blocks.') for k in sd)


@pytest.mark.slow
def test_vtab_dinov2_config_trains(tmp_path):
    make_vtab(tmp_path / 'vtab', task='eurosat', n=8)
    pre = _hub_file(tmp_path / 'hub.pth', 518)  # resampled 37x37 -> 16x16
    loader = ['batch_size=4', 'num_workers=0', 'persistent_workers=False',
              f'dataset.data_root={tmp_path / "vtab"}']
    opts = SHRINK + [
        f'model.backbone.init_cfg.checkpoint={pre}',
        'model.backbone.ar_tokens=2', 'model.head.in_channels=32',
        'train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
        'default_hooks.checkpoint.interval=1',
    ] + [f'{k}_dataloader.{o}' for k in ('train', 'val', 'test')
         for o in loader]
    res = _train('configs/vtab/dinov2-vitb14/ivpt_dinov2-vitb14_eurosat.py',
                 tmp_path, *opts)
    log = _ok(res, tmp_path / 'work')
    assert 'accuracy/top1' in log


def test_report_says_there_are_no_paper_numbers():
    from mmseg_ivpt.protocol.report import report
    from mmseg_ivpt.protocol.tasks import locate_config, task_configs
    for bb in ('dinov2-vitb14', 'clip-vitb16'):
        vtab = task_configs(bb, 'vtab')
        assert len(vtab) == 19 and len(task_configs(bb, 'fgvc')) == 5
        assert locate_config(vtab[0]).backbone == bb
        tasks = [osp.basename(p)[len(f'ivpt_{bb}_'):-3] for p in vtab]
        text = report({}, 'vtab', 'ivpt', {}, tasks, backbone=bb)
        assert 'no paper numbers' in text and bb in text
    assert 'no paper numbers' not in report({}, 'vtab', 'ivpt', {}, tasks)


@pytest.mark.parametrize('name,kw', [
    ('vit_small_patch14_dinov2', dict(arch='s', **_DINO)),
    ('vit_large_patch14_reg4_dinov2', dict(arch='l', num_reg_tokens=4,
                                           no_embed_class=True, **_DINO)),
    ('vit_giant_patch14_reg4_dinov2', dict(arch='g', num_reg_tokens=4,
                                           no_embed_class=True,
                                           mlp_type='swiglu',
                                           act_layer='silu', **_DINO)),
    ('vit_large_patch14_clip_224', dict(arch='l', patch_size=14, **_CLIP)),
])
def test_full_size_presets_have_timms_tensors(name, kw):
    """The arch presets at full size: timm's tensor names and shapes
    exactly (on the meta device: nothing allocated)."""
    size = 224
    with torch.device('meta'):
        t = timm.create_model(name, pretrained=False, num_classes=0,
                              img_size=size)
        ours = ViTEncoder(img_size=size, **kw)
    want = {k: tuple(v.shape) for k, v in t.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    assert got == want
