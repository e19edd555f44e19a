"""A run's vocabulary: each id's text in id order, saved as `vocab.json` (with the
tokenizer's model beside it where the level has one), and what needs no TensorFlow."""

from __future__ import annotations

import collections
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from textgen.core.errors import RunError
from textgen.core.fileio import atomic_write_bytes, atomic_write_json
from textgen.data.levels import level_class, level_of
from textgen.data.levels.base import NEWLINE, ranked_tokens, valid_unicode  # noqa: F401

UNK = "[UNK]"
UNK_ID = 0
MODEL_FILE = "tokenizer.model"  # a subword vocabulary's SentencePiece model, beside vocab.json


@dataclass
class Vocabulary:
    """The tokens of a run, in id order (id 0, `[UNK]`, is implicit)."""

    level: str
    tokens: list[str] = field(default_factory=list)  # each id's text
    lowercase: bool = False
    model: bytes | None = field(default=None, repr=False)  # the tokenizer's, if not the tokens

    @property
    def model_sha256(self) -> str | None:
        return None if self.model is None else hashlib.sha256(self.model).hexdigest()

    @property
    def size(self) -> int:
        """Number of ids, `[UNK]` included."""
        return len(self.tokens) + 1

    @property
    def start_id(self) -> int:
        """The id fed before an empty prompt: the newline, as if a new speech begins."""
        return self.tokens.index(NEWLINE) + 1 if NEWLINE in self.tokens else UNK_ID

    def save(self, path: str | os.PathLike) -> None:
        """`vocab.json` at `path`, and the tokenizer's model beside it (`MODEL_FILE`)."""
        values = {"level": self.level, "lowercase": self.lowercase, "tokens": self.tokens}
        if self.model is not None:
            atomic_write_bytes(Path(path).with_name(MODEL_FILE), self.model)
            values["model"] = {"file": MODEL_FILE, "sha256": self.model_sha256}
        atomic_write_json(path, values)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Vocabulary:
        try:
            values = json.loads(Path(path).read_text(encoding="utf-8"))
            model = None
            if "model" in values:
                model = Path(path).with_name(values["model"]["file"]).read_bytes()
                if hashlib.sha256(model).hexdigest() != values["model"]["sha256"]:
                    raise ValueError(f"{values['model']['file']} is not the one it names")
            tokens = list(values["tokens"])
            return cls(values["level"], tokens, bool(values["lowercase"]), model)
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
        """The vocabulary of token counts (`Level.count`): most frequent first, ties by token."""
        return cls(level, ranked_tokens(counts, max_size), lowercase)

    @classmethod
    def learn(cls, chunks, level: str, lowercase: bool = False, max_size: int | None = None):
        """The vocabulary `level` learns from the text `chunks()` yields (see `Level.learn`)."""
        tokens, model = level_class(level).learn(chunks, lowercase, max_size)
        return cls(level, tokens, lowercase, model)


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


def glue_flags(vocab: Vocabulary) -> tuple[np.ndarray, np.ndarray]:
    """(vocab,) bools per id: no space before it (left), no space after it (right).
    Only the word level writes spaces between tokens; item markers always glue."""
    return level_of(vocab).glue()


def text_ids(vocab: Vocabulary, text: str) -> list[int] | None:
    """The token ids of `text` as the tokenizer reads it, without TensorFlow; None where
    only TensorFlow's rules apply (the level's NumPy form, `Level.ids`)."""
    return level_of(vocab).ids(text)


def token_piece(vocab: Vocabulary):
    """`piece(prev, token)`: the text token id `token` adds after id `prev` (its string,
    after a space unless one of them glues), as the tokenizer's `pieces` writes it."""
    strings = [UNK, *vocab.tokens]
    left, right = glue_flags(vocab)

    def piece(prev: int, token: int) -> str:
        return strings[token] if right[prev] or left[token] else " " + strings[token]

    return piece
