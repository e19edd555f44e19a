"""`textgen export`: the run's generator as a SavedModel laid out for TensorFlow Serving.

The SavedModel holds the same `Generator` the sampler uses, with these signatures:

- `serving_default`: prompt -> text, with the run's sampling defaults and a random seed.
- `generate`: prompt, max_new_tokens, temperature, top_k, top_p, seed (all [batch]) ->
  completion, text (prompt + completion), num_tokens.
- `generate_controlled`: the same plus repetition_penalty, repetition_window and
  no_repeat_ngram (a signature of its own: TF Serving requires every input of a
  signature, so `generate`'s clients keep working unchanged).
- `score`: text -> mean_nll (nats per token), num_tokens.
- `generate_labelled` (item runs with labels only): `generate_controlled`'s inputs plus
  label (string; "" or an unknown label: an item of no given kind).
- `sample`: every setting, plus `stream` (int64; with `seed`, it keys a row's noise, so
  several samples of one prompt and seed differ as they do in process), `label` ("":
  none), `exclude` and `include` (texts a completion never / always holds, one a line;
  "": none; docs/deployment.md). What `textgen sample --server` asks.
- `sample_guided`: `sample`'s inputs plus `label_strength` (label guidance,
  `textgen.generate.rules.label_guidance`; negative: the run's default, 1: none; `sample` takes the
  run's default).
- `continue`: text (read first; "" for none), state_bytes ("" for a new text: the text
  is then a prompt), max_new_tokens (after the text last read), chunk_tokens (at most
  this many now), `sample`'s settings but `include` -> completion, pending (held back as
  the possible start of a stop string), state_bytes, num_tokens, done. A stateless server streams by
  it: calls that pass the state on give exactly one call's text (`generate.continuation`).
  TF Serving's REST API writes `*_bytes` values as {"b64": ...}. On a run with labels, a
  new text's label strength is the run's default and its state carries the text read
  without the label too (label guidance); `continue_guided` takes `label_strength`.
- `beam_search`: prompt, max_new_tokens, beams (1 to MAX_BEAMS hypotheses), the
  repetition controls, label, exclude and include (`generate.constrained_search`) ->
  completion, log_probability, num_tokens, each [batch, max(beams)], best first
  (`textgen.generate.beams`; slots past a row's beams hold "", 0, 0).

On an item run every prompt starts a new item and each completion is one whole item.

Everything runs in the graph with core TensorFlow ops (string ops, hash tables, the RNN
cells in a while loop), so it loads with TensorFlow alone: no textgen, no Keras.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import tensorflow as tf

from textgen.core.config import (
    EXPORT_MAX_COPY_BYTES,
    EXPORT_MAX_NEW_TOKENS,
    EXPORT_MODEL_NAME,
    MAX_BATCH,
    MAX_BEAMS,
    MAX_LABEL_STRENGTH,
    MAX_TEXT_BYTES,
)
from textgen.core.errors import ExportError
from textgen.data.items import ITEM_START, label_token
from textgen.generate.generator import Generator
from textgen.generate.loop import UNROLL
from textgen.generate.settings import CONSTRAINTS, CONTROLS, DRAWN, SERVED
from textgen.runs.folder import DEFAULT_ROOT, RunFolder
from textgen.runs.run import Run

_STRINGS = tf.TensorSpec([None], tf.string)
# Each served sampling setting's input, from the settings table (`settings.SERVED`).
_SETTING = {name: tf.TensorSpec([None], dtype, name=name) for name, dtype in SERVED.items()}
_GENERATE_INPUTS = [
    tf.TensorSpec([None], tf.string, name="prompt"),
    *(_SETTING[name] for name in ("max_new_tokens", *DRAWN)),
    tf.TensorSpec([None], tf.int64, name="seed"),
]
_LABEL_INPUT = tf.TensorSpec([None], tf.string, name="label")
_CONTROL_INPUTS = [_SETTING[name] for name in CONTROLS]
_CONSTRAINT_INPUTS = [_SETTING[name] for name in CONSTRAINTS]  # exclude, include
# Every setting, and each row's noise stream: what `textgen sample --server` asks.
_SAMPLE_INPUTS = [
    *_GENERATE_INPUTS, tf.TensorSpec([None], tf.int64, name="stream"), *_CONTROL_INPUTS,
    _LABEL_INPUT, *_CONSTRAINT_INPUTS,
]  # fmt: skip
_STRENGTH_INPUT = tf.TensorSpec([None], tf.float32, name="label_strength")
# A chunk of a generation continued from the state a previous answer gave ("": new).
# (A continuation takes no included texts: no `include`.)
_CONTINUE_INPUTS = [
    tf.TensorSpec([None], tf.string, name="text"),
    tf.TensorSpec([None], tf.string, name="state_bytes"),
    _GENERATE_INPUTS[1], tf.TensorSpec([None], tf.int32, name="chunk_tokens"),
    *_SAMPLE_INPUTS[2:-1],
]  # fmt: skip
_BEAM_INPUTS = [
    _GENERATE_INPUTS[0], _GENERATE_INPUTS[1], tf.TensorSpec([None], tf.int32, name="beams"),
    *_CONTROL_INPUTS, _LABEL_INPUT, *_CONSTRAINT_INPUTS,
]  # fmt: skip


def _check_request(strings: tf.Tensor) -> None:
    """Refuse requests too large for one server call: too many texts, or too long ones."""
    tf.debugging.assert_less_equal(
        tf.size(strings), MAX_BATCH, message=f"at most {MAX_BATCH} texts per request"
    )
    longest = tf.reduce_max(tf.concat([tf.strings.length(strings), [0]], 0))
    tf.debugging.assert_less_equal(
        longest, MAX_TEXT_BYTES, message=f"each text may have at most {MAX_TEXT_BYTES} bytes"
    )


class ServingModule(tf.Module):
    """The module that is saved: a generator plus the serving signatures.

    Requests are capped (MAX_BATCH texts of at most MAX_TEXT_BYTES bytes; max_new_tokens
    at the export's cap), so one request cannot exhaust a server's memory.
    """

    def __init__(self, generator: Generator, items: bool = False, labels: Sequence[str] = ()):
        super().__init__(name="textgen_serving")
        self.generator = generator
        self.items = items  # an item run: prompts start items (textgen.data.items)
        self.labels = list(labels)
        if self.labels:
            self.label_tokens = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(
                    tf.constant(self.labels), tf.constant([label_token(labels, x) for x in labels])
                ),
                default_value="",  # unknown: no label
            )
        # The weights' own tf.Variables, tracked here so the SavedModel's saver restores
        # them: Keras 3 tracks its variable wrappers instead, and loaders that go by the
        # saver (TensorFlow Serving, `saved_model_cli run`) then find the captured
        # variables missing ("Could not find variable", keras-team/keras#19274).
        self.served_variables = generator.one_step.variables_to_serve

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="prompt")], autograph=False)
    def serving_default(self, prompt):
        batch = tf.shape(prompt)[0]
        seed = tf.random.uniform([batch], maxval=2**62, dtype=tf.int64)
        unset = tf.fill([batch], -1)  # negative: the run's default
        return self.generate(
            prompt, unset, tf.cast(unset, tf.float32), unset, tf.zeros([batch]), seed
        )

    @tf.function(input_signature=_GENERATE_INPUTS, autograph=False)
    def generate(self, prompt, max_new_tokens, temperature, top_k, top_p, seed):
        unset = tf.fill(tf.shape(max_new_tokens), -1)  # the run's repetition defaults
        return self.generate_controlled(
            prompt, max_new_tokens, temperature, top_k, top_p, seed,
            tf.cast(unset, tf.float32), unset, unset,
        )  # fmt: skip

    @tf.function(input_signature=_GENERATE_INPUTS + _CONTROL_INPUTS, autograph=False)
    def generate_controlled(
        self, prompt, max_new_tokens, temperature, top_k, top_p, seed, penalty, window, ngram
    ):
        label = tf.fill(tf.shape(prompt), "")
        return self.generate_labelled(
            prompt, max_new_tokens, temperature, top_k, top_p, seed, penalty, window, ngram,
            label,
        )  # fmt: skip

    @tf.function(
        input_signature=[*_GENERATE_INPUTS, *_CONTROL_INPUTS, _LABEL_INPUT], autograph=False
    )
    def generate_labelled(
        self, prompt, max_new_tokens, temperature, top_k, top_p, seed, penalty, window, ngram,
        label,
    ):  # fmt: skip
        none = tf.fill(tf.shape(prompt), "")
        return self.sample(
            prompt, max_new_tokens, temperature, top_k, top_p, seed, tf.zeros_like(seed),
            penalty, window, ngram, label, none, none,
        )  # fmt: skip

    @tf.function(input_signature=_SAMPLE_INPUTS, autograph=False)
    def sample(
        self, prompt, max_new_tokens, temperature, top_k, top_p, seed, stream, penalty, window,
        ngram, label, exclude, include,
    ):  # fmt: skip
        return self.sample_guided(
            prompt, max_new_tokens, temperature, top_k, top_p, seed, stream, penalty, window,
            ngram, label, exclude, include, tf.fill(tf.shape(temperature), -1.0),
        )  # fmt: skip

    @tf.function(input_signature=[*_SAMPLE_INPUTS, _STRENGTH_INPUT], autograph=False)
    def sample_guided(
        self, prompt, max_new_tokens, temperature, top_k, top_p, seed, stream, penalty, window,
        ngram, label, exclude, include, strength,
    ):  # fmt: skip
        for strings in (prompt, exclude, include):
            _check_request(strings)
        seeds = tf.stack([seed, stream], axis=1)  # (batch, [seed, stream])
        rows = (
            max_new_tokens, temperature, top_k, top_p, seeds, penalty, window, ngram, exclude,
            include,
        )  # fmt: skip
        read, generator = self._read(prompt, label), self.generator
        if not self.labels:
            completion, num_tokens = generator.generate_ids(read, *rows)
        else:  # label guidance where a row has a known label and a strength other than 1
            strength = self._strengths(label, strength)
            unlabelled = tf.strings.join([ITEM_START, prompt])
            completion, num_tokens = tf.cond(
                tf.reduce_any(strength != 1.0),
                lambda: generator.generate_guided_ids(read, unlabelled, strength, *rows),
                lambda: generator.generate_ids(read, *rows),
            )
        return {
            "completion": completion,
            "text": tf.strings.join([prompt, completion]),
            "num_tokens": num_tokens,
        }

    @tf.function(input_signature=_CONTINUE_INPUTS, autograph=False)
    def continue_text(
        self, text, state, max_new_tokens, chunk_tokens, temperature, top_k, top_p, seed,
        stream, penalty, window, ngram, label, exclude,
    ):  # fmt: skip
        return self.continue_guided(
            text, state, max_new_tokens, chunk_tokens, temperature, top_k, top_p, seed,
            stream, penalty, window, ngram, label, exclude, tf.fill(tf.shape(temperature), -1.0),
        )  # fmt: skip

    @tf.function(input_signature=[*_CONTINUE_INPUTS, _STRENGTH_INPUT], autograph=False)
    def continue_guided(
        self, text, state, max_new_tokens, chunk_tokens, temperature, top_k, top_p, seed,
        stream, penalty, window, ngram, label, exclude, strength,
    ):  # fmt: skip
        _check_request(text)
        _check_request(exclude)
        new = state == ""
        read = tf.where(new, self._read(text, label), text)
        no_texts = tf.fill(tf.shape(exclude), "")  # to include: a continuation takes none
        rows = (temperature, top_k, top_p, tf.stack([seed, stream], axis=1), penalty, window,
                ngram, exclude, no_texts)  # fmt: skip
        if not self.labels:
            return self.generator.continue_from(read, state, max_new_tokens, chunk_tokens, *rows)
        twin = tf.where(new, tf.strings.join([ITEM_START, text]), text)
        return self.generator.continue_guided_from(
            read, twin, self._strengths(label, strength), state, max_new_tokens, chunk_tokens,
            *rows,
        )  # fmt: skip

    def _strengths(self, label, strength):
        """Each row's label strength: negative is the run's default, at most
        MAX_LABEL_STRENGTH, 1 (none) for rows with no known label."""
        strength = tf.where(strength < 0, self.generator.defaults.label_strength, strength)
        known = self.label_tokens.lookup(label) != ""
        strength = tf.minimum(strength, MAX_LABEL_STRENGTH)
        return tf.where(known & (strength > 0), strength, 1.0)

    @tf.function(input_signature=_BEAM_INPUTS, autograph=False)
    def beam_search(
        self, prompt, max_new_tokens, beams, penalty, window, ngram, label, exclude, include
    ):  # fmt: skip
        for strings in (prompt, exclude, include):
            _check_request(strings)
        tf.debugging.assert_less_equal(
            tf.reduce_max(tf.concat([beams, [1]], 0)), MAX_BEAMS,
            message=f"beams may be at most {MAX_BEAMS}",
        )  # fmt: skip
        return self.generator.beam_search_ids(
            self._read(prompt, label), max_new_tokens, beams, penalty, window, ngram, exclude,
            include,
        )  # fmt: skip

    def _read(self, prompt, label):
        """The prompts as the model reads them: on an item run each starts a new item, of
        its label's kind if the label is known; a label on another run is refused."""
        if self.items:
            marks = self.label_tokens.lookup(label) if self.labels else tf.fill(tf.shape(label), "")
            return tf.strings.join([ITEM_START, marks, prompt])
        tf.debugging.assert_equal(
            tf.reduce_all(label == ""), True,
            message="this model was not trained on items; leave out the label",
        )  # fmt: skip
        return prompt

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")], autograph=False)
    def score(self, text):
        _check_request(text)
        return self.generator.score(text)


@dataclass
class ExportResult:
    path: Path
    model_base_path: Path
    model_name: str
    version: int
    size_bytes: int
    seconds: float


def next_version(model_dir: Path) -> int:
    """One more than the highest integer version folder in `model_dir` (1 if none)."""
    versions = [int(p.name) for p in model_dir.glob("*") if p.is_dir() and p.name.isdigit()]
    return max(versions, default=0) + 1


def export_run(
    run_dir: str | os.PathLike | None = None,
    root: str | os.PathLike = DEFAULT_ROOT,
    export_dir: str | os.PathLike | None = None,
    model_name: str = EXPORT_MODEL_NAME,
    version: int | None = None,
    force: bool = False,
    max_new_tokens_cap: int = EXPORT_MAX_NEW_TOKENS,
    weights: str = "best",
    stop: Sequence[str] | None = None,
    xla: bool = False,
    max_copy: int = 0,
    unroll: int | None = None,
) -> ExportResult:
    """Write `EXPORT_DIR/NAME/VERSION/` (saved_model.pb + variables/) for TF Serving.

    Generation stops at `stop` strings (default: the run's `sample.stop`). An existing
    version is only replaced with `force`; the new export is written to a temporary
    folder and renamed into place, so a failure never leaves half an export. `xla`
    compiles the token loop with XLA: faster, but TF Serving runs XLA on CPU only behind
    an experimental flag, and not on GPU, so the default export has none. `max_copy`
    N builds the copy guard in: the export never writes a span of N characters of the
    training text (its index, up to EXPORT_MAX_COPY_BYTES, is saved with the weights).
    `unroll`: tokens per iteration of the token loop (default UNROLL without XLA, 1 with
    it; the text is the same, 1 traces about 4x faster and runs slower).
    """
    started = time.perf_counter()
    folder = RunFolder.find(run_dir, root)
    if max_new_tokens_cap < 1:
        raise ExportError(f"the max_new_tokens cap must be positive, got {max_new_tokens_cap}")
    model_base = Path(export_dir) if export_dir else folder.export_dir
    target = _version_folder(model_base / model_name, version, force)
    run = Run(folder, weights=weights)
    stop = run.config.sample.stop if stop is None else stop
    generator = run.generator_for(
        stop, max_new_tokens_cap, jit_compile=xla, max_copy=max_copy,
        unroll=unroll or (1 if xla else UNROLL), frozen=True,
    )  # fmt: skip
    guard = generator.copy_guard
    if guard is not None and guard.filter_bytes > EXPORT_MAX_COPY_BYTES:
        raise ExportError(
            f"the copy guard's index for this corpus is {guard.filter_bytes / 2**20:.0f} MiB, "
            f"over the export's cap of {EXPORT_MAX_COPY_BYTES / 2**20:.0f} MiB (every server "
            "replica would load it); export without --max-copy"
        )
    _save_atomically(ServingModule(generator, run.items, run.labels), target)
    size = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
    return ExportResult(
        target, model_base.resolve(), model_name, int(target.name), size,
        time.perf_counter() - started,
    )  # fmt: skip


def _save_atomically(module: ServingModule, target: Path) -> None:
    """Save `module` with its signatures to a temporary folder beside `target`, then
    rename it into place."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        staging.chmod(0o755)  # mkdtemp makes it private; a model server may run as another user
    except OSError as err:
        raise ExportError(f"cannot write to {target.parent}: {err.strerror or err}") from None
    names = [
        "serving_default", "generate", "generate_controlled", "score", "sample", "sample_guided",
        "beam_search",
    ]  # fmt: skip
    if module.labels:
        names.append("generate_labelled")
    try:
        signatures = {name: getattr(module, name) for name in names}
        signatures["continue"] = module.continue_text
        signatures["continue_guided"] = module.continue_guided
        tf.saved_model.save(module, str(staging), signatures=signatures)
        _replace(staging, target)
    except Exception:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _version_folder(model_dir: Path, version: int | None, force: bool) -> Path:
    """MODEL_DIR/VERSION to write: `version`, or the next free one; an existing one only
    with `force`."""
    if version is not None and version < 1:
        raise ExportError(f"--version must be a positive integer, got {version}")
    target = model_dir / str(version or next_version(model_dir))
    if target.exists() and not force:
        raise ExportError(f"{target} already exists; pass --force to replace it")
    return target


def _replace(staging: Path, target: Path) -> None:
    """Move `staging` to `target`; an old `target` is removed only once the new one is in."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}-replaced-{os.getpid()}")
        target.rename(old)
    staging.rename(target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
