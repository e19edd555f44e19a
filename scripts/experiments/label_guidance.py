"""Label guidance measured: does a sample asked for label X read as X?

    python scripts/experiments/label_guidance.py [--steps 400 1500] [--samples 60] \
        [--out /tmp/textgen-guidance]
        [--label token memory] [--contrast 0 0.05] [--seeds 0 1 2] [--strengths 1 2]

Two labelled corpora made on this machine, two kinds of one-line items each, 2,500 of
each kind, not told apart by their first character:

- code / licence: lines of Python's standard library source (not comments) and lines of
  the licences on this machine (/usr/share/common-licenses, packages' LICENSE files);
- docstring / comment: first lines of the standard library's docstrings and the text of
  its comments (the "#" taken off).

For each corpus, each training length (`--steps`) and each way of giving the label
(`--label`: `token`, the label's token at the item's start only, `--no-label-input`;
`memory`, also the label at every step, textgen's default: textgen.model.label_memory),
each label contrast weight (`--contrast`, memory runs: textgen.training.label_contrast)
and each training seed a 2 x 128 GRU is trained (`--label-field label`, as `textgen
train` does it). A naive Bayes classifier over character 1-3-grams, trained on the
training items, is scored on the held-out items (its accuracy), then on `--samples`
samples per label at temperature 0.7 drawn with each label strength (1: no guidance):
the share it reads as the label asked for, and that share over its held-out accuracy;
novelty (samples not among the training items) and distinct-2 (distinct character
bigrams over all bigrams of the samples, against strength 1's). Samples are drawn by the
NumPy sampler (the reference loop). Last, tokens/s with guidance against without, one
row at a time.
"""

from __future__ import annotations

import argparse
import ast
import functools
import json
import random
import sysconfig
import time
from pathlib import Path

from items_experiment import label_classifier, stdlib_names_and_docstrings

import textgen
from textgen.core.config import RunConfig
from textgen.data.corpus import load_corpus
from textgen.data.items import parse_items
from textgen.generate.generator import Generator
from textgen.generate.settings import SamplingSettings
from textgen.runs.numpy_run import NumpyRun

STRENGTHS = (1.0, 1.5, 2.0, 3.0)
PER_KIND = 2500


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if 20 <= len(line.strip()) <= 80]


def code_and_comments() -> tuple[list[str], list[str]]:
    code, comments = [], []
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).rglob("*.py")):
        if "test" in path.parts or "site-packages" in path.parts:
            continue
        try:
            source = path.read_text(encoding="utf-8")
            ast.parse(source)
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for line in _lines(source):
            if line.startswith("#"):
                text = line.lstrip("#").strip()
                if len(text) >= 20 and text[0].isalpha():
                    comments.append(text)
            elif not line.startswith(('"', "'")) and line.isascii():
                code.append(line)
    return code, comments


def licence_lines() -> list[str]:
    paths = sorted(Path("/usr/share/common-licenses").glob("*"))
    paths += sorted(Path(sysconfig.get_paths()["purelib"]).glob("*.dist-info/LICEN[CS]E*"))
    lines = set()
    for path in paths:
        if path.is_file():
            lines.update(line for line in _lines(path.read_text(errors="ignore")) if line.isascii())
    return sorted(lines)


def corpus(path: Path, kinds: dict[str, list[str]]) -> Path:
    rng = random.Random(0)
    rows = []
    for label, texts in kinds.items():
        texts = sorted(set(texts))
        rng.shuffle(texts)
        rows += [{"text": t, "label": label} for t in texts[:PER_KIND]]
    rng.shuffle(rows)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def corpora(out: Path) -> list[Path]:
    """The two labelled corpora, written under `out`: code / licence, docstring / comment."""
    code, comments = code_and_comments()
    _, docstrings = stdlib_names_and_docstrings()
    return [
        corpus(out / "code-licence.jsonl", {"code": code, "licence": licence_lines()}),
        corpus(out / "docstring-comment.jsonl", {"docstring": docstrings, "comment": comments}),
    ]


def train(
    corpus_file: Path, out: Path, steps: int, label: str, seed: int = 0, contrast: float = 0.05
) -> textgen.Run:
    config = RunConfig().with_overrides(
        data={"sources": [str(corpus_file)], "label_field": "label", "seq_len": 64,
              "data_dir": str(out / "data")},
        model={"cell": "gru", "layers": 2, "units": 128, "label_input": label == "memory"},
        train={"epochs": 1, "steps_per_epoch": steps, "batch_size": 64, "sample_length": 0,
               "seed": seed, "label_contrast": contrast if label == "memory" else 0.0},
    )  # fmt: skip
    started = time.perf_counter()
    name = f"{corpus_file.stem}-{steps}-{label}-contrast{contrast:g}" + (
        f"-seed{seed}" if seed else ""
    )
    run_dir = textgen.train(config, run_dir=out / name,
                            log=lambda _: None, verbose=0)  # fmt: skip
    seconds = time.perf_counter() - started
    print(f"\n### {corpus_file.stem}, {steps} steps, label {label}, contrast {contrast:g}, "
          f"seed {seed} ({seconds:.0f} s)")  # fmt: skip
    run = textgen.load_run(run_dir, xla=False)
    print(f"validation loss {run.folder.read_log()[-1]['val_loss']:.4f}")
    return run


def distinct_2(texts: list[str]) -> float:
    grams = [t[i : i + 2] for t in texts for i in range(len(t) - 1)]
    return len(set(grams)) / max(len(grams), 1)


def recalls(run: textgen.Run, classifier) -> dict[str, float]:
    """Per label, the share of its held-out real items the classifier reads as it."""
    corpus = load_corpus(run.config.data)
    held_out = [i for i in parse_items(corpus.validation, run.labels) if i.label]
    return {
        label: sum(classifier.classify(i.text) == label for i in held_out if i.label == label)
        / max(sum(i.label == label for i in held_out), 1)
        for label in run.labels
    }


def read_as(classifier, accuracy: float, known: set[str], by_label: dict[str, list[str]],
            recall: dict[str, float]):  # fmt: skip
    """Per label, the share of its samples the classifier reads as it, over the
    classifier's held-out accuracy (and over its recall of that label's real items), as
    table cells; novelty and distinct-2 of them all."""
    cells, texts_all = [], []
    for label, texts in by_label.items():
        share = sum(classifier.classify(t) == label for t in texts) / len(texts)
        cells.append(f"{share:.0%} ({share / accuracy:.2f}; {share / recall[label]:.2f})")
        texts_all += texts
    novelty = sum(t not in known for t in texts_all) / len(texts_all)
    return cells, novelty, distinct_2(texts_all)


def measure(run: textgen.Run, samples: int, strengths=STRENGTHS) -> None:
    classifier, accuracy, known = label_classifier(run)
    sampler = NumpyRun(run.folder)
    recall = recalls(run, classifier)
    print(
        f"classifier on held-out items: {accuracy:.1%}; by label "
        + ", ".join(f"{label} {share:.1%}" for label, share in recall.items())
    )
    heads = [f"read as {x} (/ held-out; / its recall)" for x in run.labels]
    print("| strength | " + " | ".join(heads) + " | novelty | distinct-2 vs 1 |")
    print("|---:|" + "---:|" * (len(run.labels) + 2))
    base = None
    for strength in strengths:
        by_label = {
            label: sampler.generate([""] * samples, max_new_tokens=120, temperature=0.7,
                                    seed=0, label=label, label_strength=strength)
            for label in run.labels
        }  # fmt: skip
        cells, novelty, d2 = read_as(classifier, accuracy, known, by_label, recall)
        base = base or d2
        print(f"| {strength:g} | " + " | ".join(cells) + f" | {novelty:.0%} | {d2 / base:.2f} |")
        if strength in (1.0, strengths[-1]):
            for label in run.labels:
                (text,) = sampler.generate([""], max_new_tokens=120, temperature=0.7, seed=1,
                                           label=label, label_strength=strength)  # fmt: skip
                print(f"    {strength:g} {label}: {text!r}")


def speed(run: textgen.Run) -> None:
    sampler = NumpyRun(run.folder)
    label = run.labels[0]
    rates = {}
    for strength in (1.0, 2.0, 1.0, 2.0):
        started = time.perf_counter()
        texts = sampler.generate([""] * 20, max_new_tokens=200, temperature=0.7, seed=0,
                                 label=label, label_strength=strength)  # fmt: skip
        tokens = sum(len(t) + 1 for t in texts)
        rates.setdefault(strength, []).append(tokens / (time.perf_counter() - started))
    plain, guided = max(rates[1.0]), max(rates[2.0])
    print(
        f"NumPy, one row: {plain:,.0f} tokens/s plain, {guided:,.0f} guided ({guided / plain:.2f}x)"
    )
    # The TensorFlow generator (no XLA, no stop strings: every row draws 200 tokens).
    generator = Generator(run.model, run.vocab, defaults=run.config.sample, jit_compile=False)
    for batch in (1, 64):
        settings = SamplingSettings(max_new_tokens=200, temperature=0.7, label=label)
        read = settings.prompts_to_read([""] * batch, True, run.labels)
        unlabelled = settings.unlabelled([""] * batch, run.labels)
        calls = {
            s: functools.partial(
                generator.generate, read, settings, unlabelled=unlabelled, label_strength=s
            )
            for s in (1.0, 2.0)
        }
        for call in calls.values():
            call()
        seconds = {s: [] for s in calls}
        for _ in range(3):
            for s, call in calls.items():
                started = time.perf_counter()
                call()
                seconds[s].append(time.perf_counter() - started)
        plain, guided = (batch * 200 / min(seconds[s]) for s in (1.0, 2.0))
        print(f"TensorFlow, batch {batch}: {plain:,.0f} tokens/s plain, {guided:,.0f} guided "
              f"({guided / plain:.2f}x)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[400, 1500])
    parser.add_argument("--samples", type=int, default=60)
    parser.add_argument("--out", default="/tmp/textgen-guidance")
    parser.add_argument("--label", nargs="+", choices=("token", "memory"),
                        default=["token", "memory"])  # fmt: skip
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds")
    parser.add_argument("--corpora", nargs="+", choices=("code-licence", "docstring-comment"),
                        default=["code-licence", "docstring-comment"])  # fmt: skip
    parser.add_argument("--strengths", type=float, nargs="+", default=list(STRENGTHS))
    parser.add_argument("--contrast", type=float, nargs="+", default=[0.05],
                        help="label contrast weights (memory runs; 0: none)")  # fmt: skip
    parser.add_argument("--no-speed", action="store_true", help="skip the speed measurement")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for corpus_file in corpora(out):
        if corpus_file.stem not in args.corpora:
            continue
        for steps in args.steps:
            for label in args.label:
                for contrast in args.contrast if label == "memory" else [0.0]:
                    for seed in args.seeds:
                        run = train(corpus_file, out, steps, label, seed, contrast)
                        measure(run, args.samples, args.strengths)
        if not args.no_speed:
            speed(run)


if __name__ == "__main__":
    main()
