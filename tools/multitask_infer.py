"""Predict many images of many tasks with one frozen ViT (a prompt bank).

    python tools/multitask_infer.py BANK.yaml TASK=IMAGE [TASK=IMAGE ...] \
        [--list FILE] [--out-dir DIR] [--batch-size 16] [--mode pad|group] \
        [--max-pixels 67108864]

BANK.yaml names the pretrained ViT and the tasks (config + checkpoint each;
format: docs/bank.md). Each image is given with its task, ``TASK=IMAGE`` on
the command line or one per line in ``--list FILE``. Every ``--batch-size``
images, mixed across tasks, go through the shared ViT once.

Writes ``DIR/predictions.json`` (one entry per image, in the given order:
classification: label, class name, score; segmentation: the mask file and
the classes present; an image that cannot be predicted, e.g. empty,
unreadable or larger than ``--max-pixels``: ``error``, naming it, while the
others are predicted; the exit status is then 1) and, for segmentation
tasks, label masks ``DIR/masks/TASK/NAME.png``, the values
``tools/test.py --out`` writes (the numbering of the task's annotation
files: the class index of each pixel, + 1 for a data set with
reduce_zero_label; docs/bank.md). Running it again overwrites the same
files with the same content.
"""
import argparse
import json
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from tools._venv import ensure  # noqa: E402

ensure()  # the repository's .venv unless this python has the packages


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('bank', help='the bank YAML file')
    p.add_argument('items', nargs='*', metavar='TASK=IMAGE',
                   help='an image and the task that predicts it')
    p.add_argument('--list', help='a file with one TASK=IMAGE per line '
                   '(relative image paths: relative to that file)')
    p.add_argument('--out-dir', default='multitask_out',
                   help='where predictions.json and masks/ go')
    p.add_argument('--batch-size', type=int, default=16,
                   help='images per mixed batch through the ViT')
    p.add_argument('--device', help='overrides the bank file (cpu, cuda)')
    p.add_argument('--mode', choices=('pad', 'group'),
                   help='overrides the bank file; see docs/bank.md')
    p.add_argument('--max-pixels', type=int, default=None,
                   help='the largest image (width x height) accepted, read '
                   'from its header before decoding; default 8192 x 8192 = '
                   '67108864; 0: no limit')
    args = p.parse_args(argv)
    items = [(a, None) for a in args.items]
    if args.list:
        if not osp.isfile(args.list):
            p.error(f'--list {args.list}: no such file')
        here = osp.dirname(osp.abspath(args.list))
        with open(args.list) as f:
            items += [(line.strip(), here) for line in f
                      if line.strip() and not line.startswith('#')]
    if not items:
        p.error('no images: give TASK=IMAGE arguments or --list FILE')
    if args.batch_size < 1:
        p.error(f'--batch-size must be >= 1, got {args.batch_size}')
    if args.max_pixels is not None and args.max_pixels < 0:
        p.error(f'--max-pixels must be >= 0 (0: no limit), got '
                f'{args.max_pixels}')
    args.tasks, args.images = [], []
    for item, here in items:
        task, sep, img = item.partition('=')
        if not sep or not task or not img:
            p.error(f'{item!r} is not TASK=IMAGE')
        if here and not osp.isabs(img):
            img = osp.join(here, img)
        if not osp.isfile(img):
            p.error(f'{item!r}: image {img} does not exist')
        args.tasks.append(task)
        args.images.append(img)
    return args


def mask_name(task: str, img: str, taken: set) -> str:
    stem = osp.splitext(osp.basename(img))[0]
    name, i = osp.join('masks', task, stem + '.png'), 1
    while name in taken:
        name, i = osp.join('masks', task, f'{stem}_{i}.png'), i + 1
    taken.add(name)
    return name


def entry(bank, task: str, img: str, pred, out_dir: str, taken: set):
    """The JSON entry of one prediction (writing its mask)."""
    from mmseg_ivpt.apis.prediction import (
        label_mask,
        mask_png,
        prediction_json,
    )
    info = bank.task_info(task)
    name = None
    if info.kind == 'segmentation':  # as tools/test.py --out writes it
        name = mask_name(task, img, taken)
        path = osp.join(out_dir, name)
        os.makedirs(osp.dirname(path), exist_ok=True)
        with open(path, 'wb') as f:
            f.write(mask_png(label_mask(info, pred)))
    return prediction_json(info, pred, image=img, mask=name)


def predict_batch(bank, imgs, tasks, max_pixels):
    """(predictions, errors) of one batch, each a list with an entry per
    image (None where the other list has it): every image is read first
    (named errors for an empty, unreadable or oversized one); the readable
    ones are predicted together, and one at a time if that fails, so that
    one bad image costs only its own prediction."""
    from mmseg_ivpt.apis.bank import BankError
    from mmseg_ivpt.apis.images import ImageError, read_image
    preds, errors, arrays = [None] * len(imgs), [None] * len(imgs), {}
    for i, img in enumerate(imgs):
        try:
            arrays[i] = read_image(img, max_pixels)
        except ImageError as e:
            errors[i] = str(e)
    ok = list(arrays)
    if not ok:
        return preds, errors
    try:
        for i, p in zip(ok, bank.predict([arrays[i] for i in ok],
                                         [tasks[i] for i in ok])):
            preds[i] = p
        return preds, errors
    except (BankError, MemoryError, RuntimeError):
        pass  # find the image(s) at fault
    for i in ok:
        try:
            preds[i] = bank.predict([arrays[i]], [tasks[i]])[0]
        except (BankError, MemoryError, RuntimeError) as e:
            errors[i] = f'{imgs[i]}: {type(e).__name__}: {e}'
    return preds, errors


def main(argv=None):
    args = parse_args(argv)
    from mmengine.utils import ProgressBar

    from mmseg_ivpt.apis.bank import PromptBank
    from mmseg_ivpt.apis.images import DEFAULT_MAX_PIXELS
    from mmseg_ivpt.apis.prediction import error_json
    from mmseg_ivpt.models import CheckpointMismatchError
    max_pixels = DEFAULT_MAX_PIXELS if args.max_pixels is None else \
        (args.max_pixels or None)
    try:
        bank = PromptBank.from_yaml(args.bank, device=args.device,
                                    mode=args.mode)
    except (ValueError, TypeError, FileNotFoundError,
            CheckpointMismatchError) as e:  # named errors: no traceback
        sys.exit(f'error: {args.bank}: {e}')
    unknown = sorted(set(args.tasks) - set(bank.names))
    if unknown:
        sys.exit(f'error: unknown task {unknown[0]!r}; {args.bank} has '
                 f'{bank.names}')
    mem = bank.memory()
    print(f'bank: {len(bank.names)} tasks on one ViT of '
          f'{mem["shared"] / 2**20:.1f} MiB; each task adds ' + ', '.join(
              f'{n} {b / 2**10:.1f} KiB' for n, b in mem['tasks'].items()),
          flush=True)
    os.makedirs(args.out_dir, exist_ok=True)
    entries, taken, failed = [], set(), []
    bar = ProgressBar(len(args.images))
    for s in range(0, len(args.images), args.batch_size):
        imgs = args.images[s:s + args.batch_size]
        tasks = args.tasks[s:s + args.batch_size]
        preds, errors = predict_batch(bank, imgs, tasks, max_pixels)
        for img, task, pred, err in zip(imgs, tasks, preds, errors):
            if err is None:
                entries.append(entry(bank, task, img, pred, args.out_dir,
                                     taken))
            else:
                entries.append(error_json(task, err, image=img))
                failed.append(err)
            bar.update()
    out = osp.join(args.out_dir, 'predictions.json')
    with open(out + '.tmp', 'w') as f:
        json.dump(entries, f, indent=1)
    os.replace(out + '.tmp', out)
    print(f'\nwrote {out} ({len(entries) - len(failed)} images predicted, '
          f'{len(failed)} failed)')
    if failed:
        for err in failed:
            print(f'error: {err}', file=sys.stderr)
        sys.exit(f'error: {len(failed)} of {len(entries)} images have no '
                 f'prediction (their entries in {out} say why)')


if __name__ == '__main__':
    main()
