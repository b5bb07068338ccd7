"""VTAB-1k and FGVC data sets for mmpretrain, in the layouts everyone shares.

VTAB-1k (docs/data.md)::

    <data_root>/<task>/{train800,val200,train800val200,test}.txt
    <data_root>/<task>/<relative/image/path>      one "path label" per line

FGVC (VPT's splits)::

    <data_root>/{train,val,test}.json             {"relative/path.jpg": label}
    <data_root>/<img_prefix>/<relative/path.jpg>

Bad data is an error naming the file (and line): a missing split or image
file, a malformed line, a label outside the task's classes, an empty split.
"""
import json
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, Optional

from mmpretrain.datasets import BaseDataset
from mmpretrain.registry import DATASETS

from .tasks import DataError, DataTask, numbered_task, parse_split_line

# task folder name -> (group, number of classes); the order of Table 1
VTAB_TASKS: Dict[str, tuple] = OrderedDict([
    ('cifar', ('natural', 100)),
    ('caltech101', ('natural', 102)),
    ('dtd', ('natural', 47)),
    ('oxford_flowers102', ('natural', 102)),
    ('oxford_iiit_pet', ('natural', 37)),
    ('svhn', ('natural', 10)),
    ('sun397', ('natural', 397)),
    ('patch_camelyon', ('specialized', 2)),
    ('eurosat', ('specialized', 10)),
    ('resisc45', ('specialized', 45)),
    ('diabetic_retinopathy', ('specialized', 5)),
    ('clevr_count', ('structured', 8)),
    ('clevr_dist', ('structured', 6)),
    ('dmlab', ('structured', 6)),
    ('kitti', ('structured', 4)),
    ('dsprites_loc', ('structured', 16)),
    ('dsprites_ori', ('structured', 16)),
    ('smallnorb_azi', ('structured', 18)),
    ('smallnorb_ele', ('structured', 9)),
])
VTAB_SPLITS = ('train800', 'val200', 'train800val200', 'test')

# name -> (number of classes, image folder inside data_root)
FGVC_DATASETS: Dict[str, tuple] = OrderedDict([
    ('cub', (200, 'images')),
    ('nabirds', (555, 'images')),
    ('oxford_flowers', (102, '')),
    ('stanford_dogs', (120, 'Images')),
    ('stanford_cars', (196, '')),
])
FGVC_SPLITS = ('train', 'val', 'test')


def _check_image(path: str, where: str) -> None:
    if not osp.isfile(path):
        raise DataError(f'{where}: image {path!r} not found')


@DATASETS.register_module()
class VTAB1k(BaseDataset):
    """One VTAB-1k task.

    Args:
        data_root: the folder holding one sub-folder per task.
        task: a key of ``VTAB_TASKS`` (e.g. ``'cifar'``, ``'clevr_count'``).
        split: ``train800``, ``val200``, ``train800val200`` or ``test``.
        check_images: stat every image while loading (names the line of a
            missing one; off to save time on huge test splits).
    """

    @classmethod
    def task_of_config(cls, cfg: dict) -> Optional[DataTask]:
        """The task of a config of this data set: its ``task`` (None if not
        one of ``VTAB_TASKS``)."""
        return numbered_task('VTAB1k', 'VTAB-1k task', cfg.get('task'),
                             {k: n for k, (_, n) in VTAB_TASKS.items()})

    def __init__(self, data_root: str, task: str,
                 split: str = 'train800val200', check_images: bool = True,
                 **kwargs):
        if task not in VTAB_TASKS:
            raise ValueError(f'task={task!r}; allowed: {list(VTAB_TASKS)}')
        if split not in VTAB_SPLITS:
            raise ValueError(f'split={split!r}; allowed: {VTAB_SPLITS}')
        self.task, self.split = task, split
        self.check_images = check_images
        super().__init__(
            ann_file=f'{split}.txt', data_root=osp.join(data_root, task),
            metainfo=dict(classes=self.task_of_config(
                dict(task=task)).classes), **kwargs)

    def load_data_list(self) -> List[dict]:
        ann = self.ann_file
        if not osp.isfile(ann):
            raise DataError(f'VTAB-1k {self.task}: split file {ann!r} not '
                            f'found (expected {VTAB_SPLITS} .txt files)')
        n = len(self.CLASSES)
        out = []
        with open(ann) as f:
            for i, line in enumerate(f, 1):
                if not line.strip():
                    continue
                where = f'{ann}:{i}'
                try:
                    rel, label = parse_split_line(line, n, self.task)
                except ValueError as e:
                    raise DataError(f'{where}: {e}') from None
                path = osp.join(self.data_root, rel)
                if self.check_images:
                    _check_image(path, where)
                out.append(dict(img_path=path, gt_label=label))
        if not out:
            raise DataError(f'{ann}: empty split')
        return out


@DATASETS.register_module()
class FGVC(BaseDataset):
    """One FGVC data set from VPT's ``{train,val,test}.json`` splits.

    Labels are mapped to 0..C-1 in the sorted order of the labels of
    ``train.json`` (as VPT does), the same mapping for every split.

    Args:
        data_root: the data set's folder (with the json files).
        name: a key of ``FGVC_DATASETS``.
        split: ``train``, ``val`` or ``test``; a list (e.g.
            ``['train', 'val']``) concatenates splits.
        img_prefix: image folder inside ``data_root`` (default: the usual
            one of the data set, see ``FGVC_DATASETS``).
    """

    @classmethod
    def task_of_config(cls, cfg: dict) -> Optional[DataTask]:
        """The task of a config of this data set: its ``name`` (None if not
        one of ``FGVC_DATASETS``)."""
        return numbered_task('FGVC', 'FGVC', cfg.get('name'),
                             {k: n for k, (n, _) in FGVC_DATASETS.items()})

    def __init__(self, data_root: str, name: str, split='train',
                 img_prefix: Optional[str] = None, check_images: bool = True,
                 **kwargs):
        if name not in FGVC_DATASETS:
            raise ValueError(f'name={name!r}; allowed: {list(FGVC_DATASETS)}')
        splits = [split] if isinstance(split, str) else list(split)
        bad = [s for s in splits if s not in FGVC_SPLITS]
        if bad or not splits:
            raise ValueError(f'split={split!r}; allowed: {FGVC_SPLITS} or a '
                             f'list of them')
        default_prefix = FGVC_DATASETS[name][1]
        self.name, self.splits = name, splits
        self.check_images = check_images
        self.image_folder = (default_prefix if img_prefix is None
                             else img_prefix)
        super().__init__(
            ann_file='train.json', data_root=data_root,
            metainfo=dict(classes=self.task_of_config(
                dict(name=name)).classes), **kwargs)

    def _read(self, split: str) -> dict:
        path = osp.join(self.data_root, f'{split}.json')
        if not osp.isfile(path):
            raise DataError(f'FGVC {self.name}: split file {path!r} not '
                            f'found')
        with open(path) as f:
            try:
                ann = json.load(f)
            except json.JSONDecodeError as e:
                raise DataError(f'{path}: not valid JSON ({e})') from None
        if not isinstance(ann, dict) or not ann:
            raise DataError(f'{path}: empty split (expected a non-empty '
                            f'{{"image path": label}} object)')
        return ann

    def load_data_list(self) -> List[dict]:
        n = len(self.CLASSES)
        train_ids = sorted(set(self._read('train').values()))
        if len(train_ids) > n:
            raise DataError(f'{self.data_root}/train.json has '
                            f'{len(train_ids)} labels; {self.name} has {n} '
                            f'classes')
        to_cont = {v: i for i, v in enumerate(train_ids)}
        out = []
        for split in self.splits:
            path = osp.join(self.data_root, f'{split}.json')
            for rel, label in self._read(split).items():
                where = f'{path} entry {rel!r}'
                if label not in to_cont:
                    raise DataError(f'{where}: label {label!r} does not '
                                    f'occur in train.json')
                img = osp.join(self.data_root, self.image_folder, rel)
                if self.check_images:
                    _check_image(img, where)
                out.append(dict(img_path=img, gt_label=to_cont[label]))
        return out
