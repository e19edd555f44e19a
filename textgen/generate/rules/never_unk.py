"""Never `[UNK]`: the unknown token is never drawn, however likely the model finds it."""

from __future__ import annotations

import numpy as np

from textgen.core.lazy_tf import tf
from textgen.data.vocabulary import UNK_ID

NEG_INF = float("-inf")


class NeverUnk:
    """-inf on `[UNK]`'s score, in every row and every sampler."""

    @staticmethod
    def numpy(scores: np.ndarray) -> np.ndarray:
        """`scores` (vocab,) float32 with `[UNK]`'s set to -inf (a copy)."""
        scores = scores.copy()
        scores[UNK_ID] = -np.inf
        return scores

    @staticmethod
    def graph(vocab_size: int) -> tf.Tensor:
        """(vocab,) zeros with -inf on `[UNK]`: added to scores so it is never chosen."""
        return tf.one_hot(UNK_ID, vocab_size, on_value=NEG_INF, off_value=0.0)
