"""Reading a data set that TFDS prepared, without tensorflow.

The prepared folder (``<data_dir>/<builder>/[<config>/]<version>/``) is
opened with ``tfds.builder_from_directory``: its ``dataset_info.json`` and
``features.json`` give the splits and the feature spec, so no builder code
(and no tensorflow) is needed. A split string (``train[:800]``,
``test[50%:]``, ``train[:800]+validation[:200]``) is resolved by TFDS's
own split arithmetic into file instructions (file, skip, take); before
anything is read, ``dataset_info.json`` must name the folder's data set,
config and version, and every shard must exist and hold the records the
file says (:func:`check_prepared`); the records are read from
``array_record`` files by array_record's reader (the one TFDS's data source
uses), from ``tfrecord`` files by the framing reader below (which checks
the records' CRC-32C as TensorFlow does), and decoded with the
builder's feature spec (``features.deserialize_example_np``: numpy, PIL).
"""
import json
import os
import os.path as osp
import struct
from typing import Iterator, List, Optional, Tuple

from .common import ConversionError
from .crc32c import crc32c_many, mask


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


def file_format(builder) -> str:
    return str(getattr(builder.info.file_format, 'value',
                       builder.info.file_format) or 'tfrecord')


#: records whose CRCs are checked together (and bytes, at most)
_BATCH, _BATCH_BYTES = 256, 16 << 20


def _check_crcs(path: str, batch) -> None:
    """``batch``: (record index, byte offset, length bytes, its stored
    CRC, data or None, its stored CRC); a mismatch names the file and the
    record, as TensorFlow's reader refuses it."""
    items = [b[2] for b in batch] + [b[4] for b in batch if b[4] is not None]
    crcs = iter(crc32c_many(items))
    checks = [(b, 'length', b[3]) for b in batch]
    checks += [(b, 'data', b[5]) for b in batch if b[4] is not None]
    for (i, offset, *_), what, stored in checks:
        if mask(next(crcs)) != stored:
            raise ConversionError(
                f'{path}: record {i} (byte {offset}): the CRC of its {what} '
                f'does not match (a damaged file; prepare the data set '
                f'again)')


def _tfrecords(path: str, skip: int = 0, take: int = -1,
               data: bool = True) -> Iterator[bytes]:
    """Records ``skip .. skip + take`` (``take < 0``: to the end) of a
    TFRecord file: uint64 length, uint32 masked CRC-32C of the length,
    data, uint32 masked CRC-32C of the data. Every length's CRC is checked,
    and the data's of each record read; ``data=False`` reads no data and
    yields None per record (counting). A truncated file or a wrong CRC is
    an error naming the file and the record."""
    with open(path, 'rb') as f:
        i, offset, batch, size = 0, 0, [], 0
        while take < 0 or i < skip + take:
            head = f.read(12)
            if not head:
                break
            if len(head) < 12:
                raise ConversionError(f'{path}: record {i} (byte {offset}) '
                                      f'truncated (a damaged or incomplete '
                                      f'file)')
            (n,), (crc_n,) = struct.unpack('<Q', head[:8]), \
                struct.unpack('<I', head[8:])
            rec = None
            if not data or i < skip:
                f.seek(n, os.SEEK_CUR)
                tail = f.read(4)
            else:
                rec = f.read(n)
                tail = f.read(4)
                if len(rec) < n:
                    tail = b''
            if len(tail) < 4:
                raise ConversionError(f'{path}: record {i} (byte {offset}) '
                                      f'truncated (a damaged or incomplete '
                                      f'file)')
            batch.append((i, offset, head[:8], crc_n, rec,
                          struct.unpack('<I', tail)[0]))
            size += len(rec or b'')
            if len(batch) >= _BATCH or size >= _BATCH_BYTES:
                _check_crcs(path, batch)
                for b in batch:
                    if b[4] is not None or not data:
                        yield b[4]
                batch, size = [], 0
            i += 1
            offset += 16 + n
        _check_crcs(path, batch)
        for b in batch:
            if b[4] is not None or not data:
                yield b[4]
    if take >= 0 and i < skip + take:
        raise ConversionError(f'{path}: {i} records, dataset_info.json '
                              f'promised at least {skip + take}')


def _array_record_reader(path: str):
    from array_record.python.array_record_module import ArrayRecordReader
    try:
        return ArrayRecordReader(path)
    except Exception as e:  # RuntimeError from the C++ reader
        raise ConversionError(f'{path}: cannot be opened as array_record '
                              f'({e})')


def _close(reader) -> None:
    try:
        reader.close()
    except RuntimeError:  # a damaged file's reader is not "ok"
        pass


def count_records(path: str, fmt: str) -> int:
    """The records a shard holds (array_record: its index; tfrecord: its
    framing walked, the lengths' CRCs checked)."""
    if fmt == 'array_record':
        reader = _array_record_reader(path)
        try:
            return int(reader.num_records())
        finally:
            _close(reader)
    return sum(1 for _ in _tfrecords(path, data=False))


def check_prepared(folder: str, builder_name: str, config: Optional[str],
                   version: str) -> list:
    """What is wrong with the prepared folder ``folder``
    (``<builder>/[<config>/]<version>``, TFDS's layout): its
    ``dataset_info.json`` names another data set, config or version (a
    file copied from elsewhere), a shard it lists is missing, or a shard
    holds another number of records than the file's ``shardLengths`` (the
    split arithmetic would take other records). Empty if nothing is."""
    info_path = osp.join(folder, 'dataset_info.json')
    try:
        with open(info_path) as f:
            info = json.load(f)
    except (OSError, ValueError) as e:
        return [f'{info_path}: cannot be read ({e})']
    problems = []
    for key, want in (('name', builder_name), ('configName', config),
                      ('version', version)):
        got = info.get(key) or None
        if got != want and (want is not None or key != 'configName'):
            problems.append(
                f'{info_path}: {key} {got!r}, but it is in the folder of '
                f'{key} {want!r} (TFDS\'s layout NAME/[CONFIG/]VERSION/): '
                f'the file of another preparation; prepare the data set '
                f'again')
    if problems:
        return problems
    try:
        builder = open_prepared(folder)
    except ConversionError as e:
        return [str(e)]
    fmt = file_format(builder)
    for name, split in builder.info.splits.items():
        lengths = [int(n) for n in split.shard_lengths]
        for k, path in enumerate(split.filepaths):
            path = str(path)
            if not osp.isfile(path):
                problems.append(
                    f'{path}: missing (shard {k + 1} of {len(lengths)} of '
                    f'split {name!r} in {info_path}); prepare the data set '
                    f'again')
                continue
            try:
                got = count_records(path, fmt)
            except ConversionError as e:
                problems.append(str(e))
                continue
            if k < len(lengths) and got != lengths[k]:
                problems.append(
                    f'{path}: holds {got} records, {info_path} says '
                    f'{lengths[k]} (shardLengths of split {name!r}); a '
                    f'truncated file or one of another preparation')
    return problems


def _array_records(path: str, skip: int, take: int) -> Iterator[bytes]:
    """Records ``skip .. skip + take`` of an array_record file, read with
    the reader TFDS's data source uses; errors name the file and record."""
    reader = _array_record_reader(path)
    try:
        end = int(reader.num_records()) if take < 0 else skip + take
        for start in range(skip, end, _BATCH):
            stop = min(end, start + _BATCH)
            try:
                records = reader.read(start, stop)
            except Exception as e:  # RuntimeError from the C++ reader
                raise ConversionError(
                    f'{path}: records {start}..{stop - 1} cannot be read '
                    f'({e}); prepare the data set again')
            if len(records) != stop - start or any(r is None
                                                   for r in records):
                raise ConversionError(
                    f'{path}: records {start}..{stop - 1} cannot be read '
                    f'(the file holds {reader.num_records()} records)')
            yield from records
    finally:
        _close(reader)


def read_split(builder, split: str) -> Iterator[dict]:
    """The decoded examples of ``split``, in TFDS's order (its file
    instructions; each record decoded by the feature spec as TFDS's data
    source decodes it)."""
    fmt = file_format(builder)
    if fmt not in ('array_record', 'tfrecord'):
        raise ConversionError(f'{builder.data_dir}: file format {fmt!r}; '
                              f'this reader knows array_record and tfrecord')
    read = _array_records if fmt == 'array_record' else _tfrecords
    features = builder.info.features
    for fi in file_instructions(builder, split):
        path = fi.filename
        if not osp.isabs(path):
            path = osp.join(builder.data_dir, path)
        for k, record in enumerate(read(path, int(fi.skip), int(fi.take))):
            try:
                yield features.deserialize_example_np(record)
            except Exception as e:  # the feature decoders raise many kinds
                raise ConversionError(
                    f'{path}: record {int(fi.skip) + k} does not decode '
                    f'({type(e).__name__}: {e})')


def describe(builder) -> Tuple[str, str, dict]:
    """file format, TFDS version that prepared it, split sizes"""
    info_path = osp.join(builder.data_dir, 'dataset_info.json')
    try:
        with open(info_path) as f:
            info = json.load(f)
    except (OSError, ValueError):
        info = {}
    return (file_format(builder), str(info.get('moduleName', '') or ''),
            split_sizes(builder))
