"""Beam search and chunked continuation measured on trained runs.

    python scripts/bench_beams.py RUN_DIR [RUN_DIR ...] [--prompts 50] [--length 40]

For each run: `--prompts` prompts (the first 24 characters of lines of the held-out
text); greedy decoding and beam search at widths 2, 4 and 8 for `--length` tokens; how
often the best beam's log-probability (by `run.score`) is at least greedy's, and by how
much it is higher (nats per prompt). Then speed, timed in turns (median of 3 rounds), all
prompts in one batch: tokens/s per row (prompts x beams) of beam search against greedy
decoding at the same length in the same generator (no XLA, as the export runs); and
the export-shaped generator drawing 256 tokens in one call against chunks of 64 and 32
tokens passing the state on (`continue`), with the state's size.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import tensorflow as tf

import textgen
from textgen.data.corpus import load_corpus
from textgen.data.tokenizers import string_tensor
from textgen.generate.loop import UNROLL


def log_probability(run, prompts, completions):
    scores = run.score([p + c for p, c in zip(prompts, completions)] + list(prompts))
    n = len(prompts)
    return [-m * k + pm * pk for (m, k), (pm, pk) in zip(scores[:n], scores[n:])]


def prompts_of(run, count: int) -> list[str]:
    text = load_corpus(run.config.data).validation
    lines = [line[:24] for line in text.splitlines() if len(line) >= 24 and line.isascii()]
    step = max(1, len(lines) // count)
    return lines[::step][:count]


def timed(calls: dict, rounds: int = 3) -> dict:
    times = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def quality(run, prompts, length: int) -> None:
    greedy = run.generate(prompts, max_new_tokens=length, temperature=0.0)
    greedy_lp = log_probability(run, prompts, greedy)
    print(f"  greedy: mean log-probability {sum(greedy_lp) / len(prompts):.2f} nats")
    for width in (2, 4, 8):
        best = [found[0] for found in run.search(prompts, beams=width, max_new_tokens=length)]
        gains = [b.log_probability - g for b, g in zip(best, greedy_lp)]
        wins = sum(gain >= -1e-3 for gain in gains)
        print(
            f"  beams {width}: best >= greedy on {wins}/{len(prompts)} prompts; gain mean "
            f"{statistics.mean(gains):.2f}, median {statistics.median(gains):.2f}, max "
            f"{max(gains):.2f} nats"
        )
    print(f"  e.g. {prompts[0]!r}\n    greedy: {greedy[0]!r}\n    beams 8: {best[0].completion!r}")


def speed(run, prompts, length: int) -> None:
    n = len(prompts)
    calls = {"greedy": lambda: run.generate(prompts, max_new_tokens=length, temperature=0.0)}
    for width in (4, 8):
        calls[f"beams {width}"] = lambda w=width: run.search(
            prompts, beams=w, max_new_tokens=length
        )
    calls["greedy"]()
    for name in list(calls)[1:]:
        calls[name]()
    seconds = timed(calls)
    base = n * length / seconds["greedy"]
    print(f"  greedy, batch {n}: {base:,.0f} tokens/s")
    for width in (4, 8):
        rate = n * width * length / seconds[f"beams {width}"]
        print(f"  beams {width}: {rate:,.0f} tokens/s per row ({rate / base:.2f}x greedy's)")


def chunks(run, prompts, total: int = 256) -> None:
    g = run.generator_for(run.config.sample.stop, jit_compile=False, unroll=UNROLL, frozen=True)
    n = len(prompts)
    rows = g.row_tensors(run.settings(temperature=0.8, seed=1).with_defaults(run.config.sample),
                         list(range(n)))  # fmt: skip
    texts = string_tensor(prompts)

    def chunked(size: int):
        states, read = tf.fill([n], ""), texts
        for _ in range(total // size):
            out = g.continue_from(read, states, tf.fill([n], total), tf.fill([n], size), *rows)
            states, read = out["state_bytes"], tf.fill([n], "")
        return states

    calls = {
        "one call": lambda: g.generate_ids(texts, tf.fill([n], total), *rows),
        "chunks of 64": lambda: chunked(64),
        "chunks of 32": lambda: chunked(32),
    }
    for call in calls.values():
        call()
    seconds = timed(calls)
    size = len(chunked(64).numpy()[0])
    print(f"  {total} tokens, batch {n}, the export's loop; state {size:,} bytes a row")
    for name, s in seconds.items():
        print(f"  {name}: {s * 1000:.0f} ms ({seconds['one call'] / s:.2f}x one call's speed)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--prompts", type=int, default=50)
    parser.add_argument("--length", type=int, default=40)
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {tf.__version__}")
    for run_dir in args.runs:
        run = textgen.load_run(run_dir, xla=False)
        prompts = prompts_of(run, args.prompts)
        print(f"{run_dir}: {run.config.data.level}, {len(prompts)} prompts")
        if not prompts:  # e.g. a run of short items: no held-out line to prompt with
            print("  no held-out line of 24 or more ASCII characters to prompt with: skipped")
            continue
        quality(run, prompts, args.length)
        speed(run, prompts, args.length)
        chunks(run, prompts[:8])
        chunks(run, prompts[:1])


if __name__ == "__main__":
    main()
