"""The copy guard's index at scale: build time, memory and false-positive rate.

    python scripts/experiments/copy_guard_scale.py --megabytes 1000 [--span 20]

Builds `SpanIndex` (the index `textgen sample --max-copy` caches per run) over a text of
`--megabytes` million characters made of the built-in Shakespeare corpus, its lines
shuffled anew for each 16 MB piece and 5% of its characters replaced by random letters
(so most spans are new, as in a real gigabyte of text). Prints the build time, the
process' peak memory, the filter's size, fill and probes, and its false-positive rate:
expected from the span count, and measured on 20,000 random spans.
"""

from __future__ import annotations

import argparse
import random
import resource
import time

import numpy as np

from textgen.data.corpus import builtin_shakespeare
from textgen.data.span_index import SpanIndex

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
        codes = np.frombuffer(text.encode("utf-32-le"), np.uint32).astype(np.int64)
        noise = np.random.default_rng(seed)
        changed = noise.random(len(codes)) < 0.05
        codes[changed] = noise.integers(ord("a"), ord("z") + 1, int(changed.sum()))
        yield codes
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
    fill = np.unpackbits(np.asarray(index.bits[: 1 << 24])).mean()  # a 16 MiB sample
    print(f"bits set       {fill:.1%} (so about {fill**index.probes:.3%} false positives)")
    print(f"false positive {index.false_positive_rate:.3%} expected, {measured:.3%} measured")
    print(f"peak memory    {peak:.2f} GiB (process)")


if __name__ == "__main__":
    main()
