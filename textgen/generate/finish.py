"""Finishing a text, in Python: what a stream may show as its pieces arrive (held back
while it may be the start of a stop string, cut at one, item and label markers never
shown). The graph's counterpart is `Generator`'s (`textgen.generate.generator`)."""

from __future__ import annotations

from textgen.data.items import strip_markers
from textgen.generate.stops import StopStrings


def finish_whole(text: str, stops: StopStrings) -> str:
    """A whole completion as shown: cut at its first stop string, markers removed."""
    return strip_markers(stops.cut_text(text))


class StreamFinish:
    """Pieces in (`add`), text to show out; `rest` at the end."""

    def __init__(self, stops: StopStrings):
        self.stops, self.pending = stops, ""

    def add(self, piece: str) -> tuple[str, bool]:
        """The text to show now after `piece`, and whether a stop string ended the text."""
        ready, self.pending, stopped = self.stops.split_stream(self.pending + piece)
        return strip_markers(ready), stopped

    def rest(self) -> str:
        """What was held back, shown at the end (no stop string followed)."""
        rest, self.pending = strip_markers(self.pending), ""
        return rest
