"""Converters that make the data sets the classification configs read.

* :mod:`.vtab`: VTAB-1k's 19 tasks from TensorFlow Datasets (read without
  tensorflow) into ``<root>/<task>/{train800,val200,train800val200,test}.txt``
  and ``images/<split>/NNNNNN.png`` (tools/dataset_converters/vtab1k.py);
* :mod:`.fgvc`: the five FGVC data sets from their official archives into
  VPT's ``{train,val,test}.json`` layout (tools/dataset_converters/fgvc.py);
* :mod:`.verify`: the check of any such folder (tools/dataset_converters/
  verify.py).

Every decision and its source is in docs/data.md. Importing this package
imports neither tensorflow_datasets nor scipy; the functions that need them
import them.
"""
from .common import ConversionError  # noqa: F401

__all__ = ['ConversionError']
