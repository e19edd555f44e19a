"""A run sampled without TensorFlow: the NumPy reference loop over the run's best weights.

`textgen sample` uses it whenever it can serve the request (`NumpyRun.open` and `check`
say why not, in one line), so a sample takes about as long as reading a few megabytes;
otherwise the TensorFlow generator (`Run`) draws the same text. It serves the best
weights of a run (word level: ASCII text), kept current by the trainer (`weights.npz` names the
checkpoint it equals), with temperature, top-k, top-p, seeds, several samples, stop
strings and labels; the repetition controls and the copy guard need the generator.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

from textgen.core.config import MAX_NEW_TOKENS
from textgen.core.errors import ConfigError, RunError
from textgen.data.vocabulary import UNK, text_ids, token_piece
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
        **{
            name: _NEEDS_GENERATOR
            for name in ("repetition_penalty", "repetition_window", "no_repeat_ngram", "max_copy")
        },
        "beams": "beam search (--beams) needs the TensorFlow generator",
    }

    def __init__(self, folder: RunFolder):
        self.folder = folder
        self.config, self.vocab = folder.load_config(), folder.load_vocab()
        if not folder.numpy_weights_file.is_file():
            raise RunError(f"{folder.numpy_weights_file} is missing (a run from before it)")
        self.network = NumpyStep(folder.numpy_weights_file)
        self._check_shapes()
        best = latest_checkpoint(folder.best_dir) or ""
        if os.path.basename(best) != self.network.checkpoint:
            raise RunError("weights.npz is older than the best checkpoint")
        self.items = self.config.data.items is not None
        self.labels = run_labels(self.config)

    def _check_shapes(self) -> None:
        """Refuse weights that do not belong with the run's vocabulary or config."""
        weights, model = self.folder.numpy_weights_file, self.config.model
        rows = self.network.embedding.shape[0]
        if rows != self.vocab.size:
            raise RunError(
                f"{self.folder.vocab_file} has {self.vocab.size} ids but the weights in "
                f"{weights} were trained with {rows}: they come from different runs"
            )
        units = {recurrent.shape[0] for _, recurrent, _ in self.network.layers}
        if self.network.kinds != [model.cell] * model.layers or units != {model.units}:
            raise RunError(f"{self.folder.config_file} describes another model than {weights}")

    def check(
        self, prompts: Sequence[str], settings: SamplingSettings, most_tokens: int | None = None
    ) -> None:
        """ConfigError (one line) unless this sampler can serve `prompts` with `settings`,
        drawing at most `most_tokens` tokens in all (None: any number)."""
        self.settings(settings)
        for prompt in settings.prompts_to_read(prompts, self.items, self.labels):
            self._encode(prompt)
        tokens = len(prompts) * settings.with_defaults(self.config.sample).max_new_tokens
        if most_tokens is not None and tokens > most_tokens:
            raise ConfigError(f"{tokens} tokens: the TensorFlow generator draws them sooner")

    def _stream_row(self, prompt: str, settings: SamplingSettings, stream: int):
        settings = settings.with_defaults(self.config.sample)
        stops = StopStrings([*settings.stop, *run_item_stops(self.config)])
        (read,) = settings.prompts_to_read([prompt], self.items, self.labels)
        ids = [self.vocab.start_id, *self._encode(read)]
        unlabelled = None
        if settings.guided():
            (plain,) = settings.unlabelled([prompt], self.labels)
            unlabelled = [self.vocab.start_id, *self._encode(plain)]
        length = min(settings.max_new_tokens, MAX_NEW_TOKENS)
        settings = SamplingSettings.of(settings, max_new_tokens=length)
        return reference_stream(
            self.network.step, self.network.zero_state(), ids, token_piece(self.vocab),
            settings, stream, stops, unlabelled,
        )  # fmt: skip

    def session(self) -> Session:
        """A co-writing session over this run (`textgen.generate.session`)."""

        stops = [*self.config.sample.stop, *run_item_stops(self.config)]
        strings = [UNK, *self.vocab.tokens]
        return Session(
            self.network.step, self.network.zero_state(), self._encode, token_piece(self.vocab),
            strings, self.vocab.start_id, stops, guided=bool(self.labels),
        )  # fmt: skip

    def _encode(self, text: str) -> list[int]:
        ids = text_ids(self.vocab, text)
        if ids is None:
            what = "word-level" if self.vocab.level == "word" else "lowercased"
            raise ConfigError(f"non-ASCII {what} text needs TensorFlow's tokenizer")
        return ids

    def _draw(self, prompts, streams, settings) -> list[str]:
        return ["".join(self._stream_row(p, settings, s)) for p, s in zip(prompts, streams)]

    def _stream(self, prompt: str, settings: SamplingSettings) -> Iterator[str]:
        return self._stream_row(prompt, settings, 0)
