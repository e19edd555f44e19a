"""A sampler over the NumPy loop (`numpy_loop`): one row at a time, any one-token step.

`NumpyRun` (a run folder's NumPy weights) and `LiteRTSampler` (a LiteRT export) are this
class over their own step functions, so both take every setting the loop takes, and beam
search (`numpy_beams`), and write the TensorFlow generator's text for the same seed.
"""

from __future__ import annotations

from collections.abc import Iterator

from textgen.core.config import SampleConfig
from textgen.generate.numpy_beams import beam_search
from textgen.generate.numpy_loop import NumpyLoop
from textgen.generate.sampler import Beam, Sampler
from textgen.generate.settings import SamplingSettings


class LoopSampler(Sampler):
    """Base class: a subclass sets `loop` (a `NumpyLoop`), `defaults`, `items`, `labels`."""

    loop: NumpyLoop
    defaults: SampleConfig

    def _pieces(self, prompt: str, settings: SamplingSettings, stream: int) -> Iterator[str]:
        settings = settings.with_defaults(self.defaults)
        (read,) = settings.prompts_to_read([prompt], self.items, self.labels)
        guided = settings.guided()
        unlabelled = settings.unlabelled([prompt], self.labels)[0] if guided else None
        place = self.loop.read_prompt(self.loop.start(twin=guided), read, unlabelled)
        return self.loop.pieces(place, settings, stream)

    def _draw(self, prompts, streams, settings) -> list[str]:
        return ["".join(self._pieces(p, settings, s)) for p, s in zip(prompts, streams)]

    def _stream(self, prompt: str, settings: SamplingSettings) -> Iterator[str]:
        return self._pieces(prompt, settings, 0)

    def _search(self, prompts: list[str], settings: SamplingSettings) -> list[list[Beam]]:
        settings = settings.with_defaults(self.defaults)
        found = []
        for prompt in settings.prompts_to_read(prompts, self.items, self.labels):
            place = self.loop.read_prompt(self.loop.start(twin=False), prompt)
            found.append(beam_search(self.loop, place, settings))
        return found

    def session(self) -> NumpyLoop:
        """The loop a co-writing session writes with (`textgen.generate.cowriting`)."""
        return self.loop
