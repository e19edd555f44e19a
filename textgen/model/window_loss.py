"""The mean loss of a model over windows of held-out token ids."""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from textgen.data.windows import LabelsBefore, stateful_dataset, validation_dataset
from textgen.model.label_memory import memory_of
from textgen.model.network import forward_from_state


class WindowLoss:
    """Mean next-token loss of a model over a text's ids, in windows of `seq_len` tokens.

    By default each window starts from a zero state, as in (shuffled-window) training, so
    the figure is comparable to the training loss. A model trained `--stateful` is scored
    the way it was trained: give its `state_sizes` (`textgen.model.sizes.state_sizes`) and the
    text is cut into `batch_size` contiguous streams, read window after window with the
    state carried over. The step is compiled once per instance (with XLA if asked).
    """

    def __init__(
        self,
        model,
        seq_len: int,
        batch_size: int,
        jit_compile: bool = True,
        state_sizes: list[list[int]] | None = None,
    ):
        self.model, self.seq_len, self.batch_size = model, seq_len, batch_size
        self.state_sizes = state_sizes
        self._step = tf.function(self._sums, jit_compile=jit_compile)
        self._carried_step = tf.function(self._carried_sums, jit_compile=jit_compile)

    def _sums(self, inputs, targets):
        logits = self.model(inputs, training=False)  # (batch, time, vocab)
        per_token = tf.nn.sparse_softmax_cross_entropy_with_logits(targets, logits)
        return tf.reduce_sum(tf.cast(per_token, tf.float64)), tf.size(per_token)

    def _carried_sums(self, inputs, targets, state):
        logits, state = forward_from_state(self.model, inputs, state)
        per_token = tf.nn.sparse_softmax_cross_entropy_with_logits(targets, logits)
        return tf.reduce_sum(tf.cast(per_token, tf.float64)), tf.size(per_token), state

    def __call__(self, ids: np.ndarray) -> tuple[float, int]:
        """(mean loss in nats per token, tokens scored); (nan, 0) for fewer than 2 ids."""
        if len(ids) < 2:
            return math.nan, 0
        seq_len = min(self.seq_len, len(ids) - 1)  # short text: shorter windows
        total, count = 0.0, 0
        for batch_total, batch_count in self._batch_sums(ids, seq_len):
            total += float(batch_total)
            count += int(batch_count)
        return total / count, count

    def _batch_sums(self, ids: np.ndarray, seq_len: int):
        """(loss sum, token count) of each batch of windows."""
        if self.state_sizes is None:
            memory = memory_of(self.model)
            labels = LabelsBefore(ids, memory.roles) if memory is not None else None
            for inputs, targets in validation_dataset(ids, seq_len, self.batch_size, labels):
                yield self._step(inputs, targets)
            return
        # As many streams as the text fills with at least one window, at most batch_size.
        streams = max(1, min(self.batch_size, len(ids) // (seq_len + 1)))
        windows = (len(ids) // streams - 1) // seq_len
        state = tuple(
            tuple(tf.zeros([streams, size]) for size in sizes) for sizes in self.state_sizes
        )
        for inputs, targets in stateful_dataset(ids, seq_len, streams).take(windows):
            batch_total, batch_count, state = self._carried_step(inputs, targets, state)
            yield batch_total, batch_count


def loss_figures(loss: float, characters_per_token: float) -> dict[str, float]:
    """The loss in the units users compare: bits per character (every level, so char,
    word and subword runs compare on one scale) and perplexity per token."""
    return {
        "bpc": loss / math.log(2) / max(characters_per_token, 1e-9),
        "perplexity": math.exp(min(loss, 700.0)),
    }
