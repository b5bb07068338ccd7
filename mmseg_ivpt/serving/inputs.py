"""The checks a prediction request passes before it may join a batch, so
that one bad request never fails the others (docs/serving.md, "Limits").

Each failure is a :class:`RequestError`: an HTTP status (4xx) and a
message naming the field or the limit. No Ray, no FastAPI: the multipart
body is split here (standard library; the service needs no
``python-multipart``), the image's size is read from its header by PIL
before anything decodes it, and the image is decoded as the bank's own
:meth:`~mmseg_ivpt.apis.bank.PromptBank.predict` reads a file (mmcv's
``imfrombytes``: BGR, the same pixels as ``mmcv.imread`` of that file).
"""
import base64
import binascii
import json
from email.parser import BytesHeaderParser
from typing import Dict, NamedTuple, Optional, Tuple

import numpy as np

#: what a JSON body and a multipart body hold
FIELDS = ('task', 'image')
JSON_FIELDS = ('task', 'image_b64')


class RequestError(Exception):
    """A request the service refuses: ``status`` and a message naming the
    problem (the body of the answer: ``{"error": message}``)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


class Limits(NamedTuple):
    """What a prediction request may send."""

    #: bytes of the image file (a JSON body may be 4/3 of it, base64)
    max_upload_bytes: int = 16 * 2**20
    #: width x height of the image, read from its header before decoding
    max_pixels: int = 4096 * 4096

    @property
    def max_body_bytes(self) -> int:
        """The largest request body: the image as base64 in JSON, plus
        64 KiB for the other fields and the multipart headers."""
        return self.max_upload_bytes * 4 // 3 + 4 + 2**16


def check_length(content_length: Optional[str], limits: Limits) -> None:
    """A named error unless the request says a body length within the
    limit (checked before the body is read)."""
    if content_length is None:
        raise RequestError(411, 'the request has no Content-Length; send '
                           'the body with its length (not chunked)')
    try:
        n = int(content_length)
    except ValueError:
        raise RequestError(400, f'Content-Length {content_length!r} is not '
                           f'a number') from None
    if n > limits.max_body_bytes:
        raise RequestError(413, f'the body is {n} bytes; the limit is '
                           f'{limits.max_body_bytes} (images up to '
                           f'{limits.max_upload_bytes} bytes)')


def parse_multipart(body: bytes, content_type: str
                    ) -> Dict[str, Tuple[Optional[str], bytes]]:
    """The parts of a ``multipart/form-data`` body: field name ->
    (file name or None, content). RFC 7578: parts between ``--boundary``
    lines, each headers, an empty line, the content."""
    head = BytesHeaderParser().parsebytes(
        b'Content-Type: ' + content_type.encode('latin-1') + b'\r\n\r\n')
    boundary = head.get_param('boundary')
    if not boundary:
        raise RequestError(400, 'multipart/form-data without a boundary')
    delim = b'--' + boundary.encode('latin-1')
    chunks = body.split(delim)
    if len(chunks) < 3 or not chunks[-1].startswith(b'--'):
        raise RequestError(400, 'the multipart body is not complete (no '
                           'closing boundary)')
    fields = {}
    for chunk in chunks[1:-1]:
        if not chunk.startswith(b'\r\n') or not chunk.endswith(b'\r\n'):
            raise RequestError(400, 'a multipart part is malformed')
        headers, sep, content = chunk[2:-2].partition(b'\r\n\r\n')
        if not sep:
            raise RequestError(400, 'a multipart part has no headers')
        msg = BytesHeaderParser().parsebytes(headers + b'\r\n\r\n')
        name = msg.get_param('name', header='content-disposition')
        if not name:
            raise RequestError(400, 'a multipart part has no field name')
        if name in fields:
            raise RequestError(400, f'the field {name!r} is given twice')
        fields[name] = (msg.get_param('filename',
                                      header='content-disposition'), content)
    return fields


def json_fields(body: bytes, fields, note: str = '') -> dict:
    """The JSON object of ``body``, each of ``fields`` a non-empty string
    and no other key (a named 400 otherwise)."""
    try:
        doc = json.loads(body)
    except ValueError as e:
        raise RequestError(400, f'the body is not JSON: {e}') from None
    if not isinstance(doc, dict):
        raise RequestError(400, f'the JSON body must be an object with '
                           f'{list(fields)}')
    missing = [f for f in fields
               if not isinstance(doc.get(f), str) or not doc[f]]
    extra = sorted(set(doc) - set(fields))
    if missing or extra:
        raise RequestError(400, f'JSON fields: missing or not a string '
                           f'{missing}, unknown {extra}; send '
                           f'{list(fields)}{note}')
    return doc


def read_predict_request(body: bytes, content_type: str,
                         limits: Limits) -> Tuple[str, bytes]:
    """(task name, image bytes) of a prediction request: a multipart form
    with fields ``task`` and ``image`` (a file), or a JSON object
    ``{"task": ..., "image_b64": ...}``."""
    kind = content_type.split(';')[0].strip().lower()
    if kind == 'multipart/form-data':
        fields = parse_multipart(body, content_type)
        missing = [f for f in FIELDS if f not in fields]
        extra = sorted(set(fields) - set(FIELDS))
        if missing or extra:
            raise RequestError(400, f'form fields: missing {missing}, '
                               f'unknown {extra}; send {list(FIELDS)}')
        task = fields['task'][1].decode('utf-8', 'replace')
        image = fields['image'][1]
    elif kind == 'application/json':
        doc = json_fields(body, JSON_FIELDS)
        task = doc['task']
        try:
            image = base64.b64decode(doc['image_b64'], validate=True)
        except (binascii.Error, ValueError) as e:
            raise RequestError(400, f'image_b64 is not base64: {e}') \
                from None
    else:
        raise RequestError(415, f'Content-Type {kind or "(none)"!r}; send '
                           f'multipart/form-data (fields task, image) or '
                           f'application/json {{task, image_b64}}')
    if not task:
        raise RequestError(400, 'the field task is empty')
    if not image:
        raise RequestError(400, 'the image is empty')
    if len(image) > limits.max_upload_bytes:
        raise RequestError(413, f'the image is {len(image)} bytes; the '
                           f'limit is {limits.max_upload_bytes}')
    return task, image


def decode_image(data: bytes, limits: Limits) -> np.ndarray:
    """The image (H, W, 3) BGR uint8, as ``mmcv.imread`` reads its file;
    its pixel count is checked from the header before it is decoded
    (decompression bombs): :func:`mmseg_ivpt.apis.images.read_image`, the
    check ``tools/multitask_infer.py`` makes, its errors as 413 (too large)
    and 415 (not an image that decodes)."""
    from ..apis.images import ImageError, ImageTooLargeError, read_image
    try:
        return read_image(data, limits.max_pixels, name='the image')
    except ImageTooLargeError as e:
        raise RequestError(413, str(e)) from None
    except ImageError as e:
        raise RequestError(415, str(e)) from None
