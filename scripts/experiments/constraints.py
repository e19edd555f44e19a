"""Excluded and included strings (`--exclude`, `--include`, issue #48) measured: do the
guarantees hold, and what do they cost the text and the speed?

    python scripts/experiments/constraints.py RUN_DIR [--samples 200] [--length 300]

Excluded: draws `--samples` samples of `--length` tokens from an empty prompt
(temperature 0.8, seed 0, NumPy backend), picks the 3 words (3+ letters) the most samples
hold, then draws the same samples with those excluded. Prints how many samples hold each
word before and after (after must be 0), the mean log-likelihood per token of the samples
as the run itself scores them (its `score`) before and after, their ratio, and
generation tokens/s at batch 1 with and without (NumPy loop and the in-process graph,
median of rounds), with a few samples of each.

Included: half as many samples, with 1, 2 and 3 words of the training text that the free
samples seldom hold (frequent in the text, in at most 15% of the samples): the share of
samples holding them all (must be 100%), the mean log-likelihood per token against the
free samples', the median position of each text's first occurrence (as a share of the
sample), and tokens/s at batch 1 with 2 texts against none (NumPy loop, and the
in-process graph without XLA, as an export runs; its text checked equal to NumPy's).
`--include-only` skips the excluded strings.
"""

from __future__ import annotations

import argparse
import collections
import re
import statistics
import time
from pathlib import Path

import textgen
from textgen.generate.settings import SamplingSettings
from textgen.runs.numpy_run import NumpyRun


def mean_log_likelihood(run, texts: list[str]) -> float:
    """The mean log-likelihood per token of `texts`, the run's own score, token-weighted."""
    scored = run.score(texts)
    tokens = sum(count for _, count in scored)
    return -sum(nll * count for nll, count in scored) / tokens


def common_words(texts: list[str], count: int, shortest: int = 3) -> list[str]:
    """The `count` words of `shortest`+ letters that the most `texts` hold."""
    held = collections.Counter()
    for text in texts:
        held.update(set(re.findall(f"[A-Za-z]{{{shortest},}}", text)))
    return [word for word, _ in held.most_common(count)]


def tokens_per_second(sampler, settings: SamplingSettings, rounds: int = 3) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        sampler.generate([""], settings)
        times.append(time.perf_counter() - started)
    return settings.max_new_tokens / statistics.median(times)


def seldom_words(run, texts: list[str], count: int) -> list[str]:
    """`count` words (5+ letters) frequent in the run's training text that at most 15% of
    `texts` hold, the most frequent first."""
    corpus = Path(run.config.data.sources[0]).read_text(encoding="utf-8")  # a corpus file
    frequent = collections.Counter(re.findall(r"[a-z]{5,}", corpus)).most_common(300)
    seldom = [w for w, _ in frequent if sum(w in t for t in texts) <= 0.15 * len(texts)]
    return seldom[:count]


def measure_include(run, numpy_run, free_settings, before, samples: int) -> None:
    prompts = [""] * samples
    free = before[:samples]
    free_ll = mean_log_likelihood(run, free)
    words = seldom_words(run, free, 3)
    print(f"included (of {words}): {samples} samples of {free_settings.max_new_tokens} tokens")
    for count in (1, 2, 3):
        texts = tuple(words[:count])
        settings = SamplingSettings.of(free_settings, include=texts)
        drawn = numpy_run.generate(prompts, settings)
        held = sum(all(t in s for t in texts) for s in drawn)
        ll = mean_log_likelihood(run, drawn)
        firsts = [s.index(t) / max(len(s), 1) for s in drawn for t in texts if t in s]
        print(f"  {count}: all held in {held}/{samples}; log-likelihood per token "
              f"{ll:.4f} (free {free_ll:.4f}, ratio {ll / free_ll:.3f}); first occurrence "
              f"median {statistics.median(firsts):.0%} of the text")  # fmt: skip
        if count == 2:
            same = run.generate(prompts[:8], settings) == drawn[:8]
            print(f"  the graph generator's first 8 samples equal NumPy's: {same}")
            timed = SamplingSettings.of(free_settings, max_new_tokens=400)
            for name, sampler in (("numpy", numpy_run), ("graph", run)):
                plain = tokens_per_second(sampler, timed)
                fast = tokens_per_second(sampler, SamplingSettings.of(timed, include=texts))
                print(f"  {name} batch 1: {plain:.0f} tokens/s free, {fast:.0f} with 2 texts "
                      f"({fast / plain:.2f}x)")  # fmt: skip
            for text in drawn[:2]:
                print("    | " + text[:300].replace("\n", "\n    | "))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--length", type=int, default=300)
    parser.add_argument("--strings", type=int, default=3)
    parser.add_argument("--include-only", action="store_true")
    args = parser.parse_args()
    run = textgen.load_run(args.run_dir, xla=False)
    numpy_run = NumpyRun(run.folder)
    free = SamplingSettings(max_new_tokens=args.length, temperature=0.8, seed=0)
    prompts = [""] * args.samples
    before = numpy_run.generate(prompts, free)
    print(f"run {args.run_dir}: {args.samples} samples of {args.length} tokens, temperature 0.8")
    if args.include_only:
        measure_include(run, numpy_run, free, before, args.samples // 2)
        return
    free_ll = mean_log_likelihood(run, before)
    for shortest in (3, 5):  # the commonest words; the commonest longer ones
        words = common_words(before, args.strings, shortest)
        after = numpy_run.generate(prompts, SamplingSettings.of(free, exclude=tuple(words)))
        for word in words:
            held = [sum(word in text for text in texts) for texts in (before, after)]
            print(f"  {word!r}: in {held[0]} samples free, {held[1]} with --exclude")
        excluded_ll = mean_log_likelihood(run, after)
        print(f"  mean log-likelihood per token: free {free_ll:.4f}, excluded "
              f"{excluded_ll:.4f}, ratio {excluded_ll / free_ll:.3f}; mean length "
              f"{statistics.mean(map(len, after)):.0f} characters")  # fmt: skip
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
    measure_include(run, numpy_run, free, before, args.samples // 2)


if __name__ == "__main__":
    main()
