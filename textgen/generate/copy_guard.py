"""The copy guard: samples that never hold a span of N characters of the training text.

`SpanIndex` is a Bloom filter of every N-character span of the training text as the model
reads it (its token ids written back as text, so lowercasing and word spacing match what
the model writes). It is built once in NumPy chunks and cached beside the run's token ids
(`textgen.data.id_cache`). Each span's bit positions come from two polynomial hashes modulo
primes below 2**31 (Kirsch & Mitzenmacher's double hashing). A Bloom filter has no false
negatives: a span of the text is always found, so the guarantee holds; a false positive
only turns away a candidate that was in fact new (`SpanIndex.false_positive_rate`).

`CopyGuard` is the lookup inside the generation loop (a `tf.Module`, so the export carries
it): each step, the best token by sampling score (scaled logits + Gumbel noise) is checked;
only if it would complete an N-character span of the index are the `CANDIDATES` best
checked and the first allowed one taken (with Gumbel noise, a draw from the distribution
without the excluded tokens). When every candidate is excluded, the row ends there (a
shorter sample, never a copy).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from textgen.data.span_index import PRIMES, SpanIndex, bit_positions, span_weights
from textgen.data.vocabulary import Vocabulary
from textgen.generate.pieces import TokenPieces


class CopyGuard(tf.Module):
    """A `SpanIndex` inside the graph: `copied` tells which candidate tokens would
    complete an indexed span (see the module doc; the choice among candidates is
    `rules.checks.CheckedChoice`'s).

    Each row carries a `tail` (batch, >= span - 1) int32: the last code points of its
    completion so far, right-aligned, -1 before its start (spans are checked within the
    completion, not across the prompt; `textgen.generate.pieces`).
    """

    def __init__(self, index: SpanIndex, vocab: Vocabulary):
        super().__init__(name="copy_guard")
        self.span = index.span
        self.tail_size = index.span - 1
        self.filter_bytes = len(index.bits)
        words = np.frombuffer(np.ascontiguousarray(index.bits).tobytes(), "<i4")
        self.filter = tf.Variable(words, trainable=False, name="span_filter")
        self._mask = tf.constant(len(index.bits) * 8 - 1, tf.int64)
        self._probes = tf.range(index.probes, dtype=tf.int64)
        self._weights = tf.constant(span_weights(index.span))  # (2, span)
        self._primes = tf.constant(PRIMES, tf.int64)
        self.pieces = TokenPieces(vocab)

    def rejects(self, tail: tf.Tensor, prev: tf.Tensor, ids: tf.Tensor) -> tf.Tensor:
        """(batch, n) bool: would adding token `ids` (batch, n) complete an indexed span?"""
        codes, lengths = self.pieces.of(prev, ids)
        tail = tail[:, -self.tail_size :]  # a tail may reach further back
        width = codes.shape[-1]
        tails = tf.broadcast_to(tail[:, None, :], [*tf.unstack(tf.shape(ids)), self.tail_size])
        text = tf.concat([tails, codes], axis=-1)  # (batch, n, span - 1 + width)
        ends = tf.range(width)  # a window ends at each code of the piece
        windows = tf.gather(text, ends[:, None] + tf.range(self.span)[None, :], axis=2)
        valid = (ends < lengths[..., None]) & (windows[..., 0] >= 0)  # (batch, n, width)
        hashes = (
            tf.reduce_sum(tf.cast(windows, tf.int64)[..., None, :] * self._weights, axis=-1)
            % self._primes
        )  # (batch, n, width, 2)
        positions = bit_positions(hashes[..., :1], hashes[..., 1:], self._probes, self._mask)
        words = tf.gather(self.filter, tf.bitwise.right_shift(positions, 5))
        set_bits = tf.bitwise.right_shift(words, tf.cast(positions & 31, tf.int32)) & 1
        found = tf.reduce_all(set_bits == 1, axis=-1)
        return tf.reduce_any(valid & found, axis=-1)
