"""FGVC from the official archives into VPT's layout (docs/data.md)::

    <out>/<folder>/{train,val,test}.json  {"path below the image folder":
                                           label}
    <out>/<folder>/<image folder>/...      the official images

``<folder>`` and the image folder are the ones the configs read
(:data:`mmseg_ivpt.datasets.FGVC_DATASETS`, ``configs/_base_/datasets/
fgvc/``). Labels are the official class ids (NABirds' non-contiguous ones
too): the FGVC data set maps them to 0..C-1 in sorted order, as VPT's
``JSONDataset`` does.

Splits: VPT's own JSONs where the user has them (``splits_dir``: checked
against the images and the official labels, then installed); else the
official test split, the official val split where there is one (Oxford
Flowers), else a seeded class-stratified hold-out of ``ceil(10 %)`` of the
official train split, which gives VPT's sizes (iVPT paper Table 17). The
hold-out is **not** VPT's exact split (VPT's files are lost).
"""
import json
import math
import os
import os.path as osp
import shutil
import tarfile
from collections import OrderedDict, defaultdict
from typing import Dict, List, NamedTuple, Optional, Tuple

import numpy as np

from .common import ConversionError, atomic_write_json, checksums

#: name -> (folder, image folder) as the configs read them
FOLDERS = OrderedDict([
    ('cub', ('CUB_200_2011', 'images')),
    ('nabirds', ('nabirds', 'images')),
    ('oxford_flowers', ('OxfordFlower', '')),
    ('stanford_dogs', ('Stanford-dogs', 'Images')),
    ('stanford_cars', ('Stanford-cars', '')),
])
#: iVPT paper Table 17 (VPT's splits): train, val, test
TABLE17 = OrderedDict([
    ('cub', (5394, 600, 5794)), ('nabirds', (21536, 2393, 24633)),
    ('oxford_flowers', (1020, 1020, 6149)),
    ('stanford_dogs', (10800, 1200, 8580)),
    ('stanford_cars', (7329, 815, 8041)),
])
VAL_FRACTION = 0.1
DEFAULT_SEED = 0
ARCHIVES = {
    'cub': 'CUB_200_2011.tgz',
    'nabirds': 'nabirds.tar.gz',
    'oxford_flowers': '102flowers.tgz, imagelabels.mat, setid.mat',
    'stanford_dogs': 'images.tar, lists.tar',
    'stanford_cars': 'car_ims.tgz + cars_annos.mat; or cars_train.tgz, '
                     'cars_test.tgz, car_devkit.tgz + '
                     'cars_test_annos_withlabels.mat; or a class-folder '
                     'mirror (train/<class>/*.jpg, test/<class>/*.jpg)',
}
_ARCHIVE_SUFFIXES = ('.tgz', '.tar.gz', '.tar')
#: what the converter writes into a folder
OUTPUTS = ('train.json', 'val.json', 'test.json', 'manifest.json')


class Official(NamedTuple):
    """The official lists: image path (below the image folder) -> label,
    per official split (``train``, ``test``, and ``val`` if it exists)."""
    splits: Dict[str, Dict[str, int]]
    source: str  # which files they were read from


# ---------------------------------------------------------------- readers --

def _read_table(path: str, n: int) -> List[Tuple[int, Tuple[str, ...]]]:
    """(line number, fields) of each non-blank line; the first field (an
    id) must not repeat."""
    if not osp.isfile(path):
        raise ConversionError(f'{path} not found')
    rows, seen = [], {}
    with open(path) as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != n:
                raise ConversionError(f'{path}:{i}: expected {n} fields, got '
                                      f'{line.strip()!r}')
            if parts[0] in seen:
                raise ConversionError(
                    f'{path}: lines {seen[parts[0]]} and {i}: image id '
                    f'{parts[0]!r} listed twice (each id once: an image in '
                    f'two splits, or with two labels, is not usable)')
            seen[parts[0]] = i
            rows.append((i, tuple(parts)))
    return rows


def _cub_like(root: str) -> Official:
    """CUB-200-2011 and NABirds: images.txt, image_class_labels.txt,
    train_test_split.txt (id-keyed)."""
    images_path = osp.join(root, 'images.txt')
    images, where = {}, {}
    for line, (k, rel) in _read_table(images_path, 2):
        if rel in where:
            raise ConversionError(
                f'{images_path}: lines {where[rel]} and {line}: image {rel} '
                f'listed under two ids (it could land in two splits)')
        images[k], where[rel] = rel, line
    labels_path = osp.join(root, 'image_class_labels.txt')
    labels = {k: v for _, (k, v) in _read_table(labels_path, 2)}
    split_path = osp.join(root, 'train_test_split.txt')
    out = dict(train={}, test={})
    for line, (k, is_train) in _read_table(split_path, 2):
        if k not in images or k not in labels:
            raise ConversionError(f'{split_path}:{line}: image id {k!r} '
                                  f'missing in images.txt or '
                                  f'image_class_labels.txt')
        out['train' if is_train == '1' else 'test'][images[k]] = int(labels[k])
    return Official(out, 'images.txt, image_class_labels.txt, '
                         'train_test_split.txt')


def _loadmat(path: str):
    from scipy.io import loadmat
    if not osp.isfile(path):
        raise ConversionError(f'{path} not found')
    try:
        return loadmat(path, squeeze_me=True)
    except Exception as e:
        raise ConversionError(f'{path}: not a readable .mat file ({e})')


def _flowers(root: str) -> Official:
    labels = np.atleast_1d(_loadmat(osp.join(root, 'imagelabels.mat'))
                           ['labels']).astype(int)
    sets = _loadmat(osp.join(root, 'setid.mat'))
    out = {}
    for split, key in (('train', 'trnid'), ('val', 'valid'),
                       ('test', 'tstid')):
        ids = np.atleast_1d(sets[key]).astype(int)
        out[split] = {f'jpg/image_{i:05d}.jpg': int(labels[i - 1])
                      for i in ids}
    return Official(out, 'imagelabels.mat, setid.mat')


def _dogs(root: str) -> Official:
    out = {}
    for split in ('train', 'test'):
        m = _loadmat(osp.join(root, f'{split}_list.mat'))
        files = [str(f) for f in np.atleast_1d(m['file_list'])]
        labels = np.atleast_1d(m['labels']).astype(int)
        out[split] = dict(zip(files, (int(x) for x in labels)))
    return Official(out, 'train_list.mat, test_list.mat')


def _find(root: str, *names: str) -> Optional[str]:
    for n in names:
        if osp.isfile(osp.join(root, n)):
            return osp.join(root, n)
    return None


def _cars(root: str) -> Official:
    allin = _find(root, 'cars_annos.mat')
    if allin:  # the all-in-one release: car_ims/ + cars_annos.mat
        ann = np.atleast_1d(_loadmat(allin)['annotations'])
        out = dict(train={}, test={})
        for a in ann:
            out['test' if int(a['test']) else 'train'][
                str(a['relative_im_path'])] = int(a['class'])
        return Official(out, 'cars_annos.mat')
    train_annos = _find(root, 'devkit/cars_train_annos.mat',
                        'cars_train_annos.mat')
    if train_annos:  # the devkit release
        test_annos = _find(root, 'cars_test_annos_withlabels.mat',
                           'devkit/cars_test_annos_withlabels.mat')
        if not test_annos:
            raise ConversionError(
                f'{root}: the devkit has no test labels: '
                f'cars_test_annos_withlabels.mat is needed (devkit/'
                f'cars_test_annos.mat has none)')
        out = {}
        for split, path, folder in (('train', train_annos, 'cars_train'),
                                    ('test', test_annos, 'cars_test')):
            ann = np.atleast_1d(_loadmat(path)['annotations'])
            out[split] = {f'{folder}/{a["fname"]}': int(a['class'])
                          for a in ann}
        return Official(out, 'devkit .mat files')
    # the class-folder mirror: [car_data/]train/<class>/*.jpg, test/...
    for base in ('', 'car_data', 'car_data/car_data'):
        tr, te = osp.join(root, base, 'train'), osp.join(root, base, 'test')
        if osp.isdir(tr) and osp.isdir(te):
            classes = sorted(set(os.listdir(tr)) | set(os.listdir(te)))
            ids = {c: i + 1 for i, c in enumerate(classes)}
            out = {}
            for split, d in (('train', tr), ('test', te)):
                out[split] = {
                    osp.join(base, split, c, f): ids[c]
                    for c in sorted(os.listdir(d))
                    if osp.isdir(osp.join(d, c))
                    for f in sorted(os.listdir(osp.join(d, c)))}
            return Official(out, f'class folders {osp.join(base, "train")} '
                                 f'(labels: sorted class names)')
    raise ConversionError(f'{root}: no Stanford Cars layout recognised; '
                          f'expected {ARCHIVES["stanford_cars"]}')


READERS = dict(cub=_cub_like, nabirds=_cub_like, oxford_flowers=_flowers,
               stanford_dogs=_dogs, stanford_cars=_cars)
#: a file that marks the data set's root in an extracted folder
MARKERS = dict(cub=('images.txt',), nabirds=('images.txt',),
               oxford_flowers=('imagelabels.mat',),
               stanford_dogs=('train_list.mat',),
               stanford_cars=('cars_annos.mat', 'devkit', 'car_data',
                              'cars_train', 'train'))


# ------------------------------------------------------------------ split --

def val_size(n_train: int) -> int:
    """``ceil(10 %)`` of the official train split: CUB 5,994 -> 600,
    NABirds 23,929 -> 2,393, Dogs 12,000 -> 1,200, Cars 8,144 -> 815
    (Table 17)."""
    return int(math.ceil(VAL_FRACTION * n_train - 1e-9))


def stratified_holdout(train: Dict[str, int], n_val: int,
                       seed: int = DEFAULT_SEED) -> Tuple[dict, dict]:
    """Split ``train`` (path -> label) into (train, val) with ``n_val``
    images in val, each class contributing in proportion to its size
    (largest remainders, ties broken by the seeded generator), the images
    of a class drawn by a seeded permutation of its sorted paths. The same
    input and seed give the same split on every run and machine."""
    rng = np.random.RandomState(seed)
    by_class = defaultdict(list)
    for path in sorted(train):
        by_class[train[path]].append(path)
    classes = sorted(by_class)
    n = len(train)
    exact = np.array([len(by_class[c]) * n_val / n for c in classes])
    quota = np.floor(exact).astype(int)
    rest = n_val - int(quota.sum())
    if rest:
        frac = exact - quota
        tie = rng.rand(len(classes))
        order = sorted(range(len(classes)), key=lambda k: (-frac[k], tie[k]))
        for k in order[:rest]:
            quota[k] += 1
    val = set()
    for c, q in zip(classes, quota):
        paths = by_class[c]
        perm = rng.permutation(len(paths))
        val.update(paths[j] for j in perm[:q])
    return ({p: train[p] for p in sorted(train) if p not in val},
            {p: train[p] for p in sorted(val)})


# ------------------------------------------------------------ extraction --

def marker_path(archive: str, dest: str) -> str:
    """The extraction marker of ``archive`` in ``dest``: a JSON file that
    records which archive (path, size, mtime) was extracted there."""
    return osp.join(dest, f'.extracted-{osp.basename(archive)}.json')


def _stamp(archive: str) -> dict:
    st = os.stat(archive)
    return dict(archive=osp.abspath(archive), size=st.st_size,
                mtime_ns=st.st_mtime_ns)


def _extract(archive: str, dest: str, strip: str, log=print) -> None:
    """Extract ``archive`` into ``dest`` (a leading folder named ``strip``
    dropped), through a temporary folder. The marker (:func:`marker_path`)
    makes it happen once per archive: an archive of another size or mtime
    (replaced, re-downloaded) is extracted again over the old files."""
    marker = marker_path(archive, dest)
    stamp = _stamp(archive)
    old = _read_marker(marker)
    if old is not None and {k: old.get(k) for k in stamp} == stamp:
        return
    if old is not None:
        log(f'{archive} changed since it was extracted into {dest} '
            f'({marker}: size {old.get("size")}, mtime_ns '
            f'{old.get("mtime_ns")}); extracting it again')
    legacy = osp.join(dest, f'.extracted-{osp.basename(archive)}')
    if osp.isfile(legacy):  # an empty marker of an older converter
        os.unlink(legacy)
    if osp.exists(marker):
        os.unlink(marker)
    tmp = osp.join(dest, f'.extracting-{osp.basename(archive)}')
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    try:
        with tarfile.open(archive) as tf:
            tf.extractall(tmp, filter='data')
    except (tarfile.TarError, OSError, EOFError) as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ConversionError(f'{archive}: cannot be extracted ({e})')
    top = osp.join(tmp, strip)
    srcs = [tmp] + ([top] if osp.isdir(top) else [])
    for src in reversed(srcs):
        for name in os.listdir(src):
            p = osp.join(src, name)
            if p == top:
                continue
            target = osp.join(dest, name)
            if osp.isdir(p) and osp.isdir(target):
                for dirpath, _, files in os.walk(p):
                    rel = osp.relpath(dirpath, p)
                    os.makedirs(osp.join(target, rel), exist_ok=True)
                    for f in files:
                        os.replace(osp.join(dirpath, f),
                                   osp.join(target, rel, f))
            else:
                if osp.lexists(target):
                    shutil.rmtree(target) if osp.isdir(target) else \
                        os.unlink(target)
                os.replace(p, target)
    shutil.rmtree(tmp, ignore_errors=True)
    atomic_write_json(marker, stamp)


def _read_marker(path: str) -> Optional[dict]:
    """The stamp a marker recorded; ``{}`` for an unreadable one (extract
    again), None if there is none."""
    if not osp.exists(path):
        legacy = path[:-len('.json')]
        return {} if osp.isfile(legacy) else None
    try:
        with open(path) as f:
            d = json.load(f)
        return d if isinstance(d, dict) else {}
    except (OSError, ValueError):
        return {}


def markers_note(folder: str) -> str:
    """What the extraction markers in ``folder`` say, for an error
    message."""
    found = sorted(f for f in os.listdir(folder)
                   if f.startswith('.extracted-')) if osp.isdir(folder) \
        else []
    if not found:
        return ''
    return (f'\n  (the archives were extracted into {folder} earlier; the '
            f'marker file(s) {", ".join(found)} there record each archive\'s '
            f'size and mtime, and an archive that changed is extracted '
            f'again; delete a marker to force it)')


def _find_root(src: str, name: str) -> Optional[str]:
    for dirpath, dirnames, files in os.walk(src):
        if any(m in files or m in dirnames for m in MARKERS[name]):
            if name != 'stanford_cars' or _cars_root_ok(dirpath):
                return dirpath
        dirnames[:] = [d for d in dirnames if not d.startswith('.')]
    return None


def _cars_root_ok(d: str) -> bool:
    try:
        _cars(d)
        return True
    except ConversionError:
        return False


def gather(name: str, src: str, out: str, log=print) -> str:
    """Put the official files of ``name`` from ``src`` (archives, or their
    extracted contents) into ``<out>/<folder>``; returns that folder."""
    if name not in FOLDERS:
        raise ConversionError(f'{name!r}; allowed: {list(FOLDERS)}')
    if not osp.isdir(src):
        raise ConversionError(f'--src {src!r} is not a folder')
    folder = osp.join(out, FOLDERS[name][0])
    os.makedirs(folder, exist_ok=True)
    archives = sorted(f for f in os.listdir(src)
                      if f.endswith(_ARCHIVE_SUFFIXES) and
                      not f.startswith('.')  # markers, temporary files
                      and osp.isfile(osp.join(src, f)))
    for a in archives:
        _extract(osp.join(src, a), folder, FOLDERS[name][0], log)
    for f in os.listdir(src):  # loose official files (.mat, .txt)
        p = osp.join(src, f)
        if osp.isfile(p) and f.endswith('.mat') and \
                not osp.exists(osp.join(folder, f)):
            shutil.copy2(p, osp.join(folder, f))
    if not archives and osp.realpath(src) != osp.realpath(folder):
        root = _find_root(src, name)
        if root is None:
            raise ConversionError(
                f'{src}: no {name} archives ({ARCHIVES[name]}) and no '
                f'extracted {name} (no {" or ".join(MARKERS[name])} below '
                f'it)')
        for entry in os.listdir(root):  # link, do not copy
            if entry.startswith('.') or entry in OUTPUTS:
                continue  # markers; a converted folder's own outputs
            target = osp.join(folder, entry)
            if not osp.lexists(target):
                os.symlink(osp.abspath(osp.join(root, entry)), target)
    return folder


# ---------------------------------------------------------------- convert --

def _check_images(folder: str, image_dir: str, split: str,
                  entries: Dict[str, int], where: str) -> None:
    missing = [p for p in entries
               if not osp.isfile(osp.join(folder, image_dir, p))]
    if missing:
        raise ConversionError(
            f'{where}: {len(missing)} of {len(entries)} {split} images not '
            f'found under {osp.join(folder, image_dir)}, e.g. '
            f'{missing[:3]}')


def _read_vpt_split(path: str) -> Dict[str, int]:
    try:
        with open(path) as f:
            d = json.load(f)
    except OSError:
        raise ConversionError(f'{path} not found (--splits needs train.json, '
                              f'val.json and test.json)')
    except ValueError as e:
        raise ConversionError(f'{path}: not valid JSON ({e})')
    if not isinstance(d, dict) or not d:
        raise ConversionError(f'{path}: expected a non-empty {{"image": '
                              f'label}} object')
    return d


def check_vpt_splits(splits_dir: str, official: Official, folder: str,
                     image_dir: str) -> Dict[str, Dict[str, int]]:
    """VPT's JSONs, checked: every image exists, every image is in the
    official lists, and VPT's label of it maps one-to-one onto the
    official label."""
    every = {}
    for s in official.splits.values():
        every.update(s)
    out, vpt_to_off, off_to_vpt = {}, {}, {}
    for split in ('train', 'val', 'test'):
        path = osp.join(splits_dir, f'{split}.json')
        d = _read_vpt_split(path)
        _check_images(folder, image_dir, split, d, path)
        for img, label in d.items():
            if img not in every:
                raise ConversionError(f'{path} entry {img!r}: not in the '
                                      f'official lists ({official.source})')
            off = every[img]
            if vpt_to_off.setdefault(label, off) != off or \
                    off_to_vpt.setdefault(off, label) != label:
                raise ConversionError(
                    f'{path} entry {img!r}: label {label!r} disagrees with '
                    f'the official label {off} (VPT label {label!r} was '
                    f'official {vpt_to_off[label]} before)')
        out[split] = d
    return out


def check_disjoint(splits: Dict[str, Dict[str, int]], source: str) -> None:
    """No image in two splits: it would be trained on and tested on."""
    seen = {}
    for split, entries in splits.items():
        for img in entries:
            if img in seen:
                raise ConversionError(
                    f'{source}: image {img!r} is in the {seen[img]} and the '
                    f'{split} split; each image belongs to one split')
            seen[img] = split


def convert(name: str, src: str, out: str, splits_dir: Optional[str] = None,
            seed: int = DEFAULT_SEED, log=print) -> str:
    """Make ``<out>/<folder>/{train,val,test}.json`` (and the images
    there); returns the folder."""
    folder = gather(name, src, out, log)
    image_dir = FOLDERS[name][1]
    try:
        official = READERS[name](folder)
        check_disjoint(official.splits, f'{folder} ({official.source})')
        for split, entries in official.splits.items():
            _check_images(folder, image_dir, split, entries,
                          f'{folder} ({official.source})')
    except ConversionError as e:
        raise ConversionError(f'{e}{markers_note(folder)}') from None
    if splits_dir:
        splits = check_vpt_splits(splits_dir, official, folder, image_dir)
        check_disjoint(splits, f'--splits {splits_dir} '
                               f'(train.json, val.json, test.json)')
        how = f"VPT's JSONs from {splits_dir}, checked"
    elif 'val' in official.splits:
        splits = dict(official.splits)
        how = 'official train / val / test'
    else:
        n_val = val_size(len(official.splits['train']))
        tr, va = stratified_holdout(official.splits['train'], n_val, seed)
        splits = dict(train=tr, val=va, test=official.splits['test'])
        how = (f'official test; val = seeded (seed {seed}) class-stratified '
               f'hold-out of ceil(10 %) = {n_val} of the official train '
               f'split (NOT VPT\'s exact split)')
    for split in ('train', 'val', 'test'):
        atomic_write_json(osp.join(folder, f'{split}.json'), splits[split])
    counts = {s: len(splits[s]) for s in ('train', 'val', 'test')}
    atomic_write_json(osp.join(folder, 'manifest.json'), dict(
        name=name, source=official.source, split=how, seed=seed,
        counts=counts, table17=dict(zip(('train', 'val', 'test'),
                                        TABLE17[name])),
        json_sha256=checksums(folder, OUTPUTS[:3])))
    log(f'{name}: {how}: {counts} -> {folder}')
    return folder
