"""Samples as a user reads them: plain text, or JSONL records (one per sample)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from textgen.core.errors import ConfigError
from textgen.core.fileio import atomic_write_text
from textgen.generate.settings import SamplingSettings

FORMATS = ("text", "jsonl")


def samples_of(
    sampler, prompts: Sequence[str], settings: SamplingSettings, count: int, output_format: str
) -> list[str]:
    """The lines of `count` samples of each prompt, or with `settings.beams` its `count`
    best beams (best first), from any `Sampler`."""
    if settings.beams:
        found = sampler.search(prompts, settings, count=count)
        rows = [(p, beam) for p, beams in zip(prompts, found) for beam in beams]
        return sample_lines(
            [p for p, _ in rows], [b.completion for _, b in rows], settings, output_format,
            sampler.items, [b.log_probability for _, b in rows],
        )  # fmt: skip
    prompts = [p for p in prompts for _ in range(count)]
    completions = sampler.generate(prompts, settings)
    items = sampler.items or bool(settings.label)  # a server does not say; a label does
    return sample_lines(prompts, completions, settings, output_format, items)


def read_prompts(path: str) -> list[str]:
    """Prompts, one per line of the file at `path`."""
    try:
        with open(path, encoding="utf-8") as f:
            prompts = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"--prompts-file: {err}") from None
    if not prompts:
        raise ConfigError(f"--prompts-file: {path} has no lines")
    return prompts


def write_lines(lines: list[str], path: str) -> None:
    """Write `lines` to `path` atomically (a reader never sees half a file)."""
    try:
        atomic_write_text(path, "".join(line + "\n" for line in lines))
    except OSError as err:
        raise ConfigError(f"--output: {err}") from None


def sample_lines(
    prompts: Sequence[str],
    completions: Sequence[str],
    settings: SamplingSettings,
    output_format: str = "text",
    items: bool = False,
    log_probabilities: Sequence[float] | None = None,
) -> list[str]:
    """The lines to print or write: JSONL records (prompt, label, seed, the row's stream,
    completion; a beam search's: prompt, label, beams, log_probability, completion), or
    text: an item run's items one per line, else each prompt and its completion, under a
    header when there are several."""
    if output_format == "jsonl":
        return [
            json.dumps(_record(p, c, settings, i, log_probabilities), ensure_ascii=False)
            for i, (p, c) in enumerate(zip(prompts, completions))
        ]
    texts = [p + c for p, c in zip(prompts, completions)]
    if items or len(texts) == 1:
        return texts
    if log_probabilities is not None:
        headers = [f"----- log-probability {lp:.2f} -----" for lp in log_probabilities]
    else:
        headers = [f"----- sample {i + 1} -----" for i in range(len(texts))]
    return [line for header, t in zip(headers, texts) for line in (header, t)]


def _record(prompt, completion, settings, row, log_probabilities) -> dict:
    if log_probabilities is None:
        drawn = {"seed": settings.seed, "stream": row}
    else:
        drawn = {"beams": settings.beams, "log_probability": round(log_probabilities[row], 4)}
    return {"prompt": prompt, "label": settings.label, **drawn, "completion": completion}
