"""Excluded strings (`--exclude`): a completion never contains any of them.

A string is excluded exactly as written (case-sensitive), across token boundaries, in
the completion only (the prompt is not counted). Like the copy guard, it is a check on
candidates: the best-scored token is taken unless it would complete an excluded string
(the completion's last characters, its `tail`, then the token's text); then the
`CANDIDATES` best are checked, best first, and the first allowed one taken, which with
the seeded noise is a draw from the distribution without the excluded tokens. A row
whose every candidate is excluded ends there (a shorter text, never an excluded one).

`Exclusion` is the NumPy form (Python's `in` on the tail and the token's text: the
readable specification); `ExcludedStrings` and `ExclusionCheck` the graph's, which
compare the code points of each window ending in the token's text with each string.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

from textgen.core.config import MAX_EXCLUDE_CHARS
from textgen.core.lazy_tf import tf

_ANY = -3  # a window position a right-aligned string does not reach


class Exclusion:
    """The excluded `strings` over one row's completion (NumPy); `piece(prev, token)` is
    a token's text after `prev`."""

    def __init__(self, strings: Sequence[str], piece: Callable[[int, int], str]):
        self.strings, self.piece = tuple(strings), piece
        self.tail_size = max(len(s) for s in self.strings) - 1

    def rejects(self, tail: str, prev: int, token: int) -> bool:
        """Would `token` after `prev` complete an excluded string? (`tail` holds none.)"""
        text = tail + self.piece(prev, token)
        return any(s in text for s in self.strings)


class ExcludedStrings(NamedTuple):
    """Each row's excluded strings in the graph, as code points right-aligned in
    MAX_EXCLUDE_CHARS columns (`_ANY` to their left)."""

    codes: tf.Tensor  # (batch, strings, MAX_EXCLUDE_CHARS) int32
    valid: tf.Tensor  # (batch, strings) bool: a string (not padding)
    excluding: tf.Tensor  # scalar bool: does any row exclude a string?

    @classmethod
    def of(cls, lines: tf.Tensor, most: int | None = None) -> ExcludedStrings:
        """`lines` (batch,) strings, one string a line ("" for none). Strings longer than
        MAX_EXCLUDE_CHARS characters are cut to their last ones. With `most`, each row's
        first `most` lines, in exactly `most` slots (padding: not a string)."""
        texts = tf.strings.split(lines, "\n")
        if most is not None:
            texts = texts[:, :most]
        ragged = tf.strings.unicode_decode(texts, "UTF-8")
        shape = None if most is None else [None, most, None]
        lengths = ragged.row_lengths(axis=2).to_tensor(shape=shape and shape[:2])
        left = ragged.to_tensor(default_value=_ANY, shape=shape)  # (batch, strings, longest)
        width = MAX_EXCLUDE_CHARS
        left = tf.pad(left, [[0, 0], [0, 0], [0, width]], constant_values=_ANY)
        # column j of the right-aligned string holds its character j - (width - length)
        index = tf.range(width)[None, None, :] - (width - tf.cast(lengths, tf.int32))[..., None]
        codes = tf.where(index >= 0, tf.gather(left, tf.maximum(index, 0), batch_dims=2), _ANY)
        valid = lengths > 0
        return cls(codes, valid, tf.reduce_any(valid))

    @classmethod
    def none(cls, batch, strings: int) -> ExcludedStrings:
        """`strings` slots a row, none a string."""
        codes = tf.fill([batch, strings, MAX_EXCLUDE_CHARS], _ANY)
        return cls(codes, tf.zeros([batch, strings], tf.bool), tf.constant(False))

    def spread(self, n) -> ExcludedStrings:
        """Each row's strings repeated `n` times (a beam search's rows)."""
        return self._replace(codes=tf.repeat(self.codes, n, 0), valid=tf.repeat(self.valid, n, 0))


class ExclusionCheck:
    """The graph form: `rejects(tail, prev, ids)` for each row's `ExcludedStrings`,
    token texts from `pieces` (`textgen.generate.pieces.TokenPieces`)."""

    def __init__(self, pieces, excluded: ExcludedStrings):
        self.pieces, self.excluded = pieces, excluded

    def rejects(self, tail: tf.Tensor, prev: tf.Tensor, ids: tf.Tensor) -> tf.Tensor:
        """(batch, n) bool: would token `ids` (batch, n) after `prev` (batch,) complete an
        excluded string? `tail` (batch, >= MAX_EXCLUDE_CHARS - 1): the completion's last
        code points, -1 before its start."""
        excluded = self.excluded

        def check():
            found = found_strings(self.pieces, excluded, tail, prev, ids)
            return tf.reduce_any(found, axis=-1)

        return tf.cond(excluded.excluding, check, lambda: tf.zeros(tf.shape(ids), tf.bool))


def found_strings(pieces, strings: ExcludedStrings, tail, prev, ids) -> tf.Tensor:
    """(batch, n, strings) bool: does the text after token `ids` (batch, n) after `prev`
    (batch,) end a window holding one of each row's `strings`, a window ending within the
    token's text? `tail` as `ExclusionCheck.rejects` reads it."""
    codes, lengths = pieces.of(prev, ids)  # (batch, n, width), (batch, n)
    width, reach = codes.shape[-1], MAX_EXCLUDE_CHARS - 1
    tails = tf.broadcast_to(tail[:, None, -reach:], [*tf.unstack(tf.shape(ids)), reach])
    text = tf.concat([tails, codes], axis=-1)  # (batch, n, reach + width)
    ends = tf.range(width)  # a window ends at each code of the piece
    windows = tf.gather(text, ends[:, None] + tf.range(MAX_EXCLUDE_CHARS)[None], axis=2)
    want = strings.codes[:, None, None]  # (batch, 1, 1, strings, chars)
    same = (windows[:, :, :, None] == want) | (want == _ANY)
    found = tf.reduce_all(same, axis=-1) & strings.valid[:, None, None]
    ended = (ends < lengths[..., None])[..., None]  # (batch, n, width, 1)
    return tf.reduce_any(found & ended, axis=2)
