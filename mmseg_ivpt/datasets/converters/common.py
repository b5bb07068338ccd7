"""What the converters share: the named error, atomic writes, checksums,
image saving, the manifest and the progress bar."""
import hashlib
import io
import json
import os
import os.path as osp
import secrets
from typing import Iterable, Optional

import numpy as np

from ..tasks import DataError

#: image formats the converters write (``--format``), with their suffix
IMAGE_FORMATS = {'png': '.png', 'jpg': '.jpg'}
#: JPEG quality of ``--format jpg`` (PIL's default is 75)
JPEG_QUALITY = 95
MANIFEST = 'manifest.json'


class ConversionError(DataError):
    """Input a converter cannot use, found before any work starts (or the
    file and line where it was found)."""


def _create_temp(folder: str, base: str):
    """A new file ``.<base>.<random>.tmp`` in ``folder``, opened for
    writing, created with mode 0666 so that the umask (and a default ACL)
    applies as to any file a user writes (``tempfile.mkstemp`` makes every
    file 0600)."""
    while True:
        tmp = osp.join(folder, f'.{base}.{secrets.token_hex(6)}.tmp')
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        return fd, tmp


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same
    folder and a rename: ``path`` is either absent or complete; its mode
    follows the umask."""
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = _create_temp(folder, osp.basename(path))
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str, text: str) -> None:
    atomic_write_bytes(path, text.encode('utf-8'))


def atomic_write_json(path: str, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1, sort_keys=True) + '\n')


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    return h.hexdigest()


def encode_image(image: np.ndarray, fmt: str) -> bytes:
    """An HxWx3 (or HxW) uint8 array as PNG (lossless) or JPEG bytes."""
    from PIL import Image
    if image.dtype != np.uint8:
        raise ConversionError(f'image of dtype {image.dtype}; expected uint8')
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    buf = io.BytesIO()
    if fmt == 'png':
        Image.fromarray(image).save(buf, format='PNG')
    elif fmt == 'jpg':
        Image.fromarray(image).save(buf, format='JPEG', quality=JPEG_QUALITY)
    else:
        raise ConversionError(
            f'format={fmt!r}; allowed: {list(IMAGE_FORMATS)}')
    return buf.getvalue()


def read_manifest(folder: str) -> Optional[dict]:
    """The manifest of a converted folder, None if absent or unreadable."""
    path = osp.join(folder, MANIFEST)
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def checksums(folder: str, names: Iterable[str]) -> dict:
    return {n: sha256_file(osp.join(folder, n)) for n in names}


def progress(total: int, desc: str):
    """A progress bar on stderr (tqdm), one per task / data set."""
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit='img', dynamic_ncols=True,
                mininterval=1.0)
