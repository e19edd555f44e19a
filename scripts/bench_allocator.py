"""TensorFlow's CPU allocator: the default one against BFC, which textgen turns on.

    python scripts/bench_allocator.py [--rounds 3] [--steps 100] [--cell lstm]

`textgen train` runs in a subprocess per variant (the allocator is chosen when the
process makes its first tensor), in turns, several rounds; each trains the reference
model (char level, 2 x 256, batch 64 x 100) on the same generated text for two epochs,
and the second epoch's chars/s (from the run's training.csv) is compared, with the
process's page faults per step. Both variants must reach the same loss.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from textgen.runs.folder import RunFolder

WORDS = "the of and to a in that is was he for it with as his on be at by i".split()


def write_corpus(path: Path, chars: int = 400_000) -> None:
    rng = random.Random(0)
    lines, size = [], 0
    while size < chars:
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12))) + ".\n"
        lines.append(line)
        size += len(line)
    path.write_text("".join(lines), encoding="utf-8")


def run_train(corpus: Path, folder: Path, use_bfc: bool, steps: int, cell: str):
    """(second epoch's chars/s, final training loss, minor page faults per step)."""
    command = [
        sys.executable, "-m", "textgen.cli", "train", "--corpus", str(corpus), "--quiet",
        "--run-dir", str(folder / "run"), "--data-dir", str(folder / "data"),
        "--cell", cell, "--layers", "2", "--units", "256", "--embedding-dim", "64",
        "--batch-size", "64", "--seq-len", "100", "--epochs", "2",
        "--steps-per-epoch", str(steps), "--val-tokens", "20000", "--seed", "0",
    ]  # fmt: skip
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env["TF_CPU_ALLOCATOR_USE_BFC"] = "true" if use_bfc else "false"
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"textgen train failed: {' '.join(command)}")
    last = RunFolder(folder / "run").read_log()[-1]
    shutil.rmtree(folder)
    return last["tokens_per_sec"], last["loss"], usage.ru_minflt / (2 * steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--cell", default="lstm", choices=["lstm", "gru", "rnn"])
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="textgen-bench-allocator-"))
    try:
        corpus = workdir / "corpus.txt"
        write_corpus(corpus)
        results: dict[str, list] = {"default": [], "bfc": []}
        for round_ in range(args.rounds):
            for name in ("default", "bfc"):
                result = run_train(corpus, workdir / name, name == "bfc", args.steps, args.cell)
                results[name].append(result)
                speed, loss, faults = result
                print(
                    f"round {round_ + 1} {name:7s}: {speed:7.0f} chars/s, loss {loss:.5f}, "
                    f"{faults:7.0f} page faults/step",
                    flush=True,
                )
        median = {name: statistics.median(r[0] for r in rows) for name, rows in results.items()}
        faults = {name: statistics.median(r[2] for r in rows) for name, rows in results.items()}
        same_loss = {r[1] for rows in results.values() for r in rows}
        print(
            f"\n{args.cell} 2 x 256, median of {args.rounds}: default allocator "
            f"{median['default']:.0f} chars/s ({faults['default']:.0f} faults/step), "
            f"BFC {median['bfc']:.0f} chars/s ({faults['bfc']:.0f} faults/step): "
            f"{median['bfc'] / median['default']:.2f}x; "
            f"same final loss: {'yes' if len(same_loss) == 1 else sorted(same_loss)}"
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
