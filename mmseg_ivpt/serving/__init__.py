"""The prompt bank as an HTTP service on Ray Serve (docs/serving.md).

Layer 5, above the inference API (:mod:`mmseg_ivpt.apis`). ``import
mmseg_ivpt`` does not import it: Ray and FastAPI are needed only here
(``requirements/serve.txt``). Modules:

* :mod:`.inputs`: the checks of a request before it may join a batch
  (sizes, pixels, the image itself, the fields), no Ray;
* :mod:`.metrics`: the Prometheus counters of a replica, no Ray;
* :mod:`.app`: the Ray Serve deployment (FastAPI ingress, ``serve.batch``)
  and :func:`~.app.start`;
* :mod:`.demo`: a bank of tiny random tasks, to try the service and
  benchmark it without trained tasks.
"""
