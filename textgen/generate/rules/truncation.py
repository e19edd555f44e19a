"""Top-k and top-p (nucleus) truncation: only the K most likely tokens, then only the
smallest set of them with probability mass P, may be drawn. One rule, as the mass is
counted after top-k. `[UNK]`, never drawn, is counted in neither.

A top-p below float32's smallest normal number (1.2e-38) is read as that number: as with
any top-p that small, only the most likely token is kept (float32 arithmetic would flush
it to 0, which would otherwise keep nothing).
"""

from __future__ import annotations

import numpy as np

from textgen.core.lazy_tf import tf
from textgen.generate.rules.never_unk import NEG_INF, NeverUnk
from textgen.generate.rules.temperature import SMALLEST_NORMAL


class Truncation:
    """Scaled logits with everything outside top-k / top-p set to -inf. top_k <= 0 and
    top_p >= 1 switch those filters off."""

    @staticmethod
    def in_use(top_k: int, top_p: float) -> bool:
        return top_k > 0 or top_p < 1.0

    @staticmethod
    def numpy(scaled: np.ndarray, top_k: int, top_p: float) -> np.ndarray:
        """One row's scaled logits (vocab,) float32, truncated."""
        scaled = NeverUnk.numpy(scaled)
        top_p = np.float32(max(top_p, SMALLEST_NORMAL))
        ranked = np.sort(scaled)[::-1]
        k_min = ranked[min(max(top_k - 1, 0), len(ranked) - 1)] if top_k > 0 else -np.inf
        ranked = np.where(ranked >= k_min, ranked, -np.inf)
        probs = np.exp(ranked - ranked[0])
        probs = (probs / probs.sum()).astype(np.float32)
        mass_before = np.cumsum(probs) - probs
        kept = (mass_before < top_p) | (top_p >= 1.0)
        p_min = np.min(np.where(kept, ranked, np.inf))
        return np.where(scaled >= max(k_min, p_min), scaled, -np.inf).astype(np.float32)

    @staticmethod
    def graph_in_use(top_k: tf.Tensor, top_p: tf.Tensor) -> tf.Tensor:
        """Whether any row uses top-k or top-p (a scalar bool; a loop computes it once)."""
        return tf.reduce_any(top_k > 0) | tf.reduce_any(top_p < 1.0)

    @staticmethod
    def graph(scaled: tf.Tensor, top_k: tf.Tensor, top_p: tf.Tensor) -> tf.Tensor:
        """Scaled logits (batch, vocab), truncated per row: top_k (batch,) int32, top_p
        (batch,) float32."""
        scaled = scaled + NeverUnk.graph(scaled.shape[-1])
        top_p = tf.maximum(top_p, SMALLEST_NORMAL)
        ranked = tf.sort(scaled, axis=-1, direction="DESCENDING")  # (batch, vocab)
        vocab = tf.shape(ranked)[-1]
        kth = tf.gather(ranked, tf.clip_by_value(top_k - 1, 0, vocab - 1), batch_dims=1)
        k_min = tf.where(top_k > 0, kth, NEG_INF)[:, None]
        ranked = tf.where(ranked >= k_min, ranked, NEG_INF)
        mass_before = tf.math.cumsum(tf.nn.softmax(ranked), axis=-1, exclusive=True)
        kept = (mass_before < top_p[:, None]) | (top_p[:, None] >= 1.0)
        p_min = tf.reduce_min(tf.where(kept, ranked, float("inf")), axis=-1, keepdims=True)
        return tf.where(scaled >= tf.maximum(k_min, p_min), scaled, NEG_INF)
