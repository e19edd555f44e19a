"""The run folder: the one place that knows its layout, and loading a run back.

RUN/
  config.json            every setting, the textgen version, the corpus fingerprint
  vocab.json             the vocabulary (tokens in id order)
  checkpoints/latest/    tf.train.CheckpointManager: weights, optimizer, data position
  checkpoints/best/      the checkpoint with the best validation loss
  logs/training.csv      one row per epoch
  logs/tensorboard/      TensorBoard summaries
  export/NAME/VERSION/   SavedModels for TF Serving (textgen export)
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

from textgen.core.config import (
    MAX_BATCH,
    validate_max_copy,
    validate_repetition,
    validate_sampling,
)
from textgen.core.errors import ConfigError, RunError
from textgen.data.items import ITEM_END, item_prefix
from textgen.runs.folder import DEFAULT_ROOT, RunFolder


class Run:
    """A trained run, loaded: its config, vocabulary, Keras model and generator.

    >>> run = load_run("checkpoints/20261122-101500-char-lstm")
    >>> run.generate(["ROMEO:"], max_new_tokens=100, temperature=0.7, seed=1)
    """

    def __init__(self, folder: RunFolder, weights: str = "best", xla: bool = True):
        from textgen.model.network import build_model

        folder.require_complete()
        self.xla = xla  # generate with the XLA-compiled token loop (docs/performance.md)
        self.folder = folder
        self.config = folder.load_config()
        self.vocab = folder.load_vocab()
        self.model = build_model(self.vocab.size, self.config.model)
        self.weights_path = folder.weights_path(weights)
        check_files_match(folder, self.model, self.weights_path)
        _restore_weights(self.model, self.weights_path)
        self._generators: dict[tuple, object] = {}

    def __repr__(self) -> str:
        return f"Run({str(self.folder.path)!r})"

    @property
    def generator(self):
        """The in-graph generator, with the run's own stop strings."""
        return self.generator_for(self.config.sample.stop)

    def generator_for(
        self,
        stop: Sequence[str] = (),
        max_new_tokens_cap: int | None = None,
        jit_compile: bool | None = None,
        max_copy: int = 0,
        unroll: int = 1,
        frozen: bool = False,
    ):
        """A generator with the run's defaults that stops at `stop` and, with `max_copy`
        N >= 2, never writes a span of N characters of the training text (built once per
        setting).

        `jit_compile` (default: the run's `xla`, on) compiles its token loop with XLA;
        `unroll` tokens are drawn per loop iteration and `frozen` fixes the weights as
        they are now (an export; see `Generator`).
        """
        from textgen.core.config import MAX_NEW_TOKENS
        from textgen.generate.generator import Generator

        jit_compile = self.xla if jit_compile is None else jit_compile
        stop = (*stop, *(s for s in self.item_stops if s not in stop))
        key = (
            tuple(stop), max_new_tokens_cap or MAX_NEW_TOKENS, jit_compile, max_copy or 0, unroll,
            frozen,
        )  # fmt: skip
        if key not in self._generators:
            self._generators[key] = Generator(
                self.model,
                self.vocab,
                stop=key[0],
                max_new_tokens_cap=key[1],
                defaults=self.config.sample,
                jit_compile=jit_compile,
                copy_guard=self.copy_guard(max_copy) if max_copy else None,
                unroll=unroll,
                frozen=frozen,
            )
        return self._generators[key]

    @property
    def items(self) -> bool:
        """Whether the run was trained on items (textgen.data.items): samples are whole items."""
        return self.config.data.items is not None

    @property
    def labels(self) -> list[str]:
        """The labels the run's items carry (sorted), [] if none."""
        return list(self.config.corpus.get("labels", {}))

    @property
    def item_stops(self) -> list[str]:
        """Where an item run's samples end besides the run's stop strings: the item's end
        marker, and a line break when no training item spans two lines."""
        if not self.items:
            return []
        single_line = not self.config.corpus.get("multiline_items", True)
        return [ITEM_END, *(["\n"] if single_line else [])]

    def _prompts(self, prompts: list[str], label: str | None) -> list[str]:
        """Prompts as the model reads them: an item run starts a new item (of `label`)."""
        if not self.items:
            if label:
                raise ConfigError("this run was not trained on items; leave out --label")
            return prompts
        prefix = item_prefix(self.labels, label)
        return [prefix + prompt for prompt in prompts]

    def copy_guard(self, span: int):
        """The copy guard for spans of `span` characters of this run's training text (its
        index from the data cache, or built from the corpus now)."""
        from textgen.data.span_index import run_span_index
        from textgen.generate.copy_guard import CopyGuard

        validate_max_copy(span)
        return CopyGuard(run_span_index(self.config, self.vocab, span), self.vocab)

    def _settings(self, kwargs: dict) -> tuple[object, dict]:
        """The generator and sampling settings: the run's defaults, then the caller's."""
        sample = self.config.sample
        settings = {
            "max_new_tokens": sample.length,
            "temperature": sample.temperature,
            "top_k": sample.top_k,
            "top_p": sample.top_p,
            "seed": 0,
            "repetition_penalty": sample.repetition_penalty,
            "repetition_window": sample.repetition_window,
            "no_repeat_ngram": sample.no_repeat_ngram,
        }
        stop = kwargs.pop("stop", None)
        max_copy = kwargs.pop("max_copy", None) or 0
        settings.update({k: v for k, v in kwargs.items() if v is not None})
        validate_sampling(settings["temperature"], settings["top_k"], settings["top_p"])
        validate_repetition(
            settings["repetition_penalty"],
            settings["repetition_window"],
            settings["no_repeat_ngram"] or None,  # 0 is off
        )
        validate_max_copy(max_copy)
        if settings["max_new_tokens"] < 0:
            raise ConfigError(f"length must be >= 0, got {settings['max_new_tokens']}")
        stop = self.config.sample.stop if stop is None else stop
        return self.generator_for(stop, max_copy=max_copy), settings

    def generate(self, prompts: Sequence[str] | str, **kwargs) -> list[str]:
        """Completions of `prompts` (generated text only), drawn in batches of MAX_BATCH.

        Keyword settings: max_new_tokens, temperature, top_k, top_p, seed, streams,
        repetition_penalty, repetition_window, no_repeat_ngram, stop (a list of strings;
        default: the run's), max_copy (N: no span of N characters of the training text;
        0, the default: off), label (an item run's kind of item). Unset ones take the
        run's defaults. On an item run each completion is one whole new item.
        """
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        prompts = self._prompts(prompts, kwargs.pop("label", None))
        generator, settings = self._settings(kwargs)
        streams = list(settings.pop("streams", None) or range(len(prompts)))
        completions = []
        for start in range(0, len(prompts), MAX_BATCH):  # in batches: memory stays bounded
            end = start + MAX_BATCH
            completions += generator.generate(
                prompts[start:end], streams=streams[start:end], **settings
            )
        return completions

    def stream(self, prompt: str, **kwargs) -> Iterator[str]:
        """The completion of one prompt, yielded piece by piece as it is generated."""
        (prompt,) = self._prompts([prompt], kwargs.pop("label", None))
        generator, settings = self._settings(kwargs)
        return generator.stream(prompt, **settings)

    def score(self, texts: Sequence[str]) -> list[tuple[float, int]]:
        """(mean negative log-likelihood per token, token count) for each text."""
        from textgen.data.tokenizers import string_tensor

        result = self.generator.score(string_tensor(list(texts)))
        return list(zip(result["mean_nll"].numpy().tolist(), result["num_tokens"].numpy().tolist()))


def check_files_match(folder: RunFolder, model, path: str) -> None:
    """Refuse a run whose vocabulary or config does not belong with its weights
    (edited, or mixed from two runs), naming the file that disagrees."""
    import tensorflow as tf

    try:
        variables = tf.train.list_variables(path)
    except Exception:  # noqa: BLE001 (an unreadable index: the restore reports it)
        return
    # A weights-only checkpoint names them model/...; a full one saves each weight once,
    # under the optimizer that tracks it (optimizer/_trainable_variables/I, in model order).
    weights = [(n, s) for n, s in variables if n.startswith("model/") and "seed_generator" not in n]
    by_index = {
        int(n.split("/")[2]): s
        for n, s in variables
        if n.startswith("optimizer/_trainable_variables/")
    }
    if not weights and by_index:
        weights = [(f"optimizer {i}", by_index[i]) for i in sorted(by_index)]
        embeddings = weights[:1]
    else:
        embeddings = [(n, s) for n, s in weights if "_embeddings" in n]
    vocab_size = model.get_layer("embedding").input_dim
    if embeddings and embeddings[0][1][0] != vocab_size:
        raise RunError(
            f"{folder.vocab_file} has {vocab_size} ids but the weights in {path} were trained "
            f"with {embeddings[0][1][0]}: the vocabulary and the weights come from different runs"
        )
    expected = sorted(tuple(w.shape) for w in model.trainable_weights)
    if weights and sorted(tuple(s) for _, s in weights) != expected:
        raise RunError(
            f"{folder.config_file} describes another model than the weights in {path} "
            "(layer sizes differ): the config and the weights come from different runs"
        )


def _restore_weights(model, path: str) -> None:
    import tensorflow as tf

    try:
        status = tf.train.Checkpoint(model=model).restore(path)
        status.expect_partial().assert_existing_objects_matched()
    except Exception as err:  # damaged files raise IndexError, OpError, ValueError, ...
        raise RunError(damaged_checkpoint_message(path, err)) from None


def damaged_checkpoint_message(
    path: str, err: Exception, hint: str = "try --weights latest, or restore the file"
) -> str:
    """One line naming the checkpoint that could not be read, and what to try."""
    reason = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
    return (
        f"cannot load weights from {path}.* (damaged, truncated, or from another model: "
        f"{reason}); {hint}"
    )


def load_run(
    run_dir: str | os.PathLike | None = None,
    root: str | os.PathLike = DEFAULT_ROOT,
    weights: str = "best",
    xla: bool = True,
) -> Run:
    """Load a trained run (the newest under `root` if `run_dir` is None)."""
    return Run(RunFolder.find(run_dir, root), weights=weights, xla=xla)
