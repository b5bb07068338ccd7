"""CRC-32C (Castagnoli), the checksum of TFRecord framing, in numpy.

No package of the environment provides it (``google_crc32c`` and
``crc32c`` are not installed; ``zlib.crc32`` is the other polynomial).
TFRecord stores ``masked_crc(length bytes)`` and ``masked_crc(data)``
(tensorflow/core/lib/hash/crc32c.h ``Mask``: rotate right by 15 and add
0xa282ead8), and TensorFlow's reader checks both.

Speed comes from doing many records at once (:func:`crc32c_many`):
every record is cut into ``LANE``-byte lanes (zero bytes in front of the
first one: from a zero register they change nothing; the start value
0xFFFFFFFF enters as the first four bytes inverted); the registers of all
lanes of all records advance together four bytes a step (slicing-by-4,
with two 16-bit tables); each lane's register is then moved past the lanes
that follow it in its record by the "feed k zero bytes" operators of CRC
algebra (32x32 GF(2) matrices held as four 256-entry tables, k in binary),
and the lanes of a record are XORed together. numpy does the work; the
Python work per record is a few list operations.
"""
from functools import lru_cache
from typing import List, Sequence

import numpy as np

POLY = 0x82F63B78  # the reflected Castagnoli polynomial
LANE = 32          # bytes per lane (a power of two, at least 4)


def _byte_table() -> np.ndarray:
    t = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        t = np.where(t & 1, (t >> 1) ^ np.uint32(POLY), t >> 1)
    return t.astype(np.uint32)


_T0 = _byte_table()
_T0_LIST = [int(x) for x in _T0]
_TS = [_T0]  # _TS[k][b]: the register after byte b and then k zero bytes
for _ in range(3):
    _TS.append(_T0[_TS[-1] & 0xFF] ^ (_TS[-1] >> 8))
# two 16-bit tables do the four byte tables' work in half the numpy calls
_X = np.arange(1 << 16, dtype=np.uint32)
_LO = _TS[3][_X & 0xFF] ^ _TS[2][_X >> 8]   # register bits 0..15
_HI = _TS[1][_X & 0xFF] ^ _TS[0][_X >> 8]   # register bits 16..31
del _X


def _raw_small(data, reg: int = 0) -> int:
    """The register after ``data`` from ``reg`` (byte loop, no
    inversions)."""
    table = _T0_LIST
    for b in data:
        reg = table[(reg ^ b) & 0xFF] ^ (reg >> 8)
    return reg


def _apply(cols: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The GF(2) matrix with columns ``cols`` (32 uint32) times ``x``."""
    bits = (x[..., None] >> np.arange(32, dtype=np.uint32)) & 1
    return np.bitwise_xor.reduce(np.where(bits.astype(bool), cols, 0),
                                 axis=-1).astype(np.uint32)


@lru_cache(maxsize=None)
def _cols(level: int) -> np.ndarray:
    """The operator "feed LANE * 2**level zero bytes", as its columns."""
    if level == 0:  # one zero byte, squared to 2, 4, ... LANE zero bytes
        cols = np.array([_raw_small(b'\0', 1 << i) for i in range(32)],
                        np.uint32)
        for _ in range(LANE.bit_length() - 1):
            cols = _apply(cols, cols)
        return cols
    prev = _cols(level - 1)
    return _apply(prev, prev)


@lru_cache(maxsize=None)
def _shift(level: int) -> List[np.ndarray]:
    """:func:`_cols` as four tables, one per byte of the register."""
    b = np.arange(256, dtype=np.uint32)
    return [_apply(_cols(level), b << np.uint32(8 * k)) for k in range(4)]


def _lookup(tables, r: np.ndarray) -> np.ndarray:
    return (tables[0][r & 0xFF] ^ tables[1][(r >> 8) & 0xFF] ^
            tables[2][(r >> 16) & 0xFF] ^ tables[3][r >> 24])


def crc32c_many(items: Sequence[bytes]) -> List[int]:
    """CRC-32C of each of ``items`` (bytes-like)."""
    out = [0] * len(items)
    big = []
    for i, x in enumerate(items):
        if len(x) < 4:  # too short for the start-value trick
            out[i] = _raw_small(bytes(x), 0xFFFFFFFF) ^ 0xFFFFFFFF
        else:
            big.append(i)
    if not big:
        return out
    lens = np.array([len(items[i]) for i in big], np.int64)
    lanes = -(-lens // LANE)
    pads = lanes * LANE - lens
    parts = []
    for i, p in zip(big, pads.tolist()):
        parts += (bytes(p), items[i])
    buf = np.frombuffer(b''.join(parts), np.uint8).copy()
    ends = np.cumsum(lanes)
    first = ends - lanes  # each record's first lane
    starts = first * LANE + pads  # each record's first data byte
    buf[starts[:, None] + np.arange(4)] ^= 0xFF
    words = buf.view('<u4').reshape(-1, LANE // 4).T.copy()
    r = np.zeros(words.shape[1], np.uint32)
    for w in words:
        r ^= w
        r = _LO[r & 0xFFFF] ^ _HI[r >> 16]
    # k: the lanes after each lane in its record
    k = np.repeat(ends, lanes) - 1 - np.arange(len(r))
    level = 0
    while (k >> level).any():
        sel = ((k >> level) & 1).astype(bool)
        r[sel] = _lookup(_shift(level), r[sel])
        level += 1
    crcs = np.bitwise_xor.reduceat(r, first) ^ np.uint32(0xFFFFFFFF)
    for i, c in zip(big, crcs.tolist()):
        out[i] = c
    return out


def crc32c(data: bytes) -> int:
    """CRC-32C of ``data`` (``crc32c(b'123456789') == 0xE3069283``)."""
    return crc32c_many([data])[0]


def mask(crc: int) -> int:
    """TFRecord's masking of a CRC-32C."""
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF
