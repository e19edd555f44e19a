"""Co-writing through TF Serving: the session's place is the text and the generation
state the export's `continue` signature hands back, so the server keeps nothing.

`RemoteSession` answers what `textgen.generate.cowriting.CoWriting` asks of a session
(`start`, `read`, `draw`, `best_beam`, `next_tokens`). Text read into a state keys the
next draw's noise from 0, so a continuation equals `textgen sample --server --prompt` of
the whole text so far, with every setting a server takes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import NamedTuple

from textgen.core.errors import ConfigError
from textgen.generate.settings import SamplingSettings


class RemotePlace(NamedTuple):
    """The text so far and the server's state after it (b"": nothing read yet); `fresh`:
    the state has drawn nothing since it read text (a draw's noise starts at 0);
    `unread`: the end of the text the state has not read yet, sent with the next draw
    (a prompt: the server heals it where it ends inside a word)."""

    text: str
    state: bytes
    fresh: bool = True
    unread: str = ""


_NOTHING = SamplingSettings(max_new_tokens=0)  # read text, draw no token


class RemoteSession:
    """A session over a `RemoteSampler` (see the module doc)."""

    def __init__(self, sampler):
        self.sampler = sampler

    def start(self) -> RemotePlace:
        return RemotePlace("", b"")

    def read(self, place: RemotePlace, text: str, unlabelled: str | None = None) -> RemotePlace:
        """`place` after the server read `text` (and drew nothing)."""
        if not place.unread + text:
            return place
        chunk = self.sampler.continue_text(place.unread + text, place.state, _NOTHING)
        return RemotePlace(place.text + text, chunk.state)

    def read_prompt(
        self, place: RemotePlace, text: str, unlabelled: str | None = None
    ) -> RemotePlace:
        """`place` with `text` to continue: read by the server with the next draw."""
        return place._replace(text=place.text + text, unread=place.unread + text)

    def draw(
        self, place: RemotePlace, settings: SamplingSettings, stream: int = 0
    ) -> Iterator[tuple[str, RemotePlace]]:
        """Continue `place`, chunk by chunk as the server draws it. A place that has drawn
        since its text was read (continued again with no new text) is read anew: the
        server counts a continuation's tokens, and keys its noise, from the text last read."""
        if settings.include:  # the `continue` signature takes none: `sample`, at once
            (completion,) = self.sampler.generate([place.text], settings, [stream])
            whole = place.text + completion  # read anew by the next draw
            yield completion, RemotePlace(whole, b"", fresh=True, unread=whole)
            return
        if not place.fresh:
            place = self.read_prompt(self.start(), place.text)
        chunk = self.sampler.continue_text(place.unread, place.state, settings, stream)
        while True:
            place = RemotePlace(place.text + chunk.completion, chunk.state, fresh=False)
            yield chunk.completion, place
            if chunk.done:
                break
            chunk = self.sampler.continue_text("", chunk.state, settings, stream)
        if chunk.pending:
            yield chunk.pending, RemotePlace(place.text + chunk.pending, place.state, fresh=False)

    def best_beam(self, place: RemotePlace, settings: SamplingSettings) -> str:
        """The served beam search's best continuation of the whole text."""
        searched = dataclasses.replace(settings, temperature=None, top_k=None, top_p=None)
        (found,) = self.sampler.search([place.text], searched)
        return found[0].completion if found else ""

    def next_tokens(self, place: RemotePlace, count: int = 10):
        raise ConfigError("/next needs the model's logits, which a server does not send")
