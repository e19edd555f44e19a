"""Temperature: the logits divided by T before the draw; 0 is greedy.

A temperature below float32's smallest normal number (1.2e-38) is greedy too: float32
arithmetic flushes it to 0 in TensorFlow's kernels, so every sampler reads it so.
"""

from __future__ import annotations

import numpy as np

from textgen.core.lazy_tf import tf

SMALLEST_NORMAL = float(np.finfo(np.float32).tiny)


class Temperature:
    """Scaled logits: `logits x (1 / T)` in float32, unchanged for greedy rows."""

    @staticmethod
    def drawn(temperature: float) -> bool:
        """Whether a row with this temperature is sampled (else greedy)."""
        return float(np.float32(temperature)) >= SMALLEST_NORMAL

    @staticmethod
    def numpy(logits: np.ndarray, temperature: float) -> np.ndarray:
        """logits (vocab,) scaled as the graph scales them (a float32 division, then a
        float32 product)."""
        t = np.float32(temperature) if Temperature.drawn(temperature) else np.float32(1.0)
        return logits.astype(np.float32) * (np.float32(1.0) / t)

    @staticmethod
    def graph_drawn(temperature: tf.Tensor) -> tf.Tensor:
        """(batch,) bool: the rows that are sampled."""
        return temperature >= SMALLEST_NORMAL

    @staticmethod
    def graph(temperature: tf.Tensor) -> tf.Tensor:
        """(batch, 1) factors for the logits: 1 / temperature, and 1 for greedy rows."""
        safe = tf.where(Temperature.graph_drawn(temperature), temperature, 1.0)
        return (1.0 / safe)[:, None]
