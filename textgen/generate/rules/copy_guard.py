"""The copy guard: a sample never holds a span of N characters of the training text.

Each step the best-scored token is checked against the run's span index (a Bloom filter,
`textgen.data.span_index`; no false negatives, so the guarantee holds); only if it would
complete an indexed span are the `CANDIDATES` best checked, best first, and the first
allowed one taken (with the seeded noise, a draw from the distribution without the
excluded tokens). When every candidate is excluded, the row ends there (a shorter sample,
never a copy). Spans are checked within the completion, not across the prompt.

`SpanGuard` is the NumPy form (one row; its tail is the completion's last N - 1
characters); the graph form is `textgen.generate.copy_guard.CopyGuard` (the export
carries it), plugged into the graph's token choice by `CopyGuardRule`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from textgen.core.lazy_tf import tf
from textgen.data.span_index import SpanIndex

CANDIDATES = 16  # tokens checked per step, best first


class SpanGuard:
    """The copy guard over `index` in NumPy; `piece(prev, token)` is a token's text."""

    def __init__(self, index: SpanIndex, piece: Callable[[int, int], str]):
        self.index, self.piece = index, piece
        self.tail_size = index.span - 1

    def copied(self, tail: str, prev: int, token: int) -> bool:
        """Would `token` after `prev` complete an indexed span of the completion `tail`?"""
        return bool(self.index.contains(tail + self.piece(prev, token)).any())

    def choose(self, scores: np.ndarray, tail: str, prev: int) -> int | None:
        """The best-scoring token among the `CANDIDATES` best that copies nothing, or None
        (the row ends); -inf scores are excluded tokens."""
        best = int(np.argmax(scores))
        if not self.copied(tail, prev, best):
            return best
        order = np.argsort(-scores, kind="stable")[: min(CANDIDATES, len(scores))]
        for token in order:
            if scores[token] > -np.inf and not self.copied(tail, prev, int(token)):
                return int(token)
        return None

    def advance(self, tail: str, prev: int, token: int) -> str:
        """The tail after adding `token`."""
        text = tail + self.piece(prev, token)
        return text[-self.tail_size :] if self.tail_size else ""


class CopyGuardRule:
    """The graph's copy guard (`CopyGuard`) choosing among the best-scored tokens. Its
    loop state: (tail, previous token, the step at which a row had no candidate left, or
    `size`)."""

    def __init__(self, guard, size: int):
        self.guard, self.size = guard, size

    def adjust(self, logits, state):
        return logits

    def choose(self, scores: tf.Tensor, state: tuple) -> tuple[tf.Tensor, tf.Tensor]:
        tail, prev, _ = state
        return self.guard.choose(scores, tail, prev)

    def advance(self, state, ids, allowed, step):
        tail, prev, ended_at = state
        ended_at = tf.where(allowed | (ended_at < self.size), ended_at, step())
        return self.guard.advance(tail, prev, ids), ids, ended_at
