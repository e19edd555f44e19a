"""Repetition controls measured: what they do to samples, and what they cost in speed.

    python scripts/experiments/sampling_controls.py RUN_DIR [RUN_DIR ...] [--samples 16] \
        [--length 300]

For each run and each setting (off; repetition penalty 1.2 and 1.5 over the default
window; no-repeat n-gram 3; copy guard of 20 characters): `--samples` samples of
`--length` tokens from an empty prompt at the run's temperature, seed 0, and their
distinct-1..4, copy rate (share of characters in 20+ character spans found in the
training text) and perplexity under the model itself (exp of the mean NLL per token of
the generated text; lower: more predictable text). Then generation tokens/s at batch 1
with each setting against off, timed in turns (median of rounds): in process (XLA, as
`textgen sample`) and through the default export (no XLA, as a stock TF Serving runs it).
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time

import tensorflow as tf

import textgen
from textgen.data.corpus import load_corpus
from textgen.data.tokenizers import split_tokens, string_tensor
from textgen.evaluate.evaluation import copy_rate, distinct_n
from textgen.export.saved_model import ServingModule
from textgen.generate.loop import UNROLL

SETTINGS = {
    "off": {},
    "penalty 1.2": {"repetition_penalty": 1.2},
    "penalty 1.5": {"repetition_penalty": 1.5},
    "no-repeat 3-gram": {"no_repeat_ngram": 3},
    "max-copy 20": {"max_copy": 20},
}


def quality(run, settings: dict, samples: int, length: int) -> dict:
    texts = run.generate([""] * samples, max_new_tokens=length, seed=0, **settings)
    level = run.config.data.level
    tokens = [
        [t.decode("utf-8") for t in split_tokens(string_tensor(text), level, False).numpy()]
        for text in texts
    ]
    scores = run.score(texts)
    nll = sum(mean * count for mean, count in scores) / max(sum(c for _, c in scores), 1)
    train_text = load_corpus(run.config.data).train_chunks()
    return {
        "distinct": [distinct_n(tokens, n) for n in (1, 2, 3, 4)],
        "copy": copy_rate(texts, train_text),
        "perplexity": math.exp(nll),
        "example": texts[0],
    }


def exported_generate(run, directory: str, max_copy: int = 0):
    generator = run.generator_for(
        run.config.sample.stop, jit_compile=False, max_copy=max_copy, unroll=UNROLL
    )  # as `textgen export` builds it
    module = ServingModule(generator)
    tf.saved_model.save(module, directory, signatures={"g": module.generate_controlled})
    signature = tf.saved_model.load(directory).signatures["g"]

    def generate(length: int, settings: dict) -> None:
        signature(
            prompt=tf.constant([""]),
            max_new_tokens=tf.constant([length]),
            temperature=tf.constant([run.config.sample.temperature]),
            top_k=tf.constant([0]),
            top_p=tf.constant([1.0]),
            seed=tf.constant([1], tf.int64),
            repetition_penalty=tf.constant([settings.get("repetition_penalty", 1.0)]),
            repetition_window=tf.constant([64]),
            no_repeat_ngram=tf.constant([settings.get("no_repeat_ngram", 0)]),
        )

    return generate


def speeds(run, length: int, rounds: int) -> dict[str, tuple[float, float]]:
    """tokens/s at batch 1 per setting: (in process with XLA, default export)."""
    with tempfile.TemporaryDirectory() as tmp:
        exports = {  # the copy guard is built into an export
            name: exported_generate(run, f"{tmp}/{name}", settings.get("max_copy", 0))
            for name, settings in SETTINGS.items()
        }
        timings: dict[str, list[tuple[float, float]]] = {name: [] for name in SETTINGS}
        for name, settings in SETTINGS.items():  # compile every variant first
            run.generate([""], max_new_tokens=8, seed=1, **settings)
            exports[name](8, settings)
        for _ in range(rounds):
            for name, settings in SETTINGS.items():
                started = time.perf_counter()
                run.generate([""], max_new_tokens=length, seed=1, **settings)
                middle = time.perf_counter()
                exports[name](length, settings)
                done = time.perf_counter()
                timings[name].append((length / (middle - started), length / (done - middle)))
    return {
        name: tuple(statistics.median(t[i] for t in values) for i in (0, 1))
        for name, values in timings.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--length", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    for run_dir in args.runs:
        run = textgen.load_run(run_dir)
        level = run.config.data.level
        print(f"\n{run_dir} ({level} level, temperature {run.config.sample.temperature}):")
        print(
            "| setting | distinct-1..4 | copy rate | self-perplexity "
            "| tokens/s in process | tokens/s export |"
        )
        print("|---|---|---:|---:|---:|---:|")
        rates = speeds(run, args.length, args.rounds)
        base = rates["off"]
        examples = {}
        for name, settings in SETTINGS.items():
            q = quality(run, settings, args.samples, args.length)
            examples[name] = q["example"]
            distinct = " / ".join(f"{d:.3f}" for d in q["distinct"])
            fast, served = rates[name]
            print(
                f"| {name} | {distinct} | {q['copy']:.1%} | {q['perplexity']:.2f} "
                f"| {fast:,.0f} ({fast / base[0]:.2f}x) | {served:,.0f} ({served / base[1]:.2f}x) |"
            )
        for name, text in examples.items():
            print(f"\n--- {name}, first sample ---\n{text[:400]}")


if __name__ == "__main__":
    main()
