"""The repetition penalty (CTRL, Keskar et al., 2019): recently used tokens made less likely."""

from __future__ import annotations

import numpy as np

from textgen.core.lazy_tf import tf


class RepetitionPenalty:
    """The logits of tokens among a row's last `window` tokens are divided by `penalty`
    where positive and multiplied by it where negative; 1 is off. The history is each
    row's last `REPETITION_HISTORY` tokens, oldest first, -1 where empty."""

    @staticmethod
    def numpy(logits: np.ndarray, history: np.ndarray, penalty: float, window: int) -> np.ndarray:
        """logits (vocab,) float32; history (history,) ids."""
        recent = history[len(history) - window :] if window > 0 else history[:0]
        seen = np.zeros(len(logits), bool)
        seen[recent[recent >= 0]] = True
        penalty = np.float32(penalty)
        factor = np.where(logits > 0, np.float32(1.0) / penalty, penalty)
        return np.where(seen, logits * factor, logits).astype(np.float32)

    @staticmethod
    def graph(
        logits: tf.Tensor, history: tf.Tensor, penalty: tf.Tensor, window: tf.Tensor
    ) -> tf.Tensor:
        """logits (batch, vocab); history (batch, history); penalty, window (batch,)."""
        size = history.shape[1]
        recent = tf.range(size)[None, :] >= size - window[:, None]  # (batch, history)
        seen = mark_tokens(tf.shape(logits), history, recent & (history >= 0))
        factor = tf.where(logits > 0, 1.0 / penalty[:, None], penalty[:, None])
        return tf.where(seen, logits * factor, logits)


def mark_tokens(shape: tf.Tensor, ids: tf.Tensor, where: tf.Tensor) -> tf.Tensor:
    """(batch, vocab) bools: True at each row's `ids` (batch, n) where `where` holds."""
    rows = tf.broadcast_to(tf.range(shape[0])[:, None], tf.shape(ids))
    indices = tf.stack([rows, tf.maximum(ids, 0)], axis=-1)  # (batch, n, 2)
    marks = tf.tensor_scatter_nd_max(tf.zeros(shape, tf.int32), indices, tf.cast(where, tf.int32))
    return marks > 0
