"""TaskMux: one frozen ViT shared by many prompt-tuned backbones; a batch of
mixed tasks through the blocks once equals each backbone run alone."""
import random

import pytest
import torch
from ivpt_helpers import IMG, PATCH, TINY, timm_vit

from mmseg_ivpt.models import (
    GatedViT,
    PromptedViT,
    ViTEncoder,
    load_encoder_weights,
)
from mmseg_ivpt.models.multitask import TaskMux, tensor_bytes

# name -> (class, kwargs): every structure, DA, AR (top-k and all), EXPRESS,
# GaPT (temperatures, gates), linear probing, every out_type, two grids
TASKS = {
    'ivpt': (PromptedViT, dict(num_prompts=3, prompt_structure='cdc',
                               dynamic_aggregation=True, ar_tokens=2,
                               out_type='cls_token')),
    'deep': (PromptedViT, dict(num_prompts=5, prompt_structure='deep',
                               out_type='avg_featmap')),
    'linear48': (PromptedViT, dict(num_prompts=0, img_size=48,
                                   out_indices=(1, 3), final_norm=False)),
    'gapt': (GatedViT, dict(num_prompts=4, gate_init=0.5,
                            out_type='avg_all_tokens')),
    'express': (PromptedViT, dict(num_prompts=2, prompt_structure='express',
                                  out_type='cls_token')),
    'provp48': (PromptedViT, dict(num_prompts=3, prompt_structure='provp',
                                  ar_tokens=3, img_size=48)),
    'vcdc_all': (PromptedViT, dict(num_prompts=2,
                                   prompt_structure='vanilla_cdc',
                                   ar_tokens=1, ar_mode='all',
                                   out_type='avg_all_tokens')),
    'shallow': (PromptedViT, dict(num_prompts=6, prompt_structure='shallow',
                                  out_type='cls_token')),
}


def build(name):
    cls, kw = TASKS[name]
    kw = dict(kw)
    return cls(arch=TINY, img_size=kw.pop('img_size', IMG), patch_size=PATCH,
               **kw)


@pytest.fixture(scope='module')
def models():
    """Reference backbones (each with its own copy of the ViT, method
    tensors randomised) and a mux holding the same tasks."""
    torch.manual_seed(0)
    t = timm_vit()
    refs = {}
    for name in TASKS:
        m = build(name)
        load_encoder_weights(m, t.state_dict())
        with torch.no_grad():
            for pname in m.method_param_names:
                p = getattr(m, pname)
                if p is not None:
                    p.normal_(0, 0.5)
            if isinstance(m, GatedViT):
                m.temperatures.uniform_(0.5, 2.)
        refs[name] = m.eval()
    enc = ViTEncoder(arch=TINY, img_size=IMG, patch_size=PATCH)
    load_encoder_weights(enc, t.state_dict())
    mux = TaskMux(enc)
    for name, ref in refs.items():
        bb = mux.add(name, build(name))
        own = {k: v for k, v in ref.state_dict().items()
               if k.split('.')[0] in ref.method_param_names}
        bb.load_state_dict(own, strict=False)
    return refs, mux.eval()


def images(size, n):
    return torch.randn(n, 3, size, size)


@pytest.mark.parametrize('mode', ['pad', 'group'])
def test_mixed_batch_equals_each_task_alone(models, mode):
    refs, mux = models
    units = []
    for name in TASKS:
        for size in (IMG, 48):
            if name == 'vcdc_all' and size != IMG:
                continue  # ar_mode='all' is tied to its grid
            units.append((name, images(size, 2)))
    with torch.no_grad():
        want = [refs[n](x) for n, x in units]
        for seed in range(3):  # any order of the units
            order = list(range(len(units)))
            random.Random(seed).shuffle(order)
            got = mux([units[i] for i in order], mode=mode)
            for i, g in zip(order, got):
                assert len(g) == len(want[i])
                for a, b in zip(g, want[i]):
                    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_padding_is_what_makes_one_pass(models):
    """Units of different lengths in 'pad' mode go through each block once
    (one call per block), with a mask; 'group' calls a block once per
    distinct length."""
    refs, mux = models
    units = [('ivpt', images(IMG, 1)), ('deep', images(IMG, 1)),
             ('shallow', images(IMG, 1))]  # lengths 1+3+16, 1+5+16, 1+6+16
    calls = []
    h = mux.encoder.blocks[0].register_forward_pre_hook(
        lambda m, args: calls.append((args[0].shape, args[5] is not None)))
    try:
        with torch.no_grad():
            mux(units, mode='pad')
            pad_calls, calls[:] = list(calls), []
            mux(units, mode='group')
    finally:
        h.remove()
    assert pad_calls == [(torch.Size([3, 23, 64]), True)]
    assert sorted(s[1] for s, _ in calls) == [20, 22, 23]
    assert not any(masked for _, masked in calls)


def test_one_copy_of_the_frozen_vit(models):
    refs, mux = models
    enc = mux.encoder
    for name, bb in mux.tasks.items():
        assert bb.blocks is enc.blocks and bb.patch_embed is enc.patch_embed
        assert bb.cls_token is enc.cls_token
        own = tensor_bytes(mux.task_tensors(name))
        ref = refs[name]
        method = sum(getattr(ref, p).numel() * 4
                     for p in ref.method_param_names
                     if getattr(ref, p) is not None)
        assert own == method, name  # its method's tensors, nothing else
    # the 48-pixel tasks share one resampled position embedding
    assert mux.tasks['linear48'].pos_embed is mux.tasks['provp48'].pos_embed
    assert mux.tasks['ivpt'].pos_embed is enc.pos_embed
    shared = tensor_bytes(mux.shared_tensors())
    vit = tensor_bytes(list(refs['ivpt'].parameters()))
    assert shared < vit + (1 + 36) * 64 * 4 + 1  # + the 6x6 grid's table
    assert tensor_bytes(list(mux.parameters())) == shared + sum(
        tensor_bytes(mux.task_tensors(n)) for n in mux.tasks)


def test_bad_tasks_are_named_errors(models):
    _, mux = models
    with pytest.raises(ValueError, match="two tasks are named 'deep'"):
        mux.add('deep', build('deep'))
    with pytest.raises(ValueError, match="finetune='bias'"):
        mux.add('bias', PromptedViT(arch=TINY, img_size=IMG, patch_size=PATCH,
                                    num_prompts=0, finetune='bias'))
    other = dict(TINY, num_layers=3)
    with pytest.raises(ValueError, match='num_layers'):
        mux.add('other', PromptedViT(arch=other, img_size=IMG,
                                     patch_size=PATCH))
    from mmseg_ivpt.models import PromptedSwin
    swin = PromptedSwin(arch=dict(embed_dims=16, depths=(2, 2),
                                  num_heads=(2, 4)),
                        img_size=32, patch_size=2, window_size=4)
    with pytest.raises(TypeError, match=(
            'the backbone is PromptedSwin; a bank serves PromptedViT and '
            'GatedViT')):
        mux.add('swin', swin)
    assert 'swin' not in mux.tasks
    with pytest.raises(KeyError, match="unknown task 'nope'.*'deep'"):
        mux([('nope', images(IMG, 1))])
    with pytest.raises(ValueError, match="mode='fast'"):
        mux([('deep', images(IMG, 1))], mode='fast')


def test_bfloat16_mixed_batch():
    """A bf16 mux (GaPT's temperatures, EXPRESS's residuals and the mask in
    bf16 too) equals each backbone run alone in bf16."""
    t = timm_vit()
    enc = ViTEncoder(arch=TINY, img_size=IMG, patch_size=PATCH)
    load_encoder_weights(enc, t.state_dict())
    mux = TaskMux(enc)
    for name in ('gapt', 'ivpt', 'express', 'deep'):
        mux.add(name, build(name))
    mux = mux.to(torch.bfloat16).eval()
    units = [(n, images(IMG, 2).bfloat16()) for n in mux.tasks]
    with torch.no_grad():
        alone = [mux.tasks[n](x) for n, x in units]
        for mode in ('pad', 'group'):
            for got, want in zip(mux(units, mode=mode), alone):
                assert got[0].dtype == torch.bfloat16
                torch.testing.assert_close(got[0], want[0], atol=2e-2,
                                           rtol=2e-2)


def test_the_mux_takes_vits_by_type_and_knows_no_swin():
    """multitask.py accepts prompt-tuned ViTs by their type: it imports no
    Swin (not even lazily) to reject one."""
    import ast

    import mmseg_ivpt.models.multitask as mt
    named = set()
    for node in ast.walk(ast.parse(open(mt.__file__).read())):
        if isinstance(node, ast.ImportFrom):
            named.add(node.module or '')
        elif isinstance(node, ast.Import):
            named.update(a.name for a in node.names)
    assert not any('swin' in n for n in named), named


def test_forward_from_threads(models):
    """The mux keeps nothing of a call on itself (the packing, the mask and
    each task's context are the call's own): 4 threads, 10 calls each, of
    mixed units in both modes, each equal to the single-threaded result."""
    import threading
    refs, mux = models
    torch.manual_seed(1)
    jobs = [([('ivpt', images(IMG, 2)), ('deep', images(48, 1)),
              ('gapt', images(IMG, 1))], 'pad'),
            ([('express', images(IMG, 1)), ('provp48', images(48, 2))],
             'group'),
            ([('vcdc_all', images(IMG, 1)), ('shallow', images(48, 1)),
              ('ivpt', images(IMG, 1))], 'pad'),
            ([('linear48', images(IMG, 2)), ('gapt', images(48, 1))],
             'group')]
    with torch.no_grad():
        want = [mux(units, mode=mode) for units, mode in jobs]
    got = [[] for _ in jobs]

    def run(k):
        units, mode = jobs[k]
        with torch.no_grad():
            for _ in range(10):
                got[k].append(mux(units, mode=mode))

    threads = [threading.Thread(target=run, args=(k, ))
               for k in range(len(jobs))]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    for k, outs in enumerate(got):
        assert len(outs) == 10, f'thread {k} failed'
        for out in outs:
            for g, w in zip(out, want[k]):
                for a, b in zip(g, w):
                    torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)
