"""A run's tokenizer in TensorFlow: text <-> ids inside or outside a graph.

Text is read into ids by the level's graph form everywhere (the training pipeline, the
sampler and the exported SavedModel), so they can never disagree; the level's NumPy form
is held equal to it by tests. Ids: 0 is `[UNK]`, then the vocabulary's tokens in order.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import tensorflow as tf

from textgen.data.levels import level_class, level_of
from textgen.data.levels.char import CharLevel
from textgen.data.levels.word import WORD_PATTERN, split_words  # noqa: F401
from textgen.data.vocabulary import Vocabulary, glue_flags, valid_unicode


def build_vocabulary(
    text: str, level: str, lowercase: bool = False, max_size: int | None = None
) -> Vocabulary:
    """The vocabulary `level` learns from `text`, at most `max_size` ids."""
    return Vocabulary.learn(lambda: [text], level, lowercase, max_size)


def count_tokens(chunks: Iterable[str], level: str, lowercase: bool) -> collections.Counter:
    """How often each token occurs in a text given as chunks (streamed: any size)."""
    return level_class(level).count(chunks, lowercase)


def _utf8(text: str) -> bytes:
    """The UTF-8 bytes of `text` (lone surrogates as U+FFFD), encoded once when valid."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return valid_unicode(text).encode("utf-8")


def string_tensor(texts: str | Sequence[str]) -> tf.Tensor:
    """A tf.string tensor of Python text (a scalar for one string, else 1-D)."""
    if isinstance(texts, str):
        return tf.constant(_utf8(texts), tf.string)
    return tf.constant([_utf8(t) for t in texts], tf.string, [len(texts)])


def whole_token_chunks(chunks: Iterable[str], level: str = "char") -> Iterator[str]:
    """The same text re-cut so that no token (or \\r\\n) spans two chunks."""
    return level_class(level).cut(chunks)


def split_tokens(text: tf.Tensor, level: str, lowercase: bool) -> tf.Tensor:
    """Token strings of `text` at char or word level: a scalar gives a 1-D tensor, a
    [batch] gives a ragged one."""
    if level == CharLevel.name:
        text = tf.strings.regex_replace(text, "\r\n?", "\n")
        if lowercase:
            text = tf.strings.lower(text, encoding="utf-8")
        return tf.strings.unicode_split(text, "UTF-8", errors="replace")
    return split_words(text, lowercase)


class Tokenizer(tf.Module):
    """A vocabulary in the graph: the level's reader (text -> ids) and each id's text.

    Tracked by the generator, so the exported SavedModel carries the same reader.
    """

    def __init__(self, vocab: Vocabulary):
        super().__init__(name="tokenizer")
        self.vocab = vocab
        self.level = level_of(vocab)
        self.reader = self.level.reader()
        self.id_strings = tf.constant(self.level.id_bytes(), tf.string)  # (vocab,)
        left, right = glue_flags(vocab)
        self.glue_left, self.glue_right = tf.constant(left), tf.constant(right)
        self.start_id = vocab.start_id

    def encode(self, text: tf.Tensor) -> tf.Tensor:
        """Ids of `text` (scalar -> (tokens,); [batch] -> ragged (batch, tokens)), int32."""
        return self.reader.ids(text)

    def pieces(self, prev_ids: tf.Tensor, ids: tf.Tensor) -> tf.Tensor:
        """The text each id adds after `prev_ids`: its token, with a leading space if due."""
        glued = tf.gather(self.glue_right, prev_ids) | tf.gather(self.glue_left, ids)
        space = tf.where(glued, "", " ")
        return tf.strings.join([space, tf.gather(self.id_strings, ids)])

    def decode(self, ids: tf.Tensor, prev_id: int | None = None) -> str:
        """Text of a 1-D id sequence; with `prev_id`, as it continues that token."""
        ids = tf.convert_to_tensor(ids, tf.int32)
        if ids.shape[0] == 0:
            return ""
        first = ids[:1] if prev_id is None else tf.constant([prev_id], tf.int32)
        prev = tf.concat([first, ids[:-1]], 0)
        pieces = self.pieces(prev, ids)
        if prev_id is None:  # nothing precedes the first token: no space before it
            pieces = tf.concat([tf.gather(self.id_strings, ids[:1]), pieces[1:]], 0)
        return tf.strings.reduce_join(pieces).numpy().decode("utf-8", "replace")

    def encode_text(self, text: str) -> np.ndarray:
        """Ids of a Python string as a NumPy int32 array (for the training pipeline)."""
        return self.level.encode_text(text)
