"""`textgen export --format litert`: the model's one-token step as a LiteRT (TFLite) file.

The file has one signature, `step`: `ids` int32 [1] and `state` float32 [1, S] in, `logits`
float32 [1, vocab] and `state` out (S: every layer's state, then the label in mind on a run
with labels, concatenated; zeros to start). Tokenizing, sampling and detokenizing are a
short loop around it (`textgen.export.litert_sampler` is the reference, `web/textgen.js` the
same in JavaScript): LiteRT's builtin ops have no string ops, and one call per token streams
for free. (The loop in Python over the interpreter runs faster than TensorFlow's in-process
generator at batch 1: docs/experiments.md, "LiteRT and the web".)

The folder: `model.tflite`, `vocab.json` (the run's), and `textgen.json`: what the loop
needs besides the weights (level, start id, state size, per-token glue flags, the
run's sampling defaults and stop strings, item markers and labels).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import tensorflow as tf

from textgen.core.config import REPETITION_HISTORY
from textgen.core.errors import ExportError
from textgen.core.fileio import atomic_write_json
from textgen.data.items import ITEM_START, label_token
from textgen.data.levels import level_of
from textgen.data.tokenizers import WORD_PATTERN
from textgen.data.vocabulary import glue_flags
from textgen.export.litert_format import META_FILE, MODEL_FILE
from textgen.model.one_step import OneStep
from textgen.runs.folder import DEFAULT_ROOT, RunFolder
from textgen.runs.run import Run

QUANTIZE = ("none", "dynamic", "float16")
# Word-level tokens, as `tokenizers.split_tokens` cuts them (JavaScript's `u` regex syntax)
WORD_TOKEN_JS = (
    WORD_PATTERN.replace(r"\pL", r"\p{L}").replace(r"\pN", r"\p{N}") + r"|\n|[^\s\p{L}\p{N}_]"
)


@dataclass
class LiteRTExport:
    path: Path
    size_bytes: int
    seconds: float


def step_module(run: Run) -> tuple[tf.Module, int]:
    """A module whose `step` signature is the model's one-token step, state concatenated."""
    one_step = OneStep(run.model)
    layers = one_step.zero_state(1)
    sizes = [int(t.shape[1]) for layer in layers for t in layer]

    @tf.function(
        input_signature=[
            tf.TensorSpec([1], tf.int32, name="ids"),
            tf.TensorSpec([1, sum(sizes)], tf.float32, name="state"),
        ]
    )
    def step(ids, state):
        parts = iter(tf.split(state, sizes, axis=1))
        state = tuple(tuple(next(parts) for _ in layer) for layer in layers)
        logits, new_state = one_step(ids, state)
        flat = [t for layer in new_state for t in layer]
        return {"logits": logits, "state": tf.concat(flat, axis=1)}

    module = tf.Module()
    module.one_step = one_step
    module.weights = one_step.variables_to_serve
    module.step = step
    return module, sum(sizes)


def convert(run: Run, quantize: str = "none") -> tuple[bytes, int]:
    """The .tflite bytes of the run's step, and its state size."""
    if quantize not in QUANTIZE:
        raise ExportError(f"--quantize must be one of {', '.join(QUANTIZE)}; got {quantize!r}")
    module, state_size = step_module(run)
    with tempfile.TemporaryDirectory() as tmp:
        tf.saved_model.save(module, tmp, signatures={"step": module.step})
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=["step"])
        if quantize != "none":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "float16":
            converter.target_spec.supported_types = [tf.float16]
        return converter.convert(), state_size


def metadata(run: Run, state_size: int, max_new_tokens_cap: int, stop=None) -> dict:
    """What a sampling loop needs besides the weights (`textgen.json`)."""
    vocab, sample = run.vocab, run.config.sample
    level = level_of(vocab)
    left, right = glue_flags(vocab)
    stop = list(sample.stop if stop is None else stop) + run.item_stops
    return {
        "format": "textgen-litert-1",
        "level": vocab.level,
        "lowercase": vocab.lowercase,
        "vocab_size": vocab.size,
        "start_id": vocab.start_id,
        "state_size": state_size,
        "word_pattern": WORD_TOKEN_JS,
        "glue_left": [int(x) for x in left],
        "glue_right": [int(x) for x in right],
        "reader": level.page_reader(),  # a subword run's pieces (the page reads with them)
        "heals": level.heals,  # prompts ending inside a word healed (rules.healing)
        "defaults": {
            "temperature": sample.temperature,
            "top_k": sample.top_k,
            "top_p": sample.top_p,
            "length": sample.length,
            "max_new_tokens_cap": max_new_tokens_cap,
            "stop": stop,
            "label_strength": sample.label_strength,
            "repetition_penalty": sample.repetition_penalty,
            "repetition_window": sample.repetition_window,
            "no_repeat_ngram": sample.no_repeat_ngram,
        },
        "repetition_history": REPETITION_HISTORY,
        "item_start": ITEM_START if run.items else "",
        "item_stops": run.item_stops,
        "labels": {label: label_token(run.labels, label) for label in run.labels},
        "run": {"folder": run.folder.path.name, "sha256": run.config.corpus.get("sha256", "")},
    }


def export_litert(
    run_dir: str | os.PathLike | None = None,
    root: str | os.PathLike = DEFAULT_ROOT,
    export_dir: str | os.PathLike | None = None,
    weights: str = "best",
    quantize: str = "none",
    force: bool = False,
    max_new_tokens_cap: int = 1024,
    stop: list[str] | None = None,
    extra_files: dict[str, Path] | None = None,
) -> LiteRTExport:
    """Write EXPORT_DIR (default RUN/export/litert) with model.tflite, vocab.json and
    textgen.json; written to a temporary folder and renamed into place."""
    started = time.perf_counter()
    folder = RunFolder.find(run_dir, root)
    target = Path(export_dir) if export_dir else folder.export_dir / "litert"
    if target.exists() and not force:
        raise ExportError(f"{target} already exists; pass --force to replace it")
    run = Run(folder, weights=weights, xla=False)
    model, state_size = convert(run, quantize)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    except OSError as err:
        raise ExportError(f"cannot write to {target.parent}: {err.strerror or err}") from None
    try:
        (staging / MODEL_FILE).write_bytes(model)
        run.vocab.save(staging / "vocab.json")
        meta = metadata(run, state_size, max_new_tokens_cap, stop)
        meta["quantize"] = quantize
        atomic_write_json(staging / META_FILE, meta)
        for name, source in (extra_files or {}).items():
            destination = staging / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, destination)
        for path in staging.rglob("*"):  # readable by a server running as another user
            path.chmod(0o755 if path.is_dir() else 0o644)
        staging.chmod(0o755)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    size = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
    return LiteRTExport(target, size, time.perf_counter() - started)
