"""VTAB-1k's 19 tasks as google-research/task_adaptation defines them
(``task_adaptation/data/<file>.py``; the task list and arguments of
``scripts/run_all_tasks.sh``, which KMnP/vpt repeats in
``src/data/datasets/tf_dataset.py``), with the TFDS versions VPT used
(KMnP/vpt ``VTAB_SETUP.md``). docs/data.md has the table with file and line.

Each task gives: the TFDS builder, config and version; the split strings of
``train800``, ``val200`` and ``test`` as functions of the prepared data set's
split sizes (``val200`` of several tasks is a slice that task_adaptation
computes from the size of ``train``); the label function and the image
function (dSprites and smallNORB tiled to 3 channels as VTAB does). Plain
numpy on TFDS's decoded examples; no tensorflow.
"""
from collections import OrderedDict
from typing import Callable, Dict, NamedTuple, Optional

import numpy as np

#: VTAB-1k's split sizes (task_adaptation: train800 = 800, val200 = 200)
TRAIN_SIZE, VAL_SIZE = 800, 200
#: the splits written as image folders; train800val200 = train800 + val200
IMAGE_SPLITS = ('train800', 'val200', 'test')


class VtabTask(NamedTuple):
    builder: str            # TFDS builder name
    config: Optional[str]   # TFDS builder config
    version: str            # the version VPT used (VTAB_SETUP.md)
    spec: str               # the version task_adaptation asks TFDS for
    source: str             # task_adaptation/data/<file>.py
    splits: Callable[[Dict[str, int], int, int], Dict[str, str]]
    label: Callable[[dict], int]
    label_rule: str         # the label rule in words (manifest, docs)
    image: Callable[[dict], np.ndarray]
    manual: Optional[str] = None  # what to put into TFDS's manual_dir

    @property
    def name(self) -> str:
        """``builder/config`` as TFDS names it."""
        return self.builder + (f'/{self.config}' if self.config else '')


# ---- split rules (train800 / val200 / test strings from the split sizes) --

def _percent_of_train(percent: int, test: str = 'test'):
    """cifar, caltech101, oxford_iiit_pet, svhn, clevr: "train" is the
    first percent% of TFDS's train, "val" the rest; val200 is the first 200
    of "val"."""
    def rule(sizes, n_train, n_val):
        t = percent * sizes['train'] // 100
        return dict(train800=f'train[:{n_train}]',
                    val200=f'train[{t}:{t + n_val}]', test=test)
    return rule


def _official_val(val: str = 'validation'):
    """dtd, oxford_flowers102, sun397, patch_camelyon, diabetic_retinopathy,
    dmlab, kitti: TFDS's own train / validation / test splits."""
    def rule(sizes, n_train, n_val):
        return dict(train800=f'train[:{n_train}]', val200=f'{val}[:{n_val}]',
                    test='test')
    return rule


def _train_val_test_of_train(train_pct: int, val_pct: int):
    """eurosat, resisc45 (60/20/20), dsprites (80/10/10): TFDS has one
    split, cut into train / val / test by percent."""
    def rule(sizes, n_train, n_val):
        t = train_pct * sizes['train'] // 100
        v = val_pct * sizes['train'] // 100
        return dict(train800=f'train[:{n_train}]',
                    val200=f'train[{t}:{t + n_val}]', test=f'train[{t + v}:]')
    return rule


def _smallnorb(sizes, n_train, n_val):
    """smallnorb: val is test[:50%], test is test[50%:]."""
    return dict(train800=f'train[:{n_train}]', val200=f'test[:{n_val}]',
                test='test[50%:]')


# ---- label functions (numpy versions of task_adaptation's) ---------------

def _plain_label(ex):
    return int(ex['label'])


def _max_index_below(thrs, value) -> int:
    """``tf.reduce_max(tf.where((thrs - value) < 0))``: the last threshold
    below ``value``."""
    below = np.nonzero((np.asarray(thrs) - value) < 0)[0]
    if not below.size:
        raise ValueError(f'value {value} is below every threshold {thrs}')
    return int(below.max())


def _objects(ex, key, width=None):
    a = np.asarray(ex['objects'][key])
    if width is not None:
        a = a.reshape(-1, width)
    return a


def clevr_count(ex) -> int:
    """clevr.py ``_count_preprocess_fn``: number of objects - 3."""
    return int(_objects(ex, 'size').size) - 3


CLEVR_DIST_THRS = np.array([0.0, 8.0, 8.5, 9.0, 9.5, 10.0, 100.0])


def clevr_dist(ex) -> int:
    """clevr.py ``_closest_object_preprocess_fn``: the depth of the closest
    object (min of ``pixel_coords[:, 2]``) binned at 0, 8, 8.5, 9, 9.5, 10,
    100."""
    dist = _objects(ex, 'pixel_coords', 3)[:, 2].min()
    return _max_index_below(CLEVR_DIST_THRS, dist)


KITTI_DIST_THRS = np.array([-100.0, 8.0, 20.0, 999.0])


def kitti_closest_vehicle(ex) -> int:
    """kitti.py ``_closest_vehicle_distance_pp``: the depth (location z) of
    the closest Car, Van or Truck (type < 3), 1000 if there is none, binned
    at -100, 8, 20, 999 (4 classes, 3 = no vehicle)."""
    types = _objects(ex, 'type').reshape(-1)
    z = _objects(ex, 'location', 3)[:, 2][types < 3]
    dist = np.concatenate([z.astype(np.float32),
                           np.array([1000.0], np.float32)]).min()
    return _max_index_below(KITTI_DIST_THRS, dist)


def _dsprites_label(attribute: str, num_original: int, num_classes: int):
    """dsprites.py ``preprocess_fn``: floordiv(float32(value),
    num_original / num_classes), in float32 as TF computes it."""
    factor = np.float32(float(num_original) / num_classes)

    def label(ex):
        return int(np.floor_divide(np.float32(ex[attribute]), factor))
    return label


def _attribute(attribute: str):
    def label(ex):
        return int(ex[attribute])
    return label


# ---- images ----------------------------------------------------------------

def _rgb(ex):
    return np.asarray(ex['image'])


def dsprites_image(ex):
    """dsprites.py: ``tf.tile(image, [1, 1, 3]) * 255`` (0/1 -> 0/255)."""
    return np.tile(np.asarray(ex['image']), (1, 1, 3)) * np.uint8(255)


def smallnorb_image(ex):
    """smallnorb.py: ``tf.tile(image, [1, 1, 3])``."""
    return np.tile(np.asarray(ex['image']), (1, 1, 3))


_DR_MANUAL = ('the Kaggle "diabetic-retinopathy-detection" files, unpacked '
              'as TFDS asks: train/ and test/ (from train.zip, test.zip), '
              'sample/, trainLabels.csv and sampleSubmission.csv')
_RESISC_MANUAL = 'NWPU-RESISC45.rar, extracted (folder NWPU-RESISC45/)'

VTAB_SOURCES: Dict[str, VtabTask] = OrderedDict([
    ('cifar', VtabTask('cifar100', None, '3.0.2', '3.*.*', 'cifar.py',
                       _percent_of_train(90), _plain_label, 'label', _rgb)),
    ('caltech101', VtabTask('caltech101', None, '3.0.1', '3.*.*', 'caltech.py',
                            _percent_of_train(90), _plain_label, 'label',
                            _rgb)),
    ('dtd', VtabTask('dtd', None, '3.0.1', '3.*.*', 'dtd.py', _official_val(),
                     _plain_label, 'label', _rgb)),
    ('oxford_flowers102', VtabTask(
        'oxford_flowers102', None, '2.1.1', '2.*.*', 'oxford_flowers102.py',
        _official_val(), _plain_label, 'label', _rgb)),
    ('oxford_iiit_pet', VtabTask(
        'oxford_iiit_pet', None, '3.2.0', '3.*.*', 'oxford_iiit_pet.py',
        _percent_of_train(80), _plain_label, 'label', _rgb)),
    ('svhn', VtabTask('svhn_cropped', None, '3.0.0', '3.*.*', 'svhn.py',
                      _percent_of_train(90), _plain_label, 'label', _rgb)),
    ('sun397', VtabTask('sun397', 'tfds', '4.0.0', '4.*.*', 'sun397.py',
                        _official_val(), _plain_label, 'label', _rgb)),
    ('patch_camelyon', VtabTask(
        'patch_camelyon', None, '2.0.0', '2.*.*', 'patch_camelyon.py',
        _official_val(), _plain_label, 'label', _rgb)),
    ('eurosat', VtabTask('eurosat', 'rgb', '2.0.0', '2.*.*', 'eurosat.py',
                         _train_val_test_of_train(60, 20), _plain_label,
                         'label', _rgb)),
    ('resisc45', VtabTask('resisc45', None, '3.0.0', '3.*.*', 'resisc45.py',
                          _train_val_test_of_train(60, 20), _plain_label,
                          'label', _rgb, manual=_RESISC_MANUAL)),
    ('diabetic_retinopathy', VtabTask(
        'diabetic_retinopathy_detection', 'btgraham-300', '3.0.0', '3.*.*',
        'diabetic_retinopathy.py', _official_val(), _plain_label, 'label',
        _rgb, manual=_DR_MANUAL)),
    ('clevr_count', VtabTask(
        'clevr', None, '3.1.0', '3.*.*', 'clevr.py',
        _percent_of_train(90, test='validation'), clevr_count,
        'count_all: number of objects - 3', _rgb)),
    ('clevr_dist', VtabTask(
        'clevr', None, '3.1.0', '3.*.*', 'clevr.py',
        _percent_of_train(90, test='validation'), clevr_dist,
        'closest_object_distance: min pixel_coords z binned at '
        '0, 8, 8.5, 9, 9.5, 10, 100', _rgb)),
    ('dmlab', VtabTask('dmlab', None, '2.0.1', '2.0.1', 'dmlab.py',
                       _official_val(), _plain_label, 'label', _rgb)),
    # task_adaptation asks for kitti:3.1.0; VPT used 3.2.0 (VTAB_SETUP.md,
    # task_adaptation issue 18)
    ('kitti', VtabTask(
        'kitti', None, '3.2.0', '3.1.0', 'kitti.py', _official_val(),
        kitti_closest_vehicle,
        'closest_vehicle_distance: min location z of Car/Van/Truck '
        '(1000 if none) binned at -100, 8, 20, 999', _rgb)),
    ('dsprites_loc', VtabTask(
        'dsprites', None, '2.0.0', '2.*.*', 'dsprites.py',
        _train_val_test_of_train(80, 10),
        _dsprites_label('label_x_position', 32, 16),
        'label_x_position // (32 / 16)', dsprites_image)),
    ('dsprites_ori', VtabTask(
        'dsprites', None, '2.0.0', '2.*.*', 'dsprites.py',
        _train_val_test_of_train(80, 10),
        _dsprites_label('label_orientation', 40, 16),
        'label_orientation // (40 / 16)', dsprites_image)),
    ('smallnorb_azi', VtabTask(
        'smallnorb', None, '2.0.0', '2.*.*', 'smallnorb.py', _smallnorb,
        _attribute('label_azimuth'), 'label_azimuth', smallnorb_image)),
    ('smallnorb_ele', VtabTask(
        'smallnorb', None, '2.0.0', '2.*.*', 'smallnorb.py', _smallnorb,
        _attribute('label_elevation'), 'label_elevation', smallnorb_image)),
])

#: VTAB-1k test sizes, VPT (Jia et al. 2022) as the iVPT paper's Table 17
#: reports them (the text extraction of Table 17 lost its alignment; these
#: are its numbers in task order)
VTAB_TEST_SIZES = OrderedDict([
    ('cifar', 10000), ('caltech101', 6084), ('dtd', 1880),
    ('oxford_flowers102', 6149), ('oxford_iiit_pet', 3669),
    ('svhn', 26032), ('sun397', 21750), ('patch_camelyon', 32768),
    ('eurosat', 5400), ('resisc45', 6300), ('diabetic_retinopathy', 42670),
    ('clevr_count', 15000), ('clevr_dist', 15000), ('dmlab', 22735),
    ('kitti', 711), ('dsprites_loc', 73728), ('dsprites_ori', 73728),
    ('smallnorb_azi', 12150), ('smallnorb_ele', 12150),
])
