"""Every setting of a run, as dataclasses that validate themselves and round-trip JSON.

A run folder's `config.json` is `RunConfig.to_dict()`; `RunConfig.from_dict` reads it
back. Defaults live here and nowhere else.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from textgen.core.errors import ConfigError
from textgen.core.presets import PRESETS

LEVELS = ("char", "word", "subword")  # textgen.data.levels: a class each
ITEM_MODES = ("lines", "paragraphs")  # how a text file splits into items
CELLS = ("lstm", "gru", "rnn")
LR_SCHEDULES = ("constant", "cosine")
PRECISIONS = ("auto", "float32", "bfloat16")  # textgen.training.precision
MAX_NEW_TOKENS = 4096  # most tokens one `textgen sample` or library call may generate
EXPORT_MAX_NEW_TOKENS = 1024  # the export's default cap on max_new_tokens per request
EXPORT_MODEL_NAME = "textgen"  # the export's default TF Serving model name
MAX_BATCH = 256  # prompts one request may carry (the export's cap)
MAX_SAMPLES = 100_000  # samples one `textgen sample` may draw (in batches of MAX_BATCH)
MAX_TEXT_BYTES = 1 << 16  # bytes of one prompt or scored text in a served request
REPETITION_HISTORY = 1024  # tokens the repetition controls look back on, at most
MAX_NGRAM = 5  # the largest n of no_repeat_ngram
MAX_BEAMS = 16  # the widest beam search
MAX_LABEL_STRENGTH = 10.0  # the strongest label guidance
MAX_COPY = 256  # the longest span (characters) the copy guard can be built for
EXPORT_MAX_COPY_BYTES = 256 << 20  # the largest copy-guard index an export carries
MAX_EXCLUDE_CHARS = 32  # the longest excluded string (characters)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def setting(
    default: Any, help: str, choices: tuple[str, ...] = (), flags: tuple = (), served: str = ""
) -> Any:
    """A field a user sets, with its one-line help (`textgen train --help` shows it) and,
    if not --its-name, its command-line flags; `served`: the dtype of its per-row input in
    a served model's signatures (a sampling setting a request carries)."""
    metadata = {"help": help, "choices": choices, "flags": flags, "served": served}
    return field(default=default, metadata=metadata)


def _positive(name: str, value: int | float | None, allow_none: bool = False) -> None:
    number = isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
    ok = number or (value is None and allow_none)
    _check(ok, f"{name} must be a positive number, got {value!r}")


def _count(name: str, value: Any, zero: str = "") -> None:
    """`value` must be a whole number >= 0 (`zero`: what 0 means, for the message)."""
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
    _check(ok, f"{name} must be an integer >= 0{zero}, got {value!r}")


def _one_of(name: str, value: str, allowed: tuple[str, ...]) -> None:
    _check(value in allowed, f"{name} must be one of {', '.join(allowed)}; got {value!r}")


@dataclass
class DataConfig:
    """Where the text comes from and how it becomes token windows."""

    sources: list[str] = field(
        default_factory=lambda: ["shakespeare"],
        metadata={"help": "Text file, directory, glob, tfds:NAME or 'shakespeare' (built in); "
                  "with --items, LABEL=PATH labels a file's items. Repeatable.", "choices": (),
                  "flags": ("--corpus",), "metavar": "SOURCE"},
    )  # fmt: skip
    level: str = setting("char", "Tokens: characters, words or subword pieces.", LEVELS)
    lowercase: bool = setting(False, "Lowercase the text first.")
    max_vocab: int | None = setting(
        None,
        "Vocabulary size: the N most frequent tokens (word: 10000), N pieces (subword: 2000).",
        flags=("--max-vocab", "--vocab-size"),
    )
    seq_len: int = setting(100, "Tokens per training window.")
    val_fraction: float = setting(0.1, "Tail of each source held out for validation.")
    tfds_manual_dir: str | None = setting(None, "Offline files for tfds: sources.")
    data_dir: str = setting("data", "Cache for corpora and TFDS.")
    # Items (textgen.data.items): each line or paragraph of a text file, or each JSONL/CSV
    # record (its text in `text_field`, its label in `label_field`). None: one text.
    items: str | None = setting(None, "Train on items: lines or paragraphs of text.", ITEM_MODES)
    text_field: str = setting(
        "text",
        "JSONL key / CSV column holding an item's text.",
        flags=("--text-field", "--text-column"),
    )
    label_field: str | None = setting(
        None,
        "JSONL key / CSV column holding an item's label.",
        flags=("--label-field", "--label-column"),
    )
    # Labels whose tokens come first, in this order: a fine-tune's parent's labels, so each
    # keeps its token (and its id); a corpus's other labels follow, sorted.
    label_order: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        _check(bool(self.sources), "give at least one corpus source")
        if self.items is None and any(s.lower().endswith(".jsonl") for s in self.sources):
            self.items = "lines"
        if self.items is not None:
            _one_of("items", self.items, ITEM_MODES)
        _one_of("level", self.level, LEVELS)
        _positive("max_vocab", self.max_vocab, allow_none=True)
        _positive("seq_len", self.seq_len)
        _check(
            0 <= self.val_fraction < 1,
            f"val_fraction must be in [0, 1), got {self.val_fraction!r}",
        )


@dataclass
class ModelConfig:
    """Embedding -> `layers` x RNN(`cell`, `units`) with dropout between -> Dense logits
    (reading every recurrent layer's output with `skip_connections`)."""

    # Why each default is what it is: docs/experiments.md, the section named beside it.
    cell: str = setting("gru", "Recurrent cell type.", CELLS)  # "Default cell: GRU"
    layers: int = setting(2, "Number of stacked recurrent layers.")
    units: int = setting(256, "Units per recurrent layer.")
    embedding_dim: int = setting(128, "Size of the token embedding.")
    # Token embeddings start at U(-embedding_init, embedding_init), not Keras' 0.05, so a
    # token moves the gates from the start ("Embedding initialization").
    embedding_init: float = 1.0
    # The logits layer's kernel starts at `logits_scale` times Keras' Glorot-uniform range;
    # None: 8 for an LSTM, 1 otherwise ("The LSTM's logits layer").
    logits_init: float | None = setting(None, "Initial logits range / Glorot's (LSTM 8, else 1).")
    dropout: float = setting(0.1, "Dropout after each recurrent layer, in [0, 1).")
    # The same units dropped at every step of a window (Gal & Ghahramani 2016), not new ones.
    variational_dropout: bool = setting(False, "One dropout mask per window, not per step.")
    # The logits layer reads every layer's output, not only the top one's (Graves 2013).
    skip_connections: bool = setting(True, "Logits read every recurrent layer's output.")
    # Chrono-initialized gate biases (textgen.model.network.ChronoBias): LSTM/GRU units start with
    # memories of 1..memory_span steps; 0: Keras' initialization ("Chrono initialization").
    memory_span: int = setting(100, "Chrono-init gates to remember 1..N steps (0: off).")
    # An item's label added to every step's input (textgen.model.label_memory): `label_input`
    # asks for it, `label_memory` is how many labels (from the corpus; 0: the token only).
    label_input: bool = setting(True, "Feed an item's label at every step (runs with labels).")
    label_memory: int = 0

    @property
    def logits_scale(self) -> float:
        """The logits layer's initial range as a multiple of Glorot's (see logits_init)."""
        if self.logits_init is None:
            return 8.0 if self.cell == "lstm" else 1.0
        return self.logits_init

    def __post_init__(self) -> None:
        _one_of("cell", self.cell, CELLS)
        _check(
            isinstance(self.memory_span, int) and (self.memory_span == 0 or self.memory_span >= 2),
            f"memory_span must be 0 (off) or an integer >= 2, got {self.memory_span!r}",
        )
        _positive("layers", self.layers)
        _positive("units", self.units)
        _positive("embedding_dim", self.embedding_dim)
        _positive("embedding_init", self.embedding_init)
        _count("label_memory", self.label_memory)
        _positive("logits_init", self.logits_init, allow_none=True)
        _check(0 <= self.dropout < 1, f"dropout must be in [0, 1), got {self.dropout!r}")
        _check(
            isinstance(self.skip_connections, bool),
            f"skip_connections must be true or false, got {self.skip_connections!r}",
        )

    @property
    def head_inputs(self) -> int:
        """Features the logits layer reads: the top layer's, or every layer's (skips)."""
        return self.units * (self.layers if self.skip_connections else 1)


@dataclass
class TrainConfig:
    """Optimizer, schedule, stopping and checkpointing settings."""

    batch_size: int = setting(64, "Windows per batch.")
    epochs: int = setting(10, "Epochs to train (with --resume: the new total).")
    steps_per_epoch: int | None = setting(None, "Batches per epoch (default: one pass).")
    # With clipnorm (docs/experiments.md, "Chrono initialization").
    learning_rate: float = setting(1e-2, "Adam learning rate.")
    clipnorm: float = setting(5.0, "Clip the global gradient norm (0: off).")
    # Decoupled weight decay (AdamW; Loshchilov & Hutter 2019) on every weight but biases.
    weight_decay: float = setting(0.0, "AdamW weight decay (0: Adam).")
    # At the end, the last 2, ..., N epochs' weights averaged, the best kept as the best
    # weights if it validates better (textgen.training.averaging); N <= keep_checkpoints.
    average_last: int = setting(0, "Average the last 2..N epochs' weights at the end (0: off).")
    lr_schedule: str = setting("constant", "Learning-rate decay.", LR_SCHEDULES)
    patience: int = setting(3, "Stop after N epochs without improvement (0: off).")
    seed: int = setting(0, "Random seed for weights and data order.")
    keep_checkpoints: int = 3
    sample_length: int = 200  # tokens of the sample printed after each epoch
    xla: bool = setting(True, "XLA-compile the training step.")  # docs/performance.md
    precision: str = setting(
        "auto", "Training arithmetic (auto: bfloat16 where the CPU has it, 256+ units).", PRECISIONS
    )
    # None: 1,000,000, or under a budget what its share allows (training.plan).
    val_tokens: int | None = setting(None, "Validate on at most N tokens (0: all).")
    max_minutes: float | None = setting(None, "Stop (validate and save) after this long.")
    minutes: float | None = setting(None, "Train for this long: steps and schedule planned.")
    max_steps: int | None = setting(None, "With --minutes: at most N steps in all.")
    # Truncated backpropagation through time: contiguous streams, state carried across
    # windows (char-rnn's way); off, as it did not help the probe ("Stateful training").
    stateful: bool = setting(False, "Carry the RNN state across windows (truncated BPTT).")
    # Runs with a label memory: each window likelier under its labels than under others
    # (textgen.training.label_contrast; "Labels learned by contrast": 0.05, as measured).
    label_contrast: float = setting(0.05, "Weight of the labels' contrast objective (0: off).")

    def __post_init__(self) -> None:
        _positive("batch_size", self.batch_size)
        _positive("epochs", self.epochs)
        _positive("steps_per_epoch", self.steps_per_epoch, allow_none=True)
        _positive("learning_rate", self.learning_rate)
        _check(self.clipnorm >= 0, f"clipnorm must be >= 0 (0 is off), got {self.clipnorm!r}")
        _check(
            0 <= self.weight_decay < 1, f"weight_decay must be in [0, 1), got {self.weight_decay!r}"
        )
        _one_of("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        _one_of("precision", self.precision, PRECISIONS)
        _count("patience", self.patience, " (0 is off)")
        _positive("keep_checkpoints", self.keep_checkpoints)
        _check(
            isinstance(self.average_last, int) and 0 <= self.average_last <= self.keep_checkpoints,
            f"average_last must be an integer from 0 (off) to keep_checkpoints "
            f"({self.keep_checkpoints}), got {self.average_last!r}",
        )
        _positive("max_minutes", self.max_minutes, allow_none=True)
        _positive("minutes", self.minutes, allow_none=True)
        _positive("max_steps", self.max_steps, allow_none=True)
        _check(self.max_steps is None or self.minutes, "max_steps caps a budget: give --minutes")
        _count("val_tokens", 0 if self.val_tokens is None else self.val_tokens, " (0 is all)")
        _count("sample_length", self.sample_length)
        _check(
            0 <= self.label_contrast <= 1,
            f"label_contrast must be in [0, 1], got {self.label_contrast!r}",
        )


@dataclass
class SampleConfig:
    """How text is drawn: the run's defaults for `sample` and for the export."""

    length: int = 500
    temperature: float = setting(0.8, "Default sampling temperature of the run.")
    top_k: int = 0  # 0: off
    top_p: float = 1.0  # 1.0: off
    stop: list[str] = field(default_factory=list)
    # Repetition controls (textgen.generate.rules.repetition): CTRL's penalty on the tokens of
    # the last `repetition_window` (1.0: off), and no repeated n-gram of size
    # `no_repeat_ngram` (0: off).
    repetition_penalty: float = 1.0
    repetition_window: int = 64  # tokens: a character model must repeat letters
    no_repeat_ngram: int = 0
    # Label guidance (textgen.generate.rules.label_guidance): an item run's labelled samples mix the
    # logits with and without the label, uncond + strength * (cond - uncond); 1: off. 2, as
    # measured (docs/experiments.md, "Label guidance"): the weak kind holds better.
    label_strength: float = 2.0

    def __post_init__(self) -> None:
        _positive("length", self.length)
        validate_label_strength(self.label_strength)
        validate_sampling(self.temperature, self.top_k, self.top_p)
        _check(all(self.stop), "stop strings must not be empty")
        validate_repetition(self.repetition_penalty, self.repetition_window, None)
        _check(
            isinstance(self.no_repeat_ngram, int) and 0 <= self.no_repeat_ngram <= MAX_NGRAM,
            f"no_repeat_ngram must be 0 (off) to {MAX_NGRAM}, got {self.no_repeat_ngram!r}",
        )


def validate_label_strength(strength: float | None) -> None:
    """Raise ConfigError unless 0 < strength <= MAX_LABEL_STRENGTH (None: not given)."""
    _check(
        strength is None or 0 < strength <= MAX_LABEL_STRENGTH,
        f"label strength must be in (0, {MAX_LABEL_STRENGTH}] (1 is off), got {strength!r}",
    )


def validate_repetition(penalty: float | None, window: int | None, ngram: int | None) -> None:
    """Raise ConfigError unless penalty > 0, 1 <= window <= REPETITION_HISTORY and
    1 <= ngram <= MAX_NGRAM (None: not given, nothing to check)."""
    _check(
        penalty is None or penalty > 0,
        f"repetition penalty must be > 0 (1 is off), got {penalty!r}",
    )
    _check(
        window is None or 1 <= window <= REPETITION_HISTORY,
        f"repetition window must be 1 to {REPETITION_HISTORY} tokens, got {window!r}",
    )
    _check(
        ngram is None or 1 <= ngram <= MAX_NGRAM,
        f"no-repeat n-gram size must be 1 to {MAX_NGRAM}, got {ngram!r}",
    )


def validate_max_copy(max_copy: int | None) -> None:
    """Raise ConfigError unless the copy guard's span is 2 to MAX_COPY characters
    (None or 0: off)."""
    _check(
        not max_copy or 2 <= max_copy <= MAX_COPY,
        f"max-copy must be 2 to {MAX_COPY} characters (0: off), got {max_copy!r}",
    )


def validate_sampling(temperature: float | None, top_k: int | None, top_p: float | None) -> None:
    """Raise ConfigError unless temperature >= 0, top_k >= 0 and top_p is in (0, 1]
    (None: not given, nothing to check)."""
    _check(
        temperature is None or temperature >= 0,
        f"temperature must be >= 0 (0 is greedy), got {temperature!r}",
    )
    _check(top_k is None or top_k >= 0, f"top_k must be >= 0 (0 is off), got {top_k!r}")
    _check(top_p is None or 0 < top_p <= 1, f"top_p must be in (0, 1] (1 is off), got {top_p!r}")


SECTIONS = {  # a run config's sections by name
    "data": DataConfig,
    "model": ModelConfig,
    "train": TrainConfig,
    "sample": SampleConfig,
}
# Settings that change the weights' shapes, as run folders from before the field have them.
_BEFORE_FIELD = {"model": {"skip_connections": False}, "train": {"label_contrast": 0.0}}


@dataclass
class RunConfig:
    """Everything a run folder records: settings, the textgen version, the corpus."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)
    preset: str | None = None
    textgen_version: str = ""
    corpus: dict[str, Any] = field(default_factory=dict)  # fingerprint, filled by training
    # A fine-tune's lineage (textgen.training.finetune.lineage): the parent run's folder, config and
    # weights digests, and how the vocabulary was carried over; {} for a run from scratch.
    parent: dict[str, Any] = field(default_factory=dict)
    # A time budget's plan (textgen.training.plan.Plan), made once when training starts,
    # and the size chosen for it (textgen.training.auto_size.Sizing), if the rule chose it.
    plan: dict[str, Any] = field(default_factory=dict)
    sizing: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_preset(cls, name: str | None = None) -> RunConfig:
        """The defaults, or a named preset's settings on top of them."""
        if name is None:
            return cls()
        if name not in PRESETS:
            raise ConfigError(f"preset must be one of {', '.join(PRESETS)}; got {name!r}")
        sections = {key: SECTIONS[key](**values) for key, values in PRESETS[name].items()}
        return cls(**sections, preset=name)

    def with_overrides(self, **sections: dict[str, Any]) -> RunConfig:
        """A copy with some settings replaced, e.g. `with_overrides(model={"units": 64})`.

        Values that are None are ignored, so CLI options left unset keep the preset's.
        Epochs or steps per epoch given without minutes replace a preset's time budget.
        """
        changed = {}
        for name, values in sections.items():
            if name not in SECTIONS:
                raise ConfigError(f"unknown config section {name!r}")
            values = {key: value for key, value in values.items() if value is not None}
            if name == "train" and {"epochs", "steps_per_epoch"} & set(values):
                values.setdefault("minutes", None)
            changed[name] = dataclasses.replace(getattr(self, name), **values)
        return dataclasses.replace(self, **changed)

    @property
    def contrasts_labels(self) -> bool:
        """Trained with the labels' contrast (textgen.training.label_contrast)."""
        train = self.train
        return bool(self.model.label_memory and train.label_contrast and not train.stateful)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RunConfig:
        try:
            sections = {
                key: SECTIONS[key](**{**_BEFORE_FIELD.get(key, {}), **values.get(key, {})})
                for key in SECTIONS
            }
            extra = {key: values[key] for key in ("preset", "textgen_version", "corpus")}
            extra["parent"] = values.get("parent", {})  # absent in runs from before fine-tuning
            extra["plan"] = values.get("plan", {})  # absent in runs from before budgets
            extra["sizing"] = values.get("sizing", {})
        except (TypeError, KeyError) as err:
            raise ConfigError(f"config does not match this textgen version: {err}") from None
        return cls(**sections, **extra)
