"""tools/dataset_converters/fgvc.py on miniature official archives,
generated here in the real formats (.txt tables; .mat files via scipy;
.tgz / .tar archives), converted, checked and trained on; and the
verifier on the result."""
import io
import json
import os
import os.path as osp
import shutil
import sys
import tarfile

import numpy as np
import pytest
from ivpt_runs import ok, pretrained_tiny, run_tool, small_config
from PIL import Image
from scipy.io import savemat

from mmseg_ivpt.datasets.converters import ConversionError
from mmseg_ivpt.datasets.converters import fgvc
from mmseg_ivpt.datasets.converters.verify import verify


def jpeg(seed, size=(40, 48)):
    rng = np.random.RandomState(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.randint(0, 256, size + (3,)).astype(np.uint8)).save(
        buf, 'JPEG')
    return buf.getvalue()


def make_tar(path, files, mode='w:gz'):
    """files: archive member name -> bytes"""
    with tarfile.open(path, mode) as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))


def txt(rows):
    return ''.join(' '.join(map(str, r)) + '\n' for r in rows).encode()


def struct_array(records):
    """A MATLAB struct array (savemat) from a list of dicts."""
    keys = list(records[0])
    a = np.zeros((1, len(records)), dtype=[(k, 'O') for k in keys])
    for i, r in enumerate(records):
        for k in keys:
            a[0, i][k] = r[k]
    return a


def cell(strings):
    c = np.empty((len(strings), 1), dtype=object)
    for i, s in enumerate(strings):
        c[i, 0] = s
    return c


# class id -> number of official train images; the test split has 2 a class
CUB_TRAIN = {1: 10, 2: 9, 3: 6, 4: 5}          # 30 -> val ceil(3.0) = 3
NAB_TRAIN = {817: 4, 295: 6, 313: 5}          # non-contiguous ids; 15 -> 2


def cub_like(root_name, counts, folder_of):
    """(archive members, official train, official test) for CUB / NABirds:
    ids, paths below images/, labels."""
    rows_img, rows_lab, rows_split, files = [], [], [], {}
    train, test = {}, {}
    k = 0
    for c, n in counts.items():
        for j in range(n + 2):
            k += 1
            key = f'{k:04d}' if root_name == 'CUB_200_2011' else \
                f'5a{k:02d}c0de-uuid-{k}'
            rel = f'{folder_of(c)}/img_{k}.jpg'
            is_train = int(j < n)
            rows_img.append((key, rel))
            rows_lab.append((key, c))
            rows_split.append((key, is_train))
            files[f'{root_name}/images/{rel}'] = jpeg(k)
            (train if is_train else test)[rel] = c
    files[f'{root_name}/images.txt'] = txt(rows_img)
    files[f'{root_name}/image_class_labels.txt'] = txt(rows_lab)
    files[f'{root_name}/train_test_split.txt'] = txt(rows_split)
    return files, train, test


@pytest.fixture(scope='module')
def archives(tmp_path_factory):
    """Every data set's miniature official archives, each in its folder,
    and what their official lists say."""
    tmp = tmp_path_factory.mktemp('fgvc_src')
    truth = {}
    # CUB-200-2011
    d = tmp / 'cub'
    d.mkdir()
    files, tr, te = cub_like('CUB_200_2011', CUB_TRAIN,
                             lambda c: f'{c:03d}.Bird_{c}')
    files['attributes.txt'] = b'1 has_bill_shape::dagger\n'
    make_tar(d / 'CUB_200_2011.tgz', files)
    truth['cub'] = dict(train=tr, test=te)
    # NABirds
    d = tmp / 'nabirds'
    d.mkdir()
    files, tr, te = cub_like('nabirds', NAB_TRAIN, lambda c: f'{c:04d}')
    make_tar(d / 'nabirds.tar.gz', files)
    truth['nabirds'] = dict(train=tr, test=te)
    # Oxford Flowers 102: 3 classes, 18 images
    d = tmp / 'flowers'
    d.mkdir()
    labels = np.array([[1 + i % 3 for i in range(18)]], np.uint8)
    make_tar(d / '102flowers.tgz', {f'jpg/image_{i:05d}.jpg': jpeg(100 + i)
                                    for i in range(1, 19)})
    savemat(d / 'imagelabels.mat', dict(labels=labels))
    ids = dict(trnid=[1, 2, 3, 4, 5, 6], valid=[7, 8, 9, 10, 11, 12],
               tstid=[13, 14, 15, 16, 17, 18])
    savemat(d / 'setid.mat', {k: np.array([v], np.uint16)
                              for k, v in ids.items()})
    truth['oxford_flowers'] = {s: {f'jpg/image_{i:05d}.jpg': 1 + (i - 1) % 3
                                   for i in ids[k]}
                               for s, k in (('train', 'trnid'),
                                            ('val', 'valid'),
                                            ('test', 'tstid'))}
    # Stanford Dogs: 2 classes x (10 train + 2 test)
    d = tmp / 'dogs'
    d.mkdir()
    syn = {1: 'n02085620-Chihuahua', 2: 'n02085782-Japanese_spaniel'}
    lists, imgs = dict(train={}, test={}), {}
    for c, s in syn.items():
        for j in range(12):
            rel = f'{s}/{s[:9]}_{j}.jpg'
            imgs[f'Images/{rel}'] = jpeg(200 + 20 * c + j)
            lists['train' if j < 10 else 'test'][rel] = c
    make_tar(d / 'images.tar', imgs, 'w')
    mats = {}
    for split, entries in lists.items():
        buf = io.BytesIO()
        savemat(buf, dict(file_list=cell(list(entries)),
                          annotation_list=cell([p[:-4] for p in entries]),
                          labels=np.array([[v] for v in entries.values()],
                                          np.uint8)))
        mats[f'{split}_list.mat'] = buf.getvalue()
    make_tar(d / 'lists.tar', mats, 'w')
    truth['stanford_dogs'] = lists
    # Stanford Cars, devkit release: 3 classes x (5 train + 2 test)
    d = tmp / 'cars_devkit'
    d.mkdir()
    annos = dict(train=[], test=[])
    files = dict(train={}, test={})
    for c in (1, 2, 3):
        for j in range(7):
            split = 'train' if j < 5 else 'test'
            n = len(annos[split]) + 1
            annos[split].append(dict(bbox_x1=1, bbox_y1=1, bbox_x2=30,
                                     bbox_y2=30, **{'class': c},
                                     fname=f'{n:05d}.jpg'))
            files[split][f'cars_{split}/{n:05d}.jpg'] = jpeg(300 + 10 * c + j)
    make_tar(d / 'cars_train.tgz', files['train'])
    make_tar(d / 'cars_test.tgz', files['test'])
    buf, meta = io.BytesIO(), io.BytesIO()
    savemat(buf, dict(annotations=struct_array(annos['train'])))
    savemat(meta, dict(class_names=cell(['A 2012', 'B 2011', 'C 2009'])))
    make_tar(d / 'car_devkit.tgz', {
        'devkit/cars_train_annos.mat': buf.getvalue(),
        'devkit/cars_meta.mat': meta.getvalue()})
    savemat(d / 'cars_test_annos_withlabels.mat',
            dict(annotations=struct_array(annos['test'])))
    truth['stanford_cars'] = {s: {f'cars_{s}/{a["fname"]}': a['class']
                                  for a in annos[s]} for s in annos}
    return tmp, truth


@pytest.fixture(scope='module')
def converted(archives, tmp_path_factory):
    src, _ = archives
    out = str(tmp_path_factory.mktemp('fgvc'))
    where = {'cub': 'cub', 'nabirds': 'nabirds', 'oxford_flowers': 'flowers',
             'stanford_dogs': 'dogs', 'stanford_cars': 'cars_devkit'}
    folders = {n: fgvc.convert(n, str(src / d), out, log=lambda m: None)
               for n, d in where.items()}
    return out, folders


def load(folder):
    return {s: json.load(open(osp.join(folder, f'{s}.json')))
            for s in ('train', 'val', 'test')}


@pytest.mark.parametrize('name', list(fgvc.FOLDERS))
def test_official_splits_kept(converted, archives, name):
    out, folders = converted
    truth = archives[1][name]
    got = load(folders[name])
    assert folders[name] == osp.join(out, fgvc.FOLDERS[name][0])
    assert got['test'] == truth['test']
    if 'val' in truth:  # Flowers: the official val split
        assert got['train'] == truth['train'] and got['val'] == truth['val']
    else:
        assert not set(got['train']) & set(got['val'])
        assert {**got['train'], **got['val']} == truth['train']
        assert len(got['val']) == -(-len(truth['train']) // 10)  # ceil 10 %
    image_dir = fgvc.FOLDERS[name][1]
    for split in got.values():
        for rel in split:
            assert osp.isfile(osp.join(folders[name], image_dir, rel))
    assert verify(folders[name], counts=False)[1] == []


def test_stratified_holdout_sizes_and_repeatability(converted, archives,
                                                    tmp_path):
    out, folders = converted
    val = load(folders['cub'])['val']
    # 10, 9, 6, 5 train images -> exact shares 1.0, 0.9, 0.6, 0.5 of 3
    per_class = [sum(v == c for v in val.values()) for c in (1, 2, 3, 4)]
    assert per_class == [1, 1, 1, 0]
    again = fgvc.convert('cub', str(archives[0] / 'cub'), str(tmp_path),
                         log=lambda m: None)
    assert load(again) == load(folders['cub'])  # every run the same
    other = fgvc.stratified_holdout(archives[1]['cub']['train'], 3, seed=1)
    assert sorted(other[1]) != sorted(val)  # the seed matters
    # VPT's sizes (iVPT paper Table 17) from the official train sizes
    for name, n_train in (('cub', 5994), ('nabirds', 23929),
                          ('stanford_dogs', 12000), ('stanford_cars', 8144)):
        t17 = fgvc.TABLE17[name]
        assert (n_train - fgvc.val_size(n_train), fgvc.val_size(n_train)) \
            == t17[:2]


def test_nabirds_ids_mapped_as_vpt(converted):
    """The json keeps NABirds' own class ids; the FGVC data set maps their
    sorted order to 0..C-1 (VPT's JSONDataset)."""
    from mmseg_ivpt.datasets import FGVC
    folder = converted[1]['nabirds']
    assert set(load(folder)['train'].values()) == {295, 313, 817}
    ds = FGVC(data_root=folder, name='nabirds', split='test',
              pipeline=[], lazy_init=False)
    want = {295: 0, 313: 1, 817: 2}
    test = load(folder)['test']
    got = {osp.relpath(d['img_path'], osp.join(folder, 'images')):
           d['gt_label'] for d in map(ds.get_data_info, range(len(ds)))}
    assert got == {k: want[v] for k, v in test.items()}


def test_vpt_splits_installed_and_checked(converted, archives, tmp_path):
    src = archives[0] / 'dogs'
    truth = archives[1]['stanford_dogs']
    vpt = tmp_path / 'vpt'
    vpt.mkdir()
    entries = sorted(truth['train'])
    splits = dict(train={p: truth['train'][p] - 1 for p in entries[2:]},
                  val={p: truth['train'][p] - 1 for p in entries[:2]},
                  test={p: v - 1 for p, v in truth['test'].items()})
    for s, d in splits.items():
        (vpt / f'{s}.json').write_text(json.dumps(d))
    folder = fgvc.convert('stanford_dogs', str(src), str(tmp_path / 'out'),
                          splits_dir=str(vpt), log=lambda m: None)
    assert load(folder) == splits
    bad = dict(splits['test'])
    p = sorted(bad)[0]
    bad[p] = 1 - bad[p]  # the other class
    (vpt / 'test.json').write_text(json.dumps(bad))
    with pytest.raises(ConversionError, match='disagrees with the official'):
        fgvc.convert('stanford_dogs', str(src), str(tmp_path / 'out'),
                     splits_dir=str(vpt), log=lambda m: None)
    (vpt / 'test.json').write_text(json.dumps({'nope/x.jpg': 0}))
    with pytest.raises(ConversionError, match='not found under'):
        fgvc.convert('stanford_dogs', str(src), str(tmp_path / 'out'),
                     splits_dir=str(vpt), log=lambda m: None)


def test_stanford_cars_layouts(archives, tmp_path):
    """The all-in-one release (car_ims.tgz + cars_annos.mat), the
    class-folder mirror, and the devkit without test labels."""
    src = tmp_path / 'allin'
    src.mkdir()
    annos, files = [], {}
    for k in range(1, 31):
        c, test = 1 + k % 3, int(k > 20)
        annos.append(dict(relative_im_path=f'car_ims/{k:06d}.jpg',
                          bbox_x1=1, bbox_y1=1, bbox_x2=9, bbox_y2=9,
                          **{'class': c}, test=test))
        files[f'car_ims/{k:06d}.jpg'] = jpeg(400 + k)
    make_tar(src / 'car_ims.tgz', files)
    savemat(src / 'cars_annos.mat', dict(annotations=struct_array(annos),
                                         class_names=cell(['a', 'b', 'c'])))
    got = load(fgvc.convert('stanford_cars', str(src), str(tmp_path / 'o1'),
                            log=lambda m: None))
    assert got['test'] == {a['relative_im_path']: a['class']
                           for a in annos if a['test']}
    assert len(got['train']) == 18 and len(got['val']) == 2
    mirror = tmp_path / 'mirror' / 'car_data' / 'car_data'
    for split, n in (('train', 4), ('test', 2)):
        for name in ('Audi TT 2012', 'BMW M3 2010'):
            (mirror / split / name).mkdir(parents=True)
            for j in range(n):
                (mirror / split / name / f'{j}.jpg').write_bytes(jpeg(j))
    folder = fgvc.convert('stanford_cars', str(tmp_path / 'mirror'),
                          str(tmp_path / 'o2'), log=lambda m: None)
    got = load(folder)
    assert got['test'] == {f'car_data/car_data/test/{n}/{j}.jpg': c
                           for c, n in ((1, 'Audi TT 2012'),
                                        (2, 'BMW M3 2010')) for j in (0, 1)}
    assert osp.islink(osp.join(folder, 'car_data'))  # linked, not copied
    dev = tmp_path / 'devkit_only'
    shutil.copytree(archives[0] / 'cars_devkit', dev)
    os.unlink(dev / 'cars_test_annos_withlabels.mat')
    with pytest.raises(ConversionError,
                       match='cars_test_annos_withlabels.mat is needed'):
        fgvc.convert('stanford_cars', str(dev), str(tmp_path / 'o3'),
                     log=lambda m: None)


def test_verifier_on_fgvc(converted, tmp_path):
    folder = tmp_path / 'CUB_200_2011'
    shutil.copytree(converted[1]['cub'], folder)
    found, problems = verify(str(folder))
    assert found == [('fgvc', 'cub', str(folder))]
    assert any("train.json: 27 images; VPT's cub train has 5394" in p
               for p in problems)
    test = json.load(open(folder / 'test.json'))
    first = sorted(test)[0]
    test[first] = 9  # not a class of train.json
    (folder / 'test.json').write_text(json.dumps(test, indent=1,
                                                 sort_keys=True))
    train = sorted(json.load(open(folder / 'train.json')))
    os.unlink(folder / 'images' / train[1])
    _, problems = verify(str(folder), counts=False)
    assert any(p.startswith(f'{folder}/test.json:2: label 9 does not occur')
               for p in problems), problems
    assert any(p.startswith(f'{folder}/train.json:3: image ') and
               'not found' in p for p in problems), problems


@pytest.mark.slow
def test_cli_converts_and_trains(archives, tmp_path):
    """fgvc.py as a user runs it (another cwd), then a few iterations of
    tools/train.py on the cub config with the converted folder."""
    out = tmp_path / 'data'
    res = run_tool('dataset_converters/fgvc.py', 'cub', '--src',
                   archives[0] / 'cub', '--out', out, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "NOT VPT's exact split" in res.stdout
    folder = out / 'CUB_200_2011'
    over = f"data_root={str(folder)!r}"
    cfg = small_config(tmp_path, 'configs/fgvc/ivpt_vitb16_cub.py', over,
                       pretrained_tiny(tmp_path))
    log = ok(run_tool('train.py', cfg, '--work-dir', tmp_path / 'work'))
    assert 'accuracy/top1' in log.stdout + log.stderr


def _cub_archive(path, drop=None, split_rows=None):
    """A miniature CUB_200_2011.tgz at ``path``: ``drop`` leaves out one
    image, ``split_rows`` adds rows to train_test_split.txt."""
    files, train, test = cub_like('CUB_200_2011', CUB_TRAIN,
                                  lambda c: f'{c:03d}.Bird_{c}')
    if drop:
        del files[f'CUB_200_2011/images/{drop}']
    if split_rows:
        files['CUB_200_2011/train_test_split.txt'] += txt(split_rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    make_tar(path, files)
    return train, test


def test_image_id_listed_twice_is_refused(tmp_path):
    """Issue 29.5: an id in train_test_split.txt twice (train and test)
    would put the image into both splits."""
    _cub_archive(tmp_path / 'src' / 'CUB_200_2011.tgz',
                 split_rows=[('0003', 0)])  # 0003 is a train image
    with pytest.raises(ConversionError) as e:
        fgvc.convert('cub', str(tmp_path / 'src'), str(tmp_path / 'out'),
                     log=lambda m: None)
    path = tmp_path / 'out' / 'CUB_200_2011' / 'train_test_split.txt'
    assert f"{path}: lines 3 and 39: image id '0003' listed twice" in \
        str(e.value)
    assert not (path.parent / 'train.json').exists()


def _sh_umask(umask, tool, *args, cwd):
    """``tools/<tool> args`` run by a shell with ``umask`` from ``cwd``."""
    from ivpt_runs import ROOT, run
    return run(['sh', '-c', f'umask {umask} && exec "$0" "$@"',
                sys.executable, osp.join(ROOT, 'tools', tool),
                *map(str, args)], cwd)


def test_replaced_archive_is_extracted_again(tmp_path):
    """Issue 29.9: an archive replaced after a failed conversion is
    extracted again (the marker records its size and mtime), and a
    converted folder is a valid --src. Issue 29.8: the outputs follow the
    umask (002 here: group-writable)."""
    src, out = tmp_path / 'src', tmp_path / 'out'
    first = sorted(cub_like('CUB_200_2011', CUB_TRAIN,
                            lambda c: f'{c:03d}.Bird_{c}')[1])[0]
    _cub_archive(src / 'CUB_200_2011.tgz', drop=first)
    with pytest.raises(ConversionError) as e:
        fgvc.convert('cub', str(src), str(out), log=lambda m: None)
    folder = out / 'CUB_200_2011'
    assert f'1 of 30 train images not found under {folder}/images' in \
        str(e.value)
    assert '.extracted-CUB_200_2011.tgz.json' in str(e.value)  # the marker
    train, test = _cub_archive(src / 'CUB_200_2011.tgz')  # the good one
    cwd = tmp_path / 'elsewhere'
    cwd.mkdir()
    res = _sh_umask('002', 'dataset_converters/fgvc.py', 'cub', '--src',
                    src, '--out', out, cwd=cwd)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert 'changed since it was extracted' in res.stdout
    got = load(folder)
    assert {**got['train'], **got['val']} == train and got['test'] == test
    for name in ('train.json', 'val.json', 'test.json', 'manifest.json',
                 '.extracted-CUB_200_2011.tgz.json'):
        assert os.stat(folder / name).st_mode & 0o777 == 0o664, name
    # the converted folder as --src: its files are linked, not extracted
    again = fgvc.convert('cub', str(folder), str(tmp_path / 'out2'),
                         log=lambda m: None)
    assert load(again) == got
