"""PromptBank and tools/multitask_infer.py on three tasks trained here
through tools/train.py on one random tiny ViT: two classification tasks
(iVPT N=3 with AR k=2; VPT-deep N=5 without AR) and one segmentation task
(iVPT N=8, SETR-PUP). Every image of a mixed batch must get what its task's
model alone gives through the toolbox's own inference API."""
import json
import os
import os.path as osp
import random
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import yaml
from ivpt_helpers import TINY
from ivpt_runs import ROOT, make_fgvc, make_vtab, small_config
from PIL import Image

from mmseg_ivpt.models.checkpoint import EncoderMismatchError

SEG_CFG = osp.join(ROOT, 'configs', 'demo', 'setr_ivpt_tiny_shapes.py')
pytestmark = pytest.mark.slow  # every test uses the three runs trained here
# the same ViT for all, at the segmentation grid (64 / 8); the
# classification tasks (32 pixels) resample its position table
SLIDE = {'model.test_cfg': dict(mode='slide', crop_size=(48, 48),
                                stride=(32, 32))}


def _train(cfg, work, *opts):
    cmd = [sys.executable, 'tools/train.py', cfg, '--work-dir', str(work)]
    if opts:
        cmd += ['--cfg-options', *opts]
    env = dict(os.environ)
    env.pop('PYTHONPATH', None)
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _image(path, h, w, seed):
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), np.uint8)).save(path)
    return str(path)


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """Three tasks trained in parallel; returns paths and test images."""
    from mmseg_ivpt.datasets import generate_shapes_dataset
    from mmseg_ivpt.models import ViTEncoder
    tmp = tmp_path_factory.mktemp('bank')
    torch.manual_seed(0)
    vit = str(tmp / 'vit.pth')
    torch.save(ViTEncoder(arch=TINY, img_size=64, patch_size=8).state_dict(),
               vit)
    torch.save(ViTEncoder(arch=TINY, img_size=64, patch_size=8).state_dict(),
               str(tmp / 'other_vit.pth'))
    make_vtab(tmp / 'vtab', task='eurosat', n=8)
    make_fgvc(tmp / 'cub', labels=(1, 5, 7, 5, 1, 7, 7, 1))
    (tmp / 'a').mkdir()
    (tmp / 'b').mkdir()
    cfg_a = small_config(tmp / 'a', 'configs/vtab/ivpt_vitb16_eurosat.py',
                         f"data_root={str(tmp / 'vtab')!r}", vit)
    cfg_b = small_config(tmp / 'b', 'configs/fgvc/ivpt_vitb16_cub.py',
                         f"data_root={str(tmp / 'cub')!r}", vit)
    shapes = generate_shapes_dataset(str(tmp / 'shapes'), num_train=8,
                                     num_val=2)
    seg_cfg = tmp / 'seg_tiny.py'
    seg_cfg.write_text(textwrap.dedent(f"""
        _base_ = [{SEG_CFG!r}]
        model = dict(backbone=dict(arch=dict(_delete_=True, **{TINY!r})),
                     decode_head=dict(in_channels=64),
                     auxiliary_head=dict(in_channels=64))
    """))
    seg_opts = [f'{k}_dataloader.dataset.data_root={shapes}'
                for k in ('train', 'val', 'test')]
    seg_opts += [f'model.backbone.init_cfg.checkpoint={vit}',
                 'train_dataloader.batch_size=4', 'train_cfg.max_iters=4',
                 'train_cfg.val_interval=4',
                 'default_hooks.checkpoint.interval=4',
                 'param_scheduler.0.end=4']
    runs = [_train(cfg_a, tmp / 'work_a'),
            _train(cfg_b, tmp / 'work_b', 'model.backbone.num_prompts=5',
                   'model.backbone.ar_tokens=0',
                   "model.backbone.prompt_structure='deep'",
                   'model.backbone.dynamic_aggregation=False'),
            _train(str(seg_cfg), tmp / 'work_seg', *seg_opts)]
    for r in runs:
        out, _ = r.communicate(timeout=900)
        assert r.returncode == 0, out[-5000:]
    tasks = dict(
        eurosat=dict(config=str(tmp / 'work_a' / 'cfg.py'),
                     checkpoint=str(tmp / 'work_a' / 'epoch_2.pth')),
        cub=dict(config=str(tmp / 'work_b' / 'cfg.py'),
                 checkpoint=str(tmp / 'work_b' / 'epoch_2.pth')),
        shapes=dict(config=str(tmp / 'work_seg' / 'seg_tiny.py'),
                    checkpoint=str(tmp / 'work_seg' / 'iter_4.pth')))
    imgs = dict(
        eurosat=[_image(tmp / 'img' / f'e{i}.png', 40 + 4 * i, 36, i)
                 for i in range(3)],
        cub=[_image(tmp / 'img' / f'c{i}.jpg', 48, 44 + 8 * i, 10 + i)
             for i in range(3)],
        shapes=[osp.join(shapes, 'images', 'validation', f)
                for f in sorted(os.listdir(osp.join(shapes, 'images',
                                                    'validation')))]
        + [_image(tmp / 'img' / 's_wide.png', 64, 80, 20)])
    return dict(tmp=tmp, vit=vit, tasks=tasks, imgs=imgs)


def write_bank(trained, path, tasks=None, encoder=None, **extra):
    """A bank YAML with paths relative to its folder."""
    here = osp.dirname(str(path))
    tasks = tasks or [dict(name=n, **t) for n, t in trained['tasks'].items()]
    rel = [{k: (osp.relpath(v, here) if k in ('config', 'checkpoint') else v)
            for k, v in t.items()} for t in tasks]
    doc = dict(encoder=osp.relpath(encoder or trained['vit'], here),
               tasks=rel, **extra)
    path.write_text(yaml.safe_dump(doc))
    return str(path)


@pytest.fixture(scope='module')
def bank(trained):
    from mmseg_ivpt.apis.bank import PromptBank
    tasks = [dict(name=n, **t) for n, t in trained['tasks'].items()]
    tasks.append(dict(name='shapes_slide', cfg_options=SLIDE,
                      **trained['tasks']['shapes']))
    return PromptBank.from_yaml(write_bank(trained, trained['tmp'] /
                                           'bank.yaml', tasks))


@pytest.fixture(scope='module')
def alone(trained):
    """Each image's output from its task's own model, through the toolbox's
    inference API (mmseg's inference_model, mmpretrain's inferencer)."""
    from mmengine.config import Config

    from mmseg_ivpt.apis.inference import load_model
    out = {}
    for name, t in list(trained['tasks'].items()) + [
            ('shapes_slide', trained['tasks']['shapes'])]:
        cfg = Config.fromfile(t['config'])
        if name == 'shapes_slide':
            cfg.merge_from_dict(SLIDE)
        _, infer = load_model(cfg, t['checkpoint'])
        for img in trained['imgs'][name.split('_')[0]]:
            r = infer(img)
            out[name, img] = (r.seg_logits.data.numpy() if 'shapes' in name
                              else r['pred_scores'])
    return out


def _output(pred):
    if hasattr(pred, 'seg_logits'):
        return pred.seg_logits.data.numpy()
    return pred.pred_score.numpy()


@pytest.mark.parametrize('mode', ['pad', 'group'])
def test_mixed_batch_equals_each_task_alone(trained, bank, alone, mode):
    items = [(n, img) for n in bank.names
             for img in trained['imgs'][n.split('_')[0]]]
    assert len(items) == 3 + 3 + 3 + 3
    for seed in range(3):  # any order of the samples
        random.Random(seed).shuffle(items)
        preds = bank.predict([i for _, i in items], [n for n, _ in items],
                             mode=mode)
        for (name, img), pred in zip(items, preds):
            np.testing.assert_allclose(_output(pred), alone[name, img],
                                       atol=1e-5, rtol=1e-5,
                                       err_msg=f'{name} {img}')
    # one resampled position table, for the 32-pixel classification tasks
    assert list(bank.mux.pos_tables) == ['4x4']


def test_the_vit_runs_once_per_mixed_batch(trained, bank):
    """'pad': one pass for the batch; 'group': one per sequence length
    (1 + N + M: 20, 22, 73 and 45 for the crops)."""
    calls = []
    blk = bank.mux.encoder.blocks[0]
    h = blk.register_forward_pre_hook(lambda m, a: calls.append(a[0].shape))
    imgs = [trained['imgs']['eurosat'][0], trained['imgs']['cub'][1],
            trained['imgs']['shapes'][0], trained['imgs']['shapes'][1]]
    try:
        # 2 classification images + 1 whole image + 4 crops of 48 pixels
        bank.predict(imgs, ['eurosat', 'cub', 'shapes', 'shapes_slide'],
                     mode='pad')
        assert [tuple(c[:2]) for c in calls] == [(7, 73)]
        calls.clear()
        bank.predict(imgs, ['eurosat', 'cub', 'shapes', 'shapes_slide'])
        assert sorted(tuple(c[:2]) for c in calls) == [
            (1, 20), (1, 22), (1, 73), (4, 45)]
    finally:
        h.remove()


def test_one_vit_in_memory(trained, bank):
    mem = bank.memory()
    vit = torch.load(trained['vit'], weights_only=True)
    vit_bytes = sum(t.numel() * 4 for t in vit.values())
    # the ViT once, plus the position table of the 4x4 grid
    assert mem['shared'] == vit_bytes + 17 * 64 * 4
    assert mem['bank'] == mem['shared'] + sum(mem['tasks'].values())
    assert mem['separate'] > 3 * vit_bytes
    for name, m in bank.models.items():
        assert m.backbone.blocks is bank.mux.encoder.blocks
        prompts = m.backbone.prompts.numel() * 4
        assert prompts < mem['tasks'][name] < vit_bytes / 2, name


def test_full_checkpoint_of_the_same_vit_and_of_another(trained, tmp_path):
    """A full checkpoint (frozen ViT inside) joins when its ViT is the
    bank's; one tensor changed is a named error."""
    from mmengine.config import Config
    from mmpretrain.apis import get_model

    from mmseg_ivpt.apis.bank import PromptBank
    t = trained['tasks']['eurosat']
    model = get_model(Config.fromfile(t['config']),
                      pretrained=t['checkpoint'])
    ckpt = torch.load(t['checkpoint'], weights_only=False)
    ckpt['state_dict'] = model.state_dict()
    ckpt['meta'].pop('tensor_checksum', None)
    full = tmp_path / 'full.pth'
    torch.save(ckpt, full)
    spec = [dict(name='eurosat', config=t['config'], checkpoint=str(full))]
    bank = PromptBank(trained['vit'], spec)
    img = trained['imgs']['eurosat'][0]
    np.testing.assert_allclose(
        bank.predict([img], ['eurosat'])[0].pred_score.numpy(),
        PromptBank(trained['vit'], [dict(name='eurosat', **t)]).predict(
            [img], ['eurosat'])[0].pred_score.numpy(), atol=1e-6)
    ckpt['state_dict']['backbone.blocks.1.mlp.fc1.weight'] += 1e-3
    torch.save(ckpt, full)
    with pytest.raises(EncoderMismatchError,
                       match=r"task 'eurosat': .*full.pth holds another "
                             r'frozen ViT.*blocks.1.mlp.fc1.weight'):
        PromptBank(trained['vit'], spec)


def test_tasks_join_and_leave_a_bank_in_service(trained, alone):
    from mmseg_ivpt.apis.bank import BankError, PromptBank
    t = trained['tasks']
    bank = PromptBank(trained['vit'], [dict(name='cub', **t['cub'])])
    before = bank.memory()['bank']
    bank.add_task('shapes', **t['shapes'])
    assert bank.memory()['bank'] - before == bank.memory()['tasks']['shapes']
    img = trained['imgs']['shapes'][0]
    np.testing.assert_allclose(_output(bank.predict([img], ['shapes'])[0]),
                               alone['shapes', img], atol=1e-5, rtol=1e-5)
    with pytest.raises(BankError, match="two tasks are named 'cub'"):
        bank.add_task('cub', **t['cub'])
    bank.remove_task('cub')
    assert bank.names == ['shapes'] and list(bank.mux.tasks) == ['shapes']
    with pytest.raises(BankError, match="unknown task 'cub'"):
        bank.predict([img], ['cub'])
    with pytest.raises(BankError, match="'shapes' is the last task"):
        bank.remove_task('shapes')


def test_bad_banks_and_calls_are_named_errors(trained, bank, tmp_path):
    from mmseg_ivpt.apis.bank import BankError, PromptBank
    tasks = [dict(name=n, **t) for n, t in trained['tasks'].items()]
    # trained on another ViT: the fingerprint its checkpoint records
    with pytest.raises(EncoderMismatchError,
                       match=r"task 'eurosat': .*epoch_2.pth was trained on "
                             r'the frozen ViT .*vit.pth .*other_vit.pth'):
        PromptBank.from_yaml(write_bank(
            trained, tmp_path / 'b1.yaml', tasks[:1],
            encoder=str(trained['tmp'] / 'other_vit.pth')))
    with pytest.raises(FileNotFoundError,
                       match=r'encoder .*nope.pth does not exist'):
        PromptBank(str(tmp_path / 'nope.pth'), tasks)
    with pytest.raises(BankError, match="two tasks are named 'cub'"):
        PromptBank(trained['vit'], tasks + [dict(tasks[1])])
    with pytest.raises(BankError, match=r"tasks\[0\] \(eurosat\): missing "
                       r"\['checkpoint'\]"):
        PromptBank(trained['vit'], [dict(name='eurosat',
                                         config=tasks[0]['config'])])
    bad = tmp_path / 'b2.yaml'
    bad.write_text(yaml.safe_dump(dict(tasks=[])))
    with pytest.raises(BankError, match=r"missing \['encoder', 'tasks'\]"):
        PromptBank.from_yaml(str(bad))
    with pytest.raises(ValueError, match="task 'bias': finetune='bias'"):
        PromptBank(trained['vit'], [dict(
            name='bias', cfg_options={'model.backbone.finetune': 'bias'},
            **trained['tasks']['cub'])])
    from mmseg_ivpt.models import CheckpointMismatchError
    with pytest.raises(CheckpointMismatchError,
                       match=r"task 'cub': .*epoch_2.pth does not fit the "
                             r'model of this config:\n  head.fc.weight: '
                             r'checkpoint \(200, 64\) vs model \(7, 64\)'):
        PromptBank(trained['vit'], [dict(
            name='cub', cfg_options={'model.head.num_classes': 7},
            **trained['tasks']['cub'])])
    img = trained['imgs']['cub'][0]
    with pytest.raises(BankError, match=r"unknown task 'cars'; the bank has "
                       r"\['eurosat', 'cub', 'shapes', 'shapes_slide'\]"):
        bank.predict([img, img], ['cub', 'cars'])
    with pytest.raises(BankError, match='2 images but 1 task names'):
        bank.predict([img, img], ['cub'])


def test_multitask_infer_tool(trained, bank, tmp_path):
    """As a user runs it: a subprocess from another folder, twice."""
    yml = write_bank(trained, tmp_path / 'bank.yaml')
    imgs = trained['imgs']
    items = [('shapes', imgs['shapes'][0]), ('eurosat', imgs['eurosat'][1]),
             ('cub', imgs['cub'][2]), ('shapes', imgs['shapes'][0])]
    listing = tmp_path / 'list.txt'
    listing.write_text('\n'.join(f'{t}={i}' for t, i in items[2:]) + '\n')
    cwd = tmp_path / 'elsewhere'
    cwd.mkdir()
    cmd = [sys.executable, osp.join(ROOT, 'tools', 'multitask_infer.py'),
           yml, *(f'{t}={i}' for t, i in items[:2]), '--list', str(listing),
           '--out-dir', 'out', '--batch-size', '3']
    outs = []
    for _ in range(2):
        res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True,
                             timeout=600)
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
        outs.append((cwd / 'out' / 'predictions.json').read_text())
    assert outs[0] == outs[1]
    assert 'each task adds' in res.stdout
    got = json.loads(outs[0])
    assert [(e['task'], e['image']) for e in got] == items
    want = bank.predict([i for _, i in items], [t for t, _ in items])
    for e, p in zip(got, want):
        if e['kind'] == 'classification':
            assert e['pred_label'] == int(p.pred_label)
            assert e['pred_class'] == bank.models[e['task']].dataset_meta[
                'classes'][e['pred_label']]
        else:  # the shapes set has reduce_zero_label: class c is c + 1
            mask = np.asarray(Image.open(cwd / 'out' / e['mask']))
            np.testing.assert_array_equal(
                mask, p.pred_sem_seg.data[0].numpy() + 1)
            np.testing.assert_array_equal(mask, bank.label_mask(e['task'],
                                                                p))
            assert mask.shape == (e['height'], e['width'])
    assert got[3]['mask'] == got[0]['mask'][:-4] + '_1.png'  # same stem
    # issue 18.7: the masks hold what tools/test.py --out writes
    seg = trained['tasks']['shapes']
    res = subprocess.run([sys.executable, osp.join(ROOT, 'tools', 'test.py'),
                          seg['config'], seg['checkpoint'], '--work-dir',
                          str(tmp_path / 'test'), '--out', 'test_out'],
                         cwd=cwd, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    stem = osp.splitext(osp.basename(items[0][1]))[0]
    np.testing.assert_array_equal(
        np.asarray(Image.open(cwd / 'test_out' / f'{stem}.png')),
        np.asarray(Image.open(cwd / 'out' / got[0]['mask'])))
    # issue 18.11: a task whose config does not fit its checkpoint
    bad = write_bank(trained, tmp_path / 'bad.yaml', [dict(
        name='eurosat', cfg_options={'model.head.num_classes': 5},
        **trained['tasks']['eurosat'])])
    res = subprocess.run(cmd[:2] + [bad, 'eurosat=' + imgs['eurosat'][0]],
                         cwd=cwd, capture_output=True, text=True, timeout=600)
    assert res.returncode != 0 and 'Traceback' not in res.stderr
    for text in ("task 'eurosat'", 'epoch_2.pth does not fit the model',
                 'head.fc.weight: checkpoint (10, 64) vs model (5, 64)'):
        assert text in res.stderr, (text, res.stderr[-3000:])
    res = subprocess.run(cmd[:3] + ['cars=' + imgs['cub'][0]], cwd=cwd,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode != 0 and "unknown task 'cars'" in res.stderr
    other = write_bank(trained, tmp_path / 'other.yaml',
                       encoder=str(trained['tmp'] / 'other_vit.pth'))
    res = subprocess.run(cmd[:2] + [other, 'cub=' + imgs['cub'][0]],
                         cwd=cwd, capture_output=True, text=True, timeout=600)
    assert res.returncode != 0 and 'Traceback' not in res.stderr
    assert "task 'eurosat'" in res.stderr and 'was trained on' in res.stderr
    (tmp_path / 'notes.jpg').write_text('not an image')
    res = subprocess.run(cmd[:3] + [f"cub={tmp_path / 'notes.jpg'}"],
                         cwd=cwd, capture_output=True, text=True, timeout=600)
    assert res.returncode != 0 and 'Traceback' not in res.stderr
    assert f"error: {tmp_path / 'notes.jpg'}: not an image" in res.stderr
    res = subprocess.run(cmd[:3] + ['shapes:' + imgs['cub'][0]], cwd=cwd,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode != 0 and 'is not TASK=IMAGE' in res.stderr


def test_multitask_infer_bad_images(trained, bank, tmp_path):
    """Issue 29.12: an empty file, a text file, an image over --max-pixels
    and one whose header says 10000 x 10000 each get a named error entry
    in predictions.json, read from the header before decoding; the other
    images of their batches and of later batches are predicted."""
    from test_images import huge_png
    imgs = trained['imgs']
    (tmp_path / 'empty.png').write_bytes(b'')
    (tmp_path / 'notes.jpg').write_text('not an image')
    huge = huge_png(tmp_path / 'huge.png')
    items = [('shapes', imgs['shapes'][0]),       # 64 x 64
             ('eurosat', str(tmp_path / 'empty.png')),
             ('cub', str(tmp_path / 'notes.jpg')),
             ('shapes', imgs['shapes'][-1]),      # 80 x 64 = 5120
             ('eurosat', imgs['eurosat'][1]),
             ('cub', huge), ('cub', imgs['cub'][2])]
    cwd = tmp_path / 'elsewhere'
    cwd.mkdir()
    res = subprocess.run(
        [sys.executable, osp.join(ROOT, 'tools', 'multitask_infer.py'),
         write_bank(trained, tmp_path / 'bank.yaml'),
         *(f'{t}={i}' for t, i in items), '--out-dir', 'out',
         '--batch-size', '2', '--max-pixels', '5000'],
        cwd=cwd, capture_output=True, text=True, timeout=600)
    assert res.returncode == 1 and 'Traceback' not in res.stderr, \
        res.stderr[-3000:]
    assert 'error: 4 of 7 images have no prediction' in res.stderr
    got = json.loads((cwd / 'out' / 'predictions.json').read_text())
    assert [(e['task'], e['image']) for e in got] == items
    errors = {k: got[k]['error'] for k in (1, 2, 3, 5)}
    assert errors == {
        1: f'{items[1][1]}: empty file (0 bytes), not an image',
        2: f'{items[2][1]}: not an image (no image format recognised)',
        3: f'{items[3][1]}: 80 x 64 = 5120 pixels, more than the limit of '
           f'5000 (raise it with --max-pixels / max_pixels if the memory '
           f'allows)',
        5: f'{huge}: 10000 x 10000 = 100000000 pixels, more than the limit '
           f'of 5000 (raise it with --max-pixels / max_pixels if the memory '
           f'allows)'}
    for k, e in errors.items():
        assert f'error: {e}' in res.stderr
    want = bank.predict([items[k][1] for k in (0, 4, 6)],
                        [items[k][0] for k in (0, 4, 6)])
    mask = np.asarray(Image.open(cwd / 'out' / got[0]['mask']))
    np.testing.assert_array_equal(mask, bank.label_mask('shapes', want[0]))
    assert got[4]['pred_label'] == int(want[1].pred_label)
    assert got[6]['pred_label'] == int(want[2].pred_label)


def _same(got, want, what):
    """Two predictions are the same: labels and masks exactly, scores and
    logits to 1e-6 (another thread's work may change the order of float
    sums, not a label)."""
    assert type(got) is type(want), what
    if hasattr(want, 'seg_logits'):
        assert torch.equal(got.pred_sem_seg.data, want.pred_sem_seg.data), \
            what
        torch.testing.assert_close(got.seg_logits.data, want.seg_logits.data,
                                   atol=1e-6, rtol=1e-6, msg=what)
    else:
        assert torch.equal(got.pred_label, want.pred_label), what
        torch.testing.assert_close(got.pred_score, want.pred_score,
                                   atol=1e-6, rtol=1e-6, msg=what)


def test_predict_from_threads_while_a_task_comes_and_goes(trained):
    """4 threads call predict 50 times each on mixed tasks (classification;
    segmentation whole and slide; 'pad' and 'group'), and predict task
    'extra' whenever the bank has it, while a fifth thread adds and removes
    'extra': every output equals the single-threaded one. Events, not
    timing, make the removal happen while the predicting threads run: they
    wait at call 10 until 'extra' is in, the adder removes it once each of
    them has used it, and they wait at call 30 until it is out."""
    import threading

    from mmseg_ivpt.apis.bank import BankError, PromptBank
    t, imgs = trained['tasks'], trained['imgs']
    bank = PromptBank(trained['vit'], [dict(name=n, **t[n]) for n in t] + [
        dict(name='shapes_slide', cfg_options=SLIDE, **t['shapes'])])
    calls = [
        (['eurosat', 'shapes_slide', 'shapes'],
         [imgs['eurosat'][0], imgs['shapes'][0], imgs['shapes'][1]], 'group'),
        (['cub', 'shapes', 'eurosat'],
         [imgs['cub'][1], imgs['shapes'][2], imgs['eurosat'][2]], 'pad'),
        (['shapes_slide', 'cub', 'shapes_slide'],
         [imgs['shapes'][2], imgs['cub'][0], imgs['shapes'][0]], 'group'),
        (['eurosat', 'cub', 'shapes_slide'],
         [imgs['eurosat'][1], imgs['cub'][2], imgs['shapes'][1]], 'pad'),
    ]
    want = [bank.predict(i, n, mode=m) for n, i, m in calls]
    extra = dict(name='extra', **t['eurosat'])
    extra_img = [imgs['eurosat'][2]]
    bank.add_task(**extra)
    want_extra = bank.predict(extra_img, ['extra'])
    bank.remove_task('extra')

    n_calls, timeout = 50, 300
    added, removed, done = (threading.Event() for _ in range(3))
    used, lock = set(), threading.Lock()
    got = [[] for _ in calls]
    got_extra = [[] for _ in calls]
    errors = []

    def predictor(k):
        names, images, mode = calls[k]
        try:
            for c in range(n_calls):
                if c == 10:
                    assert added.wait(timeout), 'extra never joined'
                if c == 30:
                    assert removed.wait(timeout), 'extra never left'
                got[k].append(bank.predict(images, names, mode=mode))
                try:
                    got_extra[k].append(bank.predict(extra_img, ['extra']))
                    with lock:
                        used.add(k)
                except BankError as e:  # not in the bank at this moment
                    assert "unknown task 'extra'" in str(e), e
        except BaseException as e:  # noqa: B036 -- reported below
            errors.append((k, e))
            added.set()
            removed.set()

    def adder():
        try:
            cycles = 0
            while not done.is_set():
                bank.add_task(**extra)
                added.set()
                if cycles == 0:  # each predictor has used it
                    while len(used) < len(calls) and not errors:
                        done.wait(0.01)
                bank.remove_task('extra')
                removed.set()
                cycles += 1
        except BaseException as e:  # noqa: B036 -- reported below
            errors.append(('adder', e))
            added.set()
            removed.set()

    threads = [threading.Thread(target=predictor, args=(k, ))
               for k in range(len(calls))]
    side = threading.Thread(target=adder)
    side.start()
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout)
    done.set()
    side.join(timeout)
    assert not errors, errors
    assert not any(th.is_alive() for th in threads + [side])
    for k, outs in enumerate(got):
        assert len(outs) == n_calls
        for c, preds in enumerate(outs):
            for p, w, n in zip(preds, want[k], calls[k][0]):
                _same(p, w, f'thread {k} call {c} task {n}')
    assert all(got_extra), 'a thread never predicted task extra'
    for k, outs in enumerate(got_extra):
        for c, (p, ) in enumerate(outs):
            _same(p, want_extra[0], f'thread {k} extra {c}')
    # the last removal took 'extra' out of the shared ViT's tasks too
    assert 'extra' not in bank.names and 'extra' not in bank.mux.tasks


def test_no_model_is_patched_by_the_bank():
    """Issue 26: no code of the inference API assigns to a model's method
    or swaps its submodules: the only attributes it sets on an object other
    than itself are the two the toolbox's init_model sets on a model it
    builds (cfg, dataset_meta) and a state dict's _metadata, and it calls
    no setattr / delattr."""
    import ast
    apis = osp.join(ROOT, 'mmseg_ivpt', 'apis')
    allowed = ('cfg', 'dataset_meta', '_metadata')
    found = []
    for fname in sorted(os.listdir(apis)):
        if not fname.endswith('.py'):
            continue
        tree = ast.parse(open(osp.join(apis, fname)).read())
        for node in ast.walk(tree):
            targets = []
            if isinstance(node, (ast.Assign, ast.Delete)):
                targets = node.targets
            elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
                targets = [node.target]
            for t in targets:
                if (isinstance(t, ast.Attribute) and not (
                        isinstance(t.value, ast.Name) and t.value.id == 'self')
                        and t.attr not in allowed):
                    found.append((fname, node.lineno, t.attr))
            if isinstance(node, ast.Call) and isinstance(
                    node.func, ast.Name) and node.func.id in ('setattr',
                                                              'delattr'):
                found.append((fname, node.lineno, node.func.id))
    assert not found, found


def test_adapters_refuse_models_whose_inference_they_do_not_mirror():
    from mmpretrain.models.classifiers import ImageClassifier
    from mmseg.models.segmentors import EncoderDecoder

    from mmseg_ivpt.apis.adapters import (
        AdapterError,
        ClassificationAdapter,
        SegmentationAdapter,
    )

    def bare(cls):  # the adapters read the class, not the weights
        m = cls.__new__(cls)
        torch.nn.Module.__init__(m)
        return m

    class Cascade(EncoderDecoder):
        def encode_decode(self, inputs, metas):
            return inputs

    with pytest.raises(AdapterError, match=r"task 'x': Cascade has its own "
                       r"\['encode_decode'\]; the bank runs the inference "
                       r'of mmseg.*EncoderDecoder'):
        SegmentationAdapter('x', bare(Cascade))
    patched = bare(EncoderDecoder)
    patched.extract_feat = lambda x: x
    with pytest.raises(AdapterError, match=r"\['extract_feat'\]"):
        SegmentationAdapter('x', patched)
    with pytest.raises(AdapterError, match="task 'x': the model is "
                       'ImageClassifier; the bank runs segmentation models '
                       'built on EncoderDecoder'):
        SegmentationAdapter('x', bare(ImageClassifier))
    with pytest.raises(AdapterError, match="task 'c': the model is "
                       'EncoderDecoder; the bank runs classification'):
        ClassificationAdapter('c', bare(EncoderDecoder))
    seg = bare(EncoderDecoder)
    seg.test_cfg = dict(mode='tta')
    with pytest.raises(AdapterError, match="test_cfg.mode='tta'; allowed: "
                       'whole, slide'):
        SegmentationAdapter('x', seg)
    seg.test_cfg = dict(mode='slide', crop_size=(48, 48))
    with pytest.raises(AdapterError, match=r"needs \['stride'\]"):
        SegmentationAdapter('x', seg)


def test_sliding_windows_are_mmseg_s():
    """The windows of a slide test_cfg: every pixel covered, edge windows
    moved back inside, in rows then columns (mmseg's slide_inference)."""
    from mmseg.models.segmentors import EncoderDecoder

    from mmseg_ivpt.apis.adapters import SegmentationAdapter
    seg = EncoderDecoder.__new__(EncoderDecoder)
    torch.nn.Module.__init__(seg)
    seg.test_cfg = dict(mode='slide', crop_size=(48, 48), stride=(32, 32))
    a = SegmentationAdapter('x', seg)
    assert a.windows(64, 80) == [(0, 48, 0, 48), (0, 48, 32, 80),
                                 (16, 64, 0, 48), (16, 64, 32, 80)]
    assert a.windows(40, 100) == [(0, 40, 0, 48), (0, 40, 32, 80),
                                  (0, 40, 52, 100)]
