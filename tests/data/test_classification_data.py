"""VTAB-1k and FGVC data sets on generated files in the shared layouts, and
bad data named by file and line."""
import json

import pytest
from ivpt_runs import make_fgvc, make_vtab

from mmseg_ivpt.datasets import FGVC, FGVC_DATASETS, VTAB1k, VTAB_TASKS, \
    DataError


def test_class_counts_are_spec_table():
    """the iVPT paper's Table 17, realigned (docs/data.md)."""
    assert [n for _, n in VTAB_TASKS.values()] == [
        100, 102, 47, 102, 37, 10, 397, 2, 10, 45, 5, 8, 6, 6, 4, 16, 16, 18,
        9]
    assert [g for g, _ in VTAB_TASKS.values()].count('natural') == 7
    assert [g for g, _ in VTAB_TASKS.values()].count('specialized') == 4
    assert {k: n for k, (n, _) in FGVC_DATASETS.items()} == dict(
        cub=200, nabirds=555, oxford_flowers=102, stanford_dogs=120,
        stanford_cars=196)


def test_vtab_reads_split(tmp_path):
    make_vtab(tmp_path)
    ds = VTAB1k(data_root=str(tmp_path), task='eurosat', split='train800')
    assert len(ds) == 6 and len(ds.CLASSES) == 10
    assert ds[3]['gt_label'] == 3
    assert ds[3]['img_path'].endswith('eurosat/images/3.jpg')


@pytest.mark.parametrize('kind,match', [
    ('label', r'train800.txt:3: label 10 outside 0..9'),
    ('line', r'train800.txt:2: expected "path label"'),
    ('image', r'train800.txt:1: image .*gone.jpg.* not found'),
    ('empty', r'train800.txt: empty split'),
    ('nofile', r'split file .*train800.txt.* not found'),
])
def test_vtab_bad_data(tmp_path, kind, match):
    d = make_vtab(tmp_path)
    f = d / 'train800.txt'
    lines = f.read_text().splitlines()
    if kind == 'label':
        lines[2] = 'images/2.jpg 10'
    elif kind == 'line':
        lines[1] = 'images/1.jpg'
    elif kind == 'image':
        lines[0] = 'images/gone.jpg 0'
    elif kind == 'empty':
        lines = []
    if kind == 'nofile':
        f.unlink()
    else:
        f.write_text('\n'.join(lines) + '\n')
    with pytest.raises(DataError, match=match):
        VTAB1k(data_root=str(tmp_path), task='eurosat', split='train800')


def test_vtab_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match='task='):
        VTAB1k(data_root=str(tmp_path), task='imagenet')
    with pytest.raises(ValueError, match='split='):
        VTAB1k(data_root=str(tmp_path), task='dtd', split='train1000')


def test_fgvc_reads_and_maps_labels(tmp_path):
    make_fgvc(tmp_path)
    ds = FGVC(data_root=str(tmp_path), name='cub', split='train')
    assert len(ds.CLASSES) == 200
    assert [ds[i]['gt_label'] for i in range(4)] == [0, 1, 2, 1]
    both = FGVC(data_root=str(tmp_path), name='cub', split=['train', 'val'])
    assert len(both) == 8


def test_fgvc_bad_data(tmp_path):
    make_fgvc(tmp_path)
    (tmp_path / 'test.json').write_text(json.dumps({'x/gone.jpg': 5}))
    with pytest.raises(DataError, match=r"test.json entry 'x/gone.jpg': "
                       r'image .* not found'):
        FGVC(data_root=str(tmp_path), name='cub', split='test')
    (tmp_path / 'val.json').write_text(json.dumps(
        {'001.cls/val_0.jpg': 9}))
    with pytest.raises(DataError, match=r'label 9 does not occur in '
                       r'train.json'):
        FGVC(data_root=str(tmp_path), name='cub', split='val')
    (tmp_path / 'val.json').write_text('{}')
    with pytest.raises(DataError, match='val.json: empty split'):
        FGVC(data_root=str(tmp_path), name='cub', split='val')
    with pytest.raises(ValueError, match='name='):
        FGVC(data_root=str(tmp_path), name='birds')
