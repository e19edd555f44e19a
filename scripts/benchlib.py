"""Shared pieces of the benchmarks: the reference model, a matmul peak, interleaved timing.

The machine is shared and noisy, so every figure is a ratio against a baseline measured
in the same run: the variants are timed in turns (ABCABC...), several rounds, and the
median of each is reported.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

import textgen  # noqa: E402, F401  (its runtime settings, before the first tensor)
from textgen.core.config import ModelConfig
from textgen.data.vocabulary import Vocabulary
from textgen.model.network import build_model

# The reference model of the performance issue: char level, 2 x 256, embedding 64,
# a 65-token vocabulary (Tiny Shakespeare's), batch 64 x 100.
VOCAB = Vocabulary(
    "char", sorted(set("\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"))
)
LAYERS, UNITS, EMBEDDING = 2, 256, 64


def reference_model(cell: str, units: int = UNITS, skip_connections: bool = False):
    """By default as plain Keras and the tutorial build it: the logits read the top layer."""
    config = ModelConfig(
        cell, LAYERS, units, EMBEDDING, dropout=0.0, skip_connections=skip_connections
    )
    return build_model(VOCAB.size, config)


def forward_flops_per_token(cell: str, units: int = UNITS) -> float:
    """Multiply-adds x 2 of one token through the model (matmuls only)."""
    gates = {"lstm": 4, "gru": 3, "rnn": 1}[cell]
    flops, width = 0.0, EMBEDDING
    for _ in range(LAYERS):
        flops += 2 * (width + units) * gates * units
        width = units
    return flops + 2 * units * VOCAB.size


def matmul_peak(seconds: float = 2.0) -> float:
    """float32 FLOP/s of a large square matmul on this machine, now."""
    n = 1024
    a = tf.random.normal([n, n])
    matmul = tf.function(lambda a: tf.matmul(a, a))
    matmul(a).numpy()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        matmul(a).numpy()
        count += 1
    return 2 * n**3 * count / (time.perf_counter() - start)


def interleaved(variants: dict[str, Callable[[], float]], rounds: int) -> dict[str, float]:
    """Call each variant (which returns a rate) in turns; the median rate of each."""
    rates: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, run in variants.items():
            rates[name].append(run())
    return {name: statistics.median(values) for name, values in rates.items()}


def machine() -> str:
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"TF {tf.__version__}, Python {platform.python_version()}"
    )
