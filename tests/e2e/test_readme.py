"""The README as a newcomer uses it.

* The quick start: every line of the README's marked blocks runs as
  written, from a fresh shell (``env -i``, PATH=/usr/bin:/bin and a
  ``python``, nothing activated) in a copy of the repository (its tracked
  and new files: a fresh clone), with the data and the pretrained files
  the README asks the user for generated tiny, and what trains shrunk by
  ``--cfg-options`` (a 4-block ViT, 64×64 images, 2 iterations).
  A renamed tool or config, or a wrong path or option in the README, fails
  here; so does a README command this test does not know how to shrink.
* Every relative link of README.md, CONTRIBUTING.md and docs/*.md names a
  file that exists, and an anchor that one of its headings makes.
"""
import glob
import os
import os.path as osp
import re
import shlex
import shutil
import subprocess
import time

import pytest
from ivpt_helpers import to_npz

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
README = osp.join(ROOT, 'README.md')
VENV = osp.join(ROOT, os.environ.get('VENV') or '.venv')  # `make test` sets it
SYSTEM_PYTHON = shutil.which('python3', path='/usr/bin:/bin')

QUICK = re.compile(r'<!-- quick-start:.*?-->(.*?)<!-- quick-start end -->',
                   re.S)
FENCE = re.compile(r'```(\w+)\n(.*?)```', re.S)

# The tiny stand-in for Google's ViT-L_16.npz: a width whose head count
# tools/convert_checkpoint.py infers (384: 6 heads).
WIDTH, DEPTH, HEADS, FFN, IMG = 384, 4, 6, 384, 64
ITERS = 2  # the ADE20K run: iter_160000.pth becomes iter_2.pth
ARCH = [f'model.backbone.arch.{k}={v}' for k, v in
        dict(embed_dims=WIDTH, num_layers=DEPTH, num_heads=HEADS,
             feedforward_channels=FFN).items()]
LOADERS = [f'{s}_dataloader.{k}' for s in ('train', 'val', 'test')
           for k in ('num_workers=0', 'persistent_workers=False')]
ADE20K = ARCH + LOADERS + [
    'model.backbone.out_indices=(0,1,2,3)',
    f'model.backbone.img_size=({IMG},{IMG})',
    f'model.data_preprocessor.size=({IMG},{IMG})', 'model.test_cfg.mode=whole',
    'train_dataloader.batch_size=2',
    f'train_dataloader.dataset.pipeline.2.scale=({4 * IMG},{IMG})',
    f'train_dataloader.dataset.pipeline.3.crop_size=({IMG},{IMG})',
    f'val_dataloader.dataset.pipeline.1.scale=({4 * IMG},{IMG})',
    f'test_dataloader.dataset.pipeline.1.scale=({4 * IMG},{IMG})',
    f'train_cfg.max_iters={ITERS}', f'train_cfg.val_interval={ITERS}',
    f'default_hooks.checkpoint.interval={ITERS}',
    'default_hooks.logger.interval=1'] + [
    f'model.{h}.{k}' for h in ('decode_head', 'auxiliary_head.0',
                               'auxiliary_head.1', 'auxiliary_head.2')
    for k in (f'in_channels={WIDTH}', 'channels=16')]

# how each kind of README line is shrunk (appended), and what it leaves
SHRINK = [
    (r'^python tools/demo\.py\b', ['--iters', str(ITERS)],
     ['work_dirs/demo/demo_result.png']),
    (r'^python tools/convert_checkpoint\.py ViT-L_16\.npz (\S+)$', [],
     [r'\1']),
    (r'^python tools/train\.py configs/setr_ivpt_vitl_ade20k\.py$',
     ['--cfg-options'] + ADE20K,
     [f'work_dirs/setr_ivpt_vitl_ade20k/iter_{ITERS}.pth']),
    (r'^python tools/test\.py configs/setr_ivpt_vitl_ade20k\.py \S+$',
     ['--cfg-options'] + ADE20K, []),
]


def quick_start():
    """(bash lines, python blocks) of the README's marked quick start."""
    found = QUICK.search(open(README, encoding='utf-8').read())
    assert found, 'README.md has no <!-- quick-start: ... --> block'
    blocks = FENCE.findall(found.group(1))
    bash = [line.split(' #')[0].strip() for lang, code in blocks
            if lang == 'bash' for line in code.splitlines()
            if line.strip() and not line.lstrip().startswith('#')]
    python = [code for lang, code in blocks if lang == 'python']
    assert bash and python, blocks
    return bash, python


def shrunk(line):
    """The README line with its shrinking appended (checkpoints of the
    full schedule renamed to the shrunk one's), and the files it makes."""
    line = line.replace('iter_160000.pth', f'iter_{ITERS}.pth')
    for pattern, extra, makes in SHRINK:
        m = re.match(pattern, line)
        if m:
            return line + ''.join(f' {shlex.quote(x)}' for x in extra), [
                m.expand(f) for f in makes]
    pytest.fail(f'the README quick start runs {line!r}, which '
                'tests/e2e/test_readme.py does not know how to shrink: add it '
                'to SHRINK')


def fresh_clone(dst):
    """The repository's tracked and new (not ignored) files, as a clone
    with this work in it has them; .venv linked to the one the tests use."""
    res = subprocess.run(['git', 'ls-files', '-co', '--exclude-standard',
                          '-z'], cwd=ROOT, capture_output=True, text=True)
    if res.returncode == 0:
        for rel in filter(None, res.stdout.split('\0')):
            src = osp.join(ROOT, rel)
            if osp.isfile(src):
                os.makedirs(osp.dirname(osp.join(dst, rel)), exist_ok=True)
                shutil.copy2(src, osp.join(dst, rel))
    else:  # not a git checkout: everything but what .gitignore names
        shutil.copytree(ROOT, dst, dirs_exist_ok=True, ignore=(
            shutil.ignore_patterns('.git', '.venv', 'data', 'work_dirs',
                                   'pretrain', '__pycache__', '*.pyc')))
    os.symlink(osp.realpath(VENV), osp.join(dst, '.venv'))


def tiny_npz(path):
    import timm
    import torch
    torch.manual_seed(0)
    to_npz(timm.models.VisionTransformer(
        img_size=IMG, patch_size=16, embed_dim=WIDTH, depth=DEPTH,
        num_heads=HEADS, mlp_ratio=FFN / WIDTH, num_classes=0), str(path))


def user_data(clone):
    """What the README asks the user for, generated tiny in the clone:
    Google's npz and ADE20K (the shapes set in ADE20K's layout, with the
    validation image the README names)."""
    from mmseg_ivpt.datasets import generate_shapes_dataset
    tiny_npz(clone / 'ViT-L_16.npz')
    ade = clone / 'data' / 'ade' / 'ADEChallengeData2016'
    generate_shapes_dataset(str(ade), num_train=4, num_val=2)
    for kind, ext in (('images', 'jpg'), ('annotations', 'png')):
        d = ade / kind / 'validation'
        shutil.copy(d / f'shapes_000000.{ext}', d / f'ADE_val_00000001.{ext}')


@pytest.mark.slow
@pytest.mark.skipif(SYSTEM_PYTHON is None, reason='no python3 in /usr/bin')
@pytest.mark.skipif(not osp.isfile(osp.join(VENV, 'bin', 'python')),
                    reason='no venv in the repository (the tests run in '
                    'another environment)')
def test_quick_start_runs_as_written(tmp_path):
    bash, python = quick_start()
    clone = tmp_path / 'clone'
    fresh_clone(str(clone))
    user_data(clone)
    bin_dir = tmp_path / 'bin'  # the README: `python3` where no `python`
    bin_dir.mkdir()
    python_on_path = shutil.which('python', path='/usr/bin:/bin')
    os.symlink(python_on_path or SYSTEM_PYTHON, bin_dir / 'python')
    env = dict(PATH=f'{bin_dir}:/usr/bin:/bin',
               HOME=os.environ.get('HOME', str(tmp_path)))

    def run(cmd, **kw):
        res = subprocess.run(['env', '-i'] + [f'{k}={v}' for k, v in
                                              env.items()] + cmd,
                             cwd=str(clone), capture_output=True, text=True,
                             timeout=600, **kw)
        assert res.returncode == 0, (f'{cmd}\n--- stdout\n'
                                     f'{res.stdout[-3000:]}\n--- stderr\n'
                                     f'{res.stderr[-5000:]}')
        return res

    for line in bash:
        cmd, makes = shrunk(line)
        t0 = time.time()
        res = run(['bash', '-c', cmd])
        print(f'{time.time() - t0:5.1f} s  {line}')
        for rel in makes:
            assert (clone / rel).is_file(), (cmd, rel, res.stdout[-2000:])
        if 'tools/test.py' in cmd:
            assert 'mIoU' in res.stdout + res.stderr, res.stdout[-2000:]
    for code in python:  # the venv's python, as the README says
        run(['.venv/bin/python', '-'],
            input=code.replace('iter_160000.pth', f'iter_{ITERS}.pth'))
        for out in re.findall(r"out_file='([^']+)'", code):
            assert (clone / out).is_file(), out


# ------------------------------------------------------------------ links
def _slug(heading):
    """The anchor GitHub makes of a heading."""
    heading = re.sub(r'[^\w\- ]', '', heading.strip().lower())
    return heading.replace(' ', '-')


def _anchors(path):
    out, seen, code = set(), {}, False
    for line in open(path, encoding='utf-8'):
        if line.startswith('```'):
            code = not code
        m = None if code else re.match(r'#+\s+(.*)', line)
        if m:
            s = _slug(m.group(1))
            out.add(f'{s}-{seen[s]}' if s in seen else s)
            seen[s] = seen.get(s, 0) + 1
    return out


def test_every_link_of_the_docs_resolves():
    pages = [README, osp.join(ROOT, 'CONTRIBUTING.md')] + sorted(
        glob.glob(osp.join(ROOT, 'docs', '*.md')))
    bad = []
    for page in pages:
        text = re.sub(r'```.*?```', '', open(page, encoding='utf-8').read(),
                      flags=re.S)
        for link in re.findall(r'\]\(([^)\s]+)\)', text):
            if re.match(r'[a-z]+:', link):
                continue
            path, _, anchor = link.partition('#')
            target = osp.normpath(osp.join(osp.dirname(page), path)) \
                if path else page
            if not osp.exists(target):
                bad.append(f'{osp.relpath(page, ROOT)}: {link} (no file)')
            elif anchor and target.endswith('.md') and \
                    anchor not in _anchors(target):
                bad.append(f'{osp.relpath(page, ROOT)}: {link} (no heading)')
    assert not bad, '\n'.join(bad)
