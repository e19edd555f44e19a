"""The label as an input at every step, measured by what the samples read as.

    python scripts/experiments/label_input.py [--steps 400] [--samples 60] \
        [--out /tmp/textgen-label-input]

docs/experiments.md measured a label embedding fed at every step only by held-out loss.
Here it is measured as label guidance was (`label_guidance.py`, same corpora, classifier,
model size and sampling temperature): does a sample asked for label X read as X?

Both models are the same Keras network (embedding, 2 x GRU(128), logits; Adam 3e-3,
batch 64 x 64, the same windows and seed), trained on the same text, in which every
labelled item starts with its label token (textgen's way; one item in five has none):

- token: the token ids only;
- token + embedding: each token's item label (0: none) as a second input, embedded (16
  dimensions) and concatenated to the token embedding at every step, so the label cannot
  fade.

Each is sampled with and without guidance at strength 2 (the twin: the item started with
no label token and, for the embedding model, label input 0). Reported per label: the share
of samples the classifier reads as that label, over its held-out accuracy; novelty;
distinct-2 against the token model without guidance.
"""

from __future__ import annotations

import argparse
import collections
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from items_experiment import NaiveBayes
from label_conditioning import labelled_ids
from label_guidance import corpora, read_as

from textgen.data.items import ITEM_END, ITEM_START, item_prefix, parse_items

SEQ, BATCH, UNITS = 64, 64, 128
LENGTH, TEMPERATURE, STRENGTH = 120, 0.7, 2.0


class Network:
    """Embedding (+ a label embedding), 2 x GRU(UNITS), logits: `model` to train over
    windows, `step` to sample one token at a time from the same layers."""

    def __init__(self, vocab_size: int, labels: int, embed_label: bool):
        self.embed = keras.layers.Embedding(vocab_size, 64)
        self.embed_label = keras.layers.Embedding(labels + 1, 16) if embed_label else None
        self.grus = [
            keras.layers.GRU(UNITS, return_sequences=True, return_state=True) for _ in range(2)
        ]
        self.logits = keras.layers.Dense(vocab_size)
        ids = keras.Input((None,), dtype="int32")
        label = keras.Input((None,), dtype="int32")
        out, _ = self._run(ids, label, [None, None])
        self.model = keras.Model([ids, label], out)
        self.model.compile(
            keras.optimizers.Adam(3e-3, clipnorm=1.0),
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        self.step = tf.function(lambda i, lab, st: self._run(i, lab, st))

    def _run(self, ids, label, states):
        x = self.embed(ids)
        if self.embed_label is not None:
            x = keras.layers.Concatenate()([x, self.embed_label(label)])
        new_states = []
        for gru, state in zip(self.grus, states):
            x, h = gru(x, initial_state=state) if state is not None else gru(x)
            new_states.append(h)
        return self.logits(x), new_states


def train(model, ids, labels, steps: int) -> float:
    rng = np.random.default_rng(1)
    started = time.perf_counter()
    for row in rng.integers(0, len(ids) - SEQ - 1, size=(steps, BATCH)):
        index = row[:, None] + np.arange(SEQ + 1)[None, :]
        model.train_on_batch([ids[index[:, :-1]], labels[index[:, :-1]]], ids[index[:, 1:]])
    return time.perf_counter() - started


def sample(net: Network, tokenizer, labels, label: str, guided: bool, count: int) -> list[str]:
    """`count` items of `label` at TEMPERATURE; with `guided`, each token from unlabelled +
    STRENGTH x (labelled - unlabelled), the twin read without the label (input 0)."""
    vocab = tokenizer.vocab
    label_index = labels.index(label) + 1
    end_id = vocab.tokens.index(ITEM_END) + 1
    prefixes = {
        label_index: [vocab.start_id, *tokenizer.encode_text(item_prefix(labels, label))],
        0: [vocab.start_id, *tokenizer.encode_text(ITEM_START)],
    }
    reads = {}  # per reading: its last logits and states
    for given in (label_index, 0) if guided else (label_index,):
        ids = np.tile(np.array(prefixes[given], np.int32), (count, 1))
        zero = [tf.zeros([count, UNITS])] * 2
        out, states = net.step(ids, np.full(ids.shape, given, np.int32), zero)
        reads[given] = (out[:, -1].numpy().astype(np.float64), states)
    rng = np.random.default_rng(0)
    drawn, done = [], np.zeros(count, bool)
    for _ in range(LENGTH):
        scores = reads[label_index][0]
        if guided:
            scores = reads[0][0] + STRENGTH * (scores - reads[0][0])
        scores = scores / TEMPERATURE
        scores[:, 0] = -np.inf  # never UNK
        token = np.argmax(scores + rng.gumbel(size=scores.shape), axis=1).astype(np.int32)
        token = np.where(done, end_id, token)
        drawn.append(token)
        done |= token == end_id
        if done.all():
            break
        for given, (_, states) in reads.items():
            out, states = net.step(token[:, None], np.full((count, 1), given, np.int32), states)
            reads[given] = (out[:, -1].numpy().astype(np.float64), states)
    return [
        "".join(vocab.tokens[i - 1] for i in row).split(ITEM_END)[0]
        for row in np.stack(drawn, axis=1)
    ]


def measure(corpus_file: Path, out: Path, steps: int, samples: int) -> None:
    text, tokenizer, ids, labels = labelled_ids(corpus_file, out)
    run_labels, vocab = list(text.labels), tokenizer.vocab
    training = parse_items(text.train, run_labels)
    by_label = collections.defaultdict(list)
    for item in training:
        if item.label:
            by_label[item.label].append(item.text)
    classifier = NaiveBayes(by_label)
    held_out = [i for i in parse_items(text.validation, run_labels) if i.label]
    accuracy = sum(classifier.classify(i.text) == i.label for i in held_out) / len(held_out)
    known = {item.text for item in training}
    print(f"\n### {corpus_file.stem}, {steps} steps; classifier on held-out items: {accuracy:.1%}")
    print("| model | guidance | " + " | ".join(f"read as {x} (/ held-out)" for x in run_labels)
          + " | novelty | distinct-2 vs token, none |")  # fmt: skip
    print("|---|---:|" + "---:|" * (len(run_labels) + 2))
    base = None
    for name, embed in (("token", False), ("token + embedding", True)):
        keras.utils.set_random_seed(0)
        net = Network(vocab.size, len(run_labels), embed)
        seconds = train(net.model, ids, labels, steps)
        for guided in (False, True):
            by_label = {
                label: sample(net, tokenizer, run_labels, label, guided, samples)
                for label in run_labels
            }
            cells, novelty, d2 = read_as(classifier, accuracy, known, by_label)
            base = base or d2
            strength = f"{STRENGTH:g}" if guided else "1"
            print(f"| {name} ({seconds:.0f} s) | {strength} | " + " | ".join(cells)
                  + f" | {novelty:.0%} | {d2 / base:.2f} |", flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--samples", type=int, default=60)
    parser.add_argument("--out", default="/tmp/textgen-label-input")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for corpus_file in reversed(corpora(out)):  # the hard pair first
        measure(corpus_file, out, args.steps, args.samples)


if __name__ == "__main__":
    main()
