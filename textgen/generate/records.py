"""Samples as a user reads them: plain text, or JSONL records (one per sample)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from textgen.generate.settings import SamplingSettings

FORMATS = ("text", "jsonl")


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
