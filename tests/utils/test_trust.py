"""Checkpoints and runs a user can trust, hit the way a user hits them
(tools/*.py and mmseg's APIs as subprocesses, from other working
directories): prompt-only checkpoints refuse another frozen ViT of the same
shape (unless overridden), load after being moved, flipped bytes and bad
files are errors naming the file, --resume skips a damaged latest
checkpoint, and the demo config's --tta / --show-dir work."""
import json
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
import textwrap

import pytest
import torch
from ivpt_runs import ROOT, make_seg_env, ok, run, run_tool, save_seg_vit
from ivpt_runs import SEG_CFG as CFG

from mmseg_ivpt.utils.integrity import encoder_fingerprint


@pytest.fixture(scope='module')
def env(tmp_path_factory):
    """This module's own data and pretrained ViT (``ivpt_runs.make_seg_env``;
    not the session's: the runs here name it relative to their folder)."""
    return make_seg_env(tmp_path_factory.mktemp('trust'))


def _train(env, cwd, work_dir, *extra):
    """tools/train.py on the demo config at a tiny scale; the pretrained ViT
    named relative to ``cwd`` (as the shipped config names its own)."""
    opts = [o for o in env['opts'] if 'init_cfg' not in o]
    return run_tool('train.py', CFG, '--work-dir', work_dir, *extra,
                    '--cfg-options', 'pretrained=tiny_vit.pth', *opts,
                    cwd=cwd)


def _test(env, ckpt, *extra, cwd=None, **env_vars):
    """tools/test.py from another working directory."""
    opts = [o for o in env['opts'] if 'init_cfg' not in o]
    cwd = cwd or env['tmp'] / 'elsewhere'
    os.makedirs(cwd, exist_ok=True)
    return run_tool('test.py', CFG, ckpt, '--work-dir',
                    env['tmp'] / 'test_runs', *extra, '--cfg-options', *opts,
                    cwd=cwd, **env_vars)


def _other_vit(env, name='other_vit.pth'):
    """A ViT of the same shape with other weights."""
    return save_seg_vit(env['tmp'] / name, seed=123)


@pytest.fixture(scope='module')
def run_dir(env):
    """One 4-iteration prompt-only run (checkpoints at 2 and 4), started in
    the data folder with ``pretrained=tiny_vit.pth`` (a relative path)."""
    assert env['pretrained'] == str(env['tmp'] / 'tiny_vit.pth')
    work = env['tmp'] / 'run'
    res = ok(_train(env, env['tmp'], work))
    log = res.stdout + res.stderr
    fp = encoder_fingerprint(torch.load(env['pretrained']))
    # one INFO line names the file and its fingerprint ...
    assert f"loaded the pretrained ViT {env['tmp'] / 'tiny_vit.pth'}" in log
    assert f'fingerprint {fp}' in log
    # ... instead of a warning per frozen parameter
    assert 'is skipped since its requires_grad=False' not in log
    return work


@pytest.mark.slow
def test_checkpoint_records_the_frozen_vit(env, run_dir):
    ckpt = torch.load(run_dir / 'iter_4.pth', weights_only=False)
    meta = ckpt['state_dict']._metadata['backbone']
    assert meta['pretrained'] == 'tiny_vit.pth'
    assert meta['pretrained_abs'] == str(env['tmp'] / 'tiny_vit.pth')
    assert meta['pretrained_rel'] == osp.join('..', 'tiny_vit.pth')
    assert meta['encoder_fingerprint'] == encoder_fingerprint(
        torch.load(env['pretrained']))
    assert ckpt['meta']['tensor_checksum']['tensors'] > len(
        ckpt['state_dict'])  # the optimizer state is covered too


@pytest.fixture(scope='module')
def session(env, run_dir, tmp_path_factory):
    """What a user does in Python, from another directory, in one process:
    mmseg's init_model / MMSegInferencer on the checkpoint moved elsewhere,
    the inferencer with the config's ``pretrained`` pointing at another ViT
    of the same shape, init_model on bad files, and the backbone's
    init_cfg on Google's npz. Returns {case: result or 'Error: message'}."""
    import numpy as np
    tmp = tmp_path_factory.mktemp('user')
    moved = tmp / 'a' / 'b' / 'c'
    moved.mkdir(parents=True)
    shutil.copy(run_dir / 'iter_4.pth', moved / 'model.pth')
    other = _other_vit(env)
    good = (run_dir / 'iter_4.pth').read_bytes()
    bad = {'empty.pth': b'', 'truncated.pth': good[:len(good) // 2],
           'text.pth': b'model weights are on the shared drive\n'}
    # one flipped bit inside a tensor (the prompts)
    ckpt = torch.load(run_dir / 'iter_4.pth', weights_only=False)
    prompts = ckpt['state_dict']['backbone.prompts'].numpy().tobytes()
    at = good.find(prompts[64:96])
    assert at > 0 and good.count(prompts[64:96]) == 1
    bad['flipped.pth'] = good[:at + 5] + bytes([good[at + 5] ^ 0x10]) + \
        good[at + 6:]
    for name, data in bad.items():
        (tmp / name).write_bytes(data)
    np.savez(tmp / 'L_16.npz', **{
        'embedding/kernel': np.zeros((8, 8, 3, 96), np.float32),
        'Transformer/posembed_input/pos_embedding': np.zeros(
            (1, 65, 96), np.float32)})
    npz = (tmp / 'L_16.npz').read_bytes()
    (tmp / 'truncated.npz').write_bytes(npz[:len(npz) // 2])
    img = osp.join(env['data'], 'images', 'validation', 'shapes_000001.jpg')
    code = textwrap.dedent(f"""
        import json, sys, torch
        sys.path.insert(0, {ROOT!r})
        from mmengine.config import Config
        from mmseg.apis import MMSegInferencer, init_model, inference_model
        from mmseg.registry import MODELS
        out = {{}}
        def attempt(name, fn):
            try:
                out[name] = fn()
            except Exception as e:
                out[name] = 'Error: ' + type(e).__name__ + ': ' + str(e)
        moved = {str(moved / 'model.pth')!r}
        def moved_loads():
            model = init_model({CFG!r}, moved, device='cpu')
            want = torch.load({env['pretrained']!r})['pos_embed']
            pred = inference_model(model, {img!r}).pred_sem_seg.data
            inferencer = MMSegInferencer(model={CFG!r}, weights=moved,
                                         device='cpu')
            out = inferencer({img!r}, return_datasamples=True)
            return dict(same_vit=bool(torch.equal(model.backbone.pos_embed,
                                                  want)),
                        same_pred=bool(torch.equal(
                            pred, out.pred_sem_seg.data)))
        attempt('moved', moved_loads)
        cfg = Config.fromfile({CFG!r})
        cfg.model.backbone.init_cfg.checkpoint = {str(other)!r}
        attempt('other_vit', lambda: MMSegInferencer(
            model=cfg, weights=moved, device='cpu') and 'loaded')
        for name in {sorted(bad)!r}:
            attempt(name, lambda: init_model(
                {CFG!r}, {str(tmp)!r} + '/' + name,
                device='cpu') and 'loaded')
        backbone = Config.fromfile({CFG!r}).model.backbone
        for name in ('L_16.npz', 'truncated.npz'):
            backbone.init_cfg.checkpoint = {str(tmp)!r} + '/' + name
            attempt(name, lambda: MODELS.build(backbone).init_weights())
        print(json.dumps(out))
    """)
    res = ok(run([sys.executable, '-c', code], str(tmp)))
    out = json.loads(res.stdout.strip().splitlines()[-1])
    return dict(out=out, tmp=tmp, other=other, moved=moved / 'model.pth')


@pytest.mark.slow
def test_moved_checkpoint_loads_from_another_cwd(session):
    """init_model / MMSegInferencer with the shipped config (relative
    paths) on a checkpoint moved to another folder, from another cwd."""
    assert session['out']['moved'] == dict(same_vit=True, same_pred=True)


@pytest.mark.slow
def test_another_vit_of_the_same_shape_is_refused(env, session):
    """The config's pretrained file is another ViT of the same shape: a
    named error with both files and fingerprints."""
    err = session['out']['other_vit']
    assert err.startswith('Error: EncoderMismatchError: '), err
    assert str(session['moved']) in err
    assert str(env['tmp'] / 'tiny_vit.pth') in err
    assert str(session['other']) in err
    assert 'IVPT_ALLOW_OTHER_ENCODER=1' in err


@pytest.mark.slow
@pytest.mark.parametrize('name,pattern', [
    ('empty.pth', 'CheckpointFileError: .* is empty'),
    ('text.pth', "CheckpointFileError: .* is a text file.*'model wei"),
    ('truncated.pth', 'CheckpointFileError: .* truncated or damaged zip'),
    ('flipped.pth', 'CorruptCheckpointError: .* do not match the checksum'),
    ('L_16.npz', 'CheckpointFileError: .* NumPy .npz.*'
                 'tools/convert_checkpoint.py'),
    ('truncated.npz', 'CheckpointFileError: .* truncated NumPy .npz')])
def test_bad_files_are_named(session, name, pattern):
    """Each bad file through init_model (checkpoint) or the backbone's
    init_cfg (npz): an error naming the file and what it is."""
    got = session['out'][name]
    assert got.startswith('Error: ') and str(session['tmp'] / name) in got
    assert re.search(pattern, got, re.S), got


@pytest.mark.slow
def test_other_vit_with_override_and_tta_show_dir(env, run_dir, session):
    """tools/test.py with `--cfg-options pretrained=OTHER` (it reaches
    init_cfg) and IVPT_ALLOW_OTHER_ENCODER=1 loads with a warning; the demo
    config's --tta and --show-dir work (every test image painted)."""
    show = env['tmp'] / 'show'
    res = ok(_test(env, run_dir / 'iter_4.pth', '--tta', '--show-dir',
                   str(show), '--cfg-options',
                   f"pretrained={session['other']}",
                   IVPT_ALLOW_OTHER_ENCODER='1'))
    log = res.stdout + res.stderr
    assert 'loading anyway' in log and str(session['other']) in log
    assert 'mIoU' in log
    painted = [f for _, _, fs in os.walk(show) for f in fs
               if f.endswith('.png')]
    assert len(painted) == 4


@pytest.mark.slow
def test_resume_skips_a_damaged_latest_checkpoint(env, run_dir, tmp_path):
    """The latest checkpoint truncated (a kill during the write): --resume
    says so and resumes from iter_2, reaching the same iteration 4."""
    work = tmp_path / 'work'
    shutil.copytree(run_dir, work)
    latest = work / 'iter_4.pth'
    (work / 'last_checkpoint').write_text(str(latest))
    latest.write_bytes(latest.read_bytes()[:3000])
    res = ok(_train(env, env['tmp'], work, '--resume'))
    log = res.stdout + res.stderr
    assert f'the latest checkpoint is damaged: {latest}' in log
    assert ('Resuming from the newest intact one instead: '
            f"{work / 'iter_2.pth'}") in log
    assert 'resumed epoch: 0, iter: 2' in log
    a = torch.load(run_dir / 'iter_4.pth', weights_only=False)['state_dict']
    b = torch.load(latest, weights_only=False)['state_dict']
    torch.testing.assert_close(b['backbone.prompts'], a['backbone.prompts'],
                               rtol=0, atol=0)


def test_cli_traps_are_handled():
    """--cfg-options pretrained=... reaches init_cfg (unless init_cfg is set
    in the same command); a key of a preset arch can be overridden;
    num_workers=0 turns persistent_workers off."""
    from mmengine.config import Config

    from mmseg_ivpt.engine.config import (
        expand_arch_presets,
        repoint_pretrained,
    )
    from mmseg_ivpt.engine.config_repair import fix_persistent_workers
    cfg = Config.fromfile(CFG)
    before = cfg.pretrained
    cfg.merge_from_dict({'pretrained': '/x/vit.pth'})
    assert repoint_pretrained(cfg, before) == 1
    assert cfg.model.backbone.init_cfg.checkpoint == '/x/vit.pth'
    cfg = Config.fromfile(CFG)
    cfg.merge_from_dict({'pretrained': '/x/vit.pth',
                         'model.backbone.init_cfg.checkpoint': '/y.pth'})
    assert repoint_pretrained(cfg, before) == 0
    assert cfg.model.backbone.init_cfg.checkpoint == '/y.pth'
    cfg = Config.fromfile(osp.join(ROOT, 'configs',
                                   'setr_ivpt_vitl_ade20k.py'))
    opts = {'model.backbone.arch.num_layers': 12}
    assert expand_arch_presets(cfg, opts) == ['model.backbone.arch']
    cfg.merge_from_dict(opts)
    assert cfg.model.backbone.arch == dict(
        embed_dims=1024, num_layers=12, num_heads=16,
        feedforward_channels=4096)
    cfg.merge_from_dict({'val_dataloader.persistent_workers': True,
                         'val_dataloader.num_workers': 0})
    assert fix_persistent_workers(cfg) == ['val_dataloader']
    assert cfg.val_dataloader.persistent_workers is False


def test_slurm_scripts_pass_mmseg_arguments(tmp_path):
    """slurm_train.sh / slurm_test.sh PARTITION JOB_NAME CONFIG [CKPT]
    [args] call srun with one task per GPU (a stand-in srun records its
    arguments)."""
    srun = tmp_path / 'srun'
    srun.write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$SRUN_LOG"\n')
    srun.chmod(0o755)
    env = dict(os.environ, PATH=f'{tmp_path}:{os.environ["PATH"]}',
               SRUN_LOG=str(tmp_path / 'args'), GPUS='16',
               GPUS_PER_NODE='8')
    for script, args, tool in (
            ('slurm_train.sh', ['gpu', 'job', 'c.py', '--resume'],
             ['tools/train.py', 'c.py', '--resume']),
            ('slurm_test.sh', ['gpu', 'job', 'c.py', 'k.pth', '--tta'],
             ['tools/test.py', 'c.py', 'k.pth', '--tta'])):
        subprocess.run(['bash', osp.join(ROOT, 'tools', script)] + args,
                       env=env, check=True, cwd=str(tmp_path))
        got = (tmp_path / 'args').read_text().split('\n')
        for a in ('-p', 'gpu', '--job-name=job', '--ntasks=16',
                  '--ntasks-per-node=8', '--gres=gpu:8', '--launcher',
                  'slurm'):
            assert a in got, (script, got)
        i = got.index(osp.join(ROOT, tool[0]))
        assert got[i + 1:i + len(tool)] == tool[1:]


def test_bias_tuned_prompt_only_state_dict_loads(tmp_path):
    """finetune='bias': the prompt-only hook keeps the trained biases and
    drops the frozen weights; such a state dict loads onto the pretrained
    ViT (biases from the checkpoint, weights from the file), and the
    fingerprint check sees the file, not the trained biases."""
    from collections import OrderedDict

    from ivpt_helpers import IMG, PATCH, TINY, timm_vit

    from mmseg_ivpt.models import PromptedViT
    path = str(tmp_path / 'vit.pth')
    t = timm_vit()
    torch.save(t.state_dict(), path)

    def model():
        return PromptedViT(arch=TINY, img_size=IMG, patch_size=PATCH,
                           num_prompts=2, finetune='bias',
                           init_cfg=dict(type='Pretrained', checkpoint=path))
    src = model()
    src.init_weights()
    with torch.no_grad():
        src.blocks[0].attn.qkv.bias.add_(1.)  # "trained"
    sd = OrderedDict((n, p.detach().clone())
                     for n, p in src.named_parameters() if p.requires_grad)
    assert 'blocks.0.attn.qkv.bias' in sd and 'blocks.0.attn.qkv.weight' \
        not in sd
    sd._metadata = OrderedDict({'': dict(
        pretrained=path, encoder_fingerprint=src.pretrained_fingerprint)})
    dst = model()
    dst.load_state_dict(sd)
    assert torch.equal(dst.blocks[0].attn.qkv.bias,
                       src.blocks[0].attn.qkv.bias)
    assert torch.equal(dst.blocks[0].attn.qkv.weight,
                       t.blocks[0].attn.qkv.weight)


def test_prompt_only_hook_keeps_frozen_tensors_outside_the_encoder(tmp_path):
    """PromptOnlyCheckpointHook drops exactly the frozen encoder tensors the
    backbone declares: a head layer the user froze stays in the file (and
    loads back), the encoder's frozen weights go, the record of the
    pretrained file is written."""
    pytest.importorskip('mmengine')
    from types import SimpleNamespace

    from ivpt_helpers import IMG, PATCH, TINY, timm_vit

    from mmseg_ivpt.engine.hooks import PromptOnlyCheckpointHook
    from mmseg_ivpt.models import PromptedViT
    path = str(tmp_path / 'vit.pth')
    t = timm_vit()
    torch.save(t.state_dict(), path)

    def model():
        m = torch.nn.Module()
        m.backbone = PromptedViT(
            arch=TINY, img_size=IMG, patch_size=PATCH, num_prompts=2,
            init_cfg=dict(type='Pretrained', checkpoint=path))
        m.backbone.init_weights()
        m.neck = torch.nn.Linear(TINY['embed_dims'], 8)
        m.neck.requires_grad_(False)  # frozen by the user: not the ViT's
        m.head = torch.nn.Linear(8, 3)
        return m
    src = model()
    with torch.no_grad():
        src.neck.weight.normal_()
        src.backbone.prompts.normal_()
    ckpt = dict(state_dict=src.state_dict(), meta={})
    runner = SimpleNamespace(model=src, hooks=[], work_dir=str(tmp_path))
    PromptOnlyCheckpointHook().before_save_checkpoint(runner, ckpt)
    sd = ckpt['state_dict']
    assert set(sd) == {'backbone.prompts', 'neck.weight', 'neck.bias',
                       'head.weight', 'head.bias'}
    enc = len(src.backbone.encoder_state_dict_keys())
    assert ckpt['meta']['prompt_only'] == dict(dropped_frozen_tensors=enc,
                                               kept_tensors=5)
    rec = sd._metadata['backbone']
    assert rec['pretrained'] == path
    assert rec['pretrained_abs'] == osp.abspath(path)
    assert rec['pretrained_rel'] == 'vit.pth'
    assert rec['encoder_fingerprint'] == src.backbone.pretrained_fingerprint
    dst = model()
    dst.load_state_dict(sd)
    assert torch.equal(dst.neck.weight, src.neck.weight)
    assert torch.equal(dst.backbone.prompts, src.backbone.prompts)
