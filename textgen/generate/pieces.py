"""Each token's text as code points in the graph, and the tail of a completion.

The checks on candidate tokens (the copy guard, excluded strings) read a token's text
after the previous token (word level: a space between tokens unless one glues) and the
completion's last characters, its tail: (batch, width) int32 code points, right-aligned,
-1 before the completion's start (a check never reaches into the prompt).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from textgen.data.span_index import piece_table
from textgen.data.vocabulary import UNK, Vocabulary, glue_flags


class TokenPieces(tf.Module):
    """The vocabulary's texts as code points: `of(prev, ids)`, `advance(tail, prev, ids)`;
    whether a token's text begins or ends with a letter or digit (`alnum_ends`); `space`:
    the id of the token " " (None: the level has none)."""

    def __init__(self, vocab: Vocabulary):
        super().__init__(name="token_pieces")
        codes, lengths = piece_table(vocab)
        self._codes, self._lengths = tf.constant(codes), tf.constant(lengths)
        left, right = glue_flags(vocab)
        self._left, self._right = tf.constant(left), tf.constant(right)
        # Python's str.isalnum of each piece's first and last character (none: False)
        alnum = np.vectorize(lambda c: 0 <= c < 0x110000 and chr(c).isalnum(), otypes=[bool])
        first = alnum(codes[:, :, 0])
        last_codes = np.take_along_axis(codes, np.maximum(lengths - 1, 0)[..., None], axis=2)
        last = alnum(last_codes[..., 0]) & (lengths > 0)
        self._first_alnum, self._last_alnum = tf.constant(first), tf.constant(last)
        tokens = [UNK, *vocab.tokens]
        self.space = tokens.index(" ") if " " in tokens else None

    def of(self, prev: tf.Tensor, ids: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Code points (batch, n, width), -1 padded, and lengths (batch, n) of `ids`
        (batch, n) after each row's `prev` (batch,) token."""
        glued = tf.gather(self._right, prev)[:, None] | tf.gather(self._left, ids)
        where = tf.stack([tf.cast(~glued, tf.int32), ids], axis=-1)
        return tf.gather_nd(self._codes, where), tf.gather_nd(self._lengths, where)

    def alnum_ends(self, prev: tf.Tensor, ids: tf.Tensor) -> tuple[tf.Tensor, ...]:
        """For `ids` (batch, n) after each row's `prev` (batch,): whether each text begins
        with a letter or digit, ends with one, and is not empty (batch, n) each."""
        glued = tf.gather(self._right, prev)[:, None] | tf.gather(self._left, ids)
        where = tf.stack([tf.cast(~glued, tf.int32), ids], axis=-1)
        first, last = tf.gather_nd(self._first_alnum, where), tf.gather_nd(self._last_alnum, where)
        return first, last, tf.gather_nd(self._lengths, where) > 0

    def advance(self, tail: tf.Tensor, prev: tf.Tensor, ids: tf.Tensor) -> tf.Tensor:
        """The tail after each row adds token `ids` (batch,)."""
        codes, lengths = self.of(prev, ids[:, None])
        text = tf.concat([tail, codes[:, 0]], axis=1)
        keep = lengths[:, 0][:, None] + tf.range(tf.shape(tail)[1])[None, :]
        return tf.gather(text, keep, batch_dims=1)
