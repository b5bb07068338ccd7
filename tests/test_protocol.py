"""The classification protocol: method variants of the task configs, and a
real sweep -> final -> report on a tiny generated VTAB task."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
from mmengine.config import Config
from test_classification_data import make_vtab
from test_classification_e2e import pretrained_tiny, small_config

from mmseg_ivpt.analysis.params import build_model_on_meta, count_parameters
from mmseg_ivpt.protocol import METHODS, apply_method, load_task_config

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
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
    ('express', N * D + 5 * 12 * N * D),  # EXPRESS: P + 3 residual sets
    ('vpt_deep', 12 * VPT_N * D),  # VPT's own prompt length for eurosat
    ('vpt_shallow', VPT_N * D),
    ('linear', 0),
    ('bias', 12 * (3 * D + D + 4 * D + D + 2 * D)),
    ('ivpt_mae', 12 * N * D + 11 * N * N + 11 * K * D),
    ('vpt_deep_mocov3', 12 * VPT_N * D),
    ('gapt_mae', 100 * D + 11 + 12),  # GaPT's N = 100
    ('gapt_mocov3', 100 * D + 11 + 12),
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
    from mmseg_ivpt.protocol import backbone_name, report
    from mmseg_ivpt.datasets import VTAB_TASKS
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


def test_benchmark_and_backbone_come_from_the_path(tmp_path):
    """A config inheriting from a task config is located as that one; a
    config outside the table (here: the same settings, flattened) is the
    named error listing the table, from the API and from the tool, as is a
    method that does not fit, each in one line naming the file."""
    from mmseg_ivpt.protocol import (UnlistedConfigError, locate_config,
                                     set_splits)
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
    with pytest.raises(ValueError, match='method='):
        apply_method(Config.fromfile(EUROSAT), 'lora')
    assert set(METHODS) >= {'ivpt', 'linear', 'full', 'bias', 'vpt_shallow',
                            'vpt_deep', 'gapt_mae', 'gapt_mocov3', 'cdc',
                            'cdc_da', 'ar_all', 'vanilla_cdc', 'provp'}


def test_sweep_final_report(tmp_path):
    make_vtab(tmp_path / 'vtab', task='eurosat', n=8)
    pretrained = pretrained_tiny(tmp_path)
    cfg = small_config(tmp_path, 'configs/vtab/ivpt_vitb16_eurosat.py',
                       f"data_root={str(tmp_path / 'vtab')!r}", pretrained)
    root = str(tmp_path / 'runs')

    def proto(*args, cwd=ROOT):
        res = subprocess.run([sys.executable, osp.join(ROOT, 'tools',
                                                       'protocol.py'),
                              *args, '--work-root', root], cwd=cwd,
                             capture_output=True, text=True, timeout=900)
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-5000:]
        return res.stdout

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
                   '| 96.1 |')  # paper, Table 1
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
