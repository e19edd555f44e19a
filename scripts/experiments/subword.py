"""Char against subword runs (issue #46), one part of the grid per call:

    python scripts/experiments/subword.py CORPUS --minutes 2 --levels char,1000,2000 \
        --out docs/data/subword.jsonl [--root /tmp/subword-runs]

Each level ("char", or a subword vocabulary size) trains `--preset`'s model (default
quick: 2 x GRU(128), the same size for every level; `--set section.key=JSON` changes a
setting) on CORPUS (its last 10% held out) for
`--minutes`, then measures what issue #46 asks, appending a JSON line per run to `--out`:
held-out bits per character (`evaluate`), generation characters/s at batch 1 (the
in-process graph generator and the NumPy loop, median of 3 after a warm-up), the share of
sampled words (temperature 0.8, 20 samples of about 600 characters, seed 0, the last word
of each sample left out as it may be cut) that occur in the training text, and two
samples. `CORPUS` "pydoc" writes Python's own reference docs (pydoc topics) to a file.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from pathlib import Path

import textgen
from textgen.data.corpus import load_corpus
from textgen.evaluate.evaluation import evaluate_run
from textgen.runs.folder import RunFolder
from textgen.runs.numpy_run import NumpyRun

WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")


def corpus_path(name: str, root: Path) -> Path:
    if name != "pydoc":
        return Path(name)
    from pydoc_data.topics import topics

    path = root / "pydoc_topics.txt"
    path.write_text("\n\n".join(topics[key] for key in sorted(topics)), encoding="utf-8")
    return path


def train(
    corpus: Path, level: str, minutes: float, root: Path, extra: dict, preset: str = "quick"
) -> Path:
    """`preset`'s run of `level` for `minutes`, with `extra` settings by section."""
    data = {"sources": [str(corpus)], "val_fraction": 0.1}
    if level != "char":
        data.update(level="subword", max_vocab=int(level))
    sections = {"data": data, "train": {"minutes": minutes, "sample_length": 0}, "model": {}}
    for name, value in extra.items():
        section, key = name.split(".")
        sections[section][key] = value
    config = textgen.RunConfig.from_preset(preset).with_overrides(**sections)
    tag = "".join(f"-{k.split('.')[1]}{v}" for k, v in extra.items()) + f"-{preset}"
    return textgen.train(config, run_dir=root / f"{corpus.stem}-{level}-{minutes:g}min{tag}",
                         log=lambda _: None, verbose=0)  # fmt: skip


def characters_per_second(generate, rounds: int = 3) -> float:
    generate()  # warm-up (traces the graph)
    times, sizes = [], []
    for _ in range(rounds):
        started = time.perf_counter()
        sizes.append(len(generate()))
        times.append(time.perf_counter() - started)
    return statistics.median(sizes) / statistics.median(times)


def real_word_share(samples: list[str], known: set[str]) -> tuple[float, int]:
    words = [w for sample in samples for w in WORD.findall(sample)[:-1]]
    return sum(w in known for w in words) / max(len(words), 1), len(words)


def measure(run_dir: Path, level: str, minutes: float, corpus: Path, extra: dict) -> dict:
    run = textgen.load_run(run_dir)
    evaluation = evaluate_run(run, samples=0)
    per_token = evaluation.characters_per_token
    tokens = max(int(600 / per_token), 1)
    numpy_run = NumpyRun(RunFolder(run_dir))
    settings = {"max_new_tokens": tokens, "temperature": 0.8, "seed": 0}
    samples = numpy_run.generate([""] * 20, **settings)
    known = set(WORD.findall(load_corpus(run.config.data).train))
    share, words = real_word_share(samples, known)
    speed_tokens = max(int(1200 / per_token), 1)

    def in_graph():
        return run.generate([""], max_new_tokens=speed_tokens, temperature=0.8, seed=1)[0]

    def in_numpy():
        return numpy_run.generate([""], max_new_tokens=speed_tokens, temperature=0.8, seed=1)[0]

    log = RunFolder(run_dir).read_log()
    return {
        "corpus": corpus.name,
        "level": level,
        "minutes": minutes,
        "settings": extra,
        "vocab": run.vocab.size,
        "characters_per_token": round(per_token, 3),
        "bpc": round(evaluation.to_dict()["bpc"], 4),
        "val_loss_nats_per_token": round(evaluation.loss, 4),
        "steps": log[-1]["step"] if log else 0,
        "train_tokens_per_s": round(
            sum(r["tokens_per_sec"] * r["seconds"] for r in log) / sum(r["seconds"] for r in log)
        ),
        "graph_chars_per_s": round(characters_per_second(in_graph)),
        "numpy_chars_per_s": round(characters_per_second(in_numpy)),
        "real_words": round(share, 4),
        "sampled_words": words,
        "samples": samples[:2],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus")
    parser.add_argument("--minutes", type=float, required=True)
    parser.add_argument("--levels", default="char,1000,2000")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--root", type=Path, default=Path("/tmp/subword-runs"))
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=JSON",
                        help="a setting beside the preset's, e.g. model.dropout=0.3")
    args = parser.parse_args()
    args.root.mkdir(parents=True, exist_ok=True)
    corpus = corpus_path(args.corpus, args.root)
    extra = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}
    for level in args.levels.split(","):
        run_dir = train(corpus, level, args.minutes, args.root, extra, args.preset)
        row = measure(run_dir, level, args.minutes, corpus, {**extra, "preset": args.preset})
        print(json.dumps({k: v for k, v in row.items() if k != "samples"}), flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "a", encoding="utf-8") as f:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
