"""How good a model is: held-out loss (bits per character, perplexity) and sample diversity.

`WindowLoss` is the one loss computation: training's validation loss and
`textgen evaluate` both use it, so their figures agree. `distinct_n` and `copy_rate`
describe generated text: how varied it is, and how much of it is the training text
copied out verbatim.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from textgen.data.items import parse_items
from textgen.model.window_loss import WindowLoss, loss_figures

COPY_SPAN = 20  # characters: a generated span this long found in the training text is a copy


def distinct_n(texts: Sequence[Sequence[str]], n: int) -> float:
    """Distinct n-grams / all n-grams over token sequences (1.0: no n-gram repeats)."""
    grams = [tuple(t[i : i + n]) for t in texts for i in range(len(t) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def _span_hashes(codes: np.ndarray, span: int) -> np.ndarray:
    """A 64-bit polynomial hash of every `span`-long window of code points (wrapping)."""
    if len(codes) < span:
        return np.zeros(0, np.uint64)
    with np.errstate(over="ignore"):
        hashes = np.zeros(len(codes) - span + 1, np.uint64)
        for k in range(span):
            hashes = hashes * np.uint64(1_000_003) + codes[k : len(codes) - span + 1 + k]
    return hashes


def _codes(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le"), np.uint32).astype(np.uint64)


def copy_rate(
    samples: Sequence[str],
    training_text: str | Iterable[str],
    span: int = COPY_SPAN,
    piece: int = 1 << 22,
) -> float:
    """Share of the samples' characters inside spans of >= `span` characters that occur
    verbatim in `training_text` (a string, or an iterable of its chunks).

    The training text is scanned once, a piece at a time, for the samples' span hashes,
    so a gigabyte of training text takes memory for one piece only.
    """
    chunks = training_text
    if isinstance(training_text, str):
        chunks = (training_text[i : i + piece] for i in range(0, len(training_text), piece))
    sample_hashes = [_span_hashes(_codes(s), span) for s in samples]
    wanted = np.unique(np.concatenate([np.zeros(0, np.uint64), *sample_hashes]))
    found = np.zeros(0, np.uint64)
    carry = ""  # the last span-1 characters: spans across two pieces count too
    for chunk in chunks:
        text = carry + chunk
        hashes = _span_hashes(_codes(text), span)
        found = np.union1d(found, hashes[np.isin(hashes, wanted)])
        carry = text[-(span - 1) :] if span > 1 else ""
    total = copied = 0
    for text, hashes in zip(samples, sample_hashes):
        covered = np.zeros(len(text), bool)
        for i in np.flatnonzero(np.isin(hashes, found)):
            covered[i : i + span] = True
        total += len(text)
        copied += int(covered.sum())
    return copied / total if total else 0.0


@dataclass
class Evaluation:
    """What `textgen evaluate` reports (`to_dict` is its --json output)."""

    loss: float
    tokens: int
    characters_per_token: float  # of the scored text: bpc = loss / ln 2 / this
    text: str  # what was scored
    samples: int = 0
    sample_tokens: int = 0
    distinct: dict[str, float] = field(default_factory=dict)
    copy_rate: float | None = None
    # An item run's samples are items: the share not in the training items, and lengths
    # (characters; mean and median) of sampled vs training items.
    novelty: float | None = None
    item_lengths: dict[str, float] = field(default_factory=dict)
    # A labelled item run: validation items' loss (nats per token of the item's text and
    # end) given their label and given none (textgen.data.items)
    label_loss: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        values = asdict(self)
        values.update(loss_figures(self.loss, self.characters_per_token) if self.tokens else {})
        return values

    def rows(self, seed: int) -> list[tuple[str, str]]:
        """The figures as (name, value) lines, as `textgen evaluate` prints them."""
        figures = loss_figures(self.loss, self.characters_per_token)
        rows = [
            ("text", self.text),
            ("tokens", f"{self.tokens:,} ({self.characters_per_token:.2f} characters a token)"),
            (
                "loss",
                f"{self.loss:.4f} nats/token (bits/char {figures['bpc']:.3f}, "
                f"perplexity {figures['perplexity']:.2f})",
            ),
        ]
        if self.samples:
            rows += [
                ("samples", f"{self.samples} x {self.sample_tokens} tokens, seed {seed}"),
                ("distinct-1..4", " ".join(f"{v:.3f}" for v in self.distinct.values())),
                (
                    "copy rate",
                    f"{self.copy_rate:.1%} of sampled characters are in spans of "
                    f"{COPY_SPAN}+ characters found verbatim in the training text",
                ),
            ]
        if self.novelty is not None:
            n = self.item_lengths
            rows += [
                ("novelty", f"{self.novelty:.1%} of sampled items are not training items"),
                (
                    "item length",
                    f"sampled {n['sampled_mean']:.1f} mean / {n['sampled_median']:.0f} median "
                    f"characters; training {n['training_mean']:.1f} / "
                    f"{n['training_median']:.0f}",
                ),
            ]
        if self.label_loss:
            rows.append(
                (
                    "label loss",
                    f"validation items {self.label_loss['with_label']:.4f} nats/token given "
                    f"their label, {self.label_loss['without_label']:.4f} without",
                )
            )
        return rows


def evaluate_run(
    run,
    sources: Sequence[str] | None = None,
    samples: int = 8,
    sample_tokens: int = 300,
    seed: int = 0,
    sampling: dict | None = None,
) -> Evaluation:
    """Score a loaded `Run` on its validation text (or all of `sources`), and describe
    `samples` texts it generates (distinct-n, copy rate against its training text), drawn
    with the run's settings updated by `sampling` (`Run.generate`'s keywords)."""
    import dataclasses

    from textgen.core.errors import CorpusError
    from textgen.data.corpus import load_corpus
    from textgen.data.id_cache import encode_chunks
    from textgen.data.levels import level_of
    from textgen.model.sizes import state_sizes

    data = run.config.data
    corpus = load_corpus(data)
    if sources:
        scored = load_corpus(dataclasses.replace(data, sources=list(sources), val_fraction=0))
        chunks, what = scored.train_chunks, ", ".join(sources)
    else:
        chunks, what = corpus.validation_chunks, "the run's validation text"
    characters = sum(len(chunk) for chunk in chunks())
    described = f"{what} ({characters:,} characters)"
    if not any(chunk.strip() for chunk in chunks()):
        raise CorpusError(
            "there is no text to score: the run has no validation text; pass --corpus"
        )
    ids = encode_chunks(level_of(run.vocab), chunks())
    batch = run.config.train.batch_size
    carried = state_sizes(run.config.model) if run.config.train.stateful else None
    if carried:
        described += f", read as up to {batch} contiguous streams with the state carried"
    scorer = WindowLoss(run.model, data.seq_len, batch, jit_compile=run.xla, state_sizes=carried)
    loss, tokens = scorer(ids)
    result = Evaluation(loss, tokens, characters / max(len(ids), 1), described)
    if samples:
        settings = {"max_new_tokens": sample_tokens, "seed": seed, **(sampling or {})}
        texts = run.generate([""] * samples, **settings)
        level = level_of(run.vocab)
        split = [level.tokens_of(text) for text in texts]
        result.samples, result.sample_tokens = samples, sample_tokens
        result.distinct = {f"distinct_{n}": round(distinct_n(split, n), 4) for n in (1, 2, 3, 4)}
        result.copy_rate = copy_rate(texts, corpus.train_chunks())
        if run.items:
            _describe_items(result, run, corpus, texts)
    if run.labels and not sources:
        result.label_loss = label_loss(run, parse_items(corpus.validation, run.labels))
    return result


def _describe_items(result: Evaluation, run, corpus, texts: list[str]) -> None:
    training = [item.text for item in parse_items(corpus.train, run.labels)]
    result.novelty, result.item_lengths = item_figures(texts, training)


def item_figures(samples: Sequence[str], training: Sequence[str]) -> tuple[float, dict]:
    """The share of `samples` that are not among the `training` items, and the lengths
    (characters) of both: mean and median."""
    known = set(training)
    novelty = sum(text not in known for text in samples) / max(len(samples), 1)
    figures = {}
    for name, texts in (("sampled", samples), ("training", training)):
        lengths = [len(text) for text in texts] or [0]
        figures[f"{name}_mean"] = float(np.mean(lengths))
        figures[f"{name}_median"] = float(np.median(lengths))
    return novelty, figures


def label_loss(run, items) -> dict[str, float]:
    """Mean NLL per token of labelled `items`' text and end marker, read after the item
    start with their label and without: how much the label tells the model."""
    from textgen.data.items import ITEM_END, item_prefix

    labelled = [item for item in items if item.label is not None]
    figures = {}
    for name, with_label in (("with_label", True), ("without_label", False)):
        total = tokens = 0.0
        for start in range(0, len(labelled), 256):
            batch = labelled[start : start + 256]
            prefixes = [item_prefix(run.labels, i.label if with_label else None) for i in batch]
            whole = run.score([p + i.text + ITEM_END for p, i in zip(prefixes, batch)])
            head = run.score(prefixes)
            total += sum(m * c for m, c in whole) - sum(m * c for m, c in head)
            tokens += sum(c for _, c in whole) - sum(c for _, c in head)
        figures[name] = total / tokens if tokens else math.nan
    return figures
