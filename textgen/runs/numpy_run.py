"""A run sampled without TensorFlow: the NumPy reference loop over the run's best weights.

`textgen sample` uses it whenever it can serve the request (`NumpyRun.open` and `check`
say why not, in one line), so a sample takes about as long as reading a few megabytes;
otherwise the TensorFlow generator (`Run`) draws the same text. It serves the best
weights of a character-level run, kept current by the trainer (`weights.npz` names the
checkpoint it equals), with temperature, top-k, top-p, seeds, several samples, stop
strings and labels; the repetition controls and the copy guard need the generator.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

from textgen.core.config import MAX_NEW_TOKENS
from textgen.core.errors import ConfigError, RunError
from textgen.data.vocabulary import UNK, char_codes, char_ids, token_piece
from textgen.generate.reference import reference_stream
from textgen.generate.sampler import Sampler
from textgen.generate.session import Session
from textgen.generate.settings import SamplingSettings
from textgen.generate.stops import StopStrings
from textgen.model.numpy_step import NumpyStep
from textgen.runs.folder import RunFolder, latest_checkpoint, run_item_stops, run_labels

_NEEDS_GENERATOR = "the repetition controls and --max-copy need the TensorFlow generator"
# Tokens beyond which `textgen sample` prefers the TensorFlow generator: NumPy draws ~8-12k
# tokens/s (one row at a time), TensorFlow starts in ~10 s, then draws 100k+ at batch 64.
AUTO_MOST_TOKENS = 100_000


class NumpyRun(Sampler):
    """Samples a run folder's best weights with NumPy (see `Sampler` for the interface)."""

    unsupported = {
        name: _NEEDS_GENERATOR
        for name in ("repetition_penalty", "repetition_window", "no_repeat_ngram", "max_copy")
    }

    def __init__(self, folder: RunFolder):
        self.folder = folder
        self.config, self.vocab = folder.load_config(), folder.load_vocab()
        if self.vocab.level != "char":
            raise RunError("the NumPy sampler reads characters; this is a word-level run")
        if not folder.numpy_weights_file.is_file():
            raise RunError(f"{folder.numpy_weights_file} is missing (a run from before it)")
        self.network = NumpyStep(folder.numpy_weights_file)
        best = latest_checkpoint(folder.best_dir) or ""
        if os.path.basename(best) != self.network.checkpoint:
            raise RunError("weights.npz is older than the best checkpoint")
        self.items = self.config.data.items is not None
        self.labels = run_labels(self.config)

    def check(
        self, prompts: Sequence[str], settings: SamplingSettings, most_tokens: int | None = None
    ) -> None:
        """ConfigError (one line) unless this sampler can serve `prompts` with `settings`,
        drawing at most `most_tokens` tokens in all (None: any number)."""
        self.settings(settings)
        if any(char_codes(p, self.vocab.lowercase) is None for p in prompts):
            raise ConfigError("lowercasing non-ASCII text needs TensorFlow's rules")
        tokens = len(prompts) * settings.with_defaults(self.config.sample).max_new_tokens
        if most_tokens is not None and tokens > most_tokens:
            raise ConfigError(f"{tokens} tokens: the TensorFlow generator draws them sooner")

    def _stream_row(self, prompt: str, settings: SamplingSettings, stream: int):
        settings = settings.with_defaults(self.config.sample)
        stops = StopStrings([*settings.stop, *run_item_stops(self.config)])
        (prompt,) = settings.prompts_to_read([prompt], self.items, self.labels)
        codes = char_codes(prompt, self.vocab.lowercase)
        if codes is None:
            raise ConfigError("lowercasing non-ASCII text needs TensorFlow's rules")
        ids = [self.vocab.start_id, *char_ids(self.vocab, codes).tolist()]
        length = min(settings.max_new_tokens, MAX_NEW_TOKENS)
        settings = SamplingSettings.of(settings, max_new_tokens=length)
        return reference_stream(
            self.network.step, self.network.zero_state(), ids, token_piece(self.vocab),
            settings, stream, stops,
        )  # fmt: skip

    def session(self) -> Session:
        """A co-writing session over this run (`textgen.generate.session`)."""

        def encode(text: str) -> list[int]:
            codes = char_codes(text, self.vocab.lowercase)
            if codes is None:
                raise ConfigError("lowercasing non-ASCII text needs TensorFlow's rules")
            return char_ids(self.vocab, codes).tolist()

        stops = [*self.config.sample.stop, *run_item_stops(self.config)]
        strings = [UNK, *self.vocab.tokens]
        return Session(
            self.network.step, self.network.zero_state(), encode, token_piece(self.vocab),
            strings, self.vocab.start_id, stops,
        )  # fmt: skip

    def _draw(self, prompts, streams, settings) -> list[str]:
        return ["".join(self._stream_row(p, settings, s)) for p, s in zip(prompts, streams)]

    def _stream(self, prompt: str, settings: SamplingSettings) -> Iterator[str]:
        return self._stream_row(prompt, settings, 0)
