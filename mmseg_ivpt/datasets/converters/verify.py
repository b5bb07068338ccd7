"""Check a VTAB-1k or FGVC folder, ours or one obtained elsewhere.

For VTAB-1k (``<root>/<task>/*.txt``) and FGVC (``<root>/<folder>/*.json``)
alike: every listed image exists and decodes; every label is in range
(VTAB-1k: 0..C-1 of the task; FGVC: one of train.json's labels, at most C
of them); the counts (the lines or JSON entries of each file, as the
loader reads them) are the paper's Table 17 (VTAB-1k: 800 / 200 / 1000 and
the test size; FGVC: train / val / test); a split of Table 17's size that
holds every class of the data set (VTAB-1k's test; FGVC's train and test)
uses all C classes; no image is in both the training splits and test (the
same path, or the same file content); an image is listed once; where the
converters' manifest is there, the files and images have the sha256 it
records. Every problem names the file and line.
"""
import json
import os
import os.path as osp
import re
from collections import defaultdict
from typing import Dict, List, Tuple

from ..tasks import parse_split_line
from .common import MANIFEST, read_manifest, sha256_file
from .fgvc import FOLDERS, TABLE17
from .vtab import SUMS, read_sums
from .vtab_tasks import TRAIN_SIZE, VAL_SIZE, VTAB_TEST_SIZES

VTAB_TXT = ('train800', 'val200', 'train800val200', 'test')


def _decodes(path: str):
    """None if the image decodes, else why not."""
    from PIL import Image
    try:
        with Image.open(path) as im:
            im.load()
        return None
    except Exception as e:  # PIL raises many kinds
        return f'{type(e).__name__}: {e}'


class _Checker:
    def __init__(self, counts: bool = True):
        self.counts = counts
        self.problems: List[str] = []
        self.digests: Dict[str, str] = {}

    def add(self, where: str, what: str):
        self.problems.append(f'{where}: {what}')

    def image(self, where: str, path: str) -> bool:
        if not osp.isfile(path):
            self.add(where, f'image {path} not found')
            return False
        why = _decodes(path)
        if why:
            self.add(where, f'image {path} does not decode ({why})')
            return False
        self.digests[path] = sha256_file(path)
        return True

    def coverage(self, path: str, labels: set, n_classes: int, what: str):
        """A split that holds every class of its data set uses all
        ``n_classes`` labels (``labels``: the distinct ones it uses)."""
        if len(labels) < n_classes:
            self.add(path, f'uses {len(labels)} of the {n_classes} classes; '
                           f'{what} has every class (a subset or another '
                           f'data set?)')

    def overlap(self, train: Dict[str, str], test: Dict[str, str]):
        """``train`` / ``test``: image path -> where it is listed."""
        by_digest = defaultdict(list)
        for p, where in train.items():
            if p in self.digests:
                by_digest[self.digests[p]].append((p, where))
        for p, where in test.items():
            if p in train:
                self.add(where, f'image {p} is in test and in training '
                                f'({train[p]})')
            elif p in self.digests and self.digests[p] in by_digest:
                q, w = by_digest[self.digests[p]][0]
                self.add(where, f'image {p} has the same content as the '
                                f'training image {q} ({w})')


def _manifest_sums(task_dir: str, listed: Dict[str, Dict[str, str]],
                   chk: _Checker) -> None:
    """The checksums a VTAB-1k converter's manifest records: its txt files'
    and (``images.sha256``) every image's."""
    man = read_manifest(task_dir)
    if man is None:
        return  # a folder made elsewhere: nothing recorded
    where = osp.join(task_dir, MANIFEST)
    for name, digest in sorted((man.get('txt_sha256') or {}).items()):
        path = osp.join(task_dir, name)
        if osp.isfile(path) and sha256_file(path) != digest:
            chk.add(path, f'its sha256 is not the one {where} records '
                          f'(changed after the conversion)')
    if 'images_sha256' not in man:
        return
    sums_path = osp.join(task_dir, SUMS)
    if not osp.isfile(sums_path):
        chk.add(sums_path, f'not found ({where} records its sha256)')
        return
    if sha256_file(sums_path) != man['images_sha256']:
        chk.add(sums_path, f'its sha256 is not the one {where} records')
        return
    sums = {osp.normpath(osp.join(task_dir, rel)): d
            for rel, d in read_sums(sums_path).items()}
    for entries in listed.values():
        for img, at in entries.items():
            if img not in sums:
                chk.add(at, f'image {img} is not in {sums_path}')
            elif img in chk.digests and chk.digests[img] != sums[img]:
                chk.add(at, f'image {img} is not the one converted: its '
                            f'sha256 differs from {sums_path}\'s')


def _vtab_task(task_dir: str, task: str, chk: _Checker):
    from ..classification import VTAB_TASKS
    n_classes = VTAB_TASKS[task][1]
    want = dict(train800=TRAIN_SIZE, val200=VAL_SIZE,
                train800val200=TRAIN_SIZE + VAL_SIZE,
                test=VTAB_TEST_SIZES[task])
    listed = {}
    for split in VTAB_TXT:
        path = osp.join(task_dir, f'{split}.txt')
        if not osp.isfile(path):
            chk.add(path, 'split file not found')
            continue
        entries, labels, n_lines = {}, set(), 0
        with open(path) as f:
            for i, line in enumerate(f, 1):
                if not line.strip():
                    continue
                n_lines += 1  # each non-blank line is an example to the
                where = f'{path}:{i}'  # loader
                try:
                    rel, label = parse_split_line(line, n_classes, task)
                except ValueError as e:
                    chk.add(where, str(e))
                    continue
                labels.add(label)
                img = osp.normpath(osp.join(task_dir, rel))
                if img in entries:
                    chk.add(where, f'image {img} listed twice (first '
                                   f'{entries[img]})')
                if split != 'train800val200' or img not in chk.digests:
                    chk.image(where, img)
                entries.setdefault(img, where)
        if chk.counts and n_lines != want[split]:
            chk.add(path, f'{n_lines} images; VTAB-1k {task} has '
                          f'{want[split]} (iVPT paper Table 17)')
        if split == 'test' and n_lines == want['test']:
            chk.coverage(path, labels, n_classes,
                         f"VTAB-1k {task}'s test split")
        listed[split] = entries
    _manifest_sums(task_dir, listed, chk)
    if {'train800', 'val200', 'train800val200'} <= set(listed):
        union = set(listed['train800']) | set(listed['val200'])
        if union != set(listed['train800val200']):
            chk.add(osp.join(task_dir, 'train800val200.txt'),
                    'is not train800.txt + val200.txt')
    if 'test' in listed:
        train = {}
        for s in ('train800val200', 'val200', 'train800'):  # name these
            train.update(listed.get(s, {}))
        chk.overlap(train, listed['test'])


_KEY = re.compile(r'^\s*("(?:[^"\\]|\\.)*")\s*:')


def _json_lines(path: str) -> List[int]:
    """The line of each entry key in the file, in order (JSON written one
    entry a line)."""
    lines = []
    with open(path) as f:
        for i, line in enumerate(f, 1):
            if _KEY.match(line):
                lines.append(i)
    return lines


def _fgvc_folder(folder: str, name: str, chk: _Checker):
    from ..classification import FGVC_DATASETS
    n_classes, image_dir = FGVC_DATASETS[name]
    listed, labels = {}, {}
    for k, split in enumerate(('train', 'val', 'test')):
        path = osp.join(folder, f'{split}.json')
        try:
            with open(path) as f:  # every entry, repeated keys too
                pairs = json.load(f, object_pairs_hook=list)
        except OSError:
            chk.add(path, 'split file not found')
            continue
        except ValueError as e:
            chk.add(path, f'not valid JSON ({e})')
            continue
        if not isinstance(pairs, list):
            chk.add(path, 'expected a {"image": label} object')
            continue
        lines = _json_lines(path)
        if len(lines) != len(pairs):
            lines = ['?'] * len(pairs)
        entries = {}
        for (rel, label), line in zip(pairs, lines):
            where = f'{path}:{line}'
            img = osp.normpath(osp.join(folder, image_dir, rel))
            if img in entries:
                chk.add(where, f'image {rel} listed twice (first '
                               f'{entries[img]}); JSON keeps only the last')
                continue
            chk.image(where, img)
            entries[img] = where
            labels.setdefault(split, {})[where] = label
        if chk.counts and len(pairs) != TABLE17[name][k]:
            chk.add(path, f'{len(pairs)} images; VPT\'s {name} {split} has '
                          f'{TABLE17[name][k]} (iVPT paper Table 17)')
        if split != 'val' and len(pairs) == TABLE17[name][k]:
            chk.coverage(path, set(labels.get(split, {}).values()),
                         n_classes, f"{name}'s {split} split")
        listed[split] = entries
    train_labels = set(labels.get('train', {}).values())
    if len(train_labels) > n_classes:
        chk.add(osp.join(folder, 'train.json'),
                f'{len(train_labels)} labels; {name} has {n_classes} classes')
    for split in ('val', 'test'):
        for where, label in labels.get(split, {}).items():
            if label not in train_labels:
                chk.add(where, f'label {label!r} does not occur in '
                               f'train.json (out of range)')
    man = read_manifest(folder) or {}
    for fname, digest in sorted((man.get('json_sha256') or {}).items()):
        path = osp.join(folder, fname)
        if osp.isfile(path) and sha256_file(path) != digest:
            chk.add(path, f'its sha256 is not the one '
                          f'{osp.join(folder, MANIFEST)} records (changed '
                          f'after the conversion)')
    if 'test' in listed:
        train = dict(listed.get('train', {}))
        train.update(listed.get('val', {}))
        chk.overlap(train, listed['test'])


def find_folders(root: str) -> List[Tuple[str, str, str]]:
    """(kind, name, folder) of every VTAB-1k task and FGVC data set at or
    one level below ``root``."""
    from ..classification import VTAB_TASKS
    fgvc_by_folder = {f: n for n, (f, _) in FOLDERS.items()}
    found = []
    for d in [root] + sorted(osp.join(root, e) for e in os.listdir(root)
                             if osp.isdir(osp.join(root, e))):
        base = osp.basename(osp.normpath(d))
        if base in VTAB_TASKS and any(
                osp.isfile(osp.join(d, f'{s}.txt')) for s in VTAB_TXT):
            found.append(('vtab', base, d))
        elif base in fgvc_by_folder and osp.isfile(osp.join(d, 'train.json')):
            found.append(('fgvc', fgvc_by_folder[base], d))
    return found


def verify(root: str, counts: bool = True
           ) -> Tuple[List[Tuple[str, str, str]], List[str]]:
    """The folders found and the problems (``file[:line]: what``);
    ``counts=False`` leaves out the comparison with Table 17 (a folder
    made with other sizes for a smoke test)."""
    if not osp.isdir(root):
        return [], [f'{root}: not a folder']
    found = find_folders(root)
    chk = _Checker(counts)
    if not found:
        chk.add(root, 'no VTAB-1k task folder (<task>/train800.txt ...) or '
                      'FGVC folder (<folder>/train.json) at or below it')
    for kind, name, folder in found:
        if kind == 'vtab':
            _vtab_task(folder, name, chk)
        else:
            _fgvc_folder(folder, name, chk)
    return found, chk.problems
