"""The token choice in NumPy: the ordered rules for one row's settings, the readable
specification every sampler follows (the graph's `TokenChoice` composes the same rules'
graph forms in the same order; tests hold each rule's two forms equal).

In order: label guidance, the repetition controls, temperature, top-k / top-p
truncation, never `[UNK]` with the seeded draw, and the choice among the best that the
checks (copy guard, excluded strings: `checks`) allow (or the argmax). A rule whose
setting is neutral is left out of the list.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

from textgen.generate.rules import checks as candidate_checks
from textgen.generate.rules.label_guidance import LabelGuidance
from textgen.generate.rules.repetition import Repetition
from textgen.generate.rules.seeded_draw import SeededDraw
from textgen.generate.rules.temperature import Temperature
from textgen.generate.rules.truncation import Truncation


class Row(NamedTuple):
    """What the rules read of one row at one step."""

    history: np.ndarray  # (REPETITION_HISTORY,) int32 the last tokens, oldest first, -1 empty
    twin_logits: np.ndarray | None  # label guidance: the logits of the text without its label
    tail: str  # the checks: the completion's last characters (`TokenRules.tail_size`)
    prev: int  # the last token read or drawn
    step: int  # the draw's index in this continuation (keys the noise)


Rule = Callable[[np.ndarray, Row], np.ndarray]  # (vocab,) scores in, (vocab,) scores out


class TokenRules:
    """The rules for resolved `SamplingSettings` and a row's `stream`, built once;
    `choose(logits, row)` is the row's next token, or None where the `checks` on
    candidates (`candidate_checks`: the copy guard, the excluded strings) left none (the
    row ends). `inclusion`: the row's included texts (`rules.inclusion`), which place
    their first tokens before the draw and write the rest (and at the deadline) without
    one."""

    def __init__(
        self, settings, stream: int, checks: Sequence = (), inclusion=None, unwritten=None
    ):
        s = settings
        self.checks, self.inclusion = list(checks), inclusion
        self.tail_size = candidate_checks.tail_size(self.checks)
        self.rules: list[tuple[str, Rule]] = []
        if s.guided():
            strength = float(s.label_strength)
            self._add("label guidance", lambda x, row: LabelGuidance.numpy(x, row.twin_logits,
                                                                          strength))  # fmt: skip
        if unwritten:
            self._add("unwritten tokens", lambda x, row: unwritten.numpy(x))
        if s.repetition_penalty is not None and Repetition.in_use(
            s.repetition_penalty, s.no_repeat_ngram or 0
        ):
            repetition = Repetition(s.repetition_penalty, s.repetition_window, s.no_repeat_ngram)
            self._add("repetition controls", lambda x, row: repetition.numpy(x, row.history))
        temperature = 0.0 if s.temperature is None else float(s.temperature)
        self._add("temperature", lambda x, row: Temperature.numpy(x, temperature))
        top_k, top_p = s.top_k or 0, 1.0 if s.top_p is None else float(s.top_p)
        if Truncation.in_use(top_k, top_p):
            self._add("top-k / top-p", lambda x, row: Truncation.numpy(x, top_k, top_p))
        if inclusion is not None:
            self._add("included texts", lambda x, row: inclusion.adjust(x, row.prev))
        seed = s.seed
        self._add("seeded draw", lambda x, row: SeededDraw.numpy(x, temperature, seed, stream,
                                                                 row.step))  # fmt: skip

    def _add(self, name: str, rule: Rule) -> None:
        self.rules.append((name, rule))

    @property
    def names(self) -> list[str]:
        """The rules in use, in order (and the copy guard's choice last, if on)."""
        return [name for name, _ in self.rules] + (["candidate checks"] if self.checks else [])

    def choose(self, logits: np.ndarray, row: Row) -> int | None:
        forced = self.inclusion.forced(row.prev) if self.inclusion is not None else None
        if forced is not None:
            token = forced
        else:
            scores = logits.astype(np.float32)
            for _, rule in self.rules:
                scores = rule(scores, row)
            if not self.checks:
                token = int(np.argmax(scores))
            else:
                token = candidate_checks.choose(scores, self.checks, row.tail, row.prev)
        if self.inclusion is not None and token is not None:
            self.inclusion.advance(token, row.prev, forced is not None)
        return token

    def advance(self, tail: str, piece: str) -> str:
        """The checks' tail after a token whose text is `piece`."""
        return candidate_checks.advance(tail, piece, self.tail_size) if self.checks else ""
