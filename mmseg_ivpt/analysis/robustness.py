"""Noise robustness (iVPT paper Figs. 4 and 6): a model evaluated on its test
split with seeded Gaussian noise added to the input (docs/robustness.md).

The noise rate r is the standard deviation of the noise relative to the
normalised input: the images go through the config's own test pipeline and
data preprocessor (mean/std normalisation, padding), then
``x + r * eps`` with ``eps ~ N(0, I)`` of the input's shape. In pixel units
the noise of channel c has std ``r * std_c`` (``std_c`` of the
preprocessor: 58.4, 57.1, 57.4 for the ImageNet values); at r = 1 the noise
is as strong as the per-channel spread the normaliser assumes. r = 0 leaves
the model, data and evaluation untouched (the same runner as
``tools/test.py``).
"""
import csv
import os.path as osp
from typing import Dict, List, Optional, Sequence

import torch
from torch import Tensor

#: What the metric defaults to, first found in the runner's results.
DEFAULT_METRICS = ('accuracy/top1', 'mIoU')


class InputNoise:
    """Adds seeded Gaussian noise to what a data preprocessor returns.

    ``InputNoise(preprocessor, seed)`` replaces ``preprocessor.forward``
    (the original is kept). :meth:`reset` sets the rate and restarts the
    noise stream: the i-th image of a test run (in loader order) then gets
    the same ``eps`` at every rate and for every model of the same input
    size, so curves differ by the models, not by the draws.
    """

    def __init__(self, preprocessor, seed: int = 0):
        self.preprocessor = preprocessor
        self.forward = preprocessor.forward
        self.seed = seed
        self.rate = 0.
        self.generator = torch.Generator()
        preprocessor.forward = self

    def reset(self, rate: float) -> None:
        if not rate >= 0:
            raise ValueError(f'noise rate must be >= 0, got {rate!r}')
        self.rate = float(rate)
        self.generator.manual_seed(self.seed)

    def noise_like(self, x: Tensor) -> Tensor:
        """``rate * eps`` with x's shape (one image), from the stream."""
        eps = torch.randn(x.shape, generator=self.generator,
                          dtype=torch.float32)
        return (self.rate * eps).to(device=x.device, dtype=x.dtype)

    def __call__(self, data: dict, training: bool = False) -> dict:
        out = self.forward(data, training)
        if self.rate == 0.:
            return out
        inputs = out['inputs']
        if isinstance(inputs, Tensor):
            noise = torch.stack([self.noise_like(x) for x in inputs])
            out['inputs'] = inputs + noise
        else:  # a list of images of different sizes
            out['inputs'] = [x + self.noise_like(x) for x in inputs]
        return out

    def restore(self) -> None:
        self.preprocessor.forward = self.forward


def pick_metric(metrics: Dict[str, float], name: Optional[str]) -> str:
    """The metric to report: ``name``, else the first of
    :data:`DEFAULT_METRICS` the evaluator returned."""
    if name is not None:
        if name not in metrics:
            raise KeyError(f'--metric {name!r} is not among the evaluator\'s '
                           f'results {sorted(metrics)}')
        return name
    for key in DEFAULT_METRICS:
        if key in metrics:
            return key
    raise KeyError(f'none of {DEFAULT_METRICS} among the evaluator\'s '
                   f'results {sorted(metrics)}; pass --metric')


def evaluate_under_noise(runner, rates: Sequence[float], seed: int = 0,
                         metric: Optional[str] = None) -> List[dict]:
    """``runner.test()`` once per rate, noise added after the runner's data
    preprocessor. Returns ``[{'rate', 'metric', 'value', 'all'}]``."""
    model = runner.model
    model = getattr(model, 'module', model)
    noise = InputNoise(model.data_preprocessor, seed)
    rows = []
    try:
        for rate in rates:
            noise.reset(rate)
            results = runner.test()
            key = pick_metric(results, metric)
            rows.append(dict(rate=float(rate), metric=key,
                             value=float(results[key]),
                             all={k: v for k, v in results.items()
                                  if isinstance(v, (int, float))}))
    finally:
        noise.restore()
    return rows


CSV_FIELDS = ('model', 'rate', 'metric', 'value', 'config', 'checkpoint')


def write_csv(path: str, rows: List[dict]) -> None:
    """One line per (model, rate)."""
    with open(path, 'w', newline='') as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction='ignore')
        w.writeheader()
        for r in rows:
            w.writerow({**r, 'value': repr(r['value'])})


def plot(path: str, rows: List[dict], title: str = '') -> None:
    """Metric against noise rate, one line per model (matplotlib, Agg)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 3.6), dpi=120)
    models = list(dict.fromkeys(r['model'] for r in rows))
    for m in models:
        pts = sorted((r['rate'], r['value']) for r in rows if r['model'] == m)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker='o',
                label=m)
    metrics = sorted({r['metric'] for r in rows})
    ax.set_xlabel('Gaussian noise rate r (noise std / normalised input)')
    ax.set_ylabel(' / '.join(metrics))
    if title:
        ax.set_title(title)
    ax.grid(alpha=.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def model_labels(configs: Sequence[str],
                 labels: Optional[Sequence[str]]) -> List[str]:
    """``labels`` as given, else the config names (made unique)."""
    if labels:
        if len(labels) != len(configs):
            raise ValueError(f'--labels: {len(labels)} labels for '
                             f'{len(configs)} models')
        return list(labels)
    names = [osp.splitext(osp.basename(c))[0] for c in configs]
    return [n if names.count(n) == 1 else f'{n}#{i}'
            for i, n in enumerate(names)]
