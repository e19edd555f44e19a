"""Tokens/s of a run's samplers through the library a user calls: the TensorFlow
generator in process (`Run`, its XLA-compiled loop), the same without XLA (as the default
export runs) and the NumPy loop (`NumpyRun`), at batch 1 and 64: plain, with the
repetition controls, with two excluded strings and with two included texts.

    python scripts/bench_samplers.py RUN_DIR [--tokens 300] [--rounds 3]

Each figure is the median of `--rounds` timed calls after one untimed call (which
compiles). To compare two versions of textgen, run this script under each (PYTHONPATH
pointing at the other checkout) in turns, and compare the rows' ratios to the graph
loop at batch 1 measured in the same run; the last column is each row against its own
sampler's plain row at the same batch.
"""

from __future__ import annotations

import argparse
import statistics
import time


def rate(sampler, batch: int, tokens: int, rounds: int, **settings) -> float | str:
    """Tokens/s of `sampler.generate` for `batch` prompts (or why it refused)."""
    from textgen.core.errors import TextgenError

    prompts = ["ROMEO:"] * batch
    call = dict(max_new_tokens=tokens, temperature=0.8, seed=1, **settings)
    try:
        sampler.generate(prompts, **call)
    except TextgenError as err:
        return f"refused: {err}"
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        sampler.generate(prompts, **call)
        times.append(time.perf_counter() - started)
    return batch * tokens / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("--tokens", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 64])
    args = parser.parse_args()

    import textgen
    from textgen.runs.folder import RunFolder
    from textgen.runs.numpy_run import NumpyRun

    samplers = {"graph loop (Run)": textgen.load_run(args.run_dir),
                "graph loop, no XLA": textgen.load_run(args.run_dir, xla=False),
                "NumPy loop (NumpyRun)": NumpyRun(RunFolder(args.run_dir))}  # fmt: skip
    cases = (
        ("plain", {}), ("repetition controls", {"repetition_penalty": 1.3, "no_repeat_ngram": 3}),
        ("2 excluded strings", {"exclude": ("the", "and")}),
        ("2 included texts", {"include": ("the", "and")}),
    )  # fmt: skip
    rows = {}
    for name, sampler in samplers.items():
        for batch in args.batches:
            for label, settings in cases:
                rows[(name, batch, label)] = rate(
                    sampler, batch, args.tokens, args.rounds, **settings
                )
    base = rows[("graph loop (Run)", args.batches[0], "plain")]
    print(f"{'sampler':24s} {'batch':>5s} {'settings':22s} {'tokens/s':>10s} {'ratio':>7s} "
          f"{'/ plain':>7s}")  # fmt: skip
    for (name, batch, label), value in rows.items():
        if isinstance(value, str):
            print(f"{name:24s} {batch:5d} {label:22s} {value}")
            continue
        plain = rows[(name, batch, "plain")]
        own = f"{value / plain:7.3f}" if not isinstance(plain, str) else ""
        print(f"{name:24s} {batch:5d} {label:22s} {value:10.0f} {value / base:7.3f} {own}")


if __name__ == "__main__":
    main()
