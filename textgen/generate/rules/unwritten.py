"""Never a token without text of its own: a subword run's byte pieces for a part of a
character (a character its pieces lack, read from a prompt as its UTF-8 bytes) are read,
never written, so every sampler writes whole characters. Other levels have none.

Applied first, before every other rule, in every sampler: its NumPy form and its graph
form (a (vocab,) vector added to the logits) side by side.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from textgen.core.lazy_tf import tf


class Unwritten:
    """The ids of `texts` (each id's text, `[UNK]` first) that are empty."""

    def __init__(self, texts: Sequence[str]):
        self.ids = np.array([i for i, text in enumerate(texts) if i and text == ""], np.int64)
        self.size = len(texts)

    def __bool__(self) -> bool:
        return bool(len(self.ids))

    def numpy(self, scores: np.ndarray) -> np.ndarray:
        """`scores` (vocab,) with -inf on the unwritten ids (a copy)."""
        scores = scores.copy()
        scores[self.ids] = -np.inf
        return scores

    def graph_or_none(self) -> tf.Tensor | None:
        """`graph()`, or None when no token is unwritten (nothing to add)."""
        return self.graph() if self else None

    def graph(self) -> tf.Tensor:
        """(vocab,) float32: -inf on the unwritten ids, 0 elsewhere (added to logits)."""
        mask = np.zeros(self.size, np.float32)
        mask[self.ids] = -np.inf
        return tf.constant(mask)
