"""Print the trainable and total parameters of a config's model.

    python tools/count_params.py configs/setr_ivpt_vitl_ade20k.py [...]

The model is built on the meta device (no weights allocated, no checkpoint
read), so ViT-L configs take seconds.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine.config import Config, DictAction  # noqa: E402

from mmseg_ivpt.analysis.params import build_model_on_meta, count_parameters  # noqa


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('configs', nargs='+')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args()
    print('| config | trainable | backbone trainable | total |')
    print('|---|---:|---:|---:|')
    for path in args.configs:
        cfg = Config.fromfile(path)
        if args.cfg_options:
            cfg.merge_from_dict(args.cfg_options)
        n = count_parameters(build_model_on_meta(cfg))
        print(f"| {osp.basename(path)} | {n['trainable']:,} | "
              f"{n.get('backbone.trainable', 0):,} | {n['total']:,} |")


if __name__ == '__main__':
    main()
