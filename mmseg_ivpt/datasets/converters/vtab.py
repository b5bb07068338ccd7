"""VTAB-1k from TensorFlow Datasets into the layout the configs read::

    <out>/<task>/images/{train800,val200,test}/NNNNNN.png
    <out>/<task>/{train800,val200,train800val200,test}.txt   "images/... label"
    <out>/<task>/images.sha256   the sha256 of each image (sha256sum -c)
    <out>/<task>/manifest.json

The split strings, label functions and images are :mod:`.vtab_tasks`'s
(task_adaptation's). Every requested task is checked before any work
(a missing data set is an error that names the builder, the version and
the command that prepares it; a damaged one, every file and what is wrong
with it). A task whose manifest, txt files and images agree (the sha256 the
manifest and ``images.sha256`` record) is skipped; an image that does not
is written again; an interrupted task resumes, keeping the images it wrote
(each written atomically); the txt files, ``images.sha256`` and then the
manifest are written last, atomically, so a folder without a manifest is
never taken for a finished one.
"""
import hashlib
import os
import os.path as osp
import shutil
import sys
from typing import Dict, List, NamedTuple, Optional, Sequence

from .common import (
    IMAGE_FORMATS,
    MANIFEST,
    ConversionError,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    checksums,
    encode_image,
    progress,
    read_manifest,
    sha256_file,
)
from .tfds_io import (
    check_prepared,
    dataset_folder,
    describe,
    num_examples,
    open_prepared,
    prepared_versions,
    read_split,
)
from .vtab_tasks import IMAGE_SPLITS, TRAIN_SIZE, VAL_SIZE, VTAB_SOURCES

TXT_FILES = ('train800.txt', 'val200.txt', 'train800val200.txt', 'test.txt')
#: the sha256 of every image, ``sha256sum -c`` can check it
SUMS = 'images.sha256'
STATE = '.conversion.json'
#: bump when the output of the same input changes
CONVERTER_VERSION = 1
TFDS_SOURCE = ('google-research/task_adaptation task_adaptation/data/'
               '{file}; versions: KMnP/vpt VTAB_SETUP.md')


def _num_classes(task: str) -> int:
    from ..classification import VTAB_TASKS
    return VTAB_TASKS[task][1]


class TaskPlan(NamedTuple):
    task: str
    folder: str            # the prepared TFDS folder
    version: str           # the version found
    drift: Optional[str]   # what differs from VTAB-1k's version, or None


def prepare_command(tfds_dir: str, task: str) -> str:
    spec = VTAB_SOURCES[task]
    return (f'python -c "import tensorflow_datasets as tfds; tfds.builder('
            f"'{spec.name}:{spec.version}', data_dir='{tfds_dir}', "
            f"file_format='array_record').download_and_prepare()\"")


def plan(tfds_dir: str, tasks: Sequence[str]) -> List[TaskPlan]:
    """Find every task's prepared data set; raise one ConversionError that
    lists every missing one (builder, version, where it was looked for,
    the command that prepares it, where manual downloads go)."""
    unknown = [t for t in tasks if t not in VTAB_SOURCES]
    if unknown:
        raise ConversionError(f'unknown task(s) {unknown}; allowed: '
                              f'{list(VTAB_SOURCES)}')
    if not osp.isdir(tfds_dir):
        raise ConversionError(f'--tfds-dir {tfds_dir!r} is not a folder')
    plans, missing = [], []
    for task in tasks:
        spec = VTAB_SOURCES[task]
        found = prepared_versions(tfds_dir, spec.builder, spec.config)
        if not found:
            where = dataset_folder(tfds_dir, spec.builder, spec.config,
                                   spec.version)
            msg = (f'  {task}: TFDS data set {spec.name} (version '
                   f'{spec.version}, the one VPT used) is not prepared: no '
                   f'{where}/dataset_info.json. Prepare it (this step needs '
                   f'tensorflow, in any environment) with\n    '
                   f'{prepare_command(tfds_dir, task)}\n    (a '
                   f'tensorflow-datasets that can no longer build '
                   f'{spec.version}: prepare the version it has, '
                   f"tfds.builder('{spec.name}', ...); it is converted and "
                   f'the version drift recorded)')
            if spec.manual:
                msg += (f'\n    {spec.name} is a manual download: put '
                        f'{spec.manual} into '
                        f'{osp.join(tfds_dir, "downloads", "manual")}/ first')
            missing.append(msg)
            continue
        version = spec.version if spec.version in found else found[-1]
        drift = None
        if version != spec.version:
            drift = (f'{spec.name} {version} is prepared, VTAB-1k (VPT) used '
                     f'{spec.version}')
        plans.append(TaskPlan(task, dataset_folder(
            tfds_dir, spec.builder, spec.config, version), version, drift))
    if missing:
        raise ConversionError(
            f'{len(missing)} of the requested VTAB-1k task(s) have no '
            f'prepared TFDS data under --tfds-dir {tfds_dir}:\n'
            + '\n'.join(missing))
    damaged, checked = [], {}
    for p in plans:  # each folder once (clevr_count and clevr_dist ...)
        if p.folder not in checked:
            spec = VTAB_SOURCES[p.task]
            checked[p.folder] = check_prepared(p.folder, spec.builder,
                                               spec.config, p.version)
        damaged += [f'  {p.task}: {m}' for m in checked[p.folder]]
    if damaged:
        raise ConversionError(
            f'{sum(1 for m in checked.values() if m)} prepared TFDS '
            f'folder(s) cannot be converted as they are (nothing was '
            f'converted):\n'
            + '\n'.join(damaged))
    return plans


def _options(p: TaskPlan, fmt: str, sizes) -> dict:
    spec = VTAB_SOURCES[p.task]
    return dict(converter=CONVERTER_VERSION, builder=spec.name,
                version=p.version, format=fmt, sizes=list(sizes))


def read_sums(path: str) -> Dict[str, str]:
    """``images.sha256`` (``sha256sum`` format: "digest  path" lines):
    path -> digest."""
    sums = {}
    with open(path) as f:
        for line in f:
            digest, _, rel = line.rstrip('\n').partition('  ')
            if rel:
                sums[rel] = digest
    return sums


class Done(NamedTuple):
    done: bool
    #: what was checked (done) or why the task is converted again
    detail: str
    #: images that are missing or differ from their checksum
    bad: List[str] = []
    #: every other image was checked against its checksum
    verified: bool = False


def check_done(task_dir: str, options: dict) -> Done:
    """Whether ``task_dir`` holds a finished conversion with ``options``:
    the manifest says so, the txt files and ``images.sha256`` have the
    checksums it records, and every image listed has the sha256 that
    ``images.sha256`` records (a manifest of converter 1, without image
    checksums: every image exists, and the message says that this is all
    that was checked)."""
    man = read_manifest(task_dir)
    if not man or man.get('options') != options:
        return Done(False, '', [])
    try:
        txt_ok = checksums(task_dir, TXT_FILES) == man.get('txt_sha256')
        listed = []
        for name in TXT_FILES[:2] + TXT_FILES[3:]:  # train800val200: same
            with open(osp.join(task_dir, name)) as f:
                listed += [ln.rsplit(maxsplit=1)[0] for ln in f
                           if ln.strip()]
    except OSError:
        return Done(False, 'a txt file is missing', [])
    sums_path = osp.join(task_dir, SUMS)
    if 'images_sha256' not in man:  # converter 1: presence only
        bad = [r for r in listed if not osp.isfile(osp.join(task_dir, r))]
        if txt_ok and not bad:
            return Done(True, f'checked ONLY that its {len(listed)} images '
                              f'exist: its {MANIFEST} (converter 1) has no '
                              f'image checksums; delete it to convert again',
                        [])
        return Done(False, 'the txt files differ from the manifest' if not
                    txt_ok else f'{len(bad)} image(s) missing', [])
    if not osp.isfile(sums_path) or \
            sha256_file(sums_path) != man['images_sha256']:
        return Done(False, f'{SUMS} differs from its checksum in the '
                           f'manifest', [])
    sums = read_sums(sums_path)
    bad = [r for r in listed
           if r not in sums or not osp.isfile(osp.join(task_dir, r))
           or sha256_file(osp.join(task_dir, r)) != sums[r]]
    if bad:
        return Done(False, f'{len(bad)} image(s) missing or other than '
                           f'their sha256 in {SUMS} (e.g. {bad[0]})', bad,
                    True)
    if not txt_ok:
        return Done(False, 'the txt files differ from the manifest', [],
                    True)
    return Done(True, f'checked the sha256 of its {len(listed)} images and '
                      f'txt files against the manifest', [], True)


def convert_task(p: TaskPlan, out: str, fmt: str = 'png',
                 sizes=(TRAIN_SIZE, VAL_SIZE), log=print) -> str:
    """Convert one task; 'skipped' if it is done already, else
    'converted'."""
    spec = VTAB_SOURCES[p.task]
    task_dir = osp.join(out, p.task)
    options = _options(p, fmt, sizes)
    checked = check_done(task_dir, options)
    if checked.done:
        log(f'{p.task}: already converted ({task_dir}; {checked.detail}); '
            f'skipped')
        return 'skipped'
    if checked.detail:
        log(f'{p.task}: {task_dir}: {checked.detail}; converting it again')
    if p.drift:
        log(f'WARNING {p.task}: version drift: {p.drift}; converting it '
            f'anyway (recorded in {p.task}/{MANIFEST})')
    builder = open_prepared(p.folder)
    file_format, _, split_sizes = describe(builder)
    strings = spec.splits(split_sizes, *sizes)
    counts = {s: num_examples(builder, strings[s]) for s in IMAGE_SPLITS}
    for s, want in zip(('train800', 'val200'), sizes):
        if counts[s] != want:
            raise ConversionError(
                f'{p.task}: {spec.name} {p.version} ({p.folder}) gives '
                f'{counts[s]} examples for {s} = {strings[s]!r}, not {want} '
                f'(split sizes {split_sizes})')
    # the options of a partial conversion; other options: start afresh
    state = osp.join(task_dir, STATE)
    old = read_manifest(task_dir) or {}
    prev = _read_json(state)
    if checked.verified:  # a finished task's images, each one checked:
        prev = options    # keep all but the bad ones
        for rel in checked.bad:
            if osp.isfile(osp.join(task_dir, rel)):
                os.unlink(osp.join(task_dir, rel))
    for name in (MANIFEST, SUMS) + TXT_FILES:  # nothing may look complete
        if osp.exists(osp.join(task_dir, name)):
            os.unlink(osp.join(task_dir, name))
    if prev != options and osp.isdir(osp.join(task_dir, 'images')):
        log(f'{p.task}: {task_dir}/images was made with other options '
            f'({prev or old.get("options")}); removed')
        shutil.rmtree(osp.join(task_dir, 'images'))
    os.makedirs(task_dir, exist_ok=True)
    for dirpath, _, files in os.walk(osp.join(task_dir, 'images')):
        for f in files:  # what a killed run was writing
            if f.startswith('.') and f.endswith('.tmp'):
                os.unlink(osp.join(dirpath, f))
    atomic_write_json(state, options)
    n_classes = _num_classes(p.task)
    suffix = IMAGE_FORMATS[fmt]
    lines: Dict[str, List[str]] = {}
    sums: List[str] = []
    resumed = 0
    bar = progress(sum(counts.values()), f'{p.task}')
    try:
        for split in IMAGE_SPLITS:
            lines[split] = []
            for i, ex in enumerate(read_split(builder, strings[split])):
                label = spec.label(ex)
                if not 0 <= label < n_classes:
                    raise ConversionError(
                        f'{p.task}: {strings[split]} example {i}: label '
                        f'{label} outside 0..{n_classes - 1} '
                        f'({spec.label_rule})')
                rel = f'images/{split}/{i:06d}{suffix}'
                path = osp.join(task_dir, rel)
                if osp.isfile(path):
                    resumed += 1
                    digest = sha256_file(path)
                else:
                    data = encode_image(spec.image(ex), fmt)
                    atomic_write_bytes(path, data)
                    digest = hashlib.sha256(data).hexdigest()
                lines[split].append(f'{rel} {label}\n')
                sums.append(f'{digest}  {rel}\n')
                bar.update(1)
            if len(lines[split]) != counts[split]:
                raise ConversionError(
                    f'{p.task}: read {len(lines[split])} examples of '
                    f'{strings[split]!r}, TFDS promised {counts[split]}')
    finally:
        bar.close()
    if resumed:
        log(f'{p.task}: resumed: {resumed} images were already written')
    text = dict(train800=''.join(lines['train800']),
                val200=''.join(lines['val200']),
                train800val200=''.join(lines['train800'] + lines['val200']),
                test=''.join(lines['test']))
    for name, body in text.items():
        atomic_write_text(osp.join(task_dir, f'{name}.txt'), body)
    atomic_write_text(osp.join(task_dir, SUMS), ''.join(sums))
    strings['train800val200'] = f"{strings['train800']}+{strings['val200']}"
    counts['train800val200'] = counts['train800'] + counts['val200']
    manifest = dict(
        task=p.task, options=options, tfds_folder=osp.abspath(p.folder),
        builder=spec.builder, config=spec.config, version=p.version,
        vtab_version=spec.version, vtab_version_spec=spec.spec,
        version_drift=p.drift, file_format=file_format,
        tfds_split_sizes=split_sizes, splits=strings, counts=counts,
        num_classes=n_classes, label_rule=spec.label_rule,
        source=TFDS_SOURCE.format(file=spec.source), image_format=fmt,
        txt_sha256=checksums(task_dir, TXT_FILES),
        images_sha256=sha256_file(osp.join(task_dir, SUMS)))
    atomic_write_json(osp.join(task_dir, MANIFEST), manifest)
    os.unlink(state)
    log(f'{p.task}: {counts} -> {task_dir}')
    return 'converted'


def _read_json(path):
    import json
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def convert(tfds_dir: str, out: str, tasks: Optional[Sequence[str]] = None,
            fmt: str = 'png', sizes=(TRAIN_SIZE, VAL_SIZE),
            log=None) -> Dict[str, str]:
    """Convert ``tasks`` (default: all 19); returns task -> 'converted' /
    'skipped'. Every check that needs no image is done first."""
    log = log or (lambda m: print(m, file=sys.stderr, flush=True))
    if fmt not in IMAGE_FORMATS:
        raise ConversionError(f'--format {fmt!r}; allowed: '
                              f'{list(IMAGE_FORMATS)}')
    if len(sizes) != 2 or min(sizes) < 1:
        raise ConversionError(f'sizes {sizes}: two positive numbers')
    tasks = list(tasks or VTAB_SOURCES)
    plans = plan(tfds_dir, tasks)
    return {p.task: convert_task(p, out, fmt, sizes, log) for p in plans}
