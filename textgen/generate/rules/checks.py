"""The checks on candidate tokens: the copy guard and excluded strings, one choice.

A check says whether a token would complete something the text must not hold (a span of
the training text, an excluded string), reading the completion's last characters (its
tail) and the token's text. The choice: the best-scored token, unless a check rejects it;
then the `CANDIDATES` best, best first, and the first that no check rejects (with the
seeded noise, a draw from the distribution without the rejected tokens). A row whose
every candidate is rejected (or excluded by -inf scores) ends there: a shorter text,
never a forbidden one.

`choose` and `advance` are the NumPy form (one row, the tail a `str`); `CheckedChoice`
the graph's (a batch, the tail code points: `textgen.generate.pieces`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from textgen.core.lazy_tf import tf

CANDIDATES = 16  # tokens checked per step, best first, when the best is rejected


def choose(scores: np.ndarray, checks: Sequence, tail: str, prev: int) -> int | None:
    """The best-scoring token among the `CANDIDATES` best that no check rejects, or None
    (the row ends); -inf scores are excluded tokens."""

    def rejected(token: int) -> bool:
        return any(check.rejects(tail, prev, token) for check in checks)

    best = int(np.argmax(scores))
    if not rejected(best):
        return best
    order = np.argsort(-scores, kind="stable")[: min(CANDIDATES, len(scores))]
    for token in order:
        if scores[token] > -np.inf and not rejected(int(token)):
            return int(token)
    return None


def advance(tail: str, piece: str, size: int) -> str:
    """The last `size` characters of the completion `tail` followed by `piece`."""
    text = tail + piece
    return text[-size:] if size else ""


def tail_size(checks: Sequence) -> int:
    """The characters of tail the `checks` read."""
    return max((check.tail_size for check in checks), default=0)


class CheckedChoice:
    """The graph's choice among candidates with `checks` (each `rejects(tail, prev, ids)`
    (batch, n) bool); `pieces` advances the tail. Its loop state: (tail, previous token,
    the step at which a row had no candidate left, or `size`)."""

    def __init__(self, checks: Sequence, pieces, size: int):
        self.checks, self.pieces, self.size = list(checks), pieces, size

    def _rejected(self, tail, prev, ids):
        rejected = [check.rejects(tail, prev, ids) for check in self.checks]
        return rejected[0] if len(rejected) == 1 else tf.reduce_any(tf.stack(rejected), axis=0)

    def adjust(self, logits, state):
        return logits

    def choose(self, scores: tf.Tensor, state: tuple) -> tuple[tf.Tensor, tf.Tensor]:
        """Each row's token (batch,) and whether it had one (batch,): the best-scoring of
        its candidates that no check rejects. The best alone is checked first; the others
        only when a row's best is rejected (rare, and then for the whole batch)."""
        tail, prev, _ = state
        best = tf.argmax(scores, axis=-1, output_type=tf.int32)

        def runners_up():
            values, ids = tf.math.top_k(scores, min(CANDIDATES, scores.shape[-1]))
            allowed = (values > float("-inf")) & ~self._rejected(tail, prev, ids)
            first = tf.argmax(tf.cast(allowed, tf.int32), axis=1, output_type=tf.int32)
            return tf.gather(ids, first, batch_dims=1), tf.reduce_any(allowed, axis=1)

        rejected = self._rejected(tail, prev, best[:, None])[:, 0]
        return tf.cond(tf.reduce_any(rejected), runners_up, lambda: (best, tf.ones_like(rejected)))

    def advance(self, state, ids, allowed, step: Callable):
        tail, prev, ended_at = state
        ended_at = tf.where(allowed | (ended_at < self.size), ended_at, step())
        return self.pieces.advance(tail, prev, ids), ids, ended_at
