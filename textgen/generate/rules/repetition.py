"""The repetition controls together: the penalty, then the n-gram bans, over each row's
recent tokens, with one fallback: a row whose every token (but `[UNK]`) they would
exclude keeps its logits unchanged for that step (a sample never dead-ends on them)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from textgen.core.lazy_tf import tf
from textgen.generate.rules.never_unk import NeverUnk
from textgen.generate.rules.ngram_ban import NgramBan
from textgen.generate.rules.repetition_penalty import RepetitionPenalty


class RepetitionControls(NamedTuple):
    """Per-row repetition settings in the graph (each rule off at its neutral value), and
    whether any row uses each rule (decided once per loop: `RepetitionControls.of`)."""

    penalty: tf.Tensor  # (batch,) float32: CTRL's repetition penalty, 1 is off
    window: tf.Tensor  # (batch,) int32: the penalty looks at this many recent tokens
    ngram: tf.Tensor  # (batch,) int32: no n-gram of this size repeats; 0 is off
    penalizing: tf.Tensor  # scalar bool: does any row use the penalty?
    banning: tf.Tensor  # scalar bool: does any row use no-repeat n-grams?

    @classmethod
    def of(cls, penalty: tf.Tensor, window: tf.Tensor, ngram: tf.Tensor) -> RepetitionControls:
        return cls(penalty, window, ngram, tf.reduce_any(penalty != 1.0), tf.reduce_any(ngram > 0))

    def in_use(self) -> tf.Tensor:
        """Whether any row uses a repetition control (a scalar bool)."""
        return self.penalizing | self.banning

    def spread(self, n: int) -> RepetitionControls:
        """The controls of each row repeated `n` times (a beam search's rows)."""
        return self._replace(
            penalty=tf.repeat(self.penalty, n), window=tf.repeat(self.window, n),
            ngram=tf.repeat(self.ngram, n),
        )  # fmt: skip


class Repetition:
    """Both repetition rules on one row's logits (NumPy), or a batch's (graph)."""

    def __init__(self, penalty: float, window: int, ngram: int):
        self.penalty, self.window, self.ngram = penalty, window, ngram

    @staticmethod
    def in_use(penalty: float, ngram: int) -> bool:
        return penalty != 1.0 or ngram > 0

    def numpy(self, logits: np.ndarray, history: np.ndarray) -> np.ndarray:
        """logits (vocab,) float32; history (REPETITION_HISTORY,) ids, oldest first."""
        controlled = logits
        if self.penalty != 1.0:
            controlled = RepetitionPenalty.numpy(controlled, history, self.penalty, self.window)
        if self.ngram > 0:
            controlled = NgramBan.numpy(controlled, history, self.ngram)
        if not np.isfinite(NeverUnk.numpy(controlled)).any():
            return logits
        return controlled

    @staticmethod
    def graph(logits: tf.Tensor, history: tf.Tensor, controls: RepetitionControls) -> tf.Tensor:
        """logits (batch, vocab); each rule only if a row uses it."""
        controlled = tf.cond(
            controls.penalizing,
            lambda: RepetitionPenalty.graph(logits, history, controls.penalty, controls.window),
            lambda: logits,
        )
        controlled = tf.cond(
            controls.banning,
            lambda: NgramBan.graph(controlled, history, controls.ngram),
            lambda: controlled,
        )
        allowed = tf.math.is_finite(controlled + NeverUnk.graph(logits.shape[-1]))
        return tf.where(tf.reduce_any(allowed, axis=1, keepdims=True), controlled, logits)


def push_history(history, ids):
    """`history` (batch, history) tensor with each row's new token `ids` (batch,) at its end."""
    return tf.concat([history[:, 1:], ids[:, None]], axis=1)


def pushed(history: np.ndarray, token: int) -> np.ndarray:
    """One row's `history` (NumPy) with `token` at its end."""
    return np.append(history[1:], np.int32(token)).astype(np.int32)
