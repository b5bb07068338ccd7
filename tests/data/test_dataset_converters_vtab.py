"""tools/dataset_converters/vtab1k.py and verify.py on small real TFDS data
sets written by the tests (tests/fixtures/tfds_small.py: the real builders'
names, versions and feature specs; split sizes scaled down; every example
carries its index), without tensorflow and without any download.

What is selected is checked against VTAB's rule written out here by hand
(task_adaptation/data/<task>.py, with the scaled sizes) on the source order
as TFDS reads the whole split, example by example and pixel for pixel."""
import json
import os
import os.path as osp
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from ivpt_runs import FIXTURES, ROOT, ok, pretrained_tiny, run_tool, \
    small_config

sys.path.insert(0, FIXTURES)
import tfds_small as ts  # noqa: E402
from PIL import Image  # noqa: E402

from mmseg_ivpt.datasets import VTAB_TASKS  # noqa: E402
from mmseg_ivpt.datasets.converters import ConversionError  # noqa: E402
from mmseg_ivpt.datasets.converters import vtab, vtab_tasks  # noqa: E402
from mmseg_ivpt.datasets.converters.verify import verify  # noqa: E402

SIZES = (8, 3)  # train800 -> 8, val200 -> 3
# builder name, version, split -> example indices
SOURCES = [
    ('cifar100', '3.0.2', {'train': range(40), 'test': range(100, 105)}),
    ('eurosat/rgb', '2.0.0', {'train': range(50)}),
    ('clevr', '3.1.0', {'train': range(30), 'validation': range(100, 104),
                        'test': range(200, 202)}),
    # not VPT's 3.2.0: the version drift path
    ('kitti', '3.3.0', {'train': range(10), 'validation': range(100, 104),
                        'test': range(200, 203)}),
    ('dsprites', '2.0.0', {'train': range(60)}),
    ('smallnorb', '2.0.0', {'train': range(10), 'test': range(100, 108)}),
]
TASKS = ['cifar', 'eurosat', 'clevr_count', 'clevr_dist', 'kitti',
         'dsprites_loc', 'dsprites_ori', 'smallnorb_azi', 'smallnorb_ele']


def _full(tfds_dir, name, version, split):
    """The indices of a whole split in the order TFDS reads it."""
    import tensorflow_datasets as tfds
    b = tfds.builder_from_directory(osp.join(tfds_dir, name, version))
    src = b.as_data_source(split=split)
    return [ts.index_of(name.split('/')[0], src[i]) for i in range(len(src))]


def vtab_rule(tfds_dir, task):
    """VTAB's selection, by hand: split -> source indices."""
    n_tr, n_va = SIZES
    full = lambda name, ver, s: _full(tfds_dir, name, ver, s)  # noqa: E731
    if task == 'cifar':   # cifar.py: train = 90 % of 40 = 36
        tr = full('cifar100', '3.0.2', 'train')
        return dict(train800=tr[:n_tr], val200=tr[36:36 + n_va],
                    test=full('cifar100', '3.0.2', 'test'))
    if task == 'eurosat':  # eurosat.py: 60/20/20 of 50 -> 30, 10; test [40:]
        tr = full('eurosat/rgb', '2.0.0', 'train')
        return dict(train800=tr[:n_tr], val200=tr[30:30 + n_va], test=tr[40:])
    if task.startswith('clevr'):  # clevr.py: 90 % of 30 = 27; test = val
        tr = full('clevr', '3.1.0', 'train')
        return dict(train800=tr[:n_tr], val200=tr[27:27 + n_va],
                    test=full('clevr', '3.1.0', 'validation'))
    if task == 'kitti':
        return dict(train800=full('kitti', '3.3.0', 'train')[:n_tr],
                    val200=full('kitti', '3.3.0', 'validation')[:n_va],
                    test=full('kitti', '3.3.0', 'test'))
    if task.startswith('dsprites'):  # 80/10/10 of 60 -> 48, 6; test [54:]
        tr = full('dsprites', '2.0.0', 'train')
        return dict(train800=tr[:n_tr], val200=tr[48:48 + n_va], test=tr[54:])
    if task.startswith('smallnorb'):  # val = test[:n], test = test[50%:]
        te = full('smallnorb', '2.0.0', 'test')
        return dict(train800=full('smallnorb', '2.0.0', 'train')[:n_tr],
                    val200=te[:n_va], test=te[4:])
    raise KeyError(task)


def expected_label(task, i):
    """VTAB's labels of example i, computed independently of the
    converter."""
    if task == 'cifar':
        return i % 100
    if task == 'eurosat':
        return i % 10
    if task == 'clevr_count':
        return ts.clevr_objects(i)[0] - 3
    if task == 'clevr_dist':
        d = ts.clevr_objects(i)[1].min()
        return sum(d > t for t in (8.0, 8.5, 9.0, 9.5, 10.0))
    if task == 'kitti':
        types, z = ts.kitti_objects(i)
        d = min([1000.0] + [float(v) for v, t in zip(z, types) if t < 3])
        return sum(d > t for t in (8.0, 20.0, 999.0))
    if task == 'dsprites_loc':
        return (i % 32) // 2
    if task == 'dsprites_ori':
        return int((i % 40) / 2.5)
    if task == 'smallnorb_azi':
        return i % 18
    if task == 'smallnorb_ele':
        return i % 9
    raise KeyError(task)


def expected_image(task, i):
    builder = vtab_tasks.VTAB_SOURCES[task].builder
    a = ts.image_of(builder, i)
    if builder == 'dsprites':
        return np.repeat(a, 3, axis=2) * 255
    if builder == 'smallnorb':
        return np.repeat(a, 3, axis=2)
    return a


def read_txt(path):
    with open(path) as f:
        return [tuple(line.split()) for line in f if line.strip()]


@pytest.fixture(scope='module')
def tfds_dir(tmp_path_factory):
    d = str(tmp_path_factory.mktemp('tfds'))
    for name, version, splits in SOURCES:
        ts.write_dataset(name, version, {k: list(v)
                                         for k, v in splits.items()}, d)
    return d


@pytest.fixture(scope='module')
def converted(tfds_dir, tmp_path_factory):
    out = str(tmp_path_factory.mktemp('vtab'))
    log = []
    res = vtab.convert(tfds_dir, out, TASKS, sizes=SIZES, log=log.append)
    return dict(out=out, log=log, res=res)


def check_task(task_dir, task, rule):
    """train800 / val200 / test are exactly the examples of ``rule``,
    pixel for pixel, with VTAB's labels; train800val200 is train800 +
    val200."""
    for split in ('train800', 'val200', 'test'):
        lines = read_txt(osp.join(task_dir, f'{split}.txt'))
        assert len(lines) == len(rule[split]), (task, split)
        for k, ((rel, label), i) in enumerate(zip(lines, rule[split])):
            assert rel == f'images/{split}/{k:06d}.png'
            got = np.asarray(Image.open(osp.join(task_dir, rel)))
            want = expected_image(task, i)
            assert got.shape == want.shape[:2] + (3,), (task, split, k)
            assert np.array_equal(got, want), (task, split, k, i)
            assert int(label) == expected_label(task, i), (task, split, i)
    assert read_txt(osp.join(task_dir, 'train800val200.txt')) == \
        read_txt(osp.join(task_dir, 'train800.txt')) + \
        read_txt(osp.join(task_dir, 'val200.txt'))


@pytest.mark.parametrize('task', TASKS)
def test_splits_are_vtabs_example_by_example(converted, tfds_dir, task):
    assert converted['res'][task] == 'converted'
    check_task(osp.join(converted['out'], task), task,
               vtab_rule(tfds_dir, task))


def test_every_task_defined_once():
    assert list(vtab_tasks.VTAB_SOURCES) == list(VTAB_TASKS)
    assert list(vtab_tasks.VTAB_TEST_SIZES) == list(VTAB_TASKS)
    # the builders, configs and versions of KMnP/vpt VTAB_SETUP.md
    got = {t: f'{s.name}:{s.version}'
           for t, s in vtab_tasks.VTAB_SOURCES.items()}
    assert got['cifar'] == 'cifar100:3.0.2'
    assert got['sun397'] == 'sun397/tfds:4.0.0'
    assert got['diabetic_retinopathy'] == \
        'diabetic_retinopathy_detection/btgraham-300:3.0.0'
    assert got['kitti'] == 'kitti:3.2.0' and got['dmlab'] == 'dmlab:2.0.1'
    assert got['oxford_iiit_pet'] == 'oxford_iiit_pet:3.2.0'


def test_split_strings_of_real_sizes():
    """The strings task_adaptation builds from the real split sizes."""
    real = dict(cifar=dict(train=50000), caltech101=dict(train=3060),
                eurosat=dict(train=27000), dsprites_loc=dict(train=737280),
                clevr_count=dict(train=70000), smallnorb_azi=dict(train=24300),
                dtd=dict(train=1880))
    s = {t: vtab_tasks.VTAB_SOURCES[t].splits(sz, 800, 200)
         for t, sz in real.items()}
    assert s['cifar'] == dict(train800='train[:800]',
                              val200='train[45000:45200]', test='test')
    assert s['caltech101']['val200'] == 'train[2754:2954]'
    assert s['eurosat'] == dict(train800='train[:800]',
                                val200='train[16200:16400]',
                                test='train[21600:]')
    assert s['dsprites_loc']['val200'] == 'train[589824:590024]'
    assert s['dsprites_loc']['test'] == 'train[663552:]'
    assert s['clevr_count'] == dict(train800='train[:800]',
                                    val200='train[63000:63200]',
                                    test='validation')
    assert s['smallnorb_azi'] == dict(train800='train[:800]',
                                      val200='test[:200]', test='test[50%:]')
    assert s['dtd']['val200'] == 'validation[:200]'


def _kitti(objs):
    """objs: (type name, depth z)"""
    import tensorflow_datasets as tfds
    names = tfds.builder('kitti', data_dir='/nonexistent').info.features[
        'objects']['type'].names
    return {'objects': {
        'type': np.array([names.index(t) for t, _ in objs], np.int64),
        'location': np.array([[0.0, 1.0, z] for _, z in objs], np.float32)}}


def test_label_functions_on_hand_made_examples():
    f = vtab_tasks.VTAB_SOURCES
    kitti = f['kitti'].label
    assert kitti(_kitti([('Car', 9.0), ('Car', 30.0)])) == \
        kitti(_kitti([('Car', 9.0)])) == 1                  # (8, 20]
    assert kitti(_kitti([('Van', 5.0), ('Pedestrian', 2.0)])) == 0
    assert kitti(_kitti([('Truck', 25.0)])) == 2
    assert kitti(_kitti([('Pedestrian', 3.0), ('Cyclist', 4.0)])) == 3  # none
    assert kitti(_kitti([])) == 3

    def clevr(zs):
        return {'objects': {'size': np.zeros(len(zs), np.int64),
                            'pixel_coords': np.array([[1, 2, z] for z in zs],
                                                     np.float32)}}
    assert f['clevr_count'].label(clevr([9.0] * 3)) == 0
    assert f['clevr_count'].label(clevr([9.0] * 10)) == 7
    assert f['clevr_dist'].label(clevr([12.0, 8.7, 11.0])) == 2  # (8.5, 9]
    assert f['clevr_dist'].label(clevr([7.9])) == 0
    assert f['clevr_dist'].label(clevr([10.2])) == 5
    assert f['dsprites_ori'].label({'label_orientation': 39}) == 15
    assert f['dsprites_ori'].label({'label_orientation': 5}) == 2
    assert f['dsprites_ori'].label({'label_orientation': 4}) == 1
    assert f['dsprites_loc'].label({'label_x_position': 31}) == 15
    assert f['smallnorb_ele'].label({'label_elevation': 8,
                                     'label_azimuth': 3}) == 8
    img = np.array([[[0], [1]]], np.uint8)
    assert f['dsprites_loc'].image({'image': img}).tolist() == \
        [[[0, 0, 0], [255, 255, 255]]]
    assert f['smallnorb_azi'].image({'image': img}).tolist() == \
        [[[0, 0, 0], [1, 1, 1]]]


def test_tfrecord_read_without_tensorflow(tmp_path):
    """The committed fixture, written by TFDS with tensorflow in TFDS's
    default tfrecord format (tests/fixtures/make_tfrecord_fixture.py)."""
    fixture = osp.join(FIXTURES, 'tfds_tfrecord')
    with open(osp.join(fixture, 'order.json')) as f:
        order = json.load(f)['order']  # as tensorflow read it
    assert 'tensorflow' not in sys.modules
    res = vtab.convert(fixture, str(tmp_path), ['dsprites_loc'],
                       sizes=(4, 2), log=lambda m: None)
    assert res == {'dsprites_loc': 'converted'}
    # dsprites.py on 20 examples: train 80 % = 16, val 10 % = 2; test [18:]
    check_task(str(tmp_path / 'dsprites_loc'), 'dsprites_loc',
               dict(train800=order[:4], val200=order[16:18],
                    test=order[18:]))
    man = json.load(open(tmp_path / 'dsprites_loc' / 'manifest.json'))
    assert man['file_format'] == 'tfrecord'
    assert 'tensorflow' not in sys.modules


def test_manifest_and_version_drift(converted):
    out, log = converted['out'], converted['log']
    warnings = [m for m in log if m.startswith('WARNING')]
    assert len(warnings) == 1 and 'kitti' in warnings[0]
    assert '3.3.0' in warnings[0] and '3.2.0' in warnings[0]
    kitti = json.load(open(osp.join(out, 'kitti', 'manifest.json')))
    assert kitti['version'] == '3.3.0' and kitti['vtab_version'] == '3.2.0'
    assert kitti['version_drift']
    cifar = json.load(open(osp.join(out, 'cifar', 'manifest.json')))
    assert cifar['version_drift'] is None and cifar['version'] == '3.0.2'
    assert cifar['splits'] == dict(
        train800='train[:8]', val200='train[36:39]', test='test',
        train800val200='train[:8]+train[36:39]')
    assert cifar['counts'] == dict(train800=8, val200=3, test=5,
                                   train800val200=11)
    from mmseg_ivpt.datasets.converters.common import sha256_file
    for name, digest in cifar['txt_sha256'].items():
        assert sha256_file(osp.join(out, 'cifar', name)) == digest


def test_named_errors_before_any_work(tfds_dir, tmp_path):
    out = tmp_path / 'out'
    with pytest.raises(ConversionError) as e:
        vtab.convert(tfds_dir, str(out), ['cifar', 'dtd', 'resisc45',
                                          'diabetic_retinopathy'],
                     log=lambda m: None)
    msg = str(e.value)
    assert "tfds.builder('dtd:3.0.1'" in msg and 'dtd/3.0.1' in msg
    assert "'resisc45:3.0.0'" in msg and 'NWPU-RESISC45' in msg
    assert osp.join(tfds_dir, 'downloads', 'manual') in msg
    assert 'diabetic_retinopathy_detection/btgraham-300:3.0.0' in msg
    assert 'cifar' not in msg.split('\n', 1)[1]  # found, so not listed
    assert not out.exists()  # nothing was started
    with pytest.raises(ConversionError, match='unknown task'):
        vtab.convert(tfds_dir, str(out), ['cifar10'], log=lambda m: None)
    with pytest.raises(ConversionError, match="'png', 'jpg'"):
        vtab.convert(tfds_dir, str(out), ['cifar'], fmt='gif')


@pytest.mark.slow
def test_cli_rerun_skips_finished_tasks(converted, tfds_dir, tmp_path):
    out = converted['out']
    stamp = {t: os.stat(osp.join(out, t, 'manifest.json')).st_mtime_ns
             for t in TASKS}
    res = run_tool('dataset_converters/vtab1k.py', '--tfds-dir', tfds_dir,
                   '--out', out, '--tasks', *TASKS, '--sizes', *SIZES,
                   cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stderr.count('already converted (') == len(TASKS)
    assert res.stderr.count('checked the sha256 of its') == len(TASKS)
    assert f'0 task(s) converted, {len(TASKS)} already done' in res.stdout
    assert stamp == {t: os.stat(osp.join(out, t, 'manifest.json')
                                ).st_mtime_ns for t in TASKS}
    assert 'WARNING' not in res.stderr  # no work, no drift warning


SLOW_CLI = """
import sys, time
sys.argv[0] = {tool!r}
sys.path.insert(0, {root!r})
import mmseg_ivpt.datasets.converters.vtab as v
write = v.atomic_write_bytes
def slow(path, data):
    time.sleep(0.05)
    write(path, data)
v.atomic_write_bytes = slow
sys.path.insert(0, {tools!r})
import runpy
runpy.run_path({tool!r}, run_name='__main__')
"""


def _pngs(folder):
    return [f for _, _, fs in os.walk(folder) for f in fs
            if f.endswith('.png') and not f.startswith('.')]


@pytest.mark.slow
def test_killed_run_resumes(tfds_dir, tmp_path):
    """A conversion killed (SIGKILL) in the middle leaves no txt file and
    no manifest; the next run keeps the images written and finishes with
    the same result as an uninterrupted one."""
    out = tmp_path / 'out'
    tool = osp.join(ROOT, 'tools', 'dataset_converters', 'vtab1k.py')
    code = SLOW_CLI.format(tool=tool, root=ROOT,
                           tools=osp.dirname(tool))
    args = ['--tfds-dir', tfds_dir, '--out', str(out), '--tasks', 'eurosat',
            '--sizes', *map(str, SIZES)]
    proc = subprocess.Popen([sys.executable, '-c', code, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    images = out / 'eurosat' / 'images'
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if images.is_dir() and len(_pngs(images)) >= 5:
            break
        time.sleep(0.02)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    task = out / 'eurosat'
    assert not any((task / n).exists() for n in vtab.TXT_FILES)
    assert not (task / 'manifest.json').exists()
    written = len(_pngs(images))  # a temporary file may be left too
    assert 5 <= written < 21
    log = []
    assert vtab.convert(tfds_dir, str(out), ['eurosat'], sizes=SIZES,
                        log=log.append) == {'eurosat': 'converted'}
    assert f'eurosat: resumed: {written} images were already written' in log
    check_task(str(task), 'eurosat', vtab_rule(tfds_dir, 'eurosat'))
    assert not list(task.rglob('*.tmp'))


def test_jpg_format(tfds_dir, tmp_path):
    vtab.convert(tfds_dir, str(tmp_path), ['smallnorb_ele'], fmt='jpg',
                 sizes=SIZES, log=lambda m: None)
    lines = read_txt(tmp_path / 'smallnorb_ele' / 'test.txt')
    assert lines[0][0] == 'images/test/000000.jpg'
    with Image.open(tmp_path / 'smallnorb_ele' / lines[0][0]) as im:
        assert im.format == 'JPEG' and im.size == (96, 96)


@pytest.mark.slow
def test_verifier_finds_damage(converted, tmp_path):
    root = tmp_path / 'vtab'
    shutil.copytree(osp.join(converted['out'], 'kitti'), root / 'kitti')
    found, problems = verify(str(root), counts=False)
    assert [n for _, n, _ in found] == ['kitti'] and problems == []
    _, problems = verify(str(root))  # counts: Table 17's, not 8 / 3
    assert any('test.txt: 3 images; VTAB-1k kitti has 711' in p
               for p in problems)
    task = root / 'kitti'
    os.unlink(task / 'images' / 'val200' / '000001.png')
    lines = (task / 'test.txt').read_text().splitlines(True)
    lines[1] = lines[1].rsplit(' ', 1)[0] + ' 7\n'      # kitti has 4
    lines[2] = 'images/train800/000004.png 0\n'         # a training image
    (task / 'test.txt').write_text(''.join(lines))
    shutil.copy(task / 'images' / 'train800' / '000002.png',
                task / 'images' / 'test' / '000000.png')  # a copy of one
    _, problems = verify(str(root), counts=False)
    t = str(task)
    expect = [f'{t}/val200.txt:2: image {t}/images/val200/000001.png not '
              f'found',
              f'{t}/test.txt:2: label 7 outside 0..3',
              f'{t}/test.txt:3: image {t}/images/train800/000004.png is in '
              f'test and in training ({t}/train800.txt:5)',
              f'{t}/test.txt:1: image {t}/images/test/000000.png has the '
              f'same content as the training image '
              f'{t}/images/train800/000002.png']
    for e in expect:
        assert any(p.startswith(e) for p in problems), (e, problems)
    res = run_tool('dataset_converters/verify.py', root, '--no-counts')
    assert res.returncode == 1
    assert f'{t}/test.txt:2: label 7' in res.stdout
    assert 'problem(s)' in res.stderr


@pytest.mark.slow
def test_converted_folder_trains(converted, tmp_path):
    """A few iterations of tools/train.py on a configs/vtab config, reading
    the converted eurosat (train800val200, evaluated on test)."""
    over = f"data_root={converted['out']!r}"
    cfg = small_config(tmp_path, 'configs/vtab/ivpt_vitb16_eurosat.py', over,
                       pretrained_tiny(tmp_path))
    res = ok(run_tool('train.py', cfg, '--work-dir', tmp_path / 'work'))
    log = res.stdout + res.stderr
    assert 'accuracy/top1' in log
    assert 'Epoch(train) [2][3/3]' in log  # 11 images, batch 4


def _tfrecord_offsets(path):
    """(data offset, length) of each record of a TFRecord file, by its
    framing (uint64 length, 4-byte CRC, data, 4-byte CRC)."""
    import struct
    out, data, pos = [], open(path, 'rb').read(), 0
    while pos < len(data):
        (n,) = struct.unpack('<Q', data[pos:pos + 8])
        out.append((pos + 12, n))
        pos += 16 + n
    return out


def test_crc32c_of_known_values():
    """RFC 3720 B.4's CRC-32C test vectors, and "123456789"."""
    from mmseg_ivpt.datasets.converters.crc32c import crc32c, crc32c_many
    assert crc32c(b'123456789') == 0xE3069283
    assert crc32c(bytes(32)) == 0x8A9136AA
    assert crc32c(b'\xff' * 32) == 0x62A8AB43
    assert crc32c(bytes(range(32))) == 0x46DD794E
    assert crc32c(bytes(range(31, -1, -1))) == 0x113FDB5C
    # many at once, of every length around the lane size, as one by one
    blob = bytes(np.random.RandomState(0).randint(0, 256, 700, np.uint8))
    items = [blob[:n] for n in range(0, 700, 7)]
    assert crc32c_many(items) == [crc32c(x) for x in items]
    assert crc32c_many([bytes(64) + b'123456789'[:1]]) != \
        crc32c_many([bytes(65)])


@pytest.mark.slow
def test_damaged_data_is_named_before_any_work(tmp_path):
    """Issue 29.3 and 29.11: another version's dataset_info.json, a shard
    of another preparation (more records than the file says: the slices
    would take other records), a missing shard and a truncated array_record
    file: one error naming every file, before anything is converted."""
    d = str(tmp_path / 'tfds')
    ts.write_dataset('cifar100', '3.0.0', {'train': list(range(40)),
                                           'test': list(range(100, 105))}, d)
    os.rename(f'{d}/cifar100/3.0.0', f'{d}/cifar100/3.0.2')  # VPT's
    ts.write_dataset('eurosat/rgb', '2.0.0', {'train': list(range(50))}, d)
    other = ts.write_dataset('eurosat/rgb', '2.0.0',
                             {'train': list(range(60))}, d + '_other')
    shard = 'eurosat-train.array_record-00000-of-00001'
    shutil.copy(osp.join(other, shard), f'{d}/eurosat/rgb/2.0.0/{shard}')
    ts.write_dataset('smallnorb', '2.0.0', {'train': list(range(10)),
                                            'test': list(range(100, 108))}, d)
    missing = f'{d}/smallnorb/2.0.0/smallnorb-test.array_record-00000-of-00001'
    os.unlink(missing)
    ts.write_dataset('dsprites', '2.0.0', {'train': list(range(60))}, d)
    cut = f'{d}/dsprites/2.0.0/dsprites-train.array_record-00000-of-00001'
    with open(cut, 'r+b') as f:
        f.truncate(os.path.getsize(cut) - 100)
    out = tmp_path / 'out'
    res = run_tool('dataset_converters/vtab1k.py', '--tfds-dir', d, '--out',
                   out, '--tasks', 'cifar', 'eurosat', 'smallnorb_azi',
                   'dsprites_loc', '--sizes', *SIZES, cwd=tmp_path)
    assert res.returncode == 1 and 'Traceback' not in res.stderr
    err = res.stderr
    assert err.startswith('vtab1k.py: error: 4 prepared TFDS folder(s)')
    for line in (
            f"cifar: {d}/cifar100/3.0.2/dataset_info.json: version '3.0.0', "
            f"but it is in the folder of version '3.0.2'",
            f'eurosat: {d}/eurosat/rgb/2.0.0/{shard}: holds 60 records, '
            f'{d}/eurosat/rgb/2.0.0/dataset_info.json says 50',
            f"smallnorb_azi: {missing}: missing (shard 1 of 1 of split "
            f"'test'",
            f'dsprites_loc: {cut}: holds 0 records'):
        assert f'\n  {line}' in err, (line, err)
    assert not out.exists()


def _copy_tfrecord_fixture(dest):
    shutil.copytree(osp.join(FIXTURES, 'tfds_tfrecord', 'dsprites'),
                    dest / 'dsprites')
    path = dest / 'dsprites' / '2.0.0' / \
        'dsprites-train.tfrecord-00000-of-00001'
    return str(path)


@pytest.mark.slow
def test_tfrecord_crc_and_umask(tfds_dir, tmp_path):
    """Issue 29.4: a flipped byte in a record TensorFlow wrote is an error
    naming the file and the record (its CRC-32C), not a wrong example.
    Issue 29.8: what the converter writes follows the umask (022: 0644)."""
    d = tmp_path / 'tfds'
    shutil.copytree(osp.join(tfds_dir, 'cifar100'), d / 'cifar100')
    path = _copy_tfrecord_fixture(d)
    # record 17: read for val200 = train[16:18] (sizes 4 2 of 20 records)
    offset, n = _tfrecord_offsets(path)[17]
    with open(path, 'r+b') as f:
        f.seek(offset + n // 2)
        b = f.read(1)
        f.seek(offset + n // 2)
        f.write(bytes([b[0] ^ 0x10]))
    out = tmp_path / 'out'
    cmd = ['sh', '-c', 'umask 022 && exec "$0" "$@"', sys.executable,
           osp.join(ROOT, 'tools', 'dataset_converters', 'vtab1k.py'),
           '--tfds-dir', str(d), '--out', str(out), '--tasks', 'cifar',
           'dsprites_loc', '--sizes', '4', '2']
    from ivpt_runs import run
    res = run(cmd, tmp_path)
    assert res.returncode == 1 and 'Traceback' not in res.stderr
    assert f'vtab1k.py: error: {path}: record 17 (byte {offset - 12}): the ' \
        f'CRC of its data does not match' in res.stderr, res.stderr[-2000:]
    assert not (out / 'dsprites_loc' / 'manifest.json').exists()
    task = out / 'cifar'
    written = [p for p in task.rglob('*') if p.is_file()]
    assert len(written) > 10 and task / 'manifest.json' in written
    for p in written:
        assert os.stat(p).st_mode & 0o777 == 0o644, p
    for p in [task, task / 'images', task / 'images' / 'test']:
        assert os.stat(p).st_mode & 0o777 == 0o755, p


def test_rerun_checks_the_images_hashes(tfds_dir, tmp_path):
    """Issue 29.10: a rerun over a damaged image does not call it
    "converted": the images' sha256 (images.sha256, itself in the
    manifest) are checked; the damaged image is written again, the others
    are kept."""
    log = []
    vtab.convert(tfds_dir, str(tmp_path), ['smallnorb_ele'], sizes=SIZES,
                 log=log.append)
    task = tmp_path / 'smallnorb_ele'
    good = (task / 'images' / 'test' / '000001.png').read_bytes()
    other = task / 'images' / 'test' / '000002.png'
    stamp = os.stat(other).st_mtime_ns
    # same size, one pixel other: still a PNG that decodes
    damaged = bytearray(good)
    damaged[len(good) // 2] ^= 1
    (task / 'images' / 'test' / '000001.png').write_bytes(bytes(damaged))
    log.clear()
    res = vtab.convert(tfds_dir, str(tmp_path), ['smallnorb_ele'],
                       sizes=SIZES, log=log.append)
    assert res == {'smallnorb_ele': 'converted'}, log
    assert any('1 image(s) missing or other than their sha256 in '
               'images.sha256 (e.g. images/test/000001.png); converting it '
               'again' in m for m in log), log
    assert (task / 'images' / 'test' / '000001.png').read_bytes() == good
    assert os.stat(other).st_mtime_ns == stamp  # kept, not rewritten
    log.clear()
    res = vtab.convert(tfds_dir, str(tmp_path), ['smallnorb_ele'],
                       sizes=SIZES, log=log.append)
    assert res == {'smallnorb_ele': 'skipped'}
    assert 'checked the sha256 of its 15 images and txt files' in log[0]
    sums = (task / 'images.sha256').read_text().splitlines()
    assert len(sums) == 15 and sums[0].endswith('  images/train800/'
                                                '000000.png')


def _png(path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((4, 4, 3), value, np.uint8)).save(path)


def _vtab_by_hand(d, n_train, n_val, test_labels):
    """A VTAB-1k task folder written here: white training images, black
    test images with ``test_labels``."""
    tr = [f'images/tr{i}.png {i % 2}\n' for i in range(n_train)]
    va = [f'images/va{i}.png 1\n' for i in range(n_val)]
    for i in range(n_train):
        _png(d / 'images' / f'tr{i}.png', 255)
    for i in range(n_val):
        _png(d / 'images' / f'va{i}.png', 200)
    _png(d / 'images' / 'te.png', 0)
    te = []
    for i, label in enumerate(test_labels):
        os.link(d / 'images' / 'te.png', d / 'images' / f'te{i}.png')
        te.append(f'images/te{i}.png {label}\n')
    for name, lines in (('train800', tr), ('val200', va),
                        ('train800val200', tr + va), ('test', te)):
        (d / f'{name}.txt').write_text(''.join(lines))


@pytest.mark.slow
def test_verify_checks_classes_and_checksums(converted, tmp_path):
    """Issue 29.13, as a user runs verify.py: a test split of Table 17's
    size with 2 of kitti's 4 classes; a converted folder whose txt file and
    image changed after the conversion (the manifest's checksums)."""
    root = tmp_path / 'vtab'
    _vtab_by_hand(root / 'kitti', 4, 2, [k % 2 for k in range(711)])
    task = root / 'smallnorb_ele'
    shutil.copytree(osp.join(converted['out'], 'smallnorb_ele'), task)
    lines = (task / 'test.txt').read_text().splitlines(True)
    rel, label = lines[0].split()
    lines[0] = f'{rel} {(int(label) + 1) % 9}\n'  # a label changed
    (task / 'test.txt').write_text(''.join(lines))
    rel = lines[1].split()[0]
    a = np.asarray(Image.open(task / rel)).copy()
    a[0, 0] ^= 1  # one pixel changed: decodes, not the converted image
    Image.fromarray(a).save(task / rel)
    res = run_tool('dataset_converters/verify.py', root, '--no-counts',
                   cwd=tmp_path)
    assert res.returncode == 1, res.stdout + res.stderr
    out = res.stdout.splitlines()
    t = str(task)
    assert sorted(out) == sorted([
        f"{root}/kitti/test.txt: uses 2 of the 4 classes; VTAB-1k kitti's "
        f'test split has every class (a subset or another data set?)',
        f'{t}/test.txt: its sha256 is not the one {t}/manifest.json records '
        f'(changed after the conversion)',
        f'{t}/test.txt:2: image {t}/{rel} is not the one converted: its '
        f"sha256 differs from {t}/images.sha256's"]), out


def test_verify_counts_the_files_lines(tmp_path, monkeypatch):
    """Issue 29.13: the counts are the file's (the lines the loader reads;
    every JSON entry), not the entries parsed; a JSON key twice is named;
    FGVC's train and test of Table 17's size use every class."""
    from mmseg_ivpt.datasets.converters import fgvc
    from mmseg_ivpt.datasets.converters import verify as verify_mod
    monkeypatch.setattr(verify_mod, 'TRAIN_SIZE', 4)
    monkeypatch.setattr(verify_mod, 'VAL_SIZE', 2)
    monkeypatch.setitem(verify_mod.VTAB_TEST_SIZES, 'kitti', 5)
    d = tmp_path / 'vtab' / 'kitti'
    _vtab_by_hand(d, 3, 2, [0, 1, 2, 3, 0])
    with open(d / 'train800.txt', 'a') as f:  # 4 lines, 3 images
        f.write('images/tr0.png 0\n')
    (d / 'train800val200.txt').write_text(
        (d / 'train800.txt').read_text() + (d / 'val200.txt').read_text())
    _, problems = verify(str(tmp_path / 'vtab'))
    assert problems == [
        f'{d}/train800.txt:4: image {d}/images/tr0.png listed twice (first '
        f'{d}/train800.txt:1)',
        f'{d}/train800val200.txt:4: image {d}/images/tr0.png listed twice '
        f'(first {d}/train800val200.txt:1)'], problems  # 4 and 6: right
    monkeypatch.setitem(fgvc.TABLE17, 'cub', (3, 1, 2))
    cub = tmp_path / 'CUB_200_2011'
    for split, ann in (('train', [('a', 1), ('b', 2), ('a', 1)]),
                       ('val', [('c', 1)]), ('test', [('d', 1), ('e', 2)])):
        for k, _ in ann:
            _png(cub / 'images' / f'{k}.png', 9 if split == 'test' else 99)
        (cub / f'{split}.json').write_text('{\n' + ',\n'.join(
            f' "{k}.png": {v}' for k, v in ann) + '\n}\n')
    _, problems = verify(str(cub))
    assert problems == [
        f'{cub}/train.json:4: image a.png listed twice (first '
        f'{cub}/train.json:2); JSON keeps only the last',
        f"{cub}/train.json: uses 2 of the 200 classes; cub's train split has "
        f'every class (a subset or another data set?)',
        f"{cub}/test.json: uses 2 of the 200 classes; cub's test split has "
        f'every class (a subset or another data set?)'], problems
