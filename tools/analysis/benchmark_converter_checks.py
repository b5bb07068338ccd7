"""What the converters' integrity checks cost (docs/data.md):

* the CRC-32C of tfrecord records (``converters/crc32c.py``, numpy): MB/s
  for records of 1, 10 and 100 KB, 256 records at a time as the reader
  checks them;
* the rerun of a finished VTAB-1k task, which checks the sha256 of every
  image against ``images.sha256``: time per image on a generated task
  folder (``--images`` PNGs of ``--size`` x ``--size`` noise, the worst
  case for PNG size) in a temporary folder.

    python tools/analysis/benchmark_converter_checks.py [--images 2000] \
        [--size 224]
"""
import argparse
import hashlib
import os
import os.path as osp
import sys
import tempfile
import time

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
from tools._venv import ensure  # noqa: E402

ensure('torch', 'numpy', 'PIL')  # torch: `import mmseg_ivpt`

import numpy as np  # noqa: E402


def crc_rates(repeat: int = 3):
    from mmseg_ivpt.datasets.converters.crc32c import crc32c_many
    rng = np.random.RandomState(0)
    for kb in (1, 10, 100):
        recs = [rng.randint(0, 256, kb * 1024, np.uint8).tobytes()
                for _ in range(256)]
        crc32c_many(recs[:2])  # the shift tables, once
        best = min(_time(lambda: crc32c_many(recs)) for _ in range(repeat))
        mb = 256 * kb * 1024 / 2**20
        print(f'crc32c, {kb:3d} KB records: {mb / best:7.1f} MiB/s '
              f'({best / 256 * 1e6:.0f} us per record)')


def _time(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def rerun_cost(n: int, size: int):
    from mmseg_ivpt.datasets.converters import vtab
    from mmseg_ivpt.datasets.converters.common import (
        atomic_write_json,
        checksums,
        encode_image,
        sha256_file,
    )
    rng = np.random.RandomState(0)
    with tempfile.TemporaryDirectory() as d:
        os.makedirs(osp.join(d, 'images', 'test'))
        lines, sums, total = [], [], 0
        for i in range(n):
            rel = f'images/test/{i:06d}.png'
            data = encode_image(rng.randint(0, 256, (size, size, 3),
                                            np.uint8), 'png')
            with open(osp.join(d, rel), 'wb') as f:
                f.write(data)
            total += len(data)
            lines.append(f'{rel} 0\n')
            sums.append(f'{hashlib.sha256(data).hexdigest()}  {rel}\n')
        for name in vtab.TXT_FILES:
            with open(osp.join(d, name), 'w') as f:
                f.write(''.join(lines))
        with open(osp.join(d, vtab.SUMS), 'w') as f:
            f.write(''.join(sums))
        options = dict(benchmark=True)
        atomic_write_json(osp.join(d, vtab.MANIFEST), dict(
            options=options, txt_sha256=checksums(d, vtab.TXT_FILES),
            images_sha256=sha256_file(osp.join(d, vtab.SUMS))))
        res = vtab.check_done(d, options)
        assert res.done, res
        best = min(_time(lambda: vtab.check_done(d, options))
                   for _ in range(3))
        print(f'rerun check: {n} images of {size}x{size} '
              f'({total / n / 1024:.0f} KiB each): {best:.2f} s, '
              f'{best / n * 1e6:.0f} us per image, '
              f'{total / 2**20 / best:.0f} MiB/s (warm page cache)')


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--images', type=int, default=2000)
    p.add_argument('--size', type=int, default=224)
    args = p.parse_args()
    crc_rates()
    rerun_cost(args.images, args.size)


if __name__ == '__main__':
    main()
