"""No repeated n-grams: a token that would complete an n-gram already in the history is
never chosen (fairseq's and Hugging Face's `no_repeat_ngram_size`)."""

from __future__ import annotations

import numpy as np

from textgen.core.config import MAX_NGRAM
from textgen.core.lazy_tf import tf
from textgen.generate.rules.never_unk import NEG_INF
from textgen.generate.rules.repetition_penalty import mark_tokens


class NgramBan:
    """-inf on each token that followed an earlier occurrence of the row's last n - 1
    tokens (n = the row's `ngram`, 0: off), within its history (oldest first, -1 empty)."""

    @staticmethod
    def numpy(logits: np.ndarray, history: np.ndarray, ngram: int) -> np.ndarray:
        """logits (vocab,) float32; history (history,) ids."""
        if ngram <= 0:
            return logits
        before, size = ngram - 1, len(history)
        prefix = history[size - before :] if before else history[:0]
        if (prefix < 0).any():
            return logits
        # window i (its n - 1 tokens from i) matches the prefix: ban the token after it
        match = np.ones(size - before, bool)
        for k in range(before):
            match &= history[k : k + size - before] == prefix[k]
        following = history[before:][match]
        banned = following[following >= 0]
        out = logits.copy()
        out[banned] = -np.inf
        return out

    @staticmethod
    def graph(logits: tf.Tensor, history: tf.Tensor, ngram: tf.Tensor) -> tf.Tensor:
        """logits (batch, vocab); history (batch, history); ngram (batch,)."""
        size, width = history.shape[1], MAX_NGRAM - 1
        batch = tf.shape(history)[0]
        padded = tf.concat([history, tf.fill([batch, width + 1], -1)], axis=1)
        before = ngram - 1  # (batch,) tokens before the banned one; -1 for rows that are off
        offsets = tf.range(width)
        need = offsets[None, :] < before[:, None]  # (batch, width)
        prefix = tf.gather(padded, tf.maximum(size - before[:, None] + offsets, 0), batch_dims=1)
        windows = tf.stack([padded[:, k : k + size] for k in range(width)], axis=2)
        same = (windows == prefix[:, None, :]) | ~need[:, None, :]  # (batch, history, width)
        complete = tf.reduce_all((prefix >= 0) | ~need, axis=1) & (ngram > 0)  # (batch,)
        follows = tf.range(size)[None, :] + tf.maximum(before, 0)[:, None]  # (batch, history)
        following = tf.gather(padded, follows, batch_dims=1)
        found = tf.reduce_all(same, axis=2) & complete[:, None] & (follows < size)
        banned = mark_tokens(tf.shape(logits), following, found & (following >= 0))
        return tf.where(banned, NEG_INF, logits)
