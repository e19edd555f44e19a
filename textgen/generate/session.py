"""Writing with the model: a text's place carried from turn to turn.

A `Place` is a text and the network after reading it. `Session.read` moves a place on by
new text (the RNN reads only that text, never the history again), `Session.draw` by
tokens drawn one at a time (the same rules and seeded noise as every sampler, the noise
keyed from the start of each continuation, so a continuation equals `textgen sample
--prompt` of the whole text so far), and undoing is keeping the previous place. Over any
one-token step: NumPy (`NumpyRun`) or TensorFlow (`Run`). No TensorFlow here.

Label guidance (`textgen.generate.guidance`): a session of a run with labels carries a
twin, the same text read without its labels, so that a continuation with a label can be
drawn from `unlabelled + strength x (labelled - unlabelled)` at any turn.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from textgen.data.items import strip_markers
from textgen.generate.reference import choose, guided_logits
from textgen.generate.settings import SamplingSettings
from textgen.generate.stops import StopStrings


@dataclass(frozen=True)
class Place:
    """Where a text stands: the text so far and the network after reading it."""

    text: str
    logits: np.ndarray  # (vocab,) for the next token
    state: tuple  # the network's state after the last token
    last: int  # the last token read
    twin: tuple | None = None  # (logits, state) of the text read without its labels


class Session:
    """Reads and continues texts one token at a time.

    `step(token, state) -> (logits, state)` is the network, `encode(text)` gives token
    ids, `piece(prev, token)` a token's text after `prev`; `start_id` is read first.
    `guided`: places carry the twin that label guidance needs.
    """

    def __init__(
        self,
        step: Callable,
        zero_state: tuple,
        encode: Callable[[str], Sequence[int]],
        piece: Callable[[int, int], str],
        tokens: Sequence[str],
        start_id: int,
        stops: Sequence[str] = (),
        guided: bool = False,
    ):
        self.step, self.zero_state, self.encode, self.piece = step, zero_state, encode, piece
        self.tokens, self.start_id, self.stops = list(tokens), start_id, StopStrings(stops)
        self.guided = guided

    def start(self) -> Place:
        """An empty text: the start token read."""
        logits, state = self.step(self.start_id, self.zero_state)
        return Place("", logits, state, self.start_id, (logits, state) if self.guided else None)

    def read(self, place: Place, text: str, unlabelled: str | None = None) -> Place:
        """`place` after reading `text` (only its tokens are read); its twin reads
        `unlabelled` (`text` without its labels; default `text`)."""
        logits, state, last = place.logits, place.state, place.last
        for token in self.encode(text):
            logits, state = self.step(token, state)
            last = token
        twin = place.twin
        if twin is not None:
            for token in self.encode(text if unlabelled is None else unlabelled):
                twin = self.step(token, twin[1])
        return Place(place.text + text, logits, state, last, twin)

    def draw(
        self, place: Place, settings: SamplingSettings, stream: int = 0
    ) -> Iterator[tuple[str, Place]]:
        """Continue `place` with resolved `settings`: for each token drawn, the text it
        shows now (held back while it may begin a stop string; markers never shown) and
        the place after it. Ends after `max_new_tokens` or at a stop string. Guided
        settings draw from the place and its twin."""
        s, pending = settings, ""
        guide = s.guided() and place.twin is not None
        for index in range(s.max_new_tokens):
            logits = place.logits
            if guide:
                logits = guided_logits(logits, place.twin[0], s.label_strength)
            token = choose(logits, s.temperature, s.top_k, s.top_p, s.seed, stream, index)
            piece = self.piece(place.last, token)
            logits, state = self.step(token, place.state)
            twin = None if place.twin is None else self.step(token, place.twin[1])
            place = Place(place.text + piece, logits, state, token, twin)
            ready, pending, stopped = self.stops.split_stream(pending + piece)
            yield strip_markers(ready), place
            if stopped:
                return
        if pending:
            yield strip_markers(pending), place

    def next_tokens(self, place: Place, count: int = 10) -> list[tuple[str, float]]:
        """The `count` most likely next tokens and their probabilities (the softmax)."""
        logits = place.logits.astype(np.float64)
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        best = np.argsort(-probs, kind="stable")[:count]
        return [(self.tokens[i], float(probs[i])) for i in best]
