"""The arithmetic a run trains in: float32, or bfloat16 where the CPU multiplies it natively.

With `precision="bfloat16"` the model is built under Keras' `mixed_bfloat16` policy: the
weights stay float32 (what the optimizer updates, the checkpoints hold and every sampler
reads), the forward and backward passes compute in bfloat16, which CPUs with AVX512-BF16
or AMX multiply at about twice the float32 rate (docs/performance.md, "bfloat16"). XLA's
CPU compiler has no fast bfloat16 matmul, so such a step runs without XLA. Validation and
the samples printed while training read a float32 copy of the weights, so the losses a
run reports are those `textgen evaluate` reports. `"auto"` (the default) is bfloat16 where
the CPU has those instructions, no GPU is used and the layers are wide enough for their
matmuls to dominate the step (BFLOAT16_MIN_UNITS); float32 elsewhere.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import keras
import tensorflow as tf

from textgen.core.config import ModelConfig
from textgen.model.network import build_model

BFLOAT16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo's names
# Narrower layers train faster in float32 with XLA: `quick`'s 2 x GRU(128) stepped at 72-78
# ms in bfloat16 against 57-62 in float32; 2 x 256 at 1.35x and 2 x 512 at 1.3x in bfloat16.
BFLOAT16_MIN_UNITS = 256


def cpu_has_bfloat16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether the CPU multiplies bfloat16 natively (Linux; False where it cannot tell)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return False
    flags = next((line for line in text.splitlines() if line.startswith("flags")), "")
    return any(flag in flags.split() for flag in BFLOAT16_FLAGS)


def resolve(precision: str, units: int) -> str:
    """The arithmetic ("float32" or "bfloat16") of a run's `precision` setting, with layers
    of `units`, on this machine."""
    if precision != "auto":
        return precision
    native = cpu_has_bfloat16() and not tf.config.list_logical_devices("GPU")
    return "bfloat16" if native and units >= BFLOAT16_MIN_UNITS else "float32"


@contextlib.contextmanager
def layers_in(precision: str):
    """Keras layers built inside compute in `precision` ("float32" or "bfloat16")."""
    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16" if precision == "bfloat16" else "float32")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(before)


def build_models(vocab_size: int, config: ModelConfig, roles: list[int], precision: str):
    """The model to train, computing in `precision`, and the float32 model validation and
    samples read (the same model in float32; a copy of it in bfloat16, kept current with
    `copy_weights`)."""
    with layers_in(precision):
        model = build_model(vocab_size, config, roles)
    return model, model if precision == "float32" else build_model(vocab_size, config, roles)


def copy_weights(source: keras.Model, target: keras.Model) -> None:
    """Give `target` (the same architecture) `source`'s weights; nothing if the same model."""
    if source is not target:
        for into, value in zip(target.weights, source.weights):
            into.assign(value)
