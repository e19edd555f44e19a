"""A run's vocabulary: its tokens in id order, saved as `vocab.json`, and what needs no
TensorFlow: spacing between tokens, and character-level ids of a text (NumPy)."""

from __future__ import annotations

import collections
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from textgen.core.errors import RunError
from textgen.core.fileio import atomic_write_json

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
