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
) -> list[str]:
    """The lines to print or write: JSONL records (prompt, label, seed, the row's stream,
    completion), or text: an item run's items one per line, else each prompt and its
    completion, under a header when there are several."""
    if output_format == "jsonl":
        return [
            json.dumps(
                {"prompt": p, "label": settings.label, "seed": settings.seed, "stream": i,
                 "completion": c},
                ensure_ascii=False,
            )
            for i, (p, c) in enumerate(zip(prompts, completions))
        ]  # fmt: skip
    texts = [p + c for p, c in zip(prompts, completions)]
    if items or len(texts) == 1:
        return texts
    return [line for i, t in enumerate(texts) for line in (f"----- sample {i + 1} -----", t)]
