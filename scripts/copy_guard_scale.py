"""The copy guard's index at scale: build time, memory and false-positive rate.

    python scripts/copy_guard_scale.py --megabytes 1000 [--span 20]

Builds `SpanIndex` (the index `textgen sample --max-copy` caches per run) over a text of
`--megabytes` million characters made of the built-in Shakespeare corpus, its lines
shuffled anew for each 16 MB piece (so most spans are new). Prints the build time, the
process' peak memory, the filter's size and probes, and its false-positive rate: the
expected one and the one measured on 20,000 spans that are not in the text.
"""

from __future__ import annotations

import argparse
import random
import resource
import time

import numpy as np

from textgen.copy_guard import SpanIndex
from textgen.corpus import builtin_shakespeare

PIECE = 16_000_000  # characters per piece


def pieces(lines: list[str], total: int):
    """`total` characters as code point arrays, the same every call."""
    done, seed = 0, 0
    while done < total:
        rng = random.Random(seed)
        order = lines[:]
        rng.shuffle(order)
        text = "\n".join(order)
        while len(text) < PIECE:
            text += text
        text = text[: min(PIECE, total - done)]
        yield np.frombuffer(text.encode("utf-32-le"), np.uint32).astype(np.int64)
        done, seed = done + len(text), seed + 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=100)
    parser.add_argument("--span", type=int, default=20)
    args = parser.parse_args()
    lines = builtin_shakespeare("data").splitlines()
    total = int(args.megabytes * 1e6)
    started = time.perf_counter()
    index = SpanIndex.build(lambda: pieces(lines, total), args.span)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # GiB (ru_maxrss: KiB)
    rng = random.Random(1)
    alphabet = "abcdefghijklmnopqrstuvwxyz ,.\n"  # random spans: not Shakespeare's
    probes = ["".join(rng.choice(alphabet) for _ in range(args.span)) for _ in range(20_000)]
    measured = np.mean([index.contains(p)[0] for p in probes])
    print(f"text           {total / 1e6:,.0f} million characters, span {args.span}")
    print(f"build          {seconds:,.1f} s ({total / seconds / 1e6:.1f} M characters/s)")
    print(f"filter         {len(index.bits) / 2**20:,.0f} MiB, {index.probes} probes, "
          f"{len(index.bits) * 8 / max(index.spans, 1):.1f} bits per span")  # fmt: skip
    print(f"false positive {index.false_positive_rate:.3%} expected, {measured:.3%} measured")
    print(f"peak memory    {peak:.2f} GiB (process)")


if __name__ == "__main__":
    main()
