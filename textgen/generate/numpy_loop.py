"""The NumPy generation loop: prime, step, choose, finish, one token at a time over any
one-token step function, from a carried place.

A `Place` is a text and the network after reading it. `NumpyLoop.read` moves a place on
by new text (the network reads only that text, never the history again), `draw` by
tokens chosen by the NumPy token rules (`textgen.generate.rules.pipeline`: every setting
`sample` takes, with the same seeded noise as every sampler, keyed from the start of each
continuation), so a continuation equals `textgen sample --prompt` of the whole text so far;
undoing is keeping the previous place. It serves `NumpyRun` (NumPy weights), the LiteRT
sampler (the interpreter's step), the co-writing session and `Run.session` (a TF step).
No TensorFlow here.

Label guidance: a place of a run with labels may carry a twin, the same text read without
its labels, so that a continuation with a label can be drawn from `unlabelled + strength x
(labelled - unlabelled)` at any turn.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np

from textgen.core.config import MAX_NEW_TOKENS, REPETITION_HISTORY
from textgen.core.errors import ConfigError
from textgen.data.vocabulary import UNK_ID
from textgen.generate.finish import StreamFinish
from textgen.generate.rules import checks as candidate_checks
from textgen.generate.rules.copy_guard import SpanGuard
from textgen.generate.rules.exclusion import Exclusion
from textgen.generate.rules.healing import Healing
from textgen.generate.rules.inclusion import Inclusion, inclusion_of
from textgen.generate.rules.pipeline import Row, TokenRules
from textgen.generate.rules.repetition import Repetition, pushed
from textgen.generate.rules.unwritten import Unwritten
from textgen.generate.settings import SamplingSettings
from textgen.generate.stops import StopStrings


@dataclass(frozen=True)
class Place:
    """Where a text stands: the text so far and the network after reading it."""

    text: str
    logits: np.ndarray  # (vocab,) for the next token
    state: tuple  # the network's state after the last token
    last: int  # the last token read
    history: np.ndarray  # (REPETITION_HISTORY,) int32 the last tokens read, oldest first
    twin: tuple | None = None  # (logits, state) of the text read without its labels
    healed: tuple[int, ...] = ()  # the prompt's last tokens, backed off (`rules.healing`)


class NumpyLoop:
    """Reads and continues texts one token at a time (see the module doc).

    `step(token, state) -> (logits, state)` is the network, `encode(text)` gives token
    ids, `piece(prev, token)` a token's text after `prev`; `start_id` is read first.
    `item_stops` end every text besides the settings' stop strings; `guided`: places
    carry the twin that label guidance needs; `span_guard(span)` gives the copy guard
    for `max_copy` (None: this loop cannot guard); `cap` bounds a continuation's tokens;
    `heals`: prompts read with `read_prompt` are healed (`rules.healing`: the level's
    tokens carry text of their own).
    """

    def __init__(
        self,
        step: Callable,
        zero_state: tuple,
        encode: Callable[[str], Sequence[int]],
        piece: Callable[[int, int], str],
        tokens: Sequence[str],
        start_id: int,
        item_stops: Sequence[str] = (),
        guided: bool = False,
        span_guard: Callable[[int], SpanGuard] | None = None,
        cap: int = MAX_NEW_TOKENS,
        heals: bool = False,
    ):
        self.step, self.zero_state, self.encode, self.piece = step, zero_state, encode, piece
        self.tokens, self.start_id, self.item_stops = list(tokens), start_id, list(item_stops)
        self.guided, self.span_guard, self.cap = guided, span_guard, cap
        self._guards: dict[int, SpanGuard] = {}
        self.unwritten = Unwritten(self.tokens)
        self.healing = Healing(self.tokens) if heals else None

    def start(self, twin: bool | None = None) -> Place:
        """An empty text: the start token read (with its twin if `twin`, default `guided`)."""
        logits, state = self.step(self.start_id, self.zero_state)
        history = pushed(np.full(REPETITION_HISTORY, -1, np.int32), self.start_id)
        twin = self.guided if twin is None else twin
        return Place("", logits, state, self.start_id, history, (logits, state) if twin else None)

    def read(self, place: Place, text: str, unlabelled: str | None = None) -> Place:
        """`place` after reading `text` (only its tokens are read); its twin reads
        `unlabelled` (`text` without its labels; default `text`)."""
        return self._read(place, text, unlabelled, heal=False)

    def read_prompt(self, place: Place, text: str, unlabelled: str | None = None) -> Place:
        """`read`, the text a prompt to continue: healed where the loop heals (the last
        pieces of a cut word backed off, the next token drawn one that begins with their
        text)."""
        return self._read(place, text, unlabelled, heal=self.healing is not None)

    def _read(self, place: Place, text: str, unlabelled: str | None, heal: bool) -> Place:
        if place.healed:  # the tokens backed off are read first
            place = self._read_ids(replace(place, healed=()), place.healed, place.healed)
        ids = list(self.encode(text))
        twin_ids = ids if unlabelled is None else list(self.encode(unlabelled))
        healed: tuple[int, ...] = ()
        if heal:  # (a twin's text ends as its row's: it is backed off alike)
            ids, healed = self.healing.split(ids)
            twin_ids, _ = self.healing.split(twin_ids)
        place = self._read_ids(place, ids, twin_ids)
        if not healed:
            return replace(place, text=place.text + text)
        logits = self.healing.numpy(place.logits, healed)
        return replace(place, text=place.text + text, logits=logits, healed=healed)

    def _read_ids(self, place: Place, ids: Sequence[int], twin_ids: Sequence[int]) -> Place:
        """`place` after reading token `ids` (its twin `twin_ids`), its text unchanged."""
        logits, state, last, history = place.logits, place.state, place.last, place.history
        for token in ids:
            logits, state = self.step(token, state)
            last, history = token, pushed(history, token)
        twin = place.twin
        if twin is not None:
            for token in twin_ids:
                twin = self.step(token, twin[1])
        return Place(place.text, logits, state, last, history, twin)

    def healed_for(self, place: Place, settings: SamplingSettings) -> Place:
        """`place`, unhealed where resolved `settings` check candidates (excluded strings,
        the copy guard: they read a token's whole text, the backed-off part too) or
        include texts (one owed may have to start at once)."""
        if settings.include or settings.exclude or settings.max_copy:
            return self.unhealed(place)
        return place

    def unhealed(self, place: Place) -> Place:
        """`place` with its backed-off tokens read again (as it is if not healed)."""
        return self._read(place, "", None, heal=False) if place.healed else place

    def backed_off(self, place: Place) -> str:
        """The text `place`'s next token begins with, not shown again ("" unless healed)."""
        return self.healing.backed_off(place.healed) if place.healed else ""

    def draw(
        self, place: Place, settings: SamplingSettings, stream: int = 0
    ) -> Iterator[tuple[str, Place]]:
        """Continue `place` with resolved `settings`: for each token drawn, the text it
        shows now (held back while it may begin a stop string; markers never shown) and
        the place after it. Ends after `max_new_tokens` (at most `cap`), at a stop string,
        or where the checks (copy guard, excluded strings) leave no candidate."""
        s = settings
        place = self.healed_for(place, s)
        inclusion = self.inclusion_for(s, place)
        rules = TokenRules(s, stream, self.checks_for(s), inclusion, self.unwritten)
        finish = StreamFinish(StopStrings([*(s.stop or ()), *self.item_stops]))
        guided, tail = s.guided() and place.twin is not None, ""
        for index in range(min(s.max_new_tokens, self.cap)):
            twin_logits = place.twin[0] if guided else None
            row = Row(place.history, twin_logits, tail, place.last, index)
            token = rules.choose(place.logits, row)
            if token is None:  # the checks left no candidate: the text ends
                break
            piece = self.piece(place.last, token)
            tail = rules.advance(tail, piece)
            before, place = place, self.advance(place, token, piece)
            shown, stopped = finish.add(place.text[len(before.text) :])
            yield shown, place
            if stopped:
                return
        rest = finish.rest()
        if rest:
            yield rest, place

    def pieces(self, place: Place, settings: SamplingSettings, stream: int = 0) -> Iterator[str]:
        """`draw`'s text alone, piece by piece (nothing empty)."""
        for shown, _ in self.draw(place, settings, stream):
            if shown:
                yield shown

    def next_tokens(self, place: Place, count: int = 10) -> list[tuple[str, float]]:
        """The `count` most likely next tokens and their probabilities (the softmax)."""
        logits = place.logits.astype(np.float64)
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        best = np.argsort(-probs, kind="stable")[:count]
        return [(self.tokens[i], float(probs[i])) for i in best]

    def advance(self, place: Place, token: int, piece: str) -> Place:
        """`place` after `token` (whose text is `piece`): the network stepped, twin too
        (a healed place's text grows by the piece after its backed-off text)."""
        logits, state = self.step(token, place.state)
        twin = None if place.twin is None else self.step(token, place.twin[1])
        history = pushed(place.history, token)
        text = place.text + piece[len(self.backed_off(place)) :]
        return Place(text, logits, state, token, history, twin)

    def checks_for(self, settings: SamplingSettings) -> list:
        """The checks on candidates that resolved `settings` ask for: the copy guard,
        the excluded strings (`textgen.generate.rules.checks`)."""
        guard = self.guard_for(settings.max_copy)
        checks = [guard] if guard is not None else []
        if settings.exclude:
            checks.append(Exclusion(settings.exclude, self.piece))
        return checks

    def search_rules(self, settings: SamplingSettings) -> tuple:
        """What a beam search with resolved `settings` goes by: its most tokens, stop
        strings, candidate checks and their tail size, repetition controls (or None)."""
        s = settings
        most = max(1, min(s.max_new_tokens, self.cap))
        stops = StopStrings([*(s.stop or ()), *self.item_stops])
        checks = self.checks_for(s)
        repetition = None
        if Repetition.in_use(s.repetition_penalty, s.no_repeat_ngram or 0):
            repetition = Repetition(s.repetition_penalty, s.repetition_window, s.no_repeat_ngram)
        return most, stops, checks, candidate_checks.tail_size(checks), repetition

    def inclusion_for(self, settings: SamplingSettings, place: Place) -> Inclusion | None:
        """The texts `settings` include, owed by a continuation of `place` (None: none)."""
        if not settings.include:
            return None
        length = min(settings.max_new_tokens, self.cap)
        return inclusion_of(
            settings.include, self.tokens, self.encode, self.piece, length, place.text
        )  # fmt: skip

    def guard_for(self, span: int) -> SpanGuard | None:
        """The copy guard for spans of `span` characters (0: none), opened once a span."""
        if not span:
            return None
        if self.span_guard is None:
            raise ConfigError("--max-copy needs the run's training text (a run folder)")
        if span not in self._guards:
            self._guards[span] = self.span_guard(span)
        return self._guards[span]


def search_scores(
    place: Place, repetition, unwritten: Unwritten | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """A beam search's scores of the next token after `place`: the log-softmax of the
    logits the repetition controls (or None) changed, `[UNK]` and `unwritten` tokens
    never; and the model's own log-softmax. float32, as TensorFlow's kernel computes it."""
    logits = place.logits.astype(np.float32)
    scores = logits if repetition is None else repetition.numpy(logits, place.history)
    search = _log_softmax(scores)
    search[UNK_ID] = -np.inf
    if unwritten:
        search = unwritten.numpy(search)
    return search, _log_softmax(logits)


def _log_softmax(x: np.ndarray) -> np.ndarray:
    shifted = x.astype(np.float32) - np.max(x)
    return shifted - np.log(np.sum(np.exp(shifted), dtype=np.float32))
