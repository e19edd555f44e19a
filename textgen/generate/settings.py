"""Sampling settings: one value that every sampler takes (in process, LiteRT, TF Serving).

`SamplingSettings` holds what a user may ask of one `sample` call. It checks itself when
made (a `ConfigError`, one line, exit code 2), and a setting left unset (None) means the
run's default: `with_defaults` fills them from the run's `SampleConfig`, and
`request_fields` writes them as `UNSET` for a served model, whose graph fills them from the
defaults it was exported with. No TensorFlow here: the TensorFlow-free samplers use it too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from textgen.core.config import (
    MAX_BEAMS,
    MAX_COPY,
    MAX_EXCLUDE_CHARS,
    MAX_LABEL_STRENGTH,
    MAX_NGRAM,
    REPETITION_HISTORY,
    SampleConfig,
    setting,
    validate_label_strength,
    validate_max_copy,
    validate_repetition,
    validate_sampling,
)
from textgen.core.errors import ConfigError
from textgen.data.items import item_prefix

MAX_EXCLUDE = 16  # texts one sample may exclude
MAX_INCLUDE = 4  # texts one sample may be asked to include (each 1-MAX_EXCLUDE_CHARS long)
# A served request's value for "the run's default" (the graph reads any negative so).
UNSET = -1


@dataclass(frozen=True)
class SamplingSettings:
    """How to draw text; None means the run's default.

    `seed` and a row's stream key the sampling noise (a row's text depends on nothing
    else), so the same settings give the same text in every sampler. `stop`: strings
    that end a sample (None: the run's). `max_copy` N >= 2: never write a span of N
    characters of the training text (0: off). `exclude`: texts a completion never
    holds (`rules.exclusion`); `include`: texts every completion holds (`rules.inclusion`).
    `label`: an item run's kind of item.
    `beams` N: the most likely text by beam search over N hypotheses (`textgen.generate.
    beams`) instead of a sampled one; nothing is random then, so temperature, top-k and
    top-p are refused with it and the seed does not matter.
    """

    max_new_tokens: int | None = setting(
        None, "Tokens to generate (default: the run's, 500).", flags=("--length",), served="int32"
    )
    temperature: float | None = setting(
        None, "0 is greedy; higher is more random.", served="float32"
    )
    top_k: int | None = setting(
        None, "Sample from the K most likely tokens (0: off).", served="int32"
    )
    top_p: float | None = setting(
        None, "Sample from the smallest set with mass P (1: off).", served="float32"
    )
    seed: int = 0
    repetition_penalty: float | None = setting(
        None,
        "Divide the logits of recently used tokens by F (CTRL's rule; 1: off).",
        served="float32",
    )
    repetition_window: int | None = setting(
        None,
        f"Tokens the penalty looks back on, 1-{REPETITION_HISTORY} (default 64).",
        served="int32",
    )
    no_repeat_ngram: int | None = setting(
        None,
        f"Never repeat an n-gram of this many tokens, 1-{MAX_NGRAM} (default off).",
        served="int32",
    )
    stop: tuple[str, ...] | None = setting(None, "End at this text (not printed). Repeatable.")
    max_copy: int = setting(
        0, f"Never write a span of N characters of the training text, 2-{MAX_COPY} (0: off)."
    )
    label: str | None = setting(None, "An item run's kind of item (see `textgen info`).")
    label_strength: float | None = setting(
        None, f"Label guidance: how hard --label pulls, 1 (off) to {MAX_LABEL_STRENGTH:g}."
    )
    exclude: tuple[str, ...] | None = setting(
        None, "Never write this text (exact, case-sensitive; the prompt not counted). "
        "Repeatable.", served="string",
    )  # fmt: skip
    include: tuple[str, ...] | None = setting(
        None, f"Write this text in every sample (exact, case-sensitive), where the model "
        f"finds it likely. Repeatable, up to {MAX_INCLUDE}.", served="string",
    )  # fmt: skip
    beams: int | None = setting(
        None, "The most likely text by beam search over N hypotheses; --num-samples K <= N "
        "gives the K best.",
    )  # fmt: skip

    def __post_init__(self) -> None:
        if self.stop is not None:
            object.__setattr__(self, "stop", tuple(self.stop))
            if not all(self.stop):
                raise ConfigError("stop strings must not be empty")
        if self.max_new_tokens is not None and self.max_new_tokens < 0:
            raise ConfigError(f"length must be >= 0, got {self.max_new_tokens}")
        validate_sampling(self.temperature, self.top_k, self.top_p)
        ngram = self.no_repeat_ngram or None  # 0 is off
        validate_repetition(self.repetition_penalty, self.repetition_window, ngram)
        for name in ("exclude", "include"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, tuple(getattr(self, name)) or None)
        _check_texts("--exclude", self.exclude)
        _check_texts("--include", self.include, MAX_INCLUDE)
        if self.include:
            self._check_include()
        validate_max_copy(self.max_copy or 0)
        object.__setattr__(self, "max_copy", self.max_copy or 0)
        validate_label_strength(self.label_strength)
        if self.label_strength is not None and not self.label:
            raise ConfigError("--label-strength steers a --label; give one (see `textgen info`)")
        if self.beams is not None:
            self._check_beams()

    def _check_include(self) -> None:
        clash = [(i, e) for i in self.include for e in self.exclude or () if e in i]
        if clash:
            raise ConfigError(f"--include {clash[0][0]!r} holds --exclude {clash[0][1]!r}")
        if self.max_copy:
            raise ConfigError("--include and --max-copy do not go together yet; leave one out")

    def _check_beams(self) -> None:
        if not 1 <= self.beams <= MAX_BEAMS:
            raise ConfigError(f"beams must be from 1 to {MAX_BEAMS}, got {self.beams}")
        drawn = [
            name for name in ("temperature", "top_k", "top_p") if getattr(self, name) is not None
        ]
        if drawn:
            option = "--" + drawn[0].replace("_", "-")
            raise ConfigError(
                f"{option} does not apply to beam search, which takes the most likely text "
                f"(nothing is drawn at random); leave out {option}, or --beams to sample"
            )

    @classmethod
    def of(cls, settings: SamplingSettings | None = None, **changes) -> SamplingSettings:
        """`settings` (default: all unset) with the `changes` that are not None."""
        given = {name: value for name, value in changes.items() if value is not None}
        unknown = set(given) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            allowed = ", ".join(f.name for f in dataclasses.fields(cls))
            raise ConfigError(f"unknown sampling setting {sorted(unknown)[0]!r}; use {allowed}")
        return dataclasses.replace(settings or cls(), **given)

    def with_defaults(self, defaults: SampleConfig) -> SamplingSettings:
        """Every unset setting filled from a run's `SampleConfig` (the one place that
        does); a beam search draws nothing, so its temperature, top-k and top-p stay
        unset."""
        drawn = self.beams is None
        return dataclasses.replace(
            self,
            max_new_tokens=_given(self.max_new_tokens, defaults.length),
            temperature=_given(self.temperature, defaults.temperature) if drawn else None,
            top_k=_given(self.top_k, defaults.top_k) if drawn else None,
            top_p=_given(self.top_p, defaults.top_p) if drawn else None,
            repetition_penalty=_given(self.repetition_penalty, defaults.repetition_penalty),
            repetition_window=_given(self.repetition_window, defaults.repetition_window),
            no_repeat_ngram=_given(self.no_repeat_ngram, defaults.no_repeat_ngram),
            label_strength=_given(self.label_strength, defaults.label_strength)
            if self.label
            else None,
            stop=_given(self.stop, tuple(defaults.stop)),
        )

    def request_fields(self) -> dict[str, int | float | str]:
        """The per-row inputs of a served model's signatures, `UNSET` where unset."""
        return {name: self.served(name) for name in REQUEST_FIELDS}

    def served(self, name: str) -> int | float | str:
        """Setting `name` as a served request carries it: `UNSET` where unset; strings
        (`exclude`) a text a line ("": none)."""
        value = getattr(self, name)
        if SERVED[name] == "string":
            return "\n".join(value or ())
        return _given(value, UNSET)

    def prompts_to_read(
        self, prompts: Sequence[str], items: bool, labels: Sequence[str]
    ) -> list[str]:
        """`prompts` as the model reads them: on an item run each starts a new item (of
        `label`'s kind); a label on another run is a ConfigError."""
        if not items:
            if self.label:
                raise ConfigError("this run was not trained on items; leave out --label")
            return list(prompts)
        prefix = item_prefix(list(labels), self.label)
        return [prefix + prompt for prompt in prompts]

    def guided(self) -> bool:
        """Whether (resolved) samples are steered by label guidance."""
        return bool(self.label) and self.label_strength not in (None, 1.0)

    def unlabelled(self, prompts: Sequence[str], labels: Sequence[str]) -> list[str]:
        """`prompts` as an item run reads them with no label: guidance's other half."""
        return [item_prefix(list(labels), None) + prompt for prompt in prompts]


# The settings a served model takes as per-row inputs ({name: dtype}), in its signatures'
# order: the table's rows marked `served`.
SERVED = {
    f.name: f.metadata["served"]
    for f in dataclasses.fields(SamplingSettings)
    if f.metadata.get("served")
}
REQUEST_FIELDS = tuple(SERVED)
# The graph's per-row settings, in its signatures' order: the drawn ones, then each row's
# [seed, stream], then the repetition controls, then the constraints.
DRAWN = ("temperature", "top_k", "top_p")
CONTROLS = ("repetition_penalty", "repetition_window", "no_repeat_ngram")
# The strings a row's text must not hold (the candidate checks' per-row settings), then
# the texts it must hold (last: a continuation carried between calls takes none).
CONSTRAINTS = ("exclude", "include")


def _check_texts(option: str, strings: tuple[str, ...] | None, most: int = MAX_EXCLUDE) -> None:
    """Raise ConfigError unless `strings` (of `--option`) are at most `most` texts of 1 to
    MAX_EXCLUDE_CHARS characters with no line break (a served request sends a text a line)."""
    for text in strings or ():
        _must(text != "", f"{option} takes a text; got an empty one")
        _must(
            len(text) <= MAX_EXCLUDE_CHARS,
            f"{option} texts may have at most {MAX_EXCLUDE_CHARS} characters, got {text!r}",
        )
        _must("\n" not in text, f"{option} texts are one line each, got {text!r}")
    _must(len(strings or ()) <= most, f"at most {most} {option} texts, got {len(strings or ())}")


def _must(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _given(value, default):
    return default if value is None else value
