"""mmseg_ivpt.apis.images: a user's image read safely (issue 29.12), the
pixels compared with mmcv.imread (what mmseg and mmpretrain load)."""
import struct
import zlib

import mmcv
import numpy as np
import pytest
from PIL import Image

from mmseg_ivpt.apis.images import (
    DEFAULT_MAX_PIXELS,
    ImageError,
    ImageTooLargeError,
    image_size,
    read_image,
)


def huge_png(path, w=10000, h=10000):
    """A PNG whose header says ``w`` x ``h`` and whose data is a few bytes:
    its header can be read, its pixels cannot be decoded."""
    def chunk(kind, data):
        return (struct.pack('>I', len(data)) + kind + data +
                struct.pack('>I', zlib.crc32(kind + data)))
    path.write_bytes(b'\x89PNG\r\n\x1a\n' + chunk(
        b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0)) +
        chunk(b'IDAT', zlib.compress(b'\0' * 64)))
    return str(path)


def test_read_image_names_what_is_wrong(tmp_path):
    ok = tmp_path / 'ok.jpg'
    Image.fromarray(np.random.RandomState(0).randint(
        0, 256, (20, 30, 3), np.uint8)).save(ok)
    assert np.array_equal(read_image(str(ok)), mmcv.imread(str(ok)))
    assert np.array_equal(read_image(ok.read_bytes(), name='upload'),
                          mmcv.imread(str(ok)))
    assert image_size(str(ok)) == (30, 20)
    (tmp_path / 'empty.png').write_bytes(b'')
    (tmp_path / 'notes.jpg').write_text('not an image')
    huge = huge_png(tmp_path / 'huge.png')
    cases = {str(tmp_path / 'empty.png'): 'empty file (0 bytes)',
             str(tmp_path / 'notes.jpg'): 'not an image (no image format',
             str(tmp_path / 'gone.png'): 'no such file',
             huge: f'10000 x 10000 = 100000000 pixels, more than the limit '
                   f'of {DEFAULT_MAX_PIXELS}'}
    for path, what in cases.items():
        with pytest.raises(ImageError) as e:
            read_image(path)
        assert str(e.value).startswith(f'{path}: {what}'), str(e.value)
    # the limit is read from the header: the data of huge.png never is
    with pytest.raises(ImageError, match='does not decode'):
        read_image(huge, max_pixels=None)
    with pytest.raises(ImageTooLargeError,
                       match=r'^upload: 30 x 20 = 600 pixels, '
                                         r'more than the limit of 599'):
        read_image(ok.read_bytes(), max_pixels=599, name='upload')
    assert DEFAULT_MAX_PIXELS < 10000 * 10000
