"""Characters: a token per Unicode code point (line ends read as "\\n")."""

from __future__ import annotations

import collections
from collections.abc import Iterable

import numpy as np

from textgen.core.lazy_tf import tf
from textgen.data.levels.base import Level, plain_lines


class CharLevel(Level):
    name = "char"
    unit = "characters"

    @classmethod
    def count(cls, chunks: Iterable[str], lowercase: bool) -> collections.Counter:
        totals = np.zeros(0, np.int64)
        for chunk in cls.cut(chunks):
            found = np.bincount(codepoints(chunk, lowercase))
            if len(found) > len(totals):
                found[: len(totals)] += totals
                totals = found
            else:
                totals[: len(found)] += found
        return collections.Counter({chr(c): int(totals[c]) for c in np.flatnonzero(totals)})

    def ids(self, text: str) -> list[int] | None:
        codes = char_codes(text, self.vocab.lowercase)
        return None if codes is None else self.code_ids(codes).tolist()

    def encode_text(self, text: str) -> np.ndarray:
        return self.code_ids(codepoints(text, self.vocab.lowercase))

    def code_ids(self, codes: np.ndarray) -> np.ndarray:
        """The ids (int32) of code points `codes`; `[UNK]` for unknown ones."""
        tokens = self.vocab.tokens
        table = np.zeros(max((ord(t) for t in tokens if len(t) == 1), default=0) + 1, np.int32)
        for index, token in enumerate(tokens, start=1):
            if len(token) == 1:
                table[ord(token)] = index
        inside = codes < len(table)
        return np.where(inside, table[np.where(inside, codes, 0)], 0).astype(np.int32)

    def graph_reader(self):
        from textgen.data.levels.readers import TokenTable

        lowercase = self.vocab.lowercase

        def split(text):
            text = tf.strings.regex_replace(text, "\r\n?", "\n")
            if lowercase:
                text = tf.strings.lower(text, encoding="utf-8")
            return tf.strings.unicode_split(text, "UTF-8", errors="replace")

        return TokenTable(self.vocab.tokens, split)


def char_codes(text: str, lowercase: bool = False) -> np.ndarray | None:
    """The code points of `text` as the char level reads it, as uint32; None if
    lowercasing it needs TensorFlow's rules (non-ASCII text)."""
    text = plain_lines(text)
    if lowercase:
        if not text.isascii():
            return None
        text = text.lower()
    return np.frombuffer(text.encode("utf-32-le"), np.uint32)


def codepoints(text: str, lowercase: bool) -> np.ndarray:
    """`char_codes` of any text (non-ASCII lowercased by TensorFlow's rules).

    NumPy on the UTF-32 bytes: ~100x faster than the string op for a large corpus, and
    the same tokens (a test holds them equal).
    """
    codes = char_codes(text, lowercase)
    if codes is None:
        lowered = tf.strings.lower(plain_lines(text), encoding="utf-8").numpy().decode("utf-8")
        codes = np.frombuffer(lowered.encode("utf-32-le"), np.uint32)
    return codes
