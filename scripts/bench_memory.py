"""Memory and start-up time of `textgen train` on a 1 GB corpus, against a 1 MB one.

    python scripts/bench_memory.py [--gigabytes 1.0] [--keep]

Writes a corpus of Tiny Shakespeare repeated to the size asked (../shared/data, or a
generated play-like text without it) and runs the real command on it, as a user would:

    textgen train --corpus BIG.txt --epochs 1 --steps-per-epoch 1 --val-tokens 20000 ...

Reports, for the big corpus and for a 1 MB baseline in the same run: seconds until
training starts (corpus streamed, vocabulary counted, ids encoded to the data cache,
model built), seconds until the first step is done (the one-step epoch and a 20k-token
validation are logged), and the peak resident memory of the process.
Targets (issue 6): peak < 3 GB, first step done within 2 minutes.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare.txt"


def seed_text() -> str:
    if SHARED.is_file():
        return SHARED.read_text(encoding="utf-8")
    rng = random.Random(0)
    words = "love night light fair sweet death name rose moon sun heart sword day".split()
    speeches = [
        f"{rng.choice(['ROMEO', 'JULIET', 'NURSE'])}:\n"
        + " ".join(rng.choice(words) for _ in range(rng.randint(5, 15)))
        + ".\n\n"
        for _ in range(20000)
    ]
    return "".join(speeches)


def write_corpus(path: Path, size: int) -> None:
    """`size` bytes of the seed text repeated, written a copy at a time (never whole)."""
    block = seed_text().encode("utf-8")
    with open(path, "wb") as f:
        written = 0
        while written < size:
            piece = block[: size - written]
            f.write(piece)
            written += len(piece)


def run_train(corpus: Path, workdir: Path) -> dict:
    """Run `textgen train` on `corpus`; seconds to each milestone and peak RSS (GB)."""
    command = [
        sys.executable, "-m", "textgen.cli", "train", "--corpus", str(corpus),
        "--epochs", "1", "--steps-per-epoch", "1", "--val-tokens", "20000", "--samples", "0",
        "--data-dir", str(workdir / "data"), "--root", str(workdir / "runs"),
    ]  # fmt: skip
    env = dict(os.environ, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="2")
    started = time.perf_counter()
    marks = {}
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) as process:
        watcher = threading.Thread(target=_watch_peak, args=(process, marks), daemon=True)
        watcher.start()
        for line in process.stdout:
            now = time.perf_counter() - started
            if line.startswith("Run folder:") and "start" not in marks:  # the model built
                marks["start"] = now
            if line.startswith("epoch 1:"):
                marks["epoch"] = now
                marks["log"] = line.strip()
    watcher.join(timeout=1.0)
    if process.returncode:
        raise SystemExit(f"textgen train failed with exit code {process.returncode}")
    marks["total"] = time.perf_counter() - started
    return marks


def _watch_peak(process: subprocess.Popen, marks: dict) -> None:
    """The child's own peak RSS (VmHWM, GB) while it runs, read every 0.1 s. (Not
    `RUSAGE_CHILDREN`'s ru_maxrss: it also counts pages a child held at fork time, before
    its exec, and read 3.47 GB for a 1 MB corpus whose process peaked at 1.2.)"""
    status = Path(f"/proc/{process.pid}/status")
    while process.poll() is None:
        try:
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = int(line.split()[1]) / 2**20
                    marks["peak"] = max(marks.get("peak", 0.0), peak)
        except (OSError, ValueError):  # ended between the poll and the read
            return
        time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gigabytes", type=float, default=1.0)
    parser.add_argument("--keep", action="store_true", help="Keep the corpus and runs.")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="textgen-bench-memory-"))
    try:
        rows = []
        for label, size in (("1 MB", 2**20), (f"{args.gigabytes:g} GB", int(args.gigabytes * 1e9))):
            corpus = workdir / f"corpus-{size}.txt"
            write_corpus(corpus, size)
            marks = run_train(corpus, workdir / label.replace(" ", ""))
            rows.append((label, marks, marks.get("peak", float("nan"))))
            print(f"{label}: {marks.get('log', '')}", flush=True)
        print(f"\n{'corpus':>8} {'to start':>9} {'first step':>11} {'total':>7} {'peak RSS':>9}")
        for label, marks, rss in rows:
            print(
                f"{label:>8} {marks['start']:8.1f}s {marks['epoch']:10.1f}s "
                f"{marks['total']:6.1f}s {rss:7.2f} GB"
            )
        (small, big) = rows
        print(
            f"\nbig / 1 MB: start {big[1]['start'] / small[1]['start']:.1f}x, "
            f"first step {big[1]['epoch'] / small[1]['epoch']:.1f}x, "
            f"peak RSS {big[2] / small[2]:.2f}x"
        )
        print(
            f"targets: peak RSS < 3 GB ({big[2]:.2f}), first step done < 120 s "
            f"({big[1]['epoch']:.0f} s)"
        )
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
