"""tools/analysis/noise_robustness.py (iVPT Figs. 4 and 6), run as a user
runs it from another folder, on a tiny segmentation model (the demo's
config) and a tiny classification model: it writes the CSV
and the plot, its rate-0 results are exactly tools/test.py's, and the
noise is what docs/robustness.md defines, seeded."""
import csv
import glob
import json

import pytest
import torch
from ivpt_runs import (
    ROOT,
    SEG_CFG,
    make_vtab,
    ok,
    pretrained_tiny,
    run_tool,
    small_config,
)

from mmseg_ivpt.analysis.robustness import InputNoise

TOOL = f'{ROOT}/tools/analysis/noise_robustness.py'


def save_random_checkpoint(cfg_path, ckpt_path):
    """The config's model as built (random prompts and head on the tiny
    "pretrained" ViT), saved as an mmengine checkpoint."""
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope
    cfg = Config.fromfile(cfg_path)
    init_default_scope(cfg.default_scope)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    with torch.no_grad():
        model.backbone.prompts.normal_(0, 1)
    torch.save(dict(meta=dict(), state_dict=model.state_dict()), ckpt_path)
    return ckpt_path


@pytest.fixture(scope='module')
def models(env):
    """(config, checkpoint) of the demo's segmentation model and of a tiny
    VTAB-1k classification model, data paths baked into the configs."""
    from mmengine.config import Config, DictAction
    tmp = env['tmp']
    seg_cfg = Config.fromfile(SEG_CFG)
    seg_cfg.merge_from_dict({k: DictAction._parse_iterable(v) for k, v in
                             (o.split('=', 1) for o in env['opts'])})
    seg_path = str(tmp / 'seg_cfg.py')
    seg_cfg.dump(seg_path)

    cls_dir = tmp / 'cls'
    make_vtab(cls_dir / 'vtab', task='eurosat', n=8)
    cls_path = small_config(cls_dir, 'configs/vtab/ivpt_vitb16_eurosat.py',
                            f"data_root={str(cls_dir / 'vtab')!r}",
                            pretrained_tiny(cls_dir))
    return [(seg_path, save_random_checkpoint(seg_path, str(tmp / 'seg.pth'))),
            (cls_path, save_random_checkpoint(cls_path, str(tmp / 'cls.pth')))]


def tools_test_metrics(config, ckpt, work_dir):
    """What tools/test.py reports (its json log: full precision)."""
    ok(run_tool('test.py', config, ckpt, '--work-dir', work_dir,
                cwd=work_dir.parent))
    logs = glob.glob(str(work_dir / '*' / '*.json'))
    assert len(logs) == 1, logs
    with open(logs[0]) as f:
        return json.loads(f.readline())


@pytest.mark.slow
def test_tool_writes_csv_and_plot_and_rate0_is_tools_test(models, tmp_path):
    (seg_cfg, seg_ckpt), (cls_cfg, cls_ckpt) = models
    out = tmp_path / 'noise'
    res = ok(run_tool('analysis/noise_robustness.py', seg_cfg, seg_ckpt,
                      cls_cfg, cls_ckpt, '--rates', '0', '2', '--labels',
                      'seg', 'cls', '--out-dir', out, cwd=tmp_path))
    assert 'noise_robustness.csv' in res.stdout
    with open(out / 'noise_robustness.csv') as f:
        rows = list(csv.DictReader(f))
    assert [(r['model'], float(r['rate']), r['metric']) for r in rows] == [
        ('seg', 0., 'mIoU'), ('seg', 2., 'mIoU'),
        ('cls', 0., 'accuracy/top1'), ('cls', 2., 'accuracy/top1')]
    png = (out / 'noise_robustness.png').read_bytes()
    assert png[:8] == b'\x89PNG\r\n\x1a\n' and len(png) > 5000

    want = {
        'seg': tools_test_metrics(seg_cfg, seg_ckpt, tmp_path / 'seg_test'),
        'cls': tools_test_metrics(cls_cfg, cls_ckpt, tmp_path / 'cls_test'),
    }
    for r in rows:
        if float(r['rate']) == 0.:
            assert float(r['value']) == want[r['model']][r['metric']], r
    # strong noise does change what a model sees: the segmentation metric
    # moves off its clean value
    seg = {float(r['rate']): float(r['value']) for r in rows
           if r['model'] == 'seg'}
    assert seg[2.] != seg[0.]


def test_bad_arguments_are_named(models, capsys):
    import importlib.util
    spec = importlib.util.spec_from_file_location('noise_robustness', TOOL)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    (seg_cfg, seg_ckpt), _ = models
    for args, match in (([seg_cfg], 'pairs CONFIG CKPT'),
                        ([seg_cfg, 'gone.pth'], "checkpoint 'gone.pth'"),
                        ([seg_cfg, seg_ckpt, '--rates', '-1'], '--rates'),
                        ([seg_cfg, seg_ckpt, '--labels', 'a', 'b'],
                         '--labels')):
        with pytest.raises(SystemExit):
            tool.parse_args(args)
        assert match in capsys.readouterr().err, args


class _Pre(torch.nn.Module):
    """Stands for a data preprocessor: normalises a batch."""

    def forward(self, data, training=False):
        return dict(inputs=(data['inputs'] - 100.) / 50.,
                    data_samples=data.get('data_samples'))


def test_noise_is_seeded_scaled_and_per_image():
    pre = _Pre()
    batch = dict(inputs=torch.rand(4, 3, 32, 32) * 255)
    clean = pre(batch)['inputs']
    noise = InputNoise(pre, seed=3)
    noise.reset(0.)
    assert torch.equal(pre(batch)['inputs'], clean)
    noise.reset(.5)
    a = pre(batch)['inputs'] - clean
    noise.reset(.5)
    assert torch.equal(pre(batch)['inputs'] - clean, a)  # seeded
    noise.reset(2.)
    b = pre(batch)['inputs'] - clean
    torch.testing.assert_close(b, 4 * a)  # same draws, std = rate
    assert abs(float(a.std()) - .5) < .02
    # image i gets the same noise whatever the batching
    noise.reset(.5)
    parts = [pre(dict(inputs=batch['inputs'][i:i + 2]))['inputs']
             for i in (0, 2)]
    torch.testing.assert_close(torch.cat(parts) - clean, a)
    noise.restore()
    noise.reset(.5)
    assert torch.equal(pre(batch)['inputs'], clean)
