"""A replica's counters in Prometheus's text format (``GET /metrics``).

A small lock-protected set (no ``prometheus_client``): requests per task
and HTTP status, the latency of prediction requests per task, and the
sizes of the batches the bank ran. Each replica counts its own; every
series carries a ``replica`` label, and the service's totals are their sum
(docs/serving.md, "Metrics"). Requests naming no task of the bank are
counted under ``task="-"``, so that a client cannot make new series.
"""
import threading
from collections import Counter
from typing import Dict, Sequence, Tuple

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                   10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
PREFIX = 'ivpt_serve'


class _Histogram:
    def __init__(self, buckets: Sequence[float]):
        self.buckets = tuple(buckets)
        self.counts = [0] * len(self.buckets)
        self.total, self.n = 0.0, 0

    def observe(self, value: float) -> None:
        for i, b in enumerate(self.buckets):
            if value <= b:
                self.counts[i] += 1
        self.total += value
        self.n += 1

    def lines(self, name: str, labels: str) -> list:
        sep = ',' if labels else ''
        out = [f'{name}_bucket{{{labels}{sep}le="{b:g}"}} {c}'
               for b, c in zip(self.buckets, self.counts)]
        out += [f'{name}_bucket{{{labels}{sep}le="+Inf"}} {self.n}',
                f'{name}_sum{{{labels}}} {self.total:.6f}',
                f'{name}_count{{{labels}}} {self.n}']
        return out


class Metrics:
    """The counters of one replica; any thread may update or read them."""

    def __init__(self, replica: str):
        self.replica = _escape(replica)
        self._lock = threading.Lock()
        self._requests: Counter = Counter()
        self._latency: Dict[str, _Histogram] = {}
        self._batches = _Histogram(BATCH_BUCKETS)

    def request(self, endpoint: str, task: str, status: int,
                seconds: float) -> None:
        with self._lock:
            self._requests[endpoint, task, status] += 1
            if endpoint == 'predict':
                self._latency.setdefault(
                    task, _Histogram(LATENCY_BUCKETS)).observe(seconds)

    def batch(self, size: int) -> None:
        with self._lock:
            self._batches.observe(size)

    def text(self) -> str:
        r = f'replica="{self.replica}"'
        with self._lock:
            requests: Dict[Tuple, int] = dict(self._requests)
            lines = [
                f'# HELP {PREFIX}_requests_total HTTP requests answered, by '
                f'endpoint, task and status',
                f'# TYPE {PREFIX}_requests_total counter']
            lines += [f'{PREFIX}_requests_total{{{r},endpoint="{e}",'
                      f'task="{_escape(t)}",code="{c}"}} {n}'
                      for (e, t, c), n in sorted(requests.items())]
            lines += [
                f'# HELP {PREFIX}_request_seconds latency of POST '
                f'/v1/predict in the replica, by task',
                f'# TYPE {PREFIX}_request_seconds histogram']
            for t, h in sorted(self._latency.items()):
                lines += h.lines(f'{PREFIX}_request_seconds',
                                 f'{r},task="{_escape(t)}"')
            lines += [
                f'# HELP {PREFIX}_batch_size images per call of the bank',
                f'# TYPE {PREFIX}_batch_size histogram']
            lines += self._batches.lines(f'{PREFIX}_batch_size', r)
        return '\n'.join(lines) + '\n'


def _escape(value: str) -> str:
    return str(value).replace('\\', r'\\').replace('"', r'\"').replace(
        '\n', r'\n')
