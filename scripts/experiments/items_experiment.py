"""Items and labels measured: a names-style corpus and a labelled one, from text on this
machine (no downloads).

    python scripts/experiments/items_experiment.py [--steps 1500] [--out /tmp/textgen-items]

- names: the function and class names defined in Python's standard library (one per
  line, `--items lines`): novelty and lengths of 200 sampled names, a few samples.
- labelled: JSONL items of two kinds whose styles differ visibly: `verse` (lines of the
  built-in Shakespeare corpus) and `docstring` (first lines of the standard library's
  docstrings). Reported: held-out loss given the label vs without it; a naive Bayes
  classifier over character 1-3-grams, trained on the training items, scoring held-out
  items (its own accuracy) and 200 samples per label (how often a sample of label A is
  classified A; chance is 50%); novelty per label; a few samples per label.
"""

from __future__ import annotations

import argparse
import ast
import collections
import json
import math
import random
import sysconfig
import time
from pathlib import Path

import textgen
from textgen.core.config import RunConfig
from textgen.data.corpus import builtin_shakespeare, load_corpus
from textgen.data.items import parse_items
from textgen.evaluate.evaluation import evaluate_run


def stdlib_names_and_docstrings(limit: int = 6000) -> tuple[list[str], list[str]]:
    names, docs = set(), []
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).rglob("*.py")):
        if "test" in path.parts or "site-packages" in path.parts:
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                if not node.name.startswith("__"):
                    names.add(node.name)
                doc = ast.get_docstring(node)
                first = doc.strip().splitlines()[0].strip() if doc and doc.strip() else ""
                if 20 <= len(first) <= 80:
                    docs.append(first)
    rng = random.Random(0)
    docs = sorted(set(docs))
    rng.shuffle(docs)
    return sorted(names), docs[:limit]


def verse_lines(limit: int) -> list[str]:
    lines = [
        line.strip()
        for line in builtin_shakespeare("data").splitlines()
        if 20 <= len(line.strip()) <= 80 and not line.strip().endswith(":")
    ]
    rng = random.Random(1)
    rng.shuffle(lines)
    return lines[:limit]


def write_labelled_corpus(path: Path, docstrings: list[str]) -> list[str]:
    """The labelled corpus as JSONL: as many verse lines as docstrings, shuffled (seed 2).
    Returns the verse lines."""
    verse = verse_lines(len(docstrings))
    rows = [(t, "verse") for t in verse] + [(t, "docstring") for t in docstrings]
    random.Random(2).shuffle(rows)
    with open(path, "w", encoding="utf-8") as f:
        for text, label in rows:
            f.write(json.dumps({"text": text, "label": label}) + "\n")
    return verse


class NaiveBayes:
    """Multinomial naive Bayes over character 1-3-grams (add-one smoothing)."""

    def __init__(self, texts_by_label: dict[str, list[str]]):
        self.counts = {label: collections.Counter() for label in texts_by_label}
        for label, texts in texts_by_label.items():
            for text in texts:
                self.counts[label].update(self._grams(text))
        self.totals = {label: sum(c.values()) for label, c in self.counts.items()}
        self.vocab = len(set().union(*self.counts.values()))

    @staticmethod
    def _grams(text: str) -> list[str]:
        padded = f"^{text}$"
        return [padded[i : i + n] for n in (1, 2, 3) for i in range(len(padded) - n + 1)]

    def classify(self, text: str) -> str:
        def score(label):
            counts, total = self.counts[label], self.totals[label] + self.vocab
            return sum(math.log((counts[g] + 1) / total) for g in self._grams(text))

        return max(self.counts, key=score)


def label_classifier(run: textgen.Run) -> tuple[NaiveBayes, float, set[str]]:
    """A classifier of a labelled run's training items, its accuracy on the held-out
    items, and the training items' texts."""
    corpus = load_corpus(run.config.data)
    training = parse_items(corpus.train, run.labels)
    held_out = [i for i in parse_items(corpus.validation, run.labels) if i.label]
    by_label = collections.defaultdict(list)
    for item in training:
        if item.label:
            by_label[item.label].append(item.text)
    classifier = NaiveBayes(by_label)
    accuracy = sum(classifier.classify(i.text) == i.label for i in held_out) / len(held_out)
    return classifier, accuracy, {item.text for item in training}


def train(corpus: Path, out: Path, name: str, steps: int, **data) -> textgen.Run:
    config = RunConfig().with_overrides(
        data={"sources": [str(corpus)], "seq_len": 64, "data_dir": str(out / "data"), **data},
        model={"cell": "gru", "layers": 2, "units": 192, "embedding_dim": 32},
        train={"epochs": 1, "steps_per_epoch": steps, "batch_size": 64, "sample_length": 0},
    )
    started = time.perf_counter()
    run_dir = textgen.train(config, run_dir=out / name, log=lambda _: None, verbose=0)
    print(f"\n## {name}: trained {steps} steps in {time.perf_counter() - started:.0f} s")
    return textgen.load_run(run_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--out", default="/tmp/textgen-items")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names, docstrings = stdlib_names_and_docstrings()

    # -- names -----------------------------------------------------------------------
    names_file = out / "names.txt"
    names_file.write_text("\n".join(names) + "\n", encoding="utf-8")
    run = train(names_file, out, "names", args.steps, items="lines")
    result = evaluate_run(run, samples=args.samples, sample_tokens=60, seed=0)
    print(f"{len(names):,} names; validation loss {result.loss:.4f} nats/char")
    print(f"novelty {result.novelty:.1%} of {args.samples} sampled names")
    print(f"lengths {result.item_lengths}")
    print("samples:", ", ".join(run.generate([""] * 12, max_new_tokens=60, seed=3)))

    # -- labelled --------------------------------------------------------------------
    labelled_file = out / "labelled.jsonl"
    verse = write_labelled_corpus(labelled_file, docstrings)
    run = train(labelled_file, out, "labelled", args.steps, label_field="label")
    classifier, accuracy, known = label_classifier(run)
    result = evaluate_run(run, samples=0)
    print(f"{len(verse):,} verse + {len(docstrings):,} docstring items")
    print(
        f"held-out loss: {result.label_loss['with_label']:.4f} nats/char given the label, "
        f"{result.label_loss['without_label']:.4f} without"
    )
    print(f"classifier on held-out items: {accuracy:.1%}")
    print("| label | samples classified as the label | novelty | mean length |")
    print("|---|---:|---:|---:|")
    examples = {}
    for label in run.labels:
        texts = run.generate([""] * args.samples, max_new_tokens=120, seed=0, label=label)
        hits = sum(classifier.classify(t) == label for t in texts) / len(texts)
        novel = sum(t not in known for t in texts) / len(texts)
        mean = sum(len(t) for t in texts) / len(texts)
        print(f"| {label} | {hits:.1%} | {novel:.1%} | {mean:.1f} |")
        examples[label] = texts[:5]
    for label, texts in examples.items():
        print(f"\n{label}:\n" + "\n".join(f"  {t}" for t in texts))


if __name__ == "__main__":
    main()
