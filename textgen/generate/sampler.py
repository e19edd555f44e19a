"""The one interface of every sampler: prompts and a `SamplingSettings` in, text out.

`Sampler` owns what all samplers share: the settings made from keywords and checked,
what the sampler cannot do refused as a usage error, prompts drawn in batches of
`MAX_BATCH` (memory stays bounded; a served model's cap per request), each row's stream
(its index among the prompts, so several samples of one prompt differ, the same way in
every sampler). A sampler implements `_draw` (one batch) and `_stream` (one prompt,
piece by piece): `Run` in process, `LiteRTSampler` over a LiteRT file, `RemoteSampler`
over TF Serving.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from textgen.core.config import MAX_BATCH
from textgen.core.errors import ConfigError
from textgen.generate.settings import SamplingSettings


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
        return self._stream(prompt, self.settings(settings, **changes))

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
