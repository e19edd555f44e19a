"""Label token vs a label embedding fed at every step: which conditions items better?

    python scripts/experiments/label_conditioning.py [--steps 1500] [--out /tmp/textgen-labels]

textgen conditions an item on its label with one token after the item's start marker
(textgen.data.items). The alternative many conditional RNNs use: a learned label embedding
concatenated to the input at every step, so the label cannot fade over a long item. Both
are trained here the same way on the labelled corpus of `items_experiment.py` (verse vs
docstring lines; same vocabulary, windows, model, optimizer, steps and seed):

- token: the text as textgen writes it (the label token starts each labelled item);
- token + embedding: the same text, plus each token's item label as a second input,
  embedded (16 dimensions) and concatenated to the token embedding at every step;
- token, windows at item starts: as the first, but every training window starts at an
  item's start marker instead of anywhere (does seeing each window's label help?).

Reported: the held-out items' loss (nats per character of the item's text and end marker,
after the start marker and the label), and the same with no label given (label token
left out; embedding input 0, "no label", which training also saw for one item in five).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from items_experiment import stdlib_names_and_docstrings, write_labelled_corpus

from textgen.core.config import DataConfig
from textgen.data.corpus import load_corpus
from textgen.data.items import ITEM_END, ITEM_START, item_prefix, parse_items
from textgen.data.tokenizers import Tokenizer, build_vocabulary

SEQ, BATCH = 64, 64


def token_labels(ids, start_id: int, end_id: int, label_ids: dict[int, int]) -> np.ndarray:
    """Each token's item label (1-based; 0: none or outside an item)."""
    labels = np.zeros(len(ids), np.int32)
    current = 0
    for position, token in enumerate(ids):
        if token == start_id:
            following = ids[position + 1] if position + 1 < len(ids) else -1
            current = label_ids.get(int(following), 0)
        labels[position] = current
        if token == end_id:
            current = 0
    return labels


def labelled_ids(corpus_file: Path, out: Path):
    """A labelled JSONL corpus read as textgen reads it: the corpus, a character tokenizer
    of its training text, that text's ids and each id's item label (`token_labels`)."""
    data = DataConfig(sources=[str(corpus_file)], label_field="label", data_dir=str(out))
    corpus = load_corpus(data)
    run_labels = list(corpus.labels)
    vocab = build_vocabulary(corpus.train, "char")
    tokenizer = Tokenizer(vocab)
    ids = tokenizer.encode_text(corpus.train).astype(np.int32)
    label_of_token = {vocab.tokens.index(item_prefix(run_labels, n)[1]) + 1: i + 1
                      for i, n in enumerate(run_labels)}  # fmt: skip
    start_id, end_id = (vocab.tokens.index(m) + 1 for m in (ITEM_START, ITEM_END))
    return corpus, tokenizer, ids, token_labels(ids, start_id, end_id, label_of_token)


def build(vocab_size: int, labels: int, embed_label: bool) -> keras.Model:
    ids = keras.Input((None,), dtype="int32")
    label = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(vocab_size, 64)(ids)
    if embed_label:
        x = keras.layers.Concatenate()([x, keras.layers.Embedding(labels + 1, 16)(label)])
    x = keras.layers.GRU(192, return_sequences=True)(x)
    x = keras.layers.GRU(192, return_sequences=True)(x)
    model = keras.Model([ids, label], keras.layers.Dense(vocab_size)(x))
    model.compile(
        keras.optimizers.Adam(3e-3, clipnorm=1.0),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def windows(ids, labels, steps, seed, item_starts=None):
    """Random windows (starting anywhere, or at one of `item_starts`)."""
    rng = np.random.default_rng(seed)
    if item_starts is None:
        starts = rng.integers(0, len(ids) - SEQ - 1, size=(steps, BATCH))
    else:
        usable = item_starts[item_starts < len(ids) - SEQ - 1]
        starts = usable[rng.integers(0, len(usable), size=(steps, BATCH))]
    for row in starts:
        index = row[:, None] + np.arange(SEQ + 1)[None, :]
        yield (ids[index[:, :-1]], labels[index[:, :-1]]), ids[index[:, 1:]]


def item_loss(model, tokenizer, run_labels, items, give_label: bool) -> float:
    """Mean NLL per token of each item's text + end marker, after its prefix."""
    total = count = 0.0
    label_ids = {name: i + 1 for i, name in enumerate(run_labels)}
    for start in range(0, len(items), 256):
        batch = items[start : start + 256]
        rows, label_rows, spans = [], [], []
        for item in batch:
            prefix = item_prefix(run_labels, item.label if give_label else None)
            head = [tokenizer.vocab.start_id, *tokenizer.encode_text(prefix)]
            body = list(tokenizer.encode_text(item.text + ITEM_END))
            rows.append(head + body)
            label_rows.append([label_ids[item.label] if give_label else 0] * len(rows[-1]))
            spans.append((len(head), len(head) + len(body)))
        width = max(len(r) for r in rows)
        ids = np.array([r + [0] * (width - len(r)) for r in rows], np.int32)
        labels = np.array([r + [0] * (width - len(r)) for r in label_rows], np.int32)
        logits = model.predict([ids, labels], verbose=0)
        nll = tf.nn.sparse_softmax_cross_entropy_with_logits(ids[:, 1:], logits[:, :-1]).numpy()
        for row, (first, end) in enumerate(spans):  # targets first..end-1 (position - 1)
            total += nll[row, first - 1 : end - 1].sum()
            count += end - first
    return total / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--out", default="/tmp/textgen-labels")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    _, docstrings = stdlib_names_and_docstrings()
    corpus_file = out / "labelled.jsonl"
    verse = write_labelled_corpus(corpus_file, docstrings)
    corpus, tokenizer, ids, labels = labelled_ids(corpus_file, out)
    run_labels = list(corpus.labels)
    start_id = tokenizer.vocab.tokens.index(ITEM_START) + 1
    held_out = [i for i in parse_items(corpus.validation, run_labels) if i.label]
    print(f"{2 * len(verse):,} items, {len(held_out):,} held out; {args.steps} steps of "
          f"{BATCH} x {SEQ}, 2 x GRU(192), same seed for both")  # fmt: skip
    print("| conditioning | held-out loss given the label | with no label |")
    print("|---|---:|---:|")
    item_starts = np.flatnonzero(ids == start_id)
    variants = (
        ("label token", False, None),
        ("label token + embedding every step", True, None),
        ("label token, windows at item starts", False, item_starts),
    )
    for name, embed, aligned in variants:
        keras.utils.set_random_seed(0)
        model = build(tokenizer.vocab.size, len(run_labels), embed)
        started = time.perf_counter()
        for inputs, targets in windows(ids, labels, args.steps, 1, aligned):
            model.train_on_batch(list(inputs), targets)
        seconds = time.perf_counter() - started
        given = item_loss(model, tokenizer, run_labels, held_out, True)
        none = item_loss(model, tokenizer, run_labels, held_out, False)
        print(f"| {name} | {given:.4f} | {none:.4f} |  ({seconds:.0f} s)")


if __name__ == "__main__":
    main()
