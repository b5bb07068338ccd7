"""The classification protocol: method variants of the task configs, and a
real sweep -> final -> report on a tiny generated VTAB task."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
from ivpt_runs import ROOT, make_vtab, pretrained_tiny, small_config
from mmengine.config import Config

from mmseg_ivpt.analysis.params import build_model_on_meta, count_parameters
from mmseg_ivpt.protocol import METHODS, apply_method, load_task_config

EUROSAT = osp.join(ROOT, 'configs', 'vtab', 'ivpt_vitb16_eurosat.py')
N, K, C, D = 50, 5, 10, 768  # eurosat: Table 16, 10 classes
VPT_N = 100  # VPT-deep's prompt length for eurosat
HEAD = (D + 1) * C


@pytest.mark.parametrize('method,expected', [
    ('ivpt', 12 * N * D + 11 * N * N + 11 * K * D),
    ('cdc_da', 12 * N * D + 11 * N * N),
    ('cdc', 12 * N * D),
    ('ar_all', 12 * N * D + 11 * N * N + 11 * 196 * D),
    ('vanilla_cdc', 12 * N * D),
    ('provp', 12 * N * D),
    ('express', 20 * D + 5 * 12 * 20 * D),  # P + 3 residual sets, N = 20
    ('vpt_deep', 12 * VPT_N * D),  # VPT's own prompt length for eurosat
    ('vpt_shallow', VPT_N * D),
    ('linear', 0),
    ('bias', 12 * (3 * D + D + 4 * D + D + 2 * D)),
    ('ivpt_mae', 12 * N * D + 11 * N * N + 11 * K * D),
    ('vpt_deep_mocov3', 12 * VPT_N * D),
    ('gapt_mae', 5 * D + 11 + 12),  # GaPT Table 5: eurosat N = 5 (MAE)
    ('gapt_mocov3', 10 * D + 11 + 12),  # and 10 (MoCo v3)
])
def test_method_variants(method, expected):
    cfg = apply_method(Config.fromfile(EUROSAT), method)
    n = count_parameters(build_model_on_meta(cfg))
    assert n['backbone.trainable'] == expected
    assert n['trainable'] - n['backbone.trainable'] == HEAD
    if method.startswith('gapt'):
        assert cfg.model.backbone.type == 'GatedViT'
        assert 'dynamic_aggregation' not in cfg.model.backbone


def test_backbones_and_their_paper_numbers():
    """Other backbones' configs take the methods that fit them; the
    self-supervised ones are refused on a Swin config; the report shows the
    paper's Table 13 / Table 5 numbers per backbone."""
    from mmseg_ivpt.datasets import VTAB_TASKS
    from mmseg_ivpt.protocol import backbone_name, report
    swin = osp.join(ROOT, 'configs', 'vtab', 'swinb', 'ivpt_swinb_eurosat.py')
    vitl = osp.join(ROOT, 'configs', 'vtab', 'vitl16',
                    'ivpt_vitl16_eurosat.py')
    assert backbone_name(Config.fromfile(swin)) == 'swinb'
    assert backbone_name(Config.fromfile(vitl)) == 'vitl16'
    assert backbone_name(Config.fromfile(EUROSAT)) == 'vitb16'
    cfg = apply_method(Config.fromfile(swin), 'vpt_deep')
    assert cfg.model.backbone.num_prompts == VPT_N
    for method in ('gapt_mae', 'ivpt_mocov3'):
        with pytest.raises(ValueError, match='self-supervised ViT-B/16'):
            apply_method(Config.fromfile(swin), method)
    out = report({}, 'vtab', 'vpt_deep', {}, list(VTAB_TASKS), 'swinb')
    assert '| **Natural mean** | - | | | 76.78 |' in out
    assert '| **group mean** | - | | | 71.55 |' in out  # Table 5
    out = report({}, 'vtab', 'ivpt', {}, list(VTAB_TASKS), 'vith14')
    assert '| smallnorb_azi | - | - | 0 | 33.0 |' in out  # Table 13
    assert '| **group mean** | - | | | 73.19 |' in out



def test_paper_numbers_come_from_the_metafiles():
    """The report's paper numbers, read from configs/{vtab,fgvc}/
    metafile.yml, are the paper's: a few typed here from its tables."""
    from mmseg_ivpt.datasets import FGVC_DATASETS, VTAB_TASKS
    from mmseg_ivpt.protocol import paper_row, report
    vtab, fgvc = list(VTAB_TASKS), list(FGVC_DATASETS)

    def top1(bench, backbone, method, task):
        row = paper_row(bench, backbone, method)
        return row.tasks[(vtab if bench == 'vtab' else fgvc).index(task)]

    assert top1('vtab', 'vitb16', 'ivpt', 'cifar') == 82.7  # Table 1
    assert top1('vtab', 'vitb16', 'full', 'smallnorb_ele') == 29.1
    assert paper_row('vtab', 'vitb16', 'full').params == 85.84
    assert paper_row('vtab', 'vitb16', 'linear').params == 0.04
    assert top1('vtab', 'vitb16', 'provp', 'kitti') == 67.5  # Table 11
    assert top1('vtab', 'vitb16', 'ar_all', 'clevr_count') == 67.9  # 12
    assert top1('vtab', 'vitl16', 'vpt_deep', 'cifar') == 84.1  # Table 13
    assert top1('vtab', 'vitb16', 'ivpt_mae', 'svhn') == 19.8  # Table 14
    assert paper_row('vtab', 'vitb16', 'gapt_mae').groups == (
        47.61, 76.86, 36.80, 53.76)  # Table 6
    assert paper_row('vtab', 'vitb16', 'gapt_mae').tasks is None
    assert top1('fgvc', 'vitb16', 'ivpt', 'cub') == 89.1  # Table 9
    assert top1('fgvc', 'vitb16', 'vpt_deep', 'stanford_cars') == 83.6
    assert paper_row('fgvc', 'vitb16', 'ivpt').params == 0.41
    assert paper_row('fgvc', 'swinb', 'ivpt') == (None, None, None)
    out = report({}, 'fgvc', 'ivpt', {}, fgvc)
    assert '| nabirds | - | - | 0 | 84.5 |' in out
    assert '| **FGVC mean** | - | | | 89.90 |' in out
    assert '| **mean params (M)** | - | | | 0.41 |' in out
    out = report({}, 'vtab', 'gapt_mocov3', {}, vtab)
    assert '| **Structured mean** | - | | | 49.10 |' in out
    assert '| **group mean** | - | | | 69.11 |' in out


def test_metafiles_are_model_indexes_of_the_task_configs():
    """mmpretrain's model-index layout; every Config is a task config of
    the table, on the entry's benchmark and backbone, for its task."""
    import yaml

    from mmseg_ivpt.protocol import BACKBONE_CONFIGS, locate_config
    names = set()
    for bench, title in (('vtab', 'VTAB-1k'), ('fgvc', 'FGVC')):
        with open(osp.join(ROOT, 'configs', bench, 'metafile.yml')) as f:
            index = yaml.safe_load(f)
        (coll, ) = index['Collections']
        assert coll['Paper']['Title'].startswith('iVPT: ')
        for model in index['Models']:
            assert model['Name'] not in names
            names.add(model['Name'])
            assert model['In Collection'] == coll['Name']
            meta = model['Metadata']
            assert meta['Method'] in METHODS
            assert meta['Backbone'] in BACKBONE_CONFIGS
            for res in model['Results']:
                assert res['Task'] == 'Image Classification'
                assert res['Dataset'].startswith(title)
                assert set(res['Metrics']) == {'Top 1 Accuracy'}
            if 'Config' not in model:  # a row of group means only
                assert model['Name'].endswith('_vtab-1k')
                continue
            (res, ) = model['Results']
            task = res['Dataset'][len(title) + 1:]
            path = osp.join(ROOT, model['Config'])
            assert osp.basename(path) == \
                f"ivpt_{meta['Backbone']}_{task}.py", model['Name']
            assert locate_config(path)[:2] == (bench, meta['Backbone'])
    assert len(names) == 347 + 20


@pytest.mark.slow
def test_benchmark_and_backbone_come_from_the_path(tmp_path):
    """A config inheriting from a task config is located as that one; a
    config outside the table (here: the same settings, flattened) is the
    named error listing the table, from the API and from the tool, as is a
    method that does not fit, each in one line naming the file."""
    from mmseg_ivpt.protocol import (
        UnlistedConfigError,
        locate_config,
        set_splits,
    )
    derived = tmp_path / 'mine.py'
    derived.write_text(f'_base_ = [{EUROSAT!r}]\n')
    where = locate_config(str(derived))
    assert (where.benchmark, where.backbone) == ('vtab', 'vitb16')
    assert where.task_config == osp.realpath(EUROSAT)
    flat = str(tmp_path / 'flat.py')
    Config.fromfile(EUROSAT).dump(flat)
    for run in (lambda: load_task_config(flat, 'vpt_deep', None),
                lambda: set_splits(Config.fromfile(flat), 'sweep')):
        with pytest.raises(UnlistedConfigError,
                           match=r'flat\.py is no task config .* vitb16: '
                           r'vtab configs/vtab/\*\*/ivpt_vitb16_\*\.py'):
            run()
    swin = osp.join(ROOT, 'configs', 'vtab', 'swinb', 'ivpt_swinb_eurosat.py')
    for config, method, words in (
            (flat, 'ivpt', f'protocol.py: {flat} is no task config of the '
             'protocol'),
            (swin, 'gapt_mae', f'protocol.py: {swin}: method=\'gapt_mae\' '
             'runs on the self-supervised ViT-B/16 files')):
        res = subprocess.run(
            [sys.executable, osp.join(ROOT, 'tools', 'protocol.py'), 'sweep',
             config, '--method', method, '--dry-run', '--work-root',
             str(tmp_path / 'runs')], capture_output=True, text=True,
            timeout=600)
        assert res.returncode == 1, res.stderr[-3000:]
        assert 'Traceback' not in res.stderr, res.stderr[-3000:]
        last = res.stderr.strip().splitlines()[-1]  # after warnings
        assert last.startswith(words), res.stderr[-3000:]

def test_user_options_win_over_the_method():
    """--cfg-options are merged after the method: a user's checkpoint for
    gapt_mae is the one used (the method alone names MAE's file)."""
    mine = '/data/my_mae.pth'
    cfg = load_task_config(EUROSAT, 'gapt_mae', None)
    assert cfg.model.backbone.init_cfg.checkpoint == \
        'pretrain/mae_pretrain_vit_base.pth'
    cfg = load_task_config(EUROSAT, 'gapt_mae', {
        'model.backbone.init_cfg.checkpoint': mine,
        'model.backbone.num_prompts': 7})
    assert cfg.model.backbone.init_cfg.checkpoint == mine
    assert cfg.model.backbone.num_prompts == 7


def test_full_finetune_variant_and_unknown_method():
    cfg = apply_method(Config.fromfile(EUROSAT), 'full')
    n = count_parameters(build_model_on_meta(cfg))
    assert n['trainable'] == n['total']
    # its checkpoint is the whole ViT (docs/cluster.md): every 10 epochs,
    # where a prompt-only one is written every epoch
    assert cfg.default_hooks.checkpoint.interval == 10
    ivpt = apply_method(Config.fromfile(EUROSAT), 'ivpt')
    assert ivpt.default_hooks.checkpoint.interval == 1
    with pytest.raises(ValueError, match='method='):
        apply_method(Config.fromfile(EUROSAT), 'lora')
    assert set(METHODS) >= {'ivpt', 'linear', 'full', 'bias', 'vpt_shallow',
                            'vpt_deep', 'gapt_mae', 'gapt_mocov3', 'cdc',
                            'cdc_da', 'ar_all', 'vanilla_cdc', 'provp'}


def run_protocol(root, *args, cwd=ROOT, rc=0, env=None):
    """``tools/protocol.py ARGS --work-root ROOT``, as a user runs it (in
    ``env``, default this one); its exit code must be ``rc``. Returns the
    finished process."""
    res = subprocess.run([sys.executable, osp.join(ROOT, 'tools',
                                                   'protocol.py'),
                          *args, '--work-root', str(root)], cwd=cwd,
                         capture_output=True, text=True, timeout=900,
                         env=env)
    assert res.returncode == rc, res.stdout[-3000:] + res.stderr[-5000:]
    assert 'Traceback' not in res.stderr, res.stderr[-5000:]
    return res


def tiny_task(tmp_path):
    """A generated eurosat, the tiny ViT, and a config derived from the
    eurosat task config that trains on them in seconds."""
    make_vtab(tmp_path / 'vtab', task='eurosat', n=8)
    pretrained = pretrained_tiny(tmp_path)
    cfg = small_config(tmp_path, 'configs/vtab/ivpt_vitb16_eurosat.py',
                       f"data_root={str(tmp_path / 'vtab')!r}", pretrained)
    return cfg, pretrained


def check_pool_against(tmp_path, cfg, pretrained, sequential):
    """``sweep --workers 2`` of ``cfg``'s grid gives ``sequential``'s
    best.json; kitti beside it, whose two runs fail, is listed with the
    logs and gets no best.json."""
    make_vtab(tmp_path / 'vtab', task='kitti', n=8,
              labels=[i % 4 for i in range(8)])
    (tmp_path / 'kitti').mkdir()
    kitti = small_config(tmp_path / 'kitti',
                         'configs/vtab/ivpt_vitb16_kitti.py',
                         f"data_root={str(tmp_path / 'vtab')!r}", pretrained)
    pool = tmp_path / 'pool'
    bad = osp.join(pool, 'vtab', 'ivpt', 'kitti', 'sweep')
    for name in ('lr0.5_wd0', 'lr5_wd0'):
        os.makedirs(osp.join(bad, name, 'train.log'))
    res = run_protocol(pool, 'sweep', cfg, kitti, '--lrs', '0.5', '5',
                       '--wds', '0', '--workers', '2', rc=1)
    out = res.stdout
    assert '# 2 trained, 0 skipped (finished before, or running elsewhere), ' \
        '2 failed' in out
    for name, lr in (('lr0.5_wd0', 0.25), ('lr5_wd0', 2.5)):
        log = osp.join(bad, name, 'train.log')
        assert f'#   failed: kitti {name} (lr {lr:g}): log {log}' in out
    assert 'kitti: 2 of 2 runs not finished (lr0.5_wd0, lr5_wd0)' in out
    assert res.stderr.strip().splitlines()[-1].startswith(
        'protocol.py: 2 run(s) failed: kitti lr0.5_wd0 (lr 0.25) (log ')
    assert not osp.exists(osp.join(bad, 'best.json'))
    with open(osp.join(pool, 'vtab', 'ivpt', 'eurosat', 'sweep',
                       'best.json')) as f:
        pooled = json.load(f)
    assert (pooled['best'], pooled['all']) == (sequential['best'],
                                               sequential['all'])


@pytest.mark.slow
def test_sweep_final_report(tmp_path):
    cfg, pretrained = tiny_task(tmp_path)
    root = str(tmp_path / 'runs')

    def proto(*args, cwd=ROOT):
        return run_protocol(root, *args, cwd=cwd).stdout

    out = proto('sweep', cfg, '--lrs', '0.5', '5', '--wds', '0')
    assert '[1/2] eurosat lr0.5_wd0 (lr 0.25): top-1' in out  # batch 128
    assert 'ETA' in out
    task = osp.join(root, 'vtab', 'ivpt', 'eurosat')
    with open(osp.join(task, 'sweep', 'best.json')) as f:
        sweep = json.load(f)
    assert len(sweep['all']) == 2
    best = sweep['best']
    assert f"eurosat: best {best['run']} (lr {best['lr']:g}" in out
    assert best['run'] == f"lr{best['base_lr']:g}_wd0"  # a folder's name
    assert osp.isdir(osp.join(task, 'sweep', best['run']))
    # the sweep trained on train800 and evaluated on val200
    run_cfg = Config.fromfile(osp.join(task, 'sweep', 'lr0.5_wd0',
                                       'config.py'))
    assert run_cfg.train_dataloader.dataset.split == 'train800'
    assert run_cfg.val_dataloader.dataset.split == 'val200'

    # the same grid in a pool of 2 on CPU (docs/cluster.md): the same
    # best.json; beside it a task whose runs fail (folders that cannot take
    # a log), which stops neither the others nor eurosat's best.json
    check_pool_against(tmp_path, cfg, pretrained, sweep)

    # interrupted: one run lost its result; the same command again trains
    # that one only (from another working directory)
    os.remove(osp.join(task, 'sweep', 'lr5_wd0', 'result.json'))
    out = proto('sweep', cfg, '--lrs', '0.5', '5', '--wds', '0',
                cwd=str(tmp_path))
    assert out.count('skipped: finished before') == 1
    assert '[1/2] eurosat lr0.5_wd0 (lr 0.25): top-1' in out
    assert '[2/2] eurosat lr5_wd0 (lr 2.5): top-1' in out
    assert out.count('ETA') == 1

    out = proto('final', cfg, '--seeds', '0', '1')
    assert 'eurosat: test top-1' in out
    final_cfg = Config.fromfile(osp.join(task, 'final', 'seed1',
                                         'config.py'))
    assert final_cfg.train_dataloader.dataset.split == 'train800val200'
    assert final_cfg.val_dataloader.dataset.split == 'test'
    assert final_cfg.randomness.seed == 1
    assert final_cfg.optim_wrapper.optimizer.lr == best['lr']
    with open(osp.join(task, 'final', 'results.json')) as f:
        res = json.load(f)
    assert res['seeds'] == [0, 1]
    out = proto('report', '--benchmark', 'vtab')
    row = next(line for line in out.splitlines()
               if line.startswith('| eurosat |'))
    assert row == (f"| eurosat | {res['mean']:.1f} | {res['std']:.2f} | 2 "
                   '| 96.1 | [1] [2] |')  # paper, Table 1; a tiny recipe
    assert f'[1] config {cfg}, not the task config configs/vtab/' \
        'ivpt_vitb16_eurosat.py (eurosat)' in out
    assert "[2] lr and wd chosen over 2 of the 40 (lr, wd) of the " \
        "method's grid (eurosat)" in out
    assert '| **mean params (M)** | 0.623 | | | 0.60 |' in out
    assert '1/19 tasks have results' in out

    # GaPT on a user's checkpoint: --cfg-options win over the method
    out = proto('sweep', cfg, '--method', 'gapt_mae', '--lrs', '0.1',
                '--cfg-options', f'model.backbone.init_cfg.checkpoint='
                f'{pretrained}', 'model.backbone.num_prompts=2')
    gapt = Config.fromfile(osp.join(root, 'vtab', 'gapt_mae', 'eurosat',
                                    'sweep', 'lr0.1_wd0', 'config.py'))
    assert gapt.model.backbone.type == 'GatedViT'
    assert gapt.model.backbone.init_cfg.checkpoint == pretrained
    assert gapt.optim_wrapper.optimizer.lr == 0.1  # GaPT: not scaled
    assert gapt.optim_wrapper.optimizer.weight_decay == 0


@pytest.mark.slow
def test_best_of_the_folder_final_lr_and_marked_report(tmp_path):
    """Issue 18, cases 2, 3 and 10, as a user meets them: sweeps over parts
    of the grid in one folder (the best of every finished run of this config
    counts, not those of another config), a final run at another batch
    (the base lr scaled to it, not the sweep's lr reused), and a report that
    marks the recipe's differences, which the results record."""
    cfg, _ = tiny_task(tmp_path)
    root = tmp_path / 'runs'
    sweep = osp.join(root, 'vtab', 'ivpt', 'eurosat', 'sweep')
    b8 = ('--cfg-options', 'train_dataloader.batch_size=8')

    def proto(*args):
        return run_protocol(root, *args).stdout

    def read(*parts):
        with open(osp.join(*parts)) as f:
            return json.load(f)

    out = proto('sweep', cfg, '--lrs', '1', '--wds', '0', *b8)
    assert '[1/1] eurosat lr1_wd0 (lr 0.03125): top-1' in out  # 1 x 8 / 256
    out = proto('sweep', cfg, '--lrs', '2', '--wds', '0')  # other: batch 128
    assert 'of the 1 finished runs of this config' in out
    assert f'not counted, finished runs of another config in {sweep}: ' \
        'lr1_wd0' in out
    out = proto('sweep', cfg, '--lrs', '4', '--wds', '0', *b8)
    best = read(sweep, 'best.json')
    assert set(best['all']) == {'lr1_wd0', 'lr4_wd0'}  # not lr2 (batch 128)
    assert best['not_counted'] == ['lr2_wd0']
    assert best['grid'] == {'covered': 1, 'of': 40}  # 4 is off the grid
    assert best['cfg_options'] == {'train_dataloader.batch_size': 8}
    run = read(sweep, 'lr4_wd0', 'result.json')
    assert {k: run[k] for k in ('base_lr', 'lr', 'wd', 'batch', 'gpus',
                                'cfg_options')} == dict(
        base_lr=4, lr=0.125, wd=0, batch=8, gpus=1,
        cfg_options={'train_dataloader.batch_size': 8})
    # the earlier run is made the better one: the same sweep again (nothing
    # to train) keeps it, not the best of its own runs
    first = read(sweep, 'lr1_wd0', 'result.json')
    with open(osp.join(sweep, 'lr1_wd0', 'result.json'), 'w') as f:
        json.dump(dict(first, top1=100.), f)
    out = proto('sweep', cfg, '--lrs', '4', '--wds', '0', *b8)
    assert 'skipped: finished before' in out
    assert 'eurosat: best lr1_wd0 (lr 0.03125; val top-1 100.00) of the 2 ' \
        'finished runs of this config' in out

    # the final at batch 16: base 1 x 16 / 256, not the sweep's 0.03125
    out = proto('final', cfg, '--seeds', '0', '--cfg-options',
                'train_dataloader.batch_size=16')
    assert '# eurosat: lr1_wd0 of the sweep: lr 0.0625 (base 1 x batch 16 ' \
        '/ 256; the sweep trained batch 8 at lr 0.03125), wd 0' in out
    final = osp.join(root, 'vtab', 'ivpt', 'eurosat', 'final')
    run_cfg = Config.fromfile(osp.join(final, 'seed0', 'config.py'))
    assert run_cfg.optim_wrapper.optimizer.lr == 0.0625
    assert run_cfg.train_dataloader.batch_size == 16
    res = read(final, 'results.json')
    assert res['cfg_options'] == {'train_dataloader.batch_size': 16}
    assert (res['base_lr'], res['lr'], res['batch']) == (1, 0.0625, 16)
    assert read(final, 'seed0', 'result.json')['seed'] == 0

    out = proto('report', '--benchmark', 'vtab')
    row = next(line for line in out.splitlines()
               if line.startswith('| eurosat |'))
    assert row.endswith('| 96.1 | [1] [2] [3] |'), row
    assert '| **Specialized mean** | - | | | 87.12 | [1] [2] [3] |' in out
    assert '| **Natural mean** | - | | | 83.50 | |' in out
    assert '[1] --cfg-options train_dataloader.batch_size=16 (eurosat)' in out
    assert "[3] lr and wd chosen over 1 of the 40 (lr, wd) of the method's " \
        "grid (eurosat)" in out


@pytest.mark.slow
def test_gpus_split_the_total_batch(tmp_path):
    """`--gpus N` splits the config's batch (the total, as VPT's
    DATA.BATCH_SIZE) over N processes, the lr unchanged; a batch N does not
    divide stops before any run, naming the config."""
    root = tmp_path / 'runs'
    out = run_protocol(root, 'sweep', EUROSAT, '--dry-run', '--gpus', '2',
                       '--lrs', '4', '--wds', '0').stdout
    assert 'eurosat: 1 runs; ivpt: SGD, batch 128 (64 per GPU x 2)' in out
    assert '4,0->2' in out  # 4 x 128 / 256, as with one GPU
    assert '--nproc_per_node=2' in out
    res = run_protocol(root, 'final', EUROSAT, '--dry-run', '--gpus', '3',
                       rc=1)
    assert res.stderr.strip().splitlines()[-1] == (
        f'protocol.py: {EUROSAT}: the total batch 128 '
        '(train_dataloader.batch_size) does not split over --gpus 3; pass a '
        '--gpus that divides it, or another batch with --cfg-options '
        'train_dataloader.batch_size=B')
    assert not root.exists()
    res = subprocess.run([sys.executable, osp.join(ROOT, 'tools',
                                                   'protocol.py'),
                          'sweep', '--help'], capture_output=True, text=True)
    assert 'DATA.BATCH_SIZE' in ' '.join(res.stdout.split())
    from mmseg_ivpt.protocol import split_batch
    cfg = load_task_config(EUROSAT, 'ivpt', None)
    assert split_batch(cfg, 8).train_dataloader.batch_size == 16
    assert cfg.train_dataloader.batch_size == 128  # a copy
