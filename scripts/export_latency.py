"""Measure a TF Serving export: size on disk, load time, and generation latency.

    python scripts/export_latency.py [--run-dir DIR] [--tokens 200] [--repeats 5]

Exports the run (newest under checkpoints/ by default) to a temporary folder, loads it
with `tf.saved_model.load` as the model server would, and times the `generate`
signature for 200 new tokens at batch 1 and 16. The baseline, measured in the same run,
is the in-process sampler (`Run.generate`, the same graph) so the ratio shows what the
SavedModel round trip costs. The machine is noisy: medians of several repeats.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import tensorflow as tf

import textgen
from textgen.export.saved_model import export_run


def median_seconds(fn, repeats: int) -> float:
    fn()  # warm up: tracing and first-call allocation are not latency
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir")
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    run = textgen.load_run(args.run_dir)
    with tempfile.TemporaryDirectory() as tmp:
        result = export_run(run.folder.path, export_dir=tmp)
        start = time.perf_counter()
        model = tf.saved_model.load(str(result.path))
        load_seconds = time.perf_counter() - start
        generate = model.signatures["generate"]
        print(f"run: {run.folder.path}")
        print(f"export: {result.size_bytes / 1e6:.2f} MB, written in {result.seconds:.1f}s")
        print(f"load (tf.saved_model.load): {load_seconds:.2f}s")
        for batch in (1, 16):
            inputs = {
                "prompt": tf.constant(["ROMEO:"] * batch),
                "max_new_tokens": tf.fill([batch], args.tokens),
                "temperature": tf.fill([batch], 0.8),
                "top_k": tf.fill([batch], 0),
                "top_p": tf.fill([batch], 1.0),
                "seed": tf.range(batch, dtype=tf.int64),
            }
            exported = median_seconds(lambda inputs=inputs: generate(**inputs), args.repeats)
            in_process = median_seconds(
                lambda batch=batch: run.generate(
                    ["ROMEO:"] * batch, max_new_tokens=args.tokens, temperature=0.8, seed=0
                ),
                args.repeats,
            )
            tokens = batch * args.tokens
            print(
                f"batch {batch:2d}: export {exported * 1000:7.0f} ms "
                f"({tokens / exported:7.0f} tokens/s); in-process sampler "
                f"{in_process * 1000:7.0f} ms; export/in-process = {exported / in_process:.2f}"
            )


if __name__ == "__main__":
    main()
