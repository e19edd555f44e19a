"""Excluded strings (`--exclude`, issue #48) measured: do they get through, and what do they
cost the text and the speed?

    python scripts/experiments/excluded_strings.py RUN_DIR [--samples 200] [--length 300]

Draws `--samples` samples of `--length` tokens from an empty prompt (temperature 0.8,
seed 0, NumPy backend), picks the `--strings` words (3+ letters) the most samples hold,
then draws the same samples with those excluded. Prints how many samples hold each word
before and after (after must be 0), the mean log-likelihood per token of the samples as
the run itself scores them (its `score`) before and after, their ratio, and generation
tokens/s at batch 1 with and without the exclusions (NumPy loop and the in-process
graph, median of rounds), with a few samples of each.
"""

from __future__ import annotations

import argparse
import collections
import re
import statistics
import time

import textgen
from textgen.generate.settings import SamplingSettings
from textgen.runs.numpy_run import NumpyRun


def mean_log_likelihood(run, texts: list[str]) -> float:
    """The mean log-likelihood per token of `texts`, the run's own score, token-weighted."""
    scored = run.score(texts)
    tokens = sum(count for _, count in scored)
    return -sum(nll * count for nll, count in scored) / tokens


def common_words(texts: list[str], count: int) -> list[str]:
    """The `count` words of 3+ letters that the most `texts` hold."""
    held = collections.Counter()
    for text in texts:
        held.update(set(re.findall(r"[A-Za-z]{3,}", text)))
    return [word for word, _ in held.most_common(count)]


def tokens_per_second(sampler, settings: SamplingSettings, rounds: int = 3) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        sampler.generate([""], settings)
        times.append(time.perf_counter() - started)
    return settings.max_new_tokens / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--length", type=int, default=300)
    parser.add_argument("--strings", type=int, default=3)
    args = parser.parse_args()
    run, numpy_run = textgen.load_run(args.run_dir, xla=False), NumpyRun(args.run_dir)
    free = SamplingSettings(max_new_tokens=args.length, temperature=0.8, seed=0)
    prompts = [""] * args.samples
    before = numpy_run.generate(prompts, free)
    words = common_words(before, args.strings)
    excluded = SamplingSettings.of(free, exclude=tuple(words))
    after = numpy_run.generate(prompts, excluded)
    print(f"run {args.run_dir}: {args.samples} samples of {args.length} tokens, temperature 0.8")
    for word in words:
        held = [sum(word in text for text in texts) for texts in (before, after)]
        print(f"  {word!r}: in {held[0]} samples free, {held[1]} with --exclude")
    free_ll, excluded_ll = mean_log_likelihood(run, before), mean_log_likelihood(run, after)
    print(f"  mean log-likelihood per token: free {free_ll:.4f}, excluded {excluded_ll:.4f}, "
          f"ratio {excluded_ll / free_ll:.3f}")  # fmt: skip
    print(f"  mean length (characters): free {statistics.mean(map(len, before)):.0f}, "
          f"excluded {statistics.mean(map(len, after)):.0f}")  # fmt: skip
    timed = SamplingSettings.of(free, max_new_tokens=400)
    for name, sampler in (("numpy", numpy_run), ("graph", run)):
        plain = tokens_per_second(sampler, timed)
        guarded = tokens_per_second(sampler, SamplingSettings.of(timed, exclude=tuple(words)))
        print(f"  {name} batch 1: {plain:.0f} tokens/s free, {guarded:.0f} excluded "
              f"({guarded / plain:.2f}x)")  # fmt: skip
    for label, texts in (("free", before), ("excluded", after)):
        print(f"--- {label} samples ---")
        for text in texts[:2]:
            print(text[:300].rstrip() + "\n")


if __name__ == "__main__":
    main()
