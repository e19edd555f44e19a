"""Training speed in bfloat16 against float32 (with XLA), by model size.

    python scripts/bench_precision.py [--units 128 256 512] [--cells gru] [--steps 8] [--rounds 3]

For each size: textgen's training step (2 layers, embedding 64, batch 32 x 100, the
presets' batch) in float32 with XLA (what runs where the CPU has no bfloat16 arithmetic)
and in bfloat16 (Keras' mixed_bfloat16 policy, no XLA), timed in turns; chars/s and the
ratio. `precision="auto"` picks bfloat16 where the CPU has it (textgen.training.precision).
"""

from __future__ import annotations

import argparse
import tempfile

import benchlib
from bench_train import corpus_ids, textgen_step

from textgen.training.precision import cpu_has_bfloat16


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, nargs="+", default=[128, 256, 512])
    parser.add_argument("--cells", nargs="+", default=["gru"])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {benchlib.machine()}; bfloat16 instructions: {cpu_has_bfloat16()}")
    ids = corpus_ids()
    for cell in args.cells:
        for units in args.units:
            with tempfile.TemporaryDirectory() as tmp:
                variants = {
                    precision: textgen_step(
                        cell, ids, args.steps, f"{tmp}/{precision}", units=units, batch=32,
                        precision=precision,
                    )[0]
                    for precision in ("float32", "bfloat16")
                }  # fmt: skip
                rates = benchlib.interleaved(variants, args.rounds)
            ratio = rates["bfloat16"] / rates["float32"]
            print(
                f"{cell.upper()} 2 x {units}, batch 32 x 100: float32 + XLA "
                f"{rates['float32']:,.0f} chars/s, bfloat16 {rates['bfloat16']:,.0f}: {ratio:.2f}x"
            )


if __name__ == "__main__":
    main()
