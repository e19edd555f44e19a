"""Finishing a text in the graph: token ids written as text, cut at a stop string (the
tokens through it counted), item and label markers removed. Every graph sampler (the
generation loop, beams, the continued generation) finishes its text here; the Python
counterpart is `finish.StreamFinish`."""

from __future__ import annotations

import tensorflow as tf

from textgen.data.items import MARKER_PATTERN, is_marker
from textgen.generate.stops import StopStrings


class GraphFinish:
    """Finishing for a generator's `tokenizer` and `stops`."""

    def __init__(self, tokenizer, stops: StopStrings):
        self.tokenizer, self.stops = tokenizer, stops
        self.has_markers = any(is_marker(token) for token in tokenizer.vocab.tokens)

    def text(self, sequence: tf.Tensor, lengths: tf.Tensor) -> tf.Tensor:
        """Text of sequence[:, 1:] continuing sequence[:, 0], the first `lengths` tokens."""
        ids, prev = sequence[:, 1:], sequence[:, :-1]
        pieces = self.tokenizer.pieces(prev, ids)  # (batch, steps)
        valid = tf.range(tf.shape(ids)[1])[None, :] < lengths[:, None]
        return tf.strings.reduce_join(tf.where(valid, pieces, ""), axis=1)

    def tokens_through_stop(self, sequence, counts, completion, offset=0) -> tf.Tensor:
        """Tokens up to and including the one that completes a stop string, per row
        (`completion`: `offset` bytes held back, then the sequence's text)."""
        if not self.stops:
            return counts
        ids, prev = sequence[:, 1:], sequence[:, :-1]
        sizes = tf.strings.length(self.tokenizer.pieces(prev, ids))  # (batch, steps)
        starts = tf.math.cumsum(sizes, axis=1, exclusive=True)
        valid = tf.range(tf.shape(ids)[1])[None, :] < counts[:, None]
        stop_end = self.stops.end(completion) - offset  # (batch,)
        through = tf.reduce_sum(tf.cast(valid & (starts < stop_end[:, None]), tf.int32), 1)
        return tf.where(self.stops.found(completion), through, counts)

    def shown(self, text: tf.Tensor) -> tf.Tensor:
        """`text` without item and label markers."""
        return tf.strings.regex_replace(text, MARKER_PATTERN, "") if self.has_markers else text

    def completion(self, text: tf.Tensor) -> tf.Tensor:
        """A whole completion as shown: cut at its first stop string, markers removed."""
        return self.shown(self.stops.cut(text) if self.stops else text)
