"""Included strings (`--include`): every completion contains each of them.

A text is included exactly as written (case-sensitive), wherever the model finds it
likely, and always before the completion's last token. Per row, a `Inclusion` keeps the
texts still owed (not yet in the completion) and works in three ways:

- **Placement** (`adjust`): where an owed text may start (not glued onto the end of a
  word: a text that starts with a letter or digit starts after one that is not), the
  first token that writes it, of probability p there, is drawn with probability at least
  `floor * p / mean_p`: `floor = 1 / (1 + spare / GAP)` is a uniform chance over the
  starts left (`spare`: the tokens the row can spare beyond what the owed texts need),
  and `p / mean_p` (p against its mean over the row's starts so far) moves that chance to
  where the model likes the text more than it usually does. So a text the model does not
  write by itself is placed where it fits best among the places it passes, not pushed to
  the end; where the model gives it more, it keeps more.
- **Commitment** (`advance`): once that first token is drawn where a text may start,
  the text's other tokens are written next (so a text begun is a text written).
- **The deadline** (`forced`): when the tokens left are only what the owed texts need,
  the first owed text is written (after a space where it would glue onto a word).

A text the model writes by itself anywhere counts too. `Inclusion` is the NumPy form,
one row: the specification every NumPy sampler follows (the NumPy loop, LiteRT, the
co-writing session; `textgen.generate.constrained_beams` searches beams with it; the web
page's `textgen/export/web/inclusion.js` is its port). `IncludedTexts`, `Owing` and
`InclusionRule` are the graph's: a batch at a time, each method the NumPy one row by
row (the generation loop's token choice, `constrained_search`), held equal by tests.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

from textgen.core.config import MAX_EXCLUDE_CHARS
from textgen.core.errors import ConfigError
from textgen.core.lazy_tf import tf
from textgen.data.vocabulary import UNK_ID
from textgen.generate.rules.exclusion import ExcludedStrings, found_strings
from textgen.generate.settings import MAX_INCLUDE

NO_BEAM_HOLDS = (
    "every hypothesis met a stop string before it held every --include text; "
    "leave out the stop string or give fewer texts"
)
GAP = {"char": 6, "word": 1}  # tokens between places a text may start: a word and a space


class Inclusion:
    """The texts owed by one row's completion (see the module doc).

    `texts`: the included texts; `tokens_of(text)` the token ids that write one; `piece`
    a token's text after the previous; `length` the completion's tokens; `before` the
    text before the completion (the prompt); `space` the id of " " (None: no such token;
    the word level adds spaces itself); `gap`: `GAP` of the level.
    """

    def __init__(
        self,
        texts: Sequence[str],
        tokens_of: Callable[[str], list[int]],
        piece: Callable[[int, int], str],
        length: int,
        before: str,
        space: int | None,
        gap: int,
    ):
        self.texts, self.piece, self.space, self.gap = tuple(texts), piece, space, gap
        self.tokens = [tokens_of(text) for text in self.texts]
        self.owed = list(range(len(self.texts)))
        self.queue: list[int] = []  # tokens of a text begun, still to write
        self.writing = -1  # the text begun
        self.completion, self.last = "", before[-1:]
        self.remaining = length
        self.span = max(len(t) for t in self.texts)
        self.seen = [[0.0, 0] for _ in self.texts]  # each text's first token: sum of p, starts
        if self._need() > length:
            raise ConfigError(
                f"--include needs {self._need()} tokens to write every text, more than "
                f"--length {length}; give a longer --length or fewer texts"
            )

    def clone(self) -> Inclusion:
        """A copy that goes on apart (a beam search's hypotheses each have one)."""
        twin = copy.copy(self)
        twin.owed, twin.queue = list(self.owed), list(self.queue)
        twin.seen = [list(seen) for seen in self.seen]
        return twin

    @property
    def progress(self) -> int:
        """The tokens written toward the texts: those of the texts held and of the one
        begun (a constrained beam search's bank)."""
        held = set(range(len(self.texts))) - set(self.owed)
        begun = len(self.tokens[self.writing]) - len(self.queue) if self.queue else 0
        return sum(len(self.tokens[i]) for i in held) + begun

    @property
    def total(self) -> int:
        """The tokens of all the texts."""
        return sum(len(tokens) for tokens in self.tokens)

    def starts(self, prev: int) -> list[int]:
        """The first tokens of the owed texts that may start after `prev`."""
        return [self.tokens[i][0] for i in self.owed if not self._glues(i, prev)]

    def _glues(self, index: int, prev: int) -> bool:
        """Would text `index`, begun after token `prev`, glue onto the end of a word?"""
        piece = self.piece(prev, self.tokens[index][0])
        return piece[:1].isalnum() and self.last.isalnum()

    def _need(self) -> int:
        """Tokens the owed texts need at most (each with a space before it, where the level
        writes spaces itself that is none)."""
        space = 1 if self.space is not None else 0
        return sum(len(self.tokens[i]) + space for i in self.owed)

    def forced(self, prev: int) -> int | None:
        """The token this step must write after `prev` (a text begun, or the deadline),
        or None."""
        if self.queue:
            return self.queue.pop(0)
        if self.owed and self.remaining <= self._need():
            first = self.owed[0]
            self.queue, self.writing = list(self.tokens[first]), first
            if self.space is not None and self._glues(first, prev):
                return self.space
            return self.queue.pop(0)
        return None

    def adjust(self, scores: np.ndarray, prev: int) -> np.ndarray:
        """`scores` (after temperature and truncation, before the seeded draw) with each
        owed text's first token (after `prev`) at least as likely as its placement floor."""
        spare = self.remaining - self._need()
        floor = 1.0 / (1.0 + spare / self.gap)
        scores = scores.astype(np.float32)
        x = scores.astype(np.float64)
        finite = x[np.isfinite(x)]
        if finite.size == 0:
            return scores
        top = finite.max()
        total = top + np.log(np.sum(np.exp(finite - top)))  # log of the whole mass
        for index in self.owed:
            if self._glues(index, prev):
                continue
            token = self.tokens[index][0]
            p = float(np.exp(x[token] - total))  # 0 where excluded
            seen = self.seen[index]
            seen[0], seen[1] = seen[0] + p, seen[1] + 1
            mean_p = seen[0] / seen[1]
            wanted = min(1.0, floor * p / mean_p) if mean_p > 0 else 0.0
            if wanted <= p or p >= 1.0:
                continue
            rest = total + np.log1p(-p)  # log of the other tokens' mass
            lowest = rest + np.log(wanted) - np.log1p(-wanted) if wanted < 1 else np.inf
            scores[token] = np.float32(min(lowest, np.finfo(np.float32).max))
        return scores

    def advance(self, token: int, prev: int, forced: bool) -> None:
        """After `token` (after `prev`) was written: begin a text whose first token was
        drawn where it may start; strike the texts the completion now holds."""
        if not forced and not self.queue:
            for index in self.owed:
                if self.tokens[index][0] == token and not self._glues(index, prev):
                    self.queue, self.writing = list(self.tokens[index][1:]), index
                    break
        piece = self.piece(prev, token)
        self.completion += piece
        self.last = (self.last + piece)[-1:]
        self.remaining -= 1
        self.owed = [i for i in self.owed if self.texts[i] not in self.completion]
        if not self.owed:
            self.queue = []


def inclusion_of(
    texts: Sequence[str], tokens: Sequence[str], encode, piece, length: int, before: str
) -> Inclusion:
    """The `Inclusion` of `texts` in a completion of `length` tokens after `before`, over
    a vocabulary's `tokens` (`[UNK]` first), `encode` (text -> ids) and `piece`; a
    ConfigError (one line) where the run cannot write a text or the length cannot hold
    them."""
    space = list(tokens).index(" ") if " " in tokens else None  # char level

    def tokens_of(text: str) -> list[int]:
        return include_tokens(text, encode, piece, UNK_ID)

    gap = GAP["char" if space is not None else "word"]
    return Inclusion(texts, tokens_of, piece, length, before, space, gap)


def include_tokens(text: str, encode: Callable[[str], Sequence[int]], piece, unk: int) -> list[int]:
    """The token ids that write `text`, or a ConfigError saying why the run cannot."""
    ids = list(encode(text))
    if not ids or unk in ids:
        raise ConfigError(f"--include {text!r}: the run has no tokens that write it")
    written = "".join(piece(prev, token) for prev, token in zip([ids[0], *ids], ids))
    if text not in written:
        raise ConfigError(
            f"--include {text!r}: the run writes it as {written.strip()!r} (lowercased or "
            "spaced as its tokens are); give it so"
        )
    return ids


# -- the graph form -----------------------------------------------------------------


class IncludedTexts(NamedTuple):
    """Each row's included texts in the graph: its first `MAX_INCLUDE` lines, in
    `MAX_INCLUDE` slots. A text the run cannot write (no tokens, or `[UNK]` among them)
    is not owed (the library refuses it first, as the NumPy samplers do)."""

    tokens: tf.Tensor  # (batch, MAX_INCLUDE, longest) int32: the ids that write each text
    lengths: tf.Tensor  # (batch, MAX_INCLUDE) int32: its tokens, 0 for none
    strings: ExcludedStrings  # the texts as code points (does the completion hold one?)
    including: tf.Tensor  # scalar bool: does any row include a text?

    @classmethod
    def of(cls, lines: tf.Tensor, encode, unk: int = 0) -> IncludedTexts:
        """`lines` (batch,) strings, a text a line ("": none); `encode` the tokenizer's
        (strings (n,) -> ragged ids (n, tokens))."""
        texts = tf.strings.split(lines, "\n")[:, :MAX_INCLUDE]
        ids = tf.RaggedTensor.from_row_splits(encode(texts.flat_values), texts.row_splits)
        ids = tf.cast(ids.to_tensor(-1, shape=[None, MAX_INCLUDE, None]), tf.int32)
        writable = ~tf.reduce_any(tf.equal(ids, unk), axis=2)
        lengths = tf.where(writable, tf.reduce_sum(tf.cast(ids >= 0, tf.int32), axis=2), 0)
        tokens = tf.pad(tf.maximum(ids, 0), [[0, 0], [0, 0], [0, 1]])  # each has a first
        strings = ExcludedStrings.of(lines, MAX_INCLUDE)
        strings = strings._replace(valid=strings.valid & (lengths > 0))
        return cls(tokens, lengths, strings, tf.reduce_any(lengths > 0))

    @classmethod
    def none(cls, batch) -> IncludedTexts:
        """No row includes a text."""
        lengths = tf.zeros([batch, MAX_INCLUDE], tf.int32)
        strings = ExcludedStrings.none(batch, MAX_INCLUDE)
        return cls(lengths[..., None], lengths, strings, tf.constant(False))


class Owing(NamedTuple):
    """One row's `Inclusion` in the graph, batched: the loop state of the texts owed."""

    owed: tf.Tensor  # (batch, MAX_INCLUDE) bool: a text not yet in the completion
    writing: tf.Tensor  # (batch,) int32: the text begun (-1: none)
    written: tf.Tensor  # (batch,) int32: its tokens written (the rest are forced)
    last_alnum: tf.Tensor  # (batch,) bool: the text so far ends with a letter or digit
    seen: tf.Tensor  # (batch, MAX_INCLUDE) float64: the first token's summed probability
    starts: tf.Tensor  # (batch, MAX_INCLUDE) float64: the places it was seen at
    remaining: tf.Tensor  # (batch,) int32: the completion's tokens still to draw
    tail: tf.Tensor  # (batch, MAX_EXCLUDE_CHARS - 1) int32: its last code points, -1 before

    @classmethod
    def start(cls, included: IncludedTexts, before: tf.Tensor, length: tf.Tensor) -> Owing:
        """What a completion of `length` (batch,) tokens after the texts `before` (batch,)
        owes (the texts `included`)."""
        batch = tf.shape(before)[0]
        zeros = tf.zeros([batch, MAX_INCLUDE], tf.float64)
        return cls(
            included.lengths > 0, tf.fill([batch], -1), tf.zeros([batch], tf.int32),
            tf.strings.regex_full_match(before, ENDS_ALNUM), zeros, zeros, length,
            tf.fill([batch, MAX_EXCLUDE_CHARS - 1], -1),
        )  # fmt: skip

    @classmethod
    def spec(cls) -> Owing:
        """The `tf.TensorSpec`s of a loop state (a graph function's input)."""
        spec = tf.TensorSpec
        return cls(
            spec([None, MAX_INCLUDE], tf.bool), spec([None], tf.int32), spec([None], tf.int32),
            spec([None], tf.bool), spec([None, MAX_INCLUDE], tf.float64),
            spec([None, MAX_INCLUDE], tf.float64), spec([None], tf.int32),
            spec([None, MAX_EXCLUDE_CHARS - 1], tf.int32),
        )  # fmt: skip


# A text whose last character is a letter or digit: Python's str.isalnum in RE2 (letters
# and numbers; the tokens' own texts are read with isalnum itself)
ENDS_ALNUM = r"(?s).*[\p{L}\p{N}]"


class InclusionRule:
    """The graph form of `Inclusion` over a batch (`forced`, `adjust`, `advance`, each the
    NumPy method of the same name, row by row), `included` texts, the tokens' texts
    `pieces` (`textgen.generate.pieces.TokenPieces`)."""

    def __init__(self, included: IncludedTexts, pieces):
        self.included, self.pieces = included, pieces
        self.space = pieces.space
        self.gap = GAP["char" if self.space is not None else "word"]
        self.firsts = included.tokens[:, :, 0]  # (batch, MAX_INCLUDE)

    def glues(self, owing: Owing, prev) -> tf.Tensor:
        """(batch, MAX_INCLUDE): would each text, begun after `prev`, glue onto a word?"""
        begins, _, _ = self.pieces.alnum_ends(prev, self.firsts)
        return begins & owing.last_alnum[:, None]

    def _need(self, owing: Owing) -> tf.Tensor:
        space = 1 if self.space is not None else 0
        return tf.reduce_sum(tf.where(owing.owed, self.included.lengths + space, 0), axis=1)

    def forced(self, owing: Owing, prev) -> tuple[tf.Tensor, tf.Tensor, Owing]:
        """Each row's forced token (batch,), whether it has one, and the state after."""
        lengths, tokens = self.included.lengths, self.included.tokens
        text = tf.maximum(owing.writing, 0)
        queued = (owing.writing >= 0) & (owing.written < tf.gather(lengths, text, batch_dims=1))
        at = tf.stack([text, tf.minimum(owing.written, tf.shape(tokens)[2] - 1)], axis=1)
        next_token = tf.gather_nd(tokens, at, batch_dims=1)
        due = ~queued & tf.reduce_any(owing.owed, 1) & (owing.remaining <= self._need(owing))
        first = tf.argmax(tf.cast(owing.owed, tf.int32), axis=1, output_type=tf.int32)
        first_token = tf.gather(self.firsts, first, batch_dims=1)
        spaced = tf.zeros_like(due)
        if self.space is not None:
            spaced = due & tf.gather(self.glues(owing, prev), first, batch_dims=1)
        token = tf.where(queued, next_token, tf.where(spaced, self.space or 0, first_token))
        written = tf.where(queued, owing.written + 1, owing.written)
        written = tf.where(due, tf.where(spaced, 0, 1), written)
        writing = tf.where(due, first, owing.writing)
        return token, queued | due, owing._replace(writing=writing, written=written)

    def adjust(self, scores, owing: Owing, prev, forced) -> tuple[tf.Tensor, Owing]:
        """`scores` (batch, vocab) with each owed text's first token at least as likely as
        its placement floor, and the state after (the rows not `forced`)."""
        f64 = lambda value: tf.constant(value, tf.float64)  # noqa: E731
        spare = tf.cast(owing.remaining - self._need(owing), tf.float64)
        floor = 1.0 / (1.0 + spare / self.gap)
        x = tf.cast(scores, tf.float64)
        finite = tf.math.is_finite(x)
        top = tf.reduce_max(tf.where(finite, x, f64(-np.inf)), axis=1)
        mass = tf.reduce_sum(tf.where(finite, tf.exp(x - top[:, None]), f64(0)), axis=1)
        total = top + tf.math.log(mass)
        seeing = owing.owed & ~self.glues(owing, prev)
        seeing &= (~forced & tf.reduce_any(finite, axis=1))[:, None]
        p = tf.exp(tf.gather(x, self.firsts, batch_dims=1) - total[:, None])  # (batch, texts)
        seen = owing.seen + tf.where(seeing, p, f64(0))
        starts = owing.starts + tf.cast(seeing, tf.float64)
        mean_p = tf.math.divide_no_nan(seen, starts)
        wanted = tf.where(mean_p > 0, tf.minimum(f64(1), floor[:, None] * p / mean_p), f64(0))
        lift = seeing & (wanted > p) & (p < 1.0)
        rest = total[:, None] + tf.math.log1p(-p)
        lowest = rest + tf.math.log(wanted) - tf.math.log1p(-wanted)
        lowest = tf.where(wanted < 1, lowest, f64(np.inf))
        value = tf.cast(tf.minimum(lowest, f64(np.finfo(np.float32).max)), tf.float32)
        vocab = tf.shape(scores)[1]
        for index in range(MAX_INCLUDE):  # in order: a later text's value wins, as in NumPy
            at = tf.one_hot(self.firsts[:, index], vocab, on_value=True, off_value=False)
            scores = tf.where(at & lift[:, index, None], value[:, index, None], scores)
        return scores, owing._replace(seen=seen, starts=starts)

    def advance(self, owing: Owing, prev, ids, forced) -> Owing:
        """The state after each row wrote token `ids` (batch,) after `prev`."""
        match = tf.equal(self.firsts, ids[:, None]) & owing.owed & ~self.glues(owing, prev)
        begins = ~forced & tf.reduce_any(match, axis=1)
        writing = tf.where(
            begins, tf.argmax(tf.cast(match, tf.int32), 1, output_type=tf.int32), owing.writing
        )  # fmt: skip
        written = tf.where(begins, 1, owing.written)
        found = found_strings(self.pieces, self.included.strings, owing.tail, prev, ids[:, None])
        owed = owing.owed & ~found[:, 0]
        _, ends_alnum, written_any = self.pieces.alnum_ends(prev, ids[:, None])
        last_alnum = tf.where(written_any[:, 0], ends_alnum[:, 0], owing.last_alnum)
        return owing._replace(
            owed=owed, writing=tf.where(tf.reduce_any(owed, 1), writing, -1), written=written,
            last_alnum=last_alnum, remaining=owing.remaining - 1,
            tail=self.pieces.advance(owing.tail, prev, ids),
        )  # fmt: skip
