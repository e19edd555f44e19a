"""Char and word tokenizers: one set of TensorFlow string ops for training and serving.

Text is split into tokens by the same graph ops everywhere (the training pipeline, the
sampler and the exported SavedModel), so they can never disagree. Ids: 0 is `[UNK]`,
then the vocabulary's tokens in order. The vocabulary is saved as `vocab.json`.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import tensorflow as tf

from textgen.data.vocabulary import (
    NEWLINE,
    UNK,
    UNK_ID,
    Vocabulary,
    char_ids,
    glue_flags,
    valid_unicode,
)

_NEWLINE_MARK = "\x1e"  # stands in for "\n" while splitting on whitespace

# A word: letters/digits with inner apostrophes or hyphens ("know't", "sun-beamed"),
# optionally a leading apostrophe ("'Tis"). Anything else that is not a space is a
# one-character token. RE2 syntax (\pL, \pN), so Unicode letters count as letters.
WORD_PATTERN = r"'?[\pL\pN_]+(?:['’-][\pL\pN_]+)*"
WORD_TOKEN = rf"({WORD_PATTERN}|{_NEWLINE_MARK}|[^\s\pL\pN_])"


def build_vocabulary(
    text: str, level: str, lowercase: bool = False, max_size: int | None = None
) -> Vocabulary:
    """The most frequent tokens of `text` (ties by token), at most `max_size` ids."""
    return Vocabulary.from_counts(
        count_tokens([text], level, lowercase), level, lowercase, max_size
    )


def count_tokens(chunks: Iterable[str], level: str, lowercase: bool) -> collections.Counter:
    """How often each token occurs in a text given as chunks (streamed: any size)."""
    counts: collections.Counter = collections.Counter()
    codepoint_counts = np.zeros(0, np.int64)
    for chunk in whole_token_chunks(chunks):
        if level == "char":
            found = np.bincount(_codepoints(chunk, lowercase))
            if len(found) > len(codepoint_counts):
                found[: len(codepoint_counts)] += codepoint_counts
                codepoint_counts = found
            else:
                codepoint_counts[: len(found)] += found
            continue
        raw = split_tokens(string_tensor(chunk), level, lowercase).numpy()
        counts.update(token.decode("utf-8") for token in raw.tolist())
    for codepoint in np.flatnonzero(codepoint_counts):
        counts[chr(codepoint)] += int(codepoint_counts[codepoint])
    return counts


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


def whole_token_chunks(chunks: Iterable[str]) -> Iterator[str]:
    """The same text re-cut after whitespace, so no token (or \\r\\n) spans two chunks."""
    carry = ""
    for chunk in chunks:
        text = carry + chunk
        cut = max(text.rfind(" "), text.rfind("\n"), text.rfind("\t")) + 1
        if cut:
            yield text[:cut]
        carry = text[cut:]
    if carry:
        yield carry


def _codepoints(text: str, lowercase: bool) -> np.ndarray:
    """The characters of `text` as code points, as `split_tokens` cuts them (char level).

    NumPy on the UTF-32 bytes: ~100x faster than the string op for a large corpus, and
    the same tokens (a test holds them equal).
    """
    text = valid_unicode(text).replace("\r\n", "\n").replace("\r", "\n")
    if lowercase:
        text = tf.strings.lower(text, encoding="utf-8").numpy().decode("utf-8")
    return np.frombuffer(text.encode("utf-32-le"), np.uint32)


def split_tokens(text: tf.Tensor, level: str, lowercase: bool) -> tf.Tensor:
    """Token strings of `text`: a scalar gives a 1-D tensor, a [batch] gives a ragged one."""
    text = tf.strings.regex_replace(text, "\r\n?", NEWLINE)
    if lowercase:
        text = tf.strings.lower(text, encoding="utf-8")
    if level == "char":
        return tf.strings.unicode_split(text, "UTF-8", errors="replace")
    text = tf.strings.regex_replace(text, NEWLINE, _NEWLINE_MARK)
    text = tf.strings.regex_replace(text, WORD_TOKEN, r" \1 ")
    tokens = tf.strings.split(text)
    if isinstance(tokens, tf.RaggedTensor):
        return tokens.with_flat_values(_unmark_newlines(tokens.flat_values))
    return _unmark_newlines(tokens)


def _unmark_newlines(tokens: tf.Tensor) -> tf.Tensor:
    return tf.where(tokens == _NEWLINE_MARK, NEWLINE, tokens)


class Tokenizer(tf.Module):
    """A vocabulary as TensorFlow lookup tables: text <-> ids, inside or outside a graph.

    Tracked by the generator, so the exported SavedModel carries the same tables.
    """

    def __init__(self, vocab: Vocabulary):
        super().__init__(name="tokenizer")
        self.vocab = vocab
        self.level = vocab.level
        self.lowercase = vocab.lowercase
        strings = [UNK, *vocab.tokens]
        # (a table cannot be empty: an empty vocabulary maps "[UNK]" to its own id)
        keys, values = (vocab.tokens, list(range(1, vocab.size))) if vocab.tokens else ([UNK], [0])
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(keys, tf.string), tf.constant(values, tf.int32)
            ),
            default_value=UNK_ID,
        )
        self.id_strings = tf.constant(strings, tf.string)  # (vocab,)
        left, right = glue_flags(vocab)
        self.glue_left, self.glue_right = tf.constant(left), tf.constant(right)
        self.start_id = vocab.start_id

    def encode(self, text: tf.Tensor) -> tf.Tensor:
        """Ids of `text` (scalar -> (tokens,); [batch] -> ragged (batch, tokens)), int32."""
        tokens = split_tokens(text, self.level, self.lowercase)
        if isinstance(tokens, tf.RaggedTensor):
            return tokens.with_flat_values(self.table.lookup(tokens.flat_values))
        return self.table.lookup(tokens)

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
        return tf.strings.reduce_join(pieces).numpy().decode("utf-8")

    def encode_text(self, text: str) -> np.ndarray:
        """Ids of a Python string as a NumPy int32 array (for the training pipeline)."""
        if self.level == "char":
            return char_ids(self.vocab, _codepoints(text, self.lowercase))
        return self.encode(string_tensor(text)).numpy()
