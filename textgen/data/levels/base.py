"""What every level answers (see `textgen.data.levels`)."""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable, Iterator
from typing import ClassVar

import numpy as np

from textgen.core.lazy_tf import tf

NEWLINE = "\n"


def valid_unicode(text: str) -> str:
    """`text` with lone surrogates (not Unicode text: e.g. an undecodable byte in a
    command-line argument) replaced by U+FFFD, as the graph ops replace invalid UTF-8."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:  # (a surrogate pair written as two code points is joined)
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def plain_lines(text: str) -> str:
    """`text` with its line ends as "\\n" and lone surrogates replaced, as every level
    reads it."""
    return valid_unicode(text).replace("\r\n", "\n").replace("\r", "\n")


class Level:
    """A vocabulary's way of reading text: ids of a text (NumPy and graph), how a text
    is cut into chunks no token spans, how the vocabulary is learned."""

    name: ClassVar[str]
    unit: ClassVar[str]  # what a token is, for messages: "characters", "words", "pieces"
    default_size: ClassVar[int | None] = None  # the vocabulary size when none is asked
    extendable: ClassVar[bool] = True  # fine-tuning may add a corpus's new tokens
    reads_every_character: ClassVar[bool] = True  # no character is read as [UNK]
    heals: ClassVar[bool] = False  # a prompt ending inside a word is healed (rules.healing)

    def __init__(self, vocab):
        self.vocab = vocab
        self._reader = None

    # Learning a vocabulary -------------------------------------------------------------
    @classmethod
    def learn(
        cls, chunks: Callable[[], Iterable[str]], lowercase: bool, size: int | None
    ) -> tuple[list[str], bytes | None]:
        """The tokens (in id order, [UNK] not included) learned from the text `chunks()`
        yields, and the tokenizer model that reads them (None when the tokens say all)."""
        counts = cls.count(chunks(), lowercase)
        return ranked_tokens(counts, size), None

    @classmethod
    def count(cls, chunks: Iterable[str], lowercase: bool) -> collections.Counter:
        """How often each token occurs in a text given as chunks (streamed: any size)."""
        raise NotImplementedError

    # Reading text ----------------------------------------------------------------------
    @staticmethod
    def cut(chunks: Iterable[str]) -> Iterator[str]:
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

    def ids(self, text: str) -> list[int] | None:
        """The ids of `text` without TensorFlow; None where only the graph's rules apply."""
        raise NotImplementedError

    def encode_text(self, text: str) -> np.ndarray:
        """The ids (int32) of any `text`, with TensorFlow where the NumPy form cannot."""
        ids = self.ids(text)
        if ids is None:
            return self.reader().ids(tf.constant(valid_unicode(text).encode("utf-8"))).numpy()
        return np.asarray(ids, np.int32)

    def tokens_of(self, text: str) -> list[str]:
        """`text` cut into this level's tokens, as strings (distinct-n counts them)."""
        strings = ["[UNK]", *self.vocab.tokens]
        return [strings[i] for i in self.encode_text(text)]

    def reader(self):
        """The graph form (`graph_reader`), built once."""
        if self._reader is None:
            self._reader = self.graph_reader()
        return self._reader

    def graph_reader(self):
        """The graph form: a `tf.Module` whose `ids(text)` gives a scalar string's ids
        (tokens,) or a batch's (ragged (batch, tokens)), int32; tracked by the generator,
        so an export carries what it reads with."""
        raise NotImplementedError

    def page_reader(self) -> dict | None:
        """What the web page reads prompts with besides the tokens (None: the tokens)."""
        return None

    def id_bytes(self) -> list[bytes]:
        """Each id's text as UTF-8 bytes, [UNK] first: what the graph joins into text."""
        return [text.encode("utf-8") for text in ["[UNK]", *self.vocab.tokens]]

    def glue(self) -> tuple[np.ndarray, np.ndarray]:
        """(vocab,) bools per id: no space before it (left), no space after it (right).
        Unspaced levels glue everything: their tokens carry their own spacing."""
        size = len(self.vocab.tokens) + 1
        return np.ones(size, bool), np.ones(size, bool)


def ranked_tokens(counts: collections.Counter, size: int | None) -> list[str]:
    """The tokens of `counts`, most frequent first (ties by token), at most `size` ids
    ([UNK] counted)."""
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    tokens = [token for token, _ in ranked]
    return tokens if size is None else tokens[: max(size - 1, 1)]
