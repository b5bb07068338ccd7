"""Reading an image a user hands in (a path or the bytes of an upload)
safely: a named error for an empty, unreadable or oversized file, the size
checked from the header before anything is decoded.

For every program that predicts user images (``tools/multitask_infer.py``,
a web service): :func:`read_image` gives the BGR uint8 array that
``mmcv.imread`` gives (the bank's and mmseg's own loading), or raises
:class:`ImageError` naming the file and what is wrong.
"""
import io
import os.path as osp
from typing import Optional, Tuple, Union

import numpy as np

#: default pixel limit (width x height): 8192 x 8192. Decoded, such an
#: image is 192 MiB (BGR uint8); a segmentation of it holds 4 bytes per
#: class per pixel of logits at the image's size (docs/bank.md).
DEFAULT_MAX_PIXELS = 8192 * 8192


class ImageError(ValueError):
    """An image that cannot be predicted; the message names it."""


class ImageTooLargeError(ImageError):
    """An image over the pixel limit (or one PIL takes for a decompression
    bomb), found from its header before decoding."""


def _name(source, name: Optional[str]) -> str:
    if name:
        return name
    return source if isinstance(source, str) else 'the image'


def image_size(source: Union[str, bytes],
               name: Optional[str] = None) -> Tuple[int, int]:
    """(width, height) from the file's header (PIL reads the header only;
    nothing is decoded). ``source``: a path or the file's bytes; ``name``:
    how a message calls it (default: the path)."""
    from PIL import Image, UnidentifiedImageError
    what = _name(source, name)
    try:
        f = open(source, 'rb') if isinstance(source, str) else \
            io.BytesIO(source)
    except OSError as e:
        raise ImageError(f'{what}: cannot be read ({e.strerror})') from None
    with f:
        f.seek(0, io.SEEK_END)
        if f.tell() == 0:
            raise ImageError(f'{what}: empty file (0 bytes), not an image')
        f.seek(0)
        try:
            with Image.open(f) as im:
                return im.size
        except Image.DecompressionBombError as e:
            raise ImageTooLargeError(f'{what}: too large to decode ({e})') \
                from None
        except UnidentifiedImageError:
            raise ImageError(f'{what}: not an image (no image format '
                             f'recognised)') from None
        except (OSError, ValueError) as e:
            raise ImageError(f'{what}: not an image that can be read '
                             f'({type(e).__name__}: {e})') from None


def read_image(source: Union[str, bytes],
               max_pixels: Optional[int] = DEFAULT_MAX_PIXELS,
               name: Optional[str] = None) -> np.ndarray:
    """The image as a BGR uint8 array (H, W, 3), as ``mmcv.imread`` gives
    it. ``source``: a path or the file's bytes; ``max_pixels``: the most
    width x height accepted (checked from the header before decoding;
    None: no limit); ``name``: how a message calls it. Raises
    :class:`ImageError` for a missing, empty, unreadable or oversized
    image, naming it."""
    what = _name(source, name)
    if isinstance(source, str) and not osp.isfile(source):
        raise ImageError(f'{what}: no such file')
    w, h = image_size(source, what)
    if max_pixels is not None and w * h > max_pixels:
        raise ImageTooLargeError(
            f'{what}: {w} x {h} = {w * h} pixels, more than '
                         f'the limit of {max_pixels} (raise it with '
                         f'--max-pixels / max_pixels if the memory allows)')
    import mmcv
    try:
        data = source
        if isinstance(source, str):
            with open(source, 'rb') as f:
                data = f.read()
        img = mmcv.imfrombytes(data, flag='color')
    except Exception as e:  # OpenCV and PIL raise many kinds
        raise ImageError(f'{what}: does not decode ({type(e).__name__}: '
                         f'{e})') from None
    if img is None or img.shape[:2] != (h, w):
        raise ImageError(f'{what}: does not decode to its {w} x {h} pixels '
                         f'(truncated or damaged, or a format OpenCV does '
                         f'not read)')
    return img


__all__ = ['DEFAULT_MAX_PIXELS', 'ImageError', 'ImageTooLargeError',
           'image_size', 'read_image']
