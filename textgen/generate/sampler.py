"""The one interface of every sampler: prompts and a `SamplingSettings` in, text out.

`Sampler` owns what all samplers share: the settings made from keywords and checked,
what the sampler cannot do refused as a usage error, prompts drawn in batches of
`MAX_BATCH` (memory stays bounded; a served model's cap per request), each row's stream
(its index among the prompts, so several samples of one prompt differ, the same way in
every sampler). A sampler implements `_draw` (one batch) and `_stream` (one prompt,
piece by piece), and `_search` (beam search of one batch) if it can: `Run` in process,
`LiteRTSampler` over a LiteRT file, `RemoteSampler` over TF Serving.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple

from textgen.core.config import MAX_BATCH
from textgen.core.errors import ConfigError
from textgen.generate.settings import SamplingSettings

# Hypotheses of a beam search when `beams` is not given.
DEFAULT_BEAMS = 4


class Beam(NamedTuple):
    """One result of a beam search."""

    completion: str
    log_probability: float  # the model's, of the completion's tokens given the prompt
    num_tokens: int


class Sampler:
    """Base class: `generate(prompts, settings)` and `stream(prompt, settings)`."""

    items: bool = False  # an item run: each completion is one whole item
    labels: Sequence[str] = ()  # the labels an item run knows
    # Settings this sampler cannot honour, with the reason shown to the user.
    unsupported: dict[str, str] = {}

    def generate(
        self,
        prompts: Sequence[str] | str,
        settings: SamplingSettings | None = None,
        streams: Sequence[int] | None = None,
        **changes,
    ) -> list[str]:
        """Completions of `prompts` (the generated text only), one per prompt.

        `settings`, with keyword `changes` on top (max_new_tokens=..., temperature=...):
        unset ones take the run's defaults. Row i draws with (seed, stream i) unless
        `streams` says otherwise.
        """
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        settings = self.settings(settings, **changes)
        if settings.beams:  # the most likely text: the best beam
            return [found[0].completion for found in self.search(prompts, settings)]
        streams = list(range(len(prompts)) if streams is None else streams)
        completions: list[str] = []
        for start in range(0, len(prompts), MAX_BATCH):
            end = start + MAX_BATCH
            completions += self._draw(prompts[start:end], streams[start:end], settings)
        return completions

    def stream(
        self, prompt: str, settings: SamplingSettings | None = None, **changes
    ) -> Iterator[str]:
        """The completion of one prompt (stream 0), yielded piece by piece as drawn; the
        same text as `generate([prompt], ...)`."""
        settings = self.settings(settings, **changes)
        if settings.beams:  # known only once the search is over
            return iter(self.generate([prompt], settings))
        return self._stream(prompt, settings)

    def search(
        self,
        prompts: Sequence[str] | str,
        settings: SamplingSettings | None = None,
        count: int = 1,
        **changes,
    ) -> list[list[Beam]]:
        """Beam search: the `count` best distinct completions of each prompt, best first.

        `settings.beams` hypotheses are kept (default `DEFAULT_BEAMS`), `count` <= beams.
        On a fixed length they rank by log-probability; when they may end early (stop
        strings, an item run) by log-probability per token (`textgen.generate.beams`).
        """
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        settings = self.settings(settings, **changes)
        if not settings.beams:
            settings = self.settings(settings, beams=DEFAULT_BEAMS)
        if not 1 <= count <= settings.beams:
            raise ConfigError(
                f"beam search finds at most --beams {settings.beams} texts, asked for {count}"
            )
        found: list[list[Beam]] = []
        step = max(1, MAX_BATCH // settings.beams)  # rows: prompts x beams
        for start in range(0, len(prompts), step):
            batch = self._search(prompts[start : start + step], settings)
            found += [_best_distinct(beams, count) for beams in batch]
        return found

    def settings(self, settings: SamplingSettings | None = None, **changes) -> SamplingSettings:
        """The settings asked for, checked against what this sampler can do."""
        settings = SamplingSettings.of(settings, **changes)
        for name, reason in self.unsupported.items():
            if getattr(settings, name):
                raise ConfigError(reason)
        return settings

    def _draw(
        self, prompts: list[str], streams: list[int], settings: SamplingSettings
    ) -> list[str]:
        raise NotImplementedError

    def _stream(self, prompt: str, settings: SamplingSettings) -> Iterator[str]:
        yield from self._draw([prompt], [0], settings)

    def _search(self, prompts: list[str], settings: SamplingSettings) -> list[list[Beam]]:
        """Every finished hypothesis of each prompt, best first."""
        raise ConfigError("this sampler has no beam search")


def beams_of(completions, log_probabilities, num_tokens) -> list[list[Beam]]:
    """A beam search's answer as `Beam`s: three (prompts, beams) nested lists (strings or
    UTF-8 bytes), as the generator and the export give them."""
    decode = lambda t: t.decode("utf-8") if isinstance(t, bytes) else t  # noqa: E731
    return [
        [Beam(decode(t), float(p), int(n)) for t, p, n in zip(*row)]
        for row in zip(completions, log_probabilities, num_tokens)
    ]


def _best_distinct(beams: list[Beam], count: int) -> list[Beam]:
    """The first `count` beams with distinct text (and some tokens), in order."""
    seen: set[str] = set()
    best = []
    for beam in beams:
        if beam.num_tokens and beam.completion not in seen:
            seen.add(beam.completion)
            best.append(beam)
    return best[:count]
