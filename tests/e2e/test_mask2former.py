"""The Mask2Former configs on a frozen, prompted DINOv2 ViT-L/14 reg4
(configs/mask2former_*): mmseg's recipe kept where docs/segmentation.md
says so; one ADE20K and one Cityscapes config trained two iterations
through tools/train.py (from another cwd, generated data, the encoder and
head shrunk by --cfg-options), evaluated by tools/test.py, run by mmseg's
init_model / inference_model and by the prompt bank; every config stepped
in process, its frozen encoder bit-identical after the steps and only the
method's tensors, the neck and the head with gradients. mmdet's pixel
decoder runs on CPU here (mmcv's MultiScaleDeformableAttention falls back
to its PyTorch implementation)."""
import glob
import os.path as osp
from functools import lru_cache

import numpy as np
import pytest
import torch
from ivpt_runs import ROOT, make_cityscapes, ok, run_tool
from mmengine.config import Config

from mmseg_ivpt.analysis.params import build_model_on_meta, count_parameters

CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs', 'mask2former_*.py')))
METHODS = ('frozen', 'gapt', 'ivpt', 'vpt-deep')
#: the method's tensors (docs/segmentation.md, Table 7's formulas)
METHOD_PARAMS = {'frozen': 0, 'vpt-deep': 24 * 10 * 1024,
                 'ivpt': 24 * 10 * 1024 + 23 * 10 * 10,
                 'gapt': 10 * 1024 + 23 + 24}
# Feature2Pyramid at 1024: three 2x2 transposed convs (x4: two, x2: one)
# and the BN between the x4 ones
NECK = 3 * (1024 * 1024 * 4 + 1024) + 2 * 1024
TINY = dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64)
#: (crop, generated image size) of the shrunk runs
SIZES = {'ade20k': ((56, 56), (64, 64)), 'cityscapes': ((56, 112), (64, 128))}


def _mmseg_configs():
    import mmseg
    return osp.join(osp.dirname(mmseg.__file__), '.mim', 'configs',
                    'mask2former')


MMSEG_CONFIGS = _mmseg_configs()


def plain(x):
    """``x`` without the ``_scope_`` keys mmengine writes into what a
    config inherits with ``mmseg::``."""
    if isinstance(x, dict):
        return {k: plain(v) for k, v in x.items() if k != '_scope_'}
    if isinstance(x, (list, tuple)):
        return [plain(v) for v in x]
    return x


def cfg_path(method, data):
    return osp.join(ROOT, 'configs',
                    f'mask2former_{method}_dinov2-vitl14-reg4_{data}.py')


def test_every_method_and_data_set_has_a_config():
    assert CONFIGS == sorted(cfg_path(m, d) for m in METHODS
                             for d in SIZES)


@pytest.mark.slow
def test_count_params_parts(monkeypatch, capsys):
    """tools/count_params.py --parts (in process: the tool's main): the
    method's tensors, the neck and the head of a config, and the share."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'count_params', osp.join(ROOT, 'tools', 'count_params.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    path = cfg_path('ivpt', 'ade20k')
    monkeypatch.setattr('sys.argv', ['count_params.py', path, '--parts'])
    tool.main()
    method = METHOD_PARAMS['ivpt']
    row = capsys.readouterr().out.splitlines()[2].split(' | ')
    head, trainable = int(row[3].replace(',', '')), int(
        row[4].replace(',', ''))
    assert row[1:3] == [f'{method:,}', f'{NECK:,}']
    assert trainable == method + NECK + head
    assert row[5] == f'{100 * method / trainable:.2f}%'
    assert row[6] == f'{trainable + 304_370_688:,} |'


# ------------------------------------------------------------ shrunk runs
def shrink(data, pretrained, root):
    """--cfg-options (as a list of KEY=VALUE) making a config of ``data``
    tiny: a 2-block, 32-wide encoder read at blocks 0/1/1/1 from
    ``pretrained``, a 32-wide neck and head with 4 queries and one layer
    in the pixel decoder and in the transformer decoder, 56-pixel crops
    of the generated data at ``root``, two iterations."""
    (h, w), _ = SIZES[data]
    H, P = 'model.decode_head.', 'model.decode_head.pixel_decoder.'
    D = H + 'transformer_decoder.layer_cfg.'
    opts = ['model.backbone.arch._delete_=True'] + [
        f'model.backbone.arch.{k}={v}' for k, v in TINY.items()] + [
        'model.backbone.out_indices=[0,1,1,1]',
        f'pretrained={pretrained}',
        f'model.backbone.init_cfg.checkpoint={pretrained}',
        f'model.data_preprocessor.size=({h},{w})', 'model.neck.embed_dim=32',
        H + 'in_channels=[32,32,32,32]', H + 'feat_channels=32',
        H + 'out_channels=32', H + 'num_queries=4',
        H + 'positional_encoding.num_feats=16',
        H + 'train_cfg.num_points=64', P + 'encoder.num_layers=1',
        P + 'positional_encoding.num_feats=16',
        H + 'transformer_decoder.num_layers=1']
    opts += [f'{P}encoder.layer_cfg.{k}.embed_dims=32'
             for k in ('self_attn_cfg', 'ffn_cfg')]
    opts += [f'{D}{k}.embed_dims=32'
             for k in ('self_attn_cfg', 'cross_attn_cfg', 'ffn_cfg')]
    opts += [f'{P}encoder.layer_cfg.ffn_cfg.feedforward_channels=64',
             f'{D}ffn_cfg.feedforward_channels=64']
    opts += ['train_dataloader.dataset.pipeline.2.scales=[56]',
             f'train_dataloader.dataset.pipeline.2.max_size={2 * w}',
             f'train_dataloader.dataset.pipeline.3.crop_size=({h},{w})',
             'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
             'train_cfg.max_iters=2', 'param_scheduler.0.end=2',
             'val_cfg=None', 'val_dataloader=None', 'val_evaluator=None',
             'default_hooks.checkpoint.interval=2',
             'default_hooks.checkpoint.save_best=None',
             'default_hooks.logger.interval=1']
    for loader in ('train', 'test'):
        opts.append(f'{loader}_dataloader.dataset.data_root={root}')
    # test_pipeline: what mmseg's inference_model reads
    opts += [f'test_dataloader.dataset.pipeline.1.scale=({2 * w},{h})',
             f'test_pipeline.1.scale=({2 * w},{h})',
             'test_dataloader.num_workers=0']
    return opts


def as_dict(opts):
    """The KEY=VALUE list as the dict DictAction makes of it."""
    import argparse

    from mmengine.config import DictAction
    p = argparse.ArgumentParser()
    p.add_argument('--o', nargs='+', action=DictAction)
    return p.parse_args(['--o', *opts]).o


def save_tiny_dinov2(path):
    """A random 32-wide, 2-block DINOv2-reg4 encoder (518 grid) at
    ``path``: the "pretrained" file of the shrunk runs."""
    from mmseg_ivpt.models import ViTEncoder
    torch.manual_seed(0)
    enc = ViTEncoder(arch=TINY, img_size=518, patch_size=14,
                     num_reg_tokens=4, no_embed_class=True,
                     layer_scale_init=1e-5)
    torch.save(enc.state_dict(), path)
    return str(path)


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    from mmseg_ivpt.datasets import generate_shapes_dataset
    tmp = tmp_path_factory.mktemp('m2f')
    return dict(
        tmp=tmp, pretrained=save_tiny_dinov2(tmp / 'tiny_dinov2.pth'),
        ade20k=generate_shapes_dataset(str(tmp / 'ade'), num_train=4,
                                       num_val=2),
        cityscapes=make_cityscapes(tmp / 'cityscapes'))


@pytest.mark.slow
@pytest.mark.parametrize('method,data', [('ivpt', 'ade20k'),
                                         ('gapt', 'cityscapes')])
def test_train_test_and_infer_through_the_tools(tiny, method, data):
    """tools/train.py from another cwd; ADE20K: tools/test.py (from another
    cwd) and the prompt bank on the prompt-only checkpoint; Cityscapes:
    tools/train.py evaluates it (a validation at the last iteration: the
    same metric on mmseg's Cityscapes layout, one process fewer); both:
    init_model + inference_model."""
    from mmseg.apis import inference_model, init_model

    from mmseg_ivpt.apis import PromptBank
    from mmseg_ivpt.engine.config import read_config
    cfg, work = cfg_path(method, data), tiny['tmp'] / f'work_{data}'
    opts = shrink(data, tiny['pretrained'], tiny[data])
    if data == 'cityscapes':  # validate at iteration 2
        opts = [o for o in opts if not o.startswith('val_')] + [
            'train_cfg.val_interval=2', 'val_dataloader.num_workers=0',
            f'val_dataloader.dataset.data_root={tiny[data]}',
            'val_dataloader.dataset.pipeline.1.scale=(224,56)']
    res = ok(run_tool('train.py', cfg, '--work-dir', work, '--cfg-options',
                      *opts, cwd=tiny['tmp']))
    ckpt = str(work / 'iter_2.pth')
    sd = torch.load(ckpt, weights_only=False)['state_dict']
    assert not any(k.startswith('backbone.blocks.') for k in sd)
    assert sd['decode_head.cls_embed.weight'].shape[0] == (
        151 if data == 'ade20k' else 20)
    if data == 'ade20k':
        res = ok(run_tool('test.py', cfg, ckpt, '--work-dir', work / 'test',
                          '--cfg-options', *opts, cwd=tiny['tmp']))
    assert 'mIoU' in res.stdout + res.stderr
    # mmseg's inference API, on an image of the data (not a crop's size)
    model = init_model(read_config(cfg, as_dict(opts)), ckpt, device='cpu')
    img = sorted(glob.glob(osp.join(tiny[data], '**', '*.[jp][pn]g'),
                           recursive=True))
    img = next(p for p in img if 'annotations' not in p and 'gtFine' not in p)
    result = inference_model(model, img)
    assert tuple(result.pred_sem_seg.shape) == SIZES[data][1]
    if data == 'ade20k':  # the bank serves the task as the model alone
        bank = PromptBank(tiny['pretrained'], [dict(
            name=data, config=cfg, checkpoint=ckpt,
            cfg_options=as_dict(opts))])
        (pred, ) = bank.predict([img], [data])
        assert torch.allclose(pred.seg_logits.data, result.seg_logits.data,
                              atol=1e-5)


@lru_cache(maxsize=None)
def mmseg_recipe(data):
    """mmseg's own Mask2Former config for ``data`` (ResNet-50)."""
    return Config.fromfile(osp.join(
        MMSEG_CONFIGS, 'mask2former_r50_8xb2-160k_ade20k-512x512.py'
        if data == 'ade20k' else
        'mask2former_r50_8xb2-90k_cityscapes-512x1024.py'))


def check_recipe(path, cfg, heads):
    """mmseg's Mask2Former recipe (optimizer, schedule, batch, queries,
    losses, pixel decoder) in the config at ``path``, the encoder frozen:
    trainable = the method's tensors + the neck + the head (whose count
    goes into ``heads``, by data set)."""
    data = 'ade20k' if path.endswith('ade20k.py') else 'cityscapes'
    method = osp.basename(path).split('_')[1]
    mmseg = mmseg_recipe(data)
    head, ref = cfg.model.decode_head, mmseg.model.decode_head
    for key in ('num_classes', 'num_queries', 'feat_channels',
                'pixel_decoder', 'transformer_decoder', 'loss_cls',
                'loss_mask', 'loss_dice', 'train_cfg'):
        assert plain(head[key]) == plain(ref[key]), (path, key)
    for key in ('param_scheduler', 'train_cfg'):
        assert plain(cfg[key]) == plain(mmseg[key]), (path, key)
    assert cfg.train_dataloader.batch_size == 2  # x 8 GPUs = 16
    opt = cfg.optim_wrapper
    assert plain(opt.optimizer) == plain(mmseg.optim_wrapper.optimizer)
    assert opt.clip_grad == mmseg.optim_wrapper.clip_grad
    assert 'backbone' not in opt.paramwise_cfg.custom_keys
    assert cfg.model.test_cfg.mode == 'whole'
    assert cfg.model.backbone.init_cfg.checkpoint == cfg.pretrained
    n = count_parameters(build_model_on_meta(cfg))
    assert n['backbone.trainable'] == METHOD_PARAMS[method], path
    assert n['neck.trainable'] == NECK
    assert n['trainable'] == (n['backbone.trainable'] + NECK +
                              n['decode_head.trainable'])
    assert n['backbone.total'] - n['backbone.trainable'] == 304_370_688
    heads.setdefault(data, set()).add(n['decode_head.trainable'])


def _batch(data):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    (h, w), _ = SIZES[data]
    samples = []
    for _ in range(2):
        s = SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w)))
        s.gt_sem_seg = PixelData(data=torch.randint(0, 4, (1, h, w)))
        samples.append(s)
    return dict(inputs=[torch.randint(0, 256, (3, h, w), dtype=torch.uint8)
                        for _ in range(2)], data_samples=samples)


@pytest.mark.slow
def test_every_config_keeps_the_recipe_and_steps_frozen(tiny):
    """Each config keeps mmseg's recipe and has the parameters of its
    method, neck and head (:func:`check_recipe`); then, shrunk, built in
    process with its optimizer: after a
    backward only the method's tensors (the backbone's
    method_parameters()), the neck and the head have gradients, all of
    them; after two optimizer steps the encoder's other tensors are
    bit-identical and the prompts have moved. The checkpoint check
    names Mask2Former's class count (cls_embed: classes + 1)."""
    from mmengine.model import revert_sync_batchnorm
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    from mmseg_ivpt.engine.checks import check_checkpoint_fits
    from mmseg_ivpt.engine.config import apply_cfg_options
    from mmseg_ivpt.models import CheckpointMismatchError
    init_default_scope('mmseg')
    heads = {}
    for path in CONFIGS:
        data = 'ade20k' if path.endswith('ade20k.py') else 'cityscapes'
        cfg = Config.fromfile(path)
        check_recipe(path, cfg, heads)
        apply_cfg_options(cfg, as_dict(shrink(data, tiny['pretrained'],
                                              tiny[data])))
        torch.manual_seed(0)
        model = revert_sync_batchnorm(MODELS.build(cfg.model))
        model.init_weights()
        method = set(model.backbone.method_parameters())  # by name
        frozen = {n: p.detach().clone()
                  for n, p in model.backbone.named_parameters()
                  if n not in method}
        before = {n: p.detach().clone()
                  for n, p in model.backbone.named_parameters()
                  if n in method}
        wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
        model.train()
        batch = model.data_preprocessor(_batch(data), True)
        loss, _ = model.parse_losses(model(**batch, mode='loss'))
        loss.backward()
        graded = {n for n, p in model.named_parameters()
                  if p.grad is not None}
        expected = {f'backbone.{n}' for n in method} | {
            n for n, _ in model.named_parameters()
            if n.split('.')[0] in ('neck', 'decode_head')}
        assert graded == expected, (path, sorted(graded ^ expected)[:5])
        assert all(p.requires_grad == (n in expected)
                   for n, p in model.named_parameters()), path
        wrapper.step()
        wrapper.zero_grad()
        model.train_step(_batch(data), wrapper)
        params = dict(model.backbone.named_parameters())
        for n, p in frozen.items():
            assert torch.equal(params[n], p), (path, n)
        if method:  # the prompts move (a gate of GaPT's may not, at
            # AdamW's lr 1e-4 after clipping the whole gradient to 0.01)
            assert not torch.equal(params['prompts'], before['prompts'])
        assert bool(method) == (not path.endswith(
            f'frozen_dinov2-vitl14-reg4_{data}.py')), path
    # the checkpoint of a 4-class head for this 19-class model
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    sd['decode_head.cls_embed.weight'] = torch.zeros(5, 32)
    sd['decode_head.cls_embed.bias'] = torch.zeros(5)
    with pytest.raises(CheckpointMismatchError, match=r"checkpoint's "
                       r"decode_head predicts 4 classes, this config's 19"):
        check_checkpoint_fits(model, dict(state_dict=sd), 'ckpt.pth')
    assert np.isfinite(loss.item())
    # one head per data set; they differ by the class layer alone
    (ade, ), (city, ) = heads['ade20k'], heads['cityscapes']
    assert ade - city == (150 - 19) * 257
