"""Held-out loss of runs scored alike: windows of the same lengths for every run.

    python scripts/experiments/window_eval.py RUN [RUN ...] [--windows 100 200 400]

A run's validation loss (and `textgen evaluate`) reads the held-out text in windows of
the run's own `seq_len`, each from a zero state, so the first tokens of every window are
guessed with little context. Runs trained with different window lengths are compared
here on the same windows: each run's best weights, its validation text, windows of each
given length (the mean loss over all tokens of all windows, nats per token).
"""

from __future__ import annotations

import argparse

import textgen
from textgen.data.corpus import load_corpus
from textgen.data.id_cache import encode_chunks
from textgen.data.levels import level_of
from textgen.model.window_loss import WindowLoss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--windows", type=int, nargs="+", default=[100, 200, 400])
    args = parser.parse_args()
    print("| run | trained with | " + " | ".join(f"windows of {n}" for n in args.windows) + " |")
    print("|---|---|" + "---:|" * len(args.windows))
    for path in args.runs:
        run = textgen.load_run(path)
        corpus = load_corpus(run.config.data)
        ids = encode_chunks(level_of(run.vocab), corpus.validation_chunks())
        cells = [f"{WindowLoss(run.model, n, 32)(ids)[0]:.4f}" for n in args.windows]
        data, train = run.config.data, run.config.train
        trained = f"seq_len {data.seq_len}, batch {train.batch_size}"
        print(f"| {run.folder.path.name} | {trained} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
