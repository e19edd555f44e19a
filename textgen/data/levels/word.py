"""Words: letters and digits with inner apostrophes or hyphens, each other non-space
character alone, line ends as "\\n"; a space is written between tokens unless one glues."""

from __future__ import annotations

import collections
import re
from collections.abc import Iterable

import numpy as np

from textgen.core.lazy_tf import tf
from textgen.data.items import is_marker, strip_markers
from textgen.data.levels.base import NEWLINE, Level, valid_unicode

_NEWLINE_MARK = "\x1e"  # stands in for "\n" while splitting on whitespace

# A word: letters/digits with inner apostrophes or hyphens ("know't", "sun-beamed"),
# optionally a leading apostrophe ("'Tis"). Anything else that is not a space is a
# one-character token. RE2 syntax (\pL, \pN), so Unicode letters count as letters.
WORD_PATTERN = r"'?[\pL\pN_]+(?:['’-][\pL\pN_]+)*"
WORD_TOKEN = rf"({WORD_PATTERN}|{_NEWLINE_MARK}|[^\s\pL\pN_])"

# The same for ASCII text in Python's `re` (RE2's \s is [\t\n\f\r ], and TensorFlow
# splits on ASCII whitespace), so ASCII text needs no TensorFlow (a test holds them equal).
_ASCII_WORD = "'?[A-Za-z0-9_]+(?:['\u2019-][A-Za-z0-9_]+)*"
_ASCII_TOKEN = re.compile(f"({_ASCII_WORD}|\x1e|[^\t\n\f\r A-Za-z0-9_])")
_ASCII_SPACE = re.compile("[ \t\n\v\f\r]+")

# Detokenization: a space goes between two tokens unless the left one glues to what
# follows or the right one glues to what precedes.
GLUE_LEFT = set(".,;:!?)]}%'") | {NEWLINE, "-"}  # no space before these
GLUE_RIGHT = set("([{") | {NEWLINE, "-"}  # no space after these


class WordLevel(Level):
    name = "word"
    unit = "words"
    default_size = 10000
    reads_every_character = False  # a word outside the vocabulary is [UNK]

    @classmethod
    def count(cls, chunks: Iterable[str], lowercase: bool) -> collections.Counter:
        counts: collections.Counter = collections.Counter()
        for chunk in cls.cut(chunks):
            tokens = word_tokens(chunk, lowercase)
            if tokens is None:
                text = valid_unicode(chunk).encode("utf-8")  # (lone surrogates: U+FFFD)
                raw = split_words(tf.constant(text), lowercase).numpy()
                tokens = [token.decode("utf-8") for token in raw.tolist()]
            counts.update(tokens)
        return counts

    def ids(self, text: str) -> list[int] | None:
        tokens = word_tokens(text, self.vocab.lowercase)
        if tokens is None:
            return None
        ids = {token: index for index, token in enumerate(self.vocab.tokens, start=1)}
        return [ids.get(token, 0) for token in tokens]

    def graph_reader(self):
        from textgen.data.levels.readers import TokenTable

        lowercase = self.vocab.lowercase
        return TokenTable(self.vocab.tokens, lambda text: split_words(text, lowercase))

    def glue(self) -> tuple[np.ndarray, np.ndarray]:
        strings = ["[UNK]", *self.vocab.tokens]
        left = np.array([s in GLUE_LEFT or is_marker(s) for s in strings])
        right = np.array([s in GLUE_RIGHT or is_marker(s) for s in strings])
        return left, right


def word_tokens(text: str, lowercase: bool = False) -> list[str] | None:
    """`split_words(text, lowercase)` for ASCII text (item markers allowed), without
    TensorFlow (tests hold them equal); None for other text."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not strip_markers(text).isascii():
        return None
    text = (text.lower() if lowercase else text).replace("\n", _NEWLINE_MARK)
    spaced = _ASCII_TOKEN.sub(r" \1 ", text)
    return [NEWLINE if t == _NEWLINE_MARK else t for t in _ASCII_SPACE.split(spaced) if t]


def split_words(text: tf.Tensor, lowercase: bool) -> tf.Tensor:
    """Word strings of `text`: a scalar gives a 1-D tensor, a [batch] gives a ragged one."""
    text = tf.strings.regex_replace(text, "\r\n?", NEWLINE)
    if lowercase:
        text = tf.strings.lower(text, encoding="utf-8")
    text = tf.strings.regex_replace(text, NEWLINE, _NEWLINE_MARK)
    text = tf.strings.regex_replace(text, WORD_TOKEN, r" \1 ")
    tokens = tf.strings.split(text)
    if isinstance(tokens, tf.RaggedTensor):
        return tokens.with_flat_values(_unmark_newlines(tokens.flat_values))
    return _unmark_newlines(tokens)


def _unmark_newlines(tokens: tf.Tensor) -> tf.Tensor:
    return tf.where(tokens == _NEWLINE_MARK, NEWLINE, tokens)
