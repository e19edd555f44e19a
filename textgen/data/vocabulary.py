"""A run's vocabulary: its tokens in id order, saved as `vocab.json`, and what needs no
TensorFlow: spacing between tokens, and character-level ids of a text (NumPy)."""

from __future__ import annotations

import collections
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from textgen.core.errors import RunError
from textgen.core.fileio import atomic_write_json
from textgen.data.items import strip_markers

UNK = "[UNK]"


UNK_ID = 0


NEWLINE = "\n"


# Detokenization: a space goes between two tokens unless the left one glues to what
# follows or the right one glues to what precedes.
_GLUE_LEFT = set(".,;:!?)]}%'") | {NEWLINE, "-"}  # no space before these


_GLUE_RIGHT = set("([{") | {NEWLINE, "-"}  # no space after these


@dataclass
class Vocabulary:
    """The tokens of a run, in id order (id 0, `[UNK]`, is implicit)."""

    level: str
    tokens: list[str] = field(default_factory=list)
    lowercase: bool = False

    @property
    def size(self) -> int:
        """Number of ids, `[UNK]` included."""
        return len(self.tokens) + 1

    @property
    def start_id(self) -> int:
        """The id fed before an empty prompt: the newline, as if a new speech begins."""
        return self.tokens.index(NEWLINE) + 1 if NEWLINE in self.tokens else UNK_ID

    def save(self, path: str | os.PathLike) -> None:
        atomic_write_json(
            path, {"level": self.level, "lowercase": self.lowercase, "tokens": self.tokens}
        )

    @classmethod
    def load(cls, path: str | os.PathLike) -> Vocabulary:
        try:
            values = json.loads(Path(path).read_text(encoding="utf-8"))
            return cls(values["level"], list(values["tokens"]), bool(values["lowercase"]))
        except (OSError, ValueError, KeyError) as err:
            raise RunError(f"cannot read vocabulary {path}: {err}") from None

    @classmethod
    def from_counts(
        cls,
        counts: collections.Counter,
        level: str,
        lowercase: bool = False,
        max_size: int | None = None,
    ) -> Vocabulary:
        """The vocabulary of token counts (`count_tokens`): most frequent first, ties by token."""
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        tokens = [token for token, _ in ranked]
        if max_size is not None:
            tokens = tokens[: max(max_size - 1, 1)]
        return cls(level, tokens, lowercase)


def extend_vocabulary(
    parent: Vocabulary, counts: collections.Counter, max_size: int | None = None
) -> Vocabulary:
    """The parent's vocabulary with the tokens of `counts` it lacks appended, most frequent
    first (ties by token), while the size stays within `max_size` (None: no cap).

    Every parent token keeps its id, so the parent's weights stay valid for them; the
    added tokens take the ids after the parent's.
    """
    known = set(parent.tokens)
    new = [t for t, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0]))]
    new = [t for t in new if t not in known]
    if max_size is not None:
        new = new[: max(max_size - parent.size, 0)]
    return Vocabulary(parent.level, [*parent.tokens, *new], parent.lowercase)


def valid_unicode(text: str) -> str:
    """`text` with lone surrogates (not Unicode text: e.g. an undecodable byte in a
    command-line argument) replaced by U+FFFD, as the graph ops replace invalid UTF-8."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:  # (a surrogate pair written as two code points is joined)
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def glue_flags(vocab: Vocabulary) -> tuple[np.ndarray, np.ndarray]:
    """(vocab,) bools per id: no space before it (left), no space after it (right).
    Characters always glue: char level adds no spaces; so do item markers."""
    from textgen.data.items import is_marker

    strings = [UNK, *vocab.tokens]
    char = vocab.level == "char"
    left = np.array([char or s in _GLUE_LEFT or is_marker(s) for s in strings])
    right = np.array([char or s in _GLUE_RIGHT or is_marker(s) for s in strings])
    return left, right


# Word-level tokens of ASCII text as `tokenizers.split_tokens` cuts them (RE2's \s is
# [\t\n\f\r ], and TensorFlow splits on ASCII whitespace; "\x1e" stands for a newline).
_ASCII_WORD = "'?[A-Za-z0-9_]+(?:['\u2019-][A-Za-z0-9_]+)*"
_ASCII_TOKEN = re.compile(f"({_ASCII_WORD}|\x1e|[^\t\n\f\r A-Za-z0-9_])")
_ASCII_SPACE = re.compile("[ \t\n\v\f\r]+")


def text_ids(vocab: Vocabulary, text: str) -> list[int] | None:
    """The token ids of `text` as the tokenizer reads it, without TensorFlow: any text at
    char level, ASCII text at word level; None where only TensorFlow's rules apply."""
    if vocab.level == "char":
        codes = char_codes(text, vocab.lowercase)
        return None if codes is None else char_ids(vocab, codes).tolist()
    tokens = word_tokens(text, vocab.lowercase)
    if tokens is None:
        return None
    ids = {token: index for index, token in enumerate(vocab.tokens, start=1)}
    return [ids.get(token, UNK_ID) for token in tokens]


def word_tokens(text: str, lowercase: bool = False) -> list[str] | None:
    """`split_tokens(text, "word", lowercase)` for ASCII text (item markers allowed),
    without TensorFlow (tests hold them equal); None for other text."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not strip_markers(text).isascii():
        return None
    text = (text.lower() if lowercase else text).replace("\n", "\x1e")
    spaced = _ASCII_TOKEN.sub(r" \1 ", text)
    return [NEWLINE if t == "\x1e" else t for t in _ASCII_SPACE.split(spaced) if t]


def char_codes(text: str, lowercase: bool = False) -> np.ndarray | None:
    """The code points of `text` as the tokenizer cuts it at char level (line ends as
    "\n"), as uint32; None if lowercasing it needs TensorFlow's rules (non-ASCII text)."""
    text = valid_unicode(text).replace("\r\n", "\n").replace("\r", "\n")
    if lowercase:
        if not text.isascii():
            return None
        text = text.lower()
    return np.frombuffer(text.encode("utf-32-le"), np.uint32)


def char_ids(vocab: Vocabulary, codes: np.ndarray) -> np.ndarray:
    """Char level: the ids (int32) of code points `codes`; `[UNK]` for unknown ones."""
    table = np.zeros(max((ord(t) for t in vocab.tokens if len(t) == 1), default=0) + 1, np.int32)
    for index, token in enumerate(vocab.tokens, start=1):
        if len(token) == 1:
            table[ord(token)] = index
    inside = codes < len(table)
    return np.where(inside, table[np.where(inside, codes, 0)], UNK_ID).astype(np.int32)


def token_piece(vocab: Vocabulary):
    """`piece(prev, token)`: the text token id `token` adds after id `prev` (its string,
    after a space unless one of them glues), as the tokenizer's `pieces` writes it."""
    strings = [UNK, *vocab.tokens]
    left, right = glue_flags(vocab)

    def piece(prev: int, token: int) -> str:
        return strings[token] if right[prev] or left[token] else " " + strings[token]

    return piece
