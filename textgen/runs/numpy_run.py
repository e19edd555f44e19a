"""A run sampled without TensorFlow: the NumPy loop over the run's best weights.

`textgen sample` uses it whenever it can serve the request (`NumpyRun.open` and `check`
say why not, in one line), so a sample takes about as long as reading a few megabytes;
otherwise the TensorFlow generator (`Run`) draws the same text. It serves the best
weights of a run (word level: ASCII text), kept current by the trainer (`weights.npz` names the
checkpoint it equals), with every sampling setting but beam search (`LoopSampler`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from textgen.core.config import SampleConfig
from textgen.core.errors import ConfigError, RunError
from textgen.data.levels import level_class
from textgen.data.vocabulary import UNK, text_ids, token_piece
from textgen.generate.loop_sampler import LoopSampler
from textgen.generate.numpy_loop import NumpyLoop
from textgen.generate.rules.copy_guard import SpanGuard
from textgen.generate.settings import SamplingSettings
from textgen.model.numpy_step import NumpyStep
from textgen.runs.folder import RunFolder, latest_checkpoint, run_item_stops, run_labels

# Tokens beyond which `textgen sample` prefers the TensorFlow generator: NumPy draws ~8-12k
# tokens/s (one row at a time), TensorFlow starts in ~10 s, then draws 100k+ at batch 64.
AUTO_MOST_TOKENS = 100_000


class NumpyRun(LoopSampler):
    """Samples a run folder's best weights with NumPy (see `Sampler` for the interface)."""

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
        self.loop = NumpyLoop(
            self.network.step, self.network.zero_state(), self._encode, token_piece(self.vocab),
            [UNK, *self.vocab.tokens], self.vocab.start_id, run_item_stops(self.config),
            guided=bool(self.labels), span_guard=self._span_guard,
            heals=level_class(self.vocab.level).heals,
        )  # fmt: skip

    @property
    def defaults(self) -> SampleConfig:
        return self.config.sample

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
        if settings.max_copy:
            self.loop.guard_for(settings.max_copy)  # (opened once: the draws reuse it)
        tokens = len(prompts) * settings.with_defaults(self.config.sample).max_new_tokens
        if most_tokens is not None and tokens > most_tokens:
            raise ConfigError(f"{tokens} tokens: the TensorFlow generator draws them sooner")

    def _span_guard(self, span: int) -> SpanGuard:
        from textgen.data.span_index import run_span_index

        index = run_span_index(self.config, self.vocab, span, tensorflow=False)
        return SpanGuard(index, token_piece(self.vocab))

    def _encode(self, text: str) -> list[int]:
        ids = text_ids(self.vocab, text)
        if ids is None:
            raise ConfigError(
                f"this non-ASCII text needs TensorFlow's {self.vocab.level}-level tokenizer"
                + (" (the run lowercases)" if self.vocab.lowercase else "")
            )
        return ids
