"""Shared pytest setup. tests/ is deliberately not a package: mmsegmentation's
wheel installs a stray top-level ``tests`` package into site-packages, and
ours must never be confused with it (pytest imports our files by their own
names from this folder; see also test_registry.py)."""
import os
import sys

import pytest
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if ROOT not in sys.path:  # run from a clone without `pip install -e`
    sys.path.insert(0, ROOT)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
