"""Reading a data set that TFDS prepared, without tensorflow.

The prepared folder (``<data_dir>/<builder>/[<config>/]<version>/``) is
opened with ``tfds.builder_from_directory``: its ``dataset_info.json`` and
``features.json`` give the splits and the feature spec, so no builder code
(and no tensorflow) is needed. A split string (``train[:800]``,
``test[50%:]``, ``train[:800]+validation[:200]``) is resolved by TFDS's
own split arithmetic into file instructions (file, skip, take); the records
are read from ``array_record`` files by TFDS's data source, from
``tfrecord`` files by the framing reader below, and decoded with the
builder's feature spec (``features.deserialize_example_np``: numpy, PIL).
"""
import json
import os
import os.path as osp
import struct
from typing import Iterator, List, Optional, Tuple

from .common import ConversionError


def _version_key(v: str):
    try:
        return tuple(int(x) for x in v.split('.'))
    except ValueError:
        return (-1,)


def prepared_versions(tfds_dir: str, builder: str,
                      config: Optional[str]) -> List[str]:
    """The versions of ``builder[/config]`` prepared under ``tfds_dir``
    (folders with a ``dataset_info.json``), oldest first."""
    folder = osp.join(tfds_dir, builder, *([config] if config else []))
    if not osp.isdir(folder):
        return []
    return sorted((v for v in os.listdir(folder)
                   if osp.isfile(osp.join(folder, v, 'dataset_info.json'))),
                  key=_version_key)


def dataset_folder(tfds_dir, builder, config, version) -> str:
    return osp.join(tfds_dir, builder, *([config] if config else []), version)


def open_prepared(folder: str):
    """The read-only TFDS builder of a prepared folder."""
    import tensorflow_datasets as tfds
    try:
        return tfds.builder_from_directory(folder)
    except Exception as e:  # TFDS raises many kinds here
        raise ConversionError(f'{folder}: not a prepared TFDS data set '
                              f'TFDS can read ({type(e).__name__}: {e})')


def split_sizes(builder) -> dict:
    return {name: int(s.num_examples)
            for name, s in builder.info.splits.items()}


def file_instructions(builder, split: str):
    """TFDS's resolution of ``split`` into (file, skip, take) reads."""
    from tensorflow_datasets.core import splits as splits_lib
    sd = splits_lib.SplitDict(split_infos=list(builder.info.splits.values()))
    try:
        return sd[split].file_instructions
    except Exception as e:
        raise ConversionError(f'split {split!r} of {builder.name} '
                              f'{builder.version}: {e}')


def num_examples(builder, split: str) -> int:
    return sum(int(fi.take) for fi in file_instructions(builder, split))


def _tfrecords(path: str, skip: int, take: int) -> Iterator[bytes]:
    """Records ``skip .. skip + take`` of a TFRecord file: uint64 length,
    uint32 masked CRC of the length, data, uint32 masked CRC of the data
    (the CRCs are not checked; a truncated file is an error)."""
    with open(path, 'rb') as f:
        i = 0
        while take < 0 or i < skip + take:
            head = f.read(12)
            if not head:
                break
            if len(head) < 12:
                raise ConversionError(f'{path}: record {i} truncated')
            (n,) = struct.unpack('<Q', head[:8])
            if i < skip:
                f.seek(n + 4, os.SEEK_CUR)
            else:
                data = f.read(n)
                if len(data) < n or len(f.read(4)) < 4:
                    raise ConversionError(f'{path}: record {i} truncated')
                yield data
            i += 1
    if take >= 0 and i < skip + take:
        raise ConversionError(f'{path}: {i} records, dataset_info.json '
                              f'promised at least {skip + take}')


def read_split(builder, split: str) -> Iterator[dict]:
    """The decoded examples of ``split``, in TFDS's order."""
    fmt = str(getattr(builder.info.file_format, 'value',
                      builder.info.file_format) or 'tfrecord')
    features = builder.info.features
    if fmt == 'array_record':
        source = builder.as_data_source(split=split)
        for i in range(len(source)):
            yield source[i]
        return
    if fmt != 'tfrecord':
        raise ConversionError(f'{builder.data_dir}: file format {fmt!r}; '
                              f'this reader knows array_record and tfrecord')
    for fi in file_instructions(builder, split):
        path = fi.filename
        if not osp.isabs(path):
            path = osp.join(builder.data_dir, path)
        for record in _tfrecords(path, int(fi.skip), int(fi.take)):
            yield features.deserialize_example_np(record)


def describe(builder) -> Tuple[str, str, dict]:
    """file format, TFDS version that prepared it, split sizes"""
    info_path = osp.join(builder.data_dir, 'dataset_info.json')
    try:
        with open(info_path) as f:
            info = json.load(f)
    except (OSError, ValueError):
        info = {}
    return (str(getattr(builder.info.file_format, 'value',
                        builder.info.file_format) or 'tfrecord'),
            str(info.get('moduleName', '') or ''), split_sizes(builder))
