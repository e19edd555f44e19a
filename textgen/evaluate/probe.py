"""A long-range dependency probe: can a model carry one word across a span of filler?

Each story names where an item is, talks about other things for a while, and ends by
asking for the place again:

    the key is in the cellar . the night was cold and dark . a bird flew over ...
    where is the key ? the key is in the cellar .

The final place word is determined only by the place named `distance` tokens earlier
(places never occur in the filler), so a model that forgets it can do no better than
chance (1 / len(PLACES)). `probe_corpus` writes stories with distances drawn from a range;
`probe_accuracy` scores a trained model by the share of held-out stories whose answer is
the model's most likely next word, at each distance. `textgen compare` and
`scripts/experiments/probe_defaults.py` train on the corpus through the ordinary training loop.
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PLACES = (
    "kitchen", "garden", "cellar", "attic", "library", "stable",
    "chapel", "tower", "harbor", "forest", "market", "meadow",
)  # fmt: skip
ITEMS = ("key", "ring", "letter", "sword", "crown", "coin")
# The filler between cue and question: everyday sentences, drawn at random (places never
# occur in them). Like text, not noise: once a sentence has begun the rest of it is
# predictable, so what a model must carry across it is the place, not a random walk.
FILLER_SENTENCES = (
    "then she walked slowly through the rain",
    "the old friend spoke of many things",
    "he sang a quiet song by the river",
    "the night was cold and dark",
    "a bird flew over the stone wall",
    "they shared bread and wine by the fire",
    "the morning light came through the window",
    "a small boat drifted down the long river",
)
# Tokens from the place mention to the answer, besides the filler: "." + filler +
# "where is the ITEM ?" + "the ITEM is in the" + answer.
OVERHEAD = 12
DEFAULT_DISTANCES = (15, 25, 50, 75, 100, 150)
TRAIN_DISTANCES = (20, 80)  # the range the defaults must handle (docs/experiments.md)


def parse_distances(text: str) -> list[int]:
    """Distances from a comma-separated list ("15,25,50"); ConfigError if one is invalid."""
    from textgen.core.errors import ConfigError

    try:
        distances = [int(part) for part in text.split(",")]
    except ValueError:
        raise ConfigError(
            f"probe distances must be integers separated by commas, got {text!r}"
        ) from None
    if any(d < OVERHEAD for d in distances):
        raise ConfigError(f"probe distances must be >= {OVERHEAD}, got {text}")
    return distances


@dataclass
class ProbeExample:
    """A prompt ending just before the answer, the answer, and how far back its cue is."""

    prompt: str
    answer: str
    distance: int


def _story(rng: random.Random, distance: int) -> tuple[list[str], str]:
    """The story's words up to (not including) the answer, and the answer."""
    if distance < OVERHEAD:
        raise ValueError(f"distance must be >= {OVERHEAD}, got {distance}")
    item, place = rng.choice(ITEMS), rng.choice(PLACES)
    filler: list[str] = []
    while len(filler) < distance - OVERHEAD:  # whole sentences; the last one may be cut
        filler += [*rng.choice(FILLER_SENTENCES).split(), "."]
    filler = filler[: distance - OVERHEAD]
    words = ["the", item, "is", "in", "the", place, ".", *filler]
    words += ["where", "is", "the", item, "?", "the", item, "is", "in", "the"]
    return words, place


def probe_corpus(num_stories: int, distances: tuple[int, int] = TRAIN_DISTANCES, seed: int = 0):
    """Training text: `num_stories` stories, one per line, distances uniform in the range."""
    rng = random.Random(seed)
    lines = []
    for _ in range(num_stories):
        words, answer = _story(rng, rng.randint(*distances))
        lines.append(" ".join([*words, answer, "."]))
    return "\n".join(lines) + "\n"


def write_probe_corpus(path: str | os.PathLike, num_stories: int, **kwargs) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(probe_corpus(num_stories, **kwargs), encoding="utf-8")
    return path


def probe_examples(
    distances: Sequence[int] = DEFAULT_DISTANCES, per_distance: int = 96, seed: int = 12345
) -> list[ProbeExample]:
    """Held-out stories cut just before their answer (a seed apart from training's)."""
    rng = random.Random(seed)
    examples = []
    for distance in distances:
        for _ in range(per_distance):
            words, answer = _story(rng, distance)
            examples.append(ProbeExample("\n" + " ".join(words), answer, distance))
    return examples


def probe_accuracy(model, vocab, examples: Sequence[ProbeExample]) -> dict[int, float]:
    """Share of examples whose answer is the model's most likely next token, by distance.

    All examples of one distance have the same token count, so each distance is one batch.
    """
    from textgen.data.tokenizers import Tokenizer
    from textgen.model.label_memory import window_inputs

    tokenizer = Tokenizer(vocab)
    by_distance: dict[int, list[ProbeExample]] = {}
    for example in examples:
        by_distance.setdefault(example.distance, []).append(example)
    accuracy = {}
    for distance, group in sorted(by_distance.items()):
        ids = np.stack([tokenizer.encode_text(example.prompt) for example in group])
        answers = np.array([tokenizer.encode_text(example.answer)[0] for example in group])
        logits = model(window_inputs(model, ids), training=False)[:, -1, :]  # (batch, vocab)
        accuracy[distance] = float(np.mean(np.argmax(logits, axis=-1) == answers))
    return accuracy


def chance_accuracy() -> float:
    """What a model that has forgotten the place scores: a uniform guess among places."""
    return 1.0 / len(PLACES)


def train_probe(
    config,
    folder: str | os.PathLike,
    steps: int = 1500,
    distances: tuple[int, int] = TRAIN_DISTANCES,
    eval_distances: Sequence[int] = DEFAULT_DISTANCES,
    num_stories: int | None = None,
    log=print,
    verbose: int = 1,
) -> dict[int, float]:
    """Train `config`'s model on a probe corpus for `steps` steps; its accuracy by distance.

    The model, optimizer and schedule are `config`'s (word level on the probe text), so
    the figure says what a user with those settings would get. The run is `folder/run`.
    """
    from textgen.runs.folder import RunFolder
    from textgen.runs.run import Run
    from textgen.training.start import train

    folder = Path(folder)
    if num_stories is None:  # about one pass over the stories, at most 20000 (~1.2M words)
        tokens = steps * config.train.batch_size * config.data.seq_len
        num_stories = int(np.clip(tokens // (OVERHEAD + sum(distances) // 2), 500, 20000))
    corpus = write_probe_corpus(folder / "probe.txt", num_stories, distances=distances)
    epochs = max(1, min(5, steps))
    config = config.with_overrides(
        data={"sources": [str(corpus)], "level": "word", "val_fraction": 0.02, "max_vocab": None},
        train={
            "epochs": epochs,
            "steps_per_epoch": steps // epochs,
            "patience": 0,
            "sample_length": 0,
        },
    )
    run_dir = folder / "run"
    train(config, run_dir=run_dir, log=log, verbose=verbose)
    run = Run(RunFolder(run_dir), weights="latest")
    return probe_accuracy(run.model, run.vocab, probe_examples(eval_distances))
