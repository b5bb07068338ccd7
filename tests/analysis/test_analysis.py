"""The analysis tools on our models: attention maps (Fig. 7) checked against
an explicit softmax, the runtime report (Table 8) against
tools/count_params.py and a hand count of FLOPs, mmengine's FLOP counter
with attention, and OpenMMLab's own tools (mmpretrain's vis_cam and
get_flops; mmseg's get_flops, which cannot run) on our models."""
import json
import os.path as osp
import sys
import textwrap

import numpy as np
import pytest
import torch
from ivpt_helpers import IMG, PATCH, TINY, prompted
from ivpt_runs import (
    ROOT,
    SEG_CFG,
    make_vtab,
    ok,
    pretrained_tiny,
    run,
    run_tool,
    small_config,
)
from PIL import Image

TOOLS = osp.join(ROOT, 'tools', 'analysis')
GAP, LABEL, DIM = 4, 14, 0.35  # the layout attention_maps.py promises


def run_script(path, argv, monkeypatch):
    """Run a tool script in this process, as ``python path argv...``
    (cheaper than a subprocess: no second import of the OpenMMLab stack)."""
    import runpy
    monkeypatch.setattr(sys, 'argv', [path] + [str(a) for a in argv])
    runpy.run_path(path, run_name='__main__')


def mim_tool(package, *parts):
    """A tool script shipped inside an OpenMMLab wheel (what `mim run`
    runs)."""
    mod = __import__(package)
    path = osp.join(osp.dirname(mod.__file__), '.mim', 'tools', *parts)
    assert osp.isfile(path), path
    return path


# ------------------------------------------------------------ checkpoints
@pytest.fixture(scope='module')
def seg_model(env, seg_run):
    """The session's ``seg_run`` (the demo's segmentation config, iVPT
    CDC+DA on a tiny ViT, trained 4 iterations; prompt-only checkpoint),
    its config pointing at the pretrained ViT, and a validation image."""
    cfg = env['tmp'] / 'seg_cfg.py'
    cfg.write_text(textwrap.dedent(f"""
        _base_ = [{SEG_CFG!r}]
        model = dict(backbone=dict(init_cfg=dict(
            checkpoint={env['pretrained']!r})))
    """))
    img = osp.join(env['data'], 'images', 'validation', 'shapes_000001.jpg')
    return dict(cfg=str(cfg), ckpt=str(seg_run / 'iter_4.pth'), img=img)


# ------------------------------------------------------- the reference
def explicit_cls_attention(model, x):
    """Per block, the cls query's softmax over all keys, mean over heads,
    restricted to the patch keys: computed here with an explicit softmax
    from each block's qkv weights and the tokens the block's attention
    received (captured by hooks). Returns (L, M)."""
    bb = model.backbone
    seen = {}
    hooks = [blk.attn.register_forward_pre_hook(
        lambda m, a, i=i: seen.__setitem__(i, (a[0], a[1])))
        for i, blk in enumerate(bb.blocks)]
    with torch.no_grad():
        bb(x)
    for h in hooks:
        h.remove()
    out = []
    for i, blk in enumerate(bb.blocks):
        tokens, q_scale = seen[i]
        a = blk.attn
        b, t, d = tokens.shape
        hd = d // a.num_heads
        qkv = (tokens @ a.qkv.weight.T + a.qkv.bias).reshape(
            b, t, 3, a.num_heads, hd).permute(2, 0, 3, 1, 4)
        q, k = qkv[0], qkv[1]
        if q_scale is not None:
            q = q * q_scale
        logits = q @ k.transpose(-2, -1) / hd ** 0.5
        w = torch.exp(logits - logits.amax(-1, keepdim=True))
        w = w / w.sum(-1, keepdim=True)
        out.append(w[0, :, 0, 1 + bb.num_prompt_tokens:].mean(0))
    return torch.stack(out)


def jet(x):
    import matplotlib
    return matplotlib.colormaps['jet'](x)[..., :3] * 255.


def run_attention_maps(out_dir, *args):
    return ok(run_tool('analysis/attention_maps.py', *args, '--out-dir',
                       out_dir, cwd=out_dir.parent))


def check_figure(png, npz, rows_expected, scale, alpha, model, i=0,
                 row0=0):
    """The PNG's layout, and model i's rows in it, against the explicit
    softmax (and AR's top-k of it)."""
    fig = np.asarray(Image.open(png).convert('RGB')).astype(int)
    data = np.load(npz)
    x = torch.from_numpy(data[f'm{i}_input'])
    h_img, w_img = x.shape[-2:]
    ph, pw = h_img * scale, w_img * scale
    L = len(model.backbone.blocks)
    cols = 1 + L
    assert fig.shape == (rows_expected * (LABEL + ph) +
                         (rows_expected - 1) * GAP,
                         cols * pw + (cols - 1) * GAP, 3)

    def panel(r, c):
        top = r * (LABEL + ph + GAP) + LABEL
        return fig[top:top + ph, c * (pw + GAP):c * (pw + GAP) + pw]

    p = model.backbone.patch_size
    gh, gw = -(-h_img // p), -(-w_img // p)
    ref = explicit_cls_attention(model, x)  # (L, M)
    np.testing.assert_allclose(data[f'm{i}_maps'].reshape(L, -1),
                               ref.numpy(), rtol=1e-4, atol=1e-6)
    image = panel(row0, 0)
    for layer in range(L):
        a = ref[layer].reshape(gh, gw).numpy()
        norm = (a - a.min()) / (a.max() - a.min())
        heat = jet(norm).repeat(p * scale, 0).repeat(p * scale, 1)
        want = (1 - alpha) * image + alpha * heat[:ph, :pw]
        assert np.abs(panel(row0, 1 + layer) - want).max() <= 1.5, layer
    if model.backbone.ar_tokens:
        k = model.backbone.ar_tokens
        for layer in range(L - 1):
            top = ref[layer].topk(k).indices.numpy()
            np.testing.assert_array_equal(data[f'm{i}_ar'][layer], top)
            keep = np.zeros(gh * gw, bool)
            keep[top] = True
            keep = keep.reshape(gh, gw).repeat(p * scale, 0).repeat(
                p * scale, 1)[:ph, :pw]
            got = panel(row0 + 1, 1 + layer)
            assert (got[keep] == image[keep]).all()
            assert np.abs(got[~keep] - image[~keep] * DIM).max() <= 1
    return data


# ------------------------------------------------------- attention maps
@pytest.mark.slow
def test_attention_maps_segmentation(seg_model, tmp_path, monkeypatch,
                                     capsys):
    from mmengine.config import Config
    from mmseg.apis import init_model
    out = tmp_path / 'maps'
    monkeypatch.chdir(tmp_path)  # in this process, from another directory
    run_script(osp.join(TOOLS, 'attention_maps.py'),
               [seg_model['cfg'], seg_model['ckpt'], seg_model['img'],
                '--scale', 2, '--out-dir', 'maps'], monkeypatch)
    assert 'maps/shapes_000001_attention.png' in capsys.readouterr().out
    model = init_model(Config.fromfile(seg_model['cfg']), seg_model['ckpt'],
                       device='cpu')
    data = check_figure(out / 'shapes_000001_attention.png',
                        out / 'shapes_000001_attention.npz', 1, 2, 0.5,
                        model)
    assert 'm0_ar' not in data  # the demo config has no AR


@pytest.mark.slow
def test_attention_maps_classification_with_ar(cls_run, tmp_path):
    from mmengine.config import Config
    from mmpretrain.apis import get_model
    out = tmp_path / 'maps'
    run_attention_maps(out, cls_run['cfg'], cls_run['ckpt'], cls_run['img'],
                       '--compare', cls_run['cfg'], cls_run['ckpt'],
                       '--names', 'A', 'B', '--alpha', 0.6)
    stem = 'noise'
    model = get_model(Config.fromfile(cls_run['cfg']), cls_run['ckpt'])
    model.eval()
    assert model.backbone.ar_tokens == 2
    # two models, each an attention row and an AR row
    png, npz = (out / f'{stem}_attention.png', out / f'{stem}_attention.npz')
    check_figure(png, npz, 4, 4, 0.6, model, i=0, row0=0)
    data = check_figure(png, npz, 4, 4, 0.6, model, i=1, row0=2)
    meta = json.loads(str(data['meta']))
    assert [r.split(':')[0] for r in meta['rows']] == ['A', 'A', 'B', 'B']


@pytest.mark.slow
@pytest.mark.parametrize('task', ['segmentation', 'classification'])
def test_attention_maps_image_is_rgb(task, request, tmp_path):
    """A pure red image file through the tool (a subprocess, as a user runs
    it): the image panel and the stored ``m0_image`` are red, and
    ``m0_input`` is the red image normalised in the RGB order the model
    takes (both configs flip the loaded BGR: mmseg's ``bgr_to_rgb``,
    mmpretrain's ``to_rgb``)."""
    fixture = request.getfixturevalue('seg_model' if task == 'segmentation'
                                      else 'cls_run')
    red = tmp_path / 'red.png'
    pixels = np.zeros((64, 64, 3), np.uint8)
    pixels[..., 0] = 255
    Image.fromarray(pixels).save(red)
    out = tmp_path / 'maps'
    run_attention_maps(out, fixture['cfg'], fixture['ckpt'], red,
                       '--scale', 1)
    data = np.load(out / 'red_attention.npz')
    image = data['m0_image']
    assert (image == [255, 0, 0]).all(), image[0, 0]  # was (0, 0, 255)
    fig = np.asarray(Image.open(out / 'red_attention.png').convert('RGB'))
    h, w = image.shape[:2]
    assert np.array_equal(fig[LABEL:LABEL + h, :w], image)
    mean = np.array([123.675, 116.28, 103.53])  # ImageNet's, R G B
    std = np.array([58.395, 57.12, 57.375])
    x = data['m0_input'][0]  # (3, H, W)
    want = (np.array([255., 0., 0.]) - mean) / std
    np.testing.assert_allclose(x[:, h // 2, w // 2], want, rtol=1e-5)


# --------------------------------------------------------------- FLOPs
def hand_count_vit(L, D, F, T, M, p, C=3):
    """mmengine's rules written out: linear/matmul/conv a multiply-add per
    FLOP, LayerNorm 5 per element, attention 2·T²·D (Q Kᵀ and A V)."""
    block = (2 * 5 * T * D + T * D * 3 * D + 2 * T * T * D + T * D * D +
             2 * T * D * F)
    return M * D * C * p * p + L * block + 5 * T * D


def test_flop_count_includes_attention():
    from mmseg_ivpt.analysis.complexity import count_flops
    m = prompted(num_prompts=3, prompt_structure='deep')
    x = torch.randn(1, 3, IMG, IMG)
    M = (IMG // PATCH) ** 2
    T = 1 + 3 + M
    total, by_op = count_flops(m, (x, ))
    D, L = TINY['embed_dims'], TINY['num_layers']
    assert by_op['scaled_dot_product_attention'] == L * 2 * T * T * D
    assert total == hand_count_vit(L, D, TINY['feedforward_channels'], T, M,
                                   PATCH)
    # the explicit-softmax path, counted by mmengine's own matmul rule
    m.explicit_attention = True
    total_explicit, by_op = count_flops(m, (x, ))
    assert 'scaled_dot_product_attention' not in by_op
    assert total_explicit == total


def test_num_extra_tokens():
    assert prompted(num_prompts=0).num_extra_tokens == 1
    assert prompted(num_prompts=5).num_extra_tokens == 6


def test_backbone_of_names_a_swin():
    """The attention analysis reads a ViT's cls-row attention; a Swin (no
    cls token, attention per window) is its named error, not a crash on a
    ViT attribute it lacks."""
    from mmseg_ivpt.analysis.attention import backbone_of
    from mmseg_ivpt.models import PromptedSwin
    model = torch.nn.Module()
    model.backbone = PromptedSwin(
        arch=dict(embed_dims=16, depths=(2, 2), num_heads=(2, 4)),
        img_size=32, patch_size=2, window_size=4)
    with pytest.raises(ValueError, match="backbone is PromptedSwin, not one "
                                         "of this toolbox's ViTs"):
        backbone_of(model)
    model.backbone = prompted(num_prompts=2)
    assert backbone_of(model) is model.backbone


# ------------------------------------------------------ runtime report
def tiny_cls_configs(tmp_path):
    """Three methods (and linear probing) of one tiny classification
    config: VPT-deep, iVPT, GaPT."""
    make_vtab(tmp_path / 'vtab', task='eurosat', n=4)
    base = small_config(tmp_path, 'configs/vtab/ivpt_vitb16_eurosat.py',
                        f"data_root={str(tmp_path / 'vtab')!r}",
                        pretrained_tiny(tmp_path))
    variants = dict(
        vpt_deep="prompt_structure='deep', dynamic_aggregation=False, "
                 'ar_tokens=0',
        ivpt='',
        gapt="_delete_=True, type='GatedViT', arch=dict(" + ', '.join(
            f'{k}={v}' for k, v in TINY.items()) + "), img_size=32, "
        "patch_size=8, num_prompts=3, out_type='cls_token'",
        linear='num_prompts=0, dynamic_aggregation=False, ar_tokens=0')
    paths = {}
    for name, over in variants.items():
        p = tmp_path / f'tiny_{name}.py'
        p.write_text(f'_base_ = [{base!r}]\nmodel = dict(backbone=dict('
                     f'{over}))\n')
        paths[name] = str(p)
    return paths


@pytest.mark.slow
def test_runtime_report_three_methods(tmp_path, monkeypatch, capsys):
    cfgs = tiny_cls_configs(tmp_path)
    out_json = tmp_path / 'report.json'
    res = ok(run_tool('analysis/runtime_report.py', *cfgs.values(),
                      '--iters', '2', '--warmup', '0', '--batch-size', '2',
                      '--json', out_json, cwd=tmp_path))
    rows = [line.split('|')[1:-1] for line in res.stdout.splitlines()
            if line.startswith('| tiny_')]
    assert [r[0].strip() for r in rows] == [f'tiny_{n}' for n in cfgs]
    for r in rows:  # every column filled
        assert all(c.strip() not in ('', '-') for c in r), r
    # parameters against tools/count_params.py
    capsys.readouterr()
    run_script(osp.join(ROOT, 'tools', 'count_params.py'),
               list(cfgs.values()), monkeypatch)
    counted = {line.split('|')[1].strip(): line.split('|')[2].strip()
               for line in capsys.readouterr().out.splitlines()
               if line.startswith('| tiny_')}
    assert len(counted) == 4
    for r in rows:
        assert r[2].strip() == counted[r[0].strip() + '.py']
    # FLOPs of the plain ViT (linear probing) against the hand count
    data = json.loads(out_json.read_text())['results']
    D, L = TINY['embed_dims'], TINY['num_layers']
    M = (IMG // PATCH) ** 2
    classes = 10  # eurosat
    want = hand_count_vit(L, D, TINY['feedforward_channels'], 1 + M, M,
                          PATCH) + D * classes
    assert round(data['tiny_linear']['gflops'] * 1e9) == want
    # prompts cost: iVPT (N=3, AR k=2) more than the plain ViT
    assert data['tiny_ivpt']['gflops'] > data['tiny_linear']['gflops']
    assert all(data[n]['peak_mb'] >= 0 for n in data)


# ------------------------------------------------ OpenMMLab's own tools
@pytest.mark.slow
def test_mmpretrain_vis_cam_and_get_flops(cls_run, tmp_path, monkeypatch,
                                         capsys):
    """vis_cam finds the extra tokens itself (no --num-extra-tokens);
    get_flops counts attention once the config imports mmseg_ivpt."""
    pytest.importorskip('pytorch_grad_cam')
    out = tmp_path / 'cam.png'
    ok(run([sys.executable, mim_tool('mmpretrain', 'visualization',
                                     'vis_cam.py'),
            cls_run['img'], cls_run['cfg'], cls_run['ckpt'], '--vit-like',
            '--save-path', str(out)], str(tmp_path)))
    assert Image.open(out).size == (IMG, IMG)

    capsys.readouterr()
    run_script(mim_tool('mmpretrain', 'analysis_tools', 'get_flops.py'),
               [cls_run['cfg'], '--shape', IMG], monkeypatch)
    printed = [line for line in capsys.readouterr().out.splitlines()
               if line.startswith('Flops:')][0].split()[1]
    from mmengine.analysis.print_helper import _format_size
    from mmengine.config import Config
    from mmpretrain.apis import get_model

    from mmseg_ivpt.analysis.complexity import count_flops
    model = get_model(Config.fromfile(cls_run['cfg'])).eval()

    class Feat(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = model

        def forward(self, x):
            return self.m.extract_feat(x)

    total, by_op = count_flops(Feat(), (torch.randn(1, 3, IMG, IMG), ))
    assert by_op['scaled_dot_product_attention'] > 0
    assert printed == _format_size(total)


@pytest.mark.slow
def test_segmentation_flops_where_mmseg_get_flops_cannot(
        seg_model, tmp_path, monkeypatch, capsys):
    # mmseg 1.2.2's get_flops with mmengine 0.10.7
    with pytest.raises(ValueError, match='"input_shape" and "inputs" cannot '
                       'be both set'):
        run_script(mim_tool('mmseg', 'analysis_tools', 'get_flops.py'),
                   [seg_model['cfg'], '--shape', 64], monkeypatch)
    capsys.readouterr()
    run_script(osp.join(TOOLS, 'runtime_report.py'),
               [seg_model['cfg'], '--no-timing', '--json',
                tmp_path / 'r.json'], monkeypatch)
    r = json.loads((tmp_path / 'r.json').read_text())['results']
    (name, vals), = r.items()
    assert vals['input'] == [64, 64]
    assert vals['gflops'] > 0 and 0 < vals['attn_share'] < 1
    assert f'| {name} | 64x64 |' in capsys.readouterr().out


# --------------------------------------------------------- browse_dataset
@pytest.mark.slow
def test_browse_dataset(env, tmp_path):
    """Our browse_dataset (mmseg's crashes, docs/analysis.md) as a user runs
    it, from another directory: the image panel is the pipeline's output in
    RGB, the ground-truth panel the palette colours of its labels."""
    from mmengine.config import Config
    from mmengine.registry import DATASETS, init_default_scope
    out = tmp_path / 'browse'
    opts = ['--cfg-options'] + env['opts']
    res = ok(run_tool('analysis/browse_dataset.py', SEG_CFG, '--output-dir',
                      out, '--split', 'val', '--num', '3', *opts,
                      cwd=tmp_path))
    assert '3 of 4 val samples written' in res.stdout
    pngs = sorted(out.glob('*.png'))
    assert [p.name[:4] for p in pngs] == ['0000', '0001', '0002']
    cfg = Config.fromfile(SEG_CFG)
    cfg.val_dataloader.dataset.data_root = env['data']
    init_default_scope('mmseg')
    ds = DATASETS.build(cfg.val_dataloader.dataset)
    sample = ds[1]
    img = sample['inputs'].numpy().transpose(1, 2, 0)[..., ::-1]
    seg = sample['data_samples'].gt_sem_seg.data[0].numpy()
    got = np.asarray(Image.open(pngs[1]))
    h, w = seg.shape
    assert got.shape == (h, 2 * w + 2, 3)
    assert np.array_equal(got[:, :w], img)
    pal = np.asarray(ds.metainfo['palette'], np.uint8)
    want = np.where((seg < len(pal))[..., None],
                    pal[seg.clip(0, len(pal) - 1)], 0)
    assert np.array_equal(got[:, w + 2:], want)
    res = run_tool('analysis/browse_dataset.py', SEG_CFG, '--output-dir', out,
                   '--num', '0', *opts, cwd=tmp_path)
    assert res.returncode != 0 and '--num must be >= 1' in res.stderr
