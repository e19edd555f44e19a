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

A text the model writes by itself anywhere counts too. The NumPy form, one row: the
specification every NumPy sampler follows (the NumPy loop, LiteRT, the co-writing
session; `textgen.generate.constrained_beams` searches beams with it; the web page's
`textgen/export/web/inclusion.js` is its port); the graph loops do not have it yet
(`textgen sample --backend tensorflow` and `--server` say so in one line).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import numpy as np

from textgen.core.errors import ConfigError

NO_INCLUDE = (
    "--include is drawn by the NumPy samplers (--backend numpy, the default where it can; "
    "--litert; --interactive; the web page); the TensorFlow generator and the SavedModel "
    "do not have it yet"
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
