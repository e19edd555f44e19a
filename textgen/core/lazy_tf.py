"""`tf`, imported on first use: modules that hold a rule's NumPy form (read without
TensorFlow, by the NumPy sampler) beside its graph form (built only by the generator)."""

from __future__ import annotations

import importlib


class _LazyTensorFlow:
    """Stands in for the `tensorflow` module; imports it at the first attribute read."""

    def __getattr__(self, name: str):
        return getattr(importlib.import_module("tensorflow"), name)


tf = _LazyTensorFlow()
