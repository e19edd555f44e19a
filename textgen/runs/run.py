"""Loading a run back from its folder: config, vocabulary, weights, its generators."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

from textgen.core.config import validate_max_copy
from textgen.core.errors import ConfigError, RunError
from textgen.data.levels import level_class
from textgen.generate.rules.inclusion import NO_BEAM_HOLDS, inclusion_of
from textgen.generate.sampler import Beam, Sampler, beams_of
from textgen.generate.settings import SamplingSettings
from textgen.runs.folder import DEFAULT_ROOT, RunFolder, run_item_stops, run_labels


class Run(Sampler):
    """A trained run, loaded: its config, vocabulary, Keras model and generator.

    It samples in process (`generate`, `stream`: see `Sampler`); on an item run each
    completion is one whole new item.

    >>> run = load_run("checkpoints/20261122-101500-char-lstm")
    >>> run.generate(["ROMEO:"], max_new_tokens=100, temperature=0.7, seed=1)
    """

    def __init__(self, folder: RunFolder, weights: str = "best", xla: bool = True):
        from textgen.data.items import token_roles
        from textgen.model.network import build_model

        folder.require_complete()
        self.xla = xla  # generate with the XLA-compiled token loop (docs/performance.md)
        self.folder = folder
        self.config = folder.load_config()
        self.vocab = folder.load_vocab()
        self.model = build_model(self.vocab.size, self.config.model, token_roles(self.vocab.tokens))
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
        """The labels the run's items carry, in token order, [] if none."""
        return run_labels(self.config)

    @property
    def item_stops(self) -> list[str]:
        """Where the run's samples end besides its stop strings (`run_item_stops`)."""
        return run_item_stops(self.config)

    def copy_guard(self, span: int):
        """The copy guard for spans of `span` characters of this run's training text (its
        index from the data cache, or built from the corpus now)."""
        from textgen.data.span_index import run_span_index
        from textgen.generate.copy_guard import CopyGuard

        validate_max_copy(span)
        return CopyGuard(run_span_index(self.config, self.vocab, span), self.vocab)

    def _generator(self, settings: SamplingSettings):
        """The generator for `settings` (resolved): its stop strings and copy guard; its
        included texts checked as the NumPy samplers check them (one line)."""
        generator = self.generator_for(settings.stop, max_copy=settings.max_copy)
        if settings.include:
            from textgen.data.vocabulary import UNK, token_piece

            length = min(settings.max_new_tokens, generator.max_new_tokens_cap)
            encode = lambda text: generator.tokenizer.encode_text(text).tolist()  # noqa: E731
            inclusion_of(
                settings.include, [UNK, *self.vocab.tokens], encode, token_piece(self.vocab),
                length, "",
            )  # fmt: skip
        return generator

    def _draw(self, prompts, streams, settings: SamplingSettings) -> list[str]:
        settings = settings.with_defaults(self.config.sample)
        read = settings.prompts_to_read(prompts, self.items, self.labels)
        unlabelled = settings.unlabelled(prompts, self.labels) if settings.guided() else None
        return self._generator(settings).generate(read, settings, streams, unlabelled)

    def _stream(self, prompt: str, settings: SamplingSettings) -> Iterator[str]:
        settings = settings.with_defaults(self.config.sample)
        (read,) = settings.prompts_to_read([prompt], self.items, self.labels)
        unlabelled = settings.unlabelled([prompt], self.labels)[0] if settings.guided() else None
        return self._generator(settings).stream(read, settings, unlabelled)

    def _search(self, prompts, settings: SamplingSettings) -> list[list[Beam]]:
        import tensorflow as tf

        from textgen.data.tokenizers import string_tensor

        settings = settings.with_defaults(self.config.sample)
        prompts = settings.prompts_to_read(prompts, self.items, self.labels)
        fields, size = settings.request_fields(), [len(prompts)]
        found = self._generator(settings).beam_search_ids(
            string_tensor(prompts), tf.fill(size, settings.max_new_tokens),
            tf.fill(size, settings.beams), tf.fill(size, float(fields["repetition_penalty"])),
            tf.fill(size, fields["repetition_window"]), tf.fill(size, fields["no_repeat_ngram"]),
            tf.fill(size, fields["exclude"]), tf.fill(size, fields["include"]),
        )  # fmt: skip
        found = beams_of(*(found[k].numpy().tolist() for k in Beam._fields))
        if settings.include and not all(any(b.num_tokens for b in beams) for beams in found):
            raise ConfigError(NO_BEAM_HOLDS)
        return found

    @property
    def defaults(self):
        """The run's sampling defaults (`SampleConfig`)."""
        return self.config.sample

    def session(self):
        """The NumPy loop (`textgen.generate.numpy_loop`) over this run, stepping the
        network with TensorFlow one token at a time: what a co-writing session writes with."""
        import tensorflow as tf

        from textgen.data.vocabulary import UNK, token_piece
        from textgen.generate.numpy_loop import NumpyLoop
        from textgen.generate.rules.copy_guard import SpanGuard
        from textgen.model.one_step import OneStep

        one_step, tokenizer = OneStep(self.model), self.generator.tokenizer
        piece = token_piece(self.vocab)

        def step(token: int, state):
            logits, state = one_step(tf.constant([token]), state)
            return logits[0].numpy(), state

        def span_guard(span: int) -> SpanGuard:
            from textgen.data.span_index import run_span_index

            validate_max_copy(span)
            return SpanGuard(run_span_index(self.config, self.vocab, span), piece)

        return NumpyLoop(
            step, one_step.zero_state(1), lambda text: tokenizer.encode_text(text).tolist(),
            piece, [UNK, *self.vocab.tokens], self.vocab.start_id, self.item_stops,
            guided=bool(self.labels), span_guard=span_guard,
            heals=level_class(self.vocab.level).heals,
        )  # fmt: skip

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
