"""Streaming: a generation's text yielded piece by piece as its tokens are drawn."""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator

import tensorflow as tf

from textgen.data.tokenizers import string_tensor
from textgen.generate.finish import StreamFinish
from textgen.generate.loop import loop_variant
from textgen.generate.rules.inclusion import IncludedTexts, Owing
from textgen.generate.settings import SamplingSettings

# The longest a streaming reader waits between two pieces of text, in seconds.
STREAM_INTERVAL = 0.1
# Tokens of a stream's first piece (and its shortest): at most a chunk.
STREAM_FIRST = 64


def stream_completion(
    generator, prompt: str, settings: SamplingSettings, unlabelled: str | None = None
) -> Iterator[str]:
    """The completion of one prompt (stream 0) with resolved `settings`, yielded as it is
    drawn: the same text as `generator.generate([prompt], settings)`.

    A short stretch first (text at once), then stretches as long as the reader can wait
    (`STREAM_INTERVAL`): each call of the graph costs a fixed overhead, so fewer is faster.
    Text that may be the start of a stop string is held back until it is known not to be.
    With `unlabelled` (the prompt without its label), label guidance.
    """
    prompts = string_tensor([prompt])
    read = prompts if unlabelled is None else string_tensor([prompt, unlabelled])
    heal = not (settings.exclude or settings.include)
    logits, state, history, prev, skip = generator.prime_to_continue(read, [heal])
    history, prev = history[:1], prev[:1]
    tail = generator.empty_tail(prompts)
    total = min(settings.max_new_tokens, generator.max_new_tokens_cap)
    include = string_tensor([settings.served("include")])
    owing = generator.owing(prompts, tf.constant([total]), include) if settings.include else (
        Owing.start(IncludedTexts.none(1), prompts, tf.constant([total]))
    )  # fmt: skip
    variant = loop_variant(settings)  # the one loop these settings need
    draw = generator.traced("stream", variant)
    if unlabelled is not None:
        guided = generator.traced("guided_stream", variant)
        draw = functools.partial(guided, [settings.label_strength])
    rows = generator.row_tensors(settings, [0])
    counts, t = tf.zeros([1], tf.int32), tf.constant(0)
    finish = StreamFinish(generator.stops)
    shortest = min(generator.plan.chunk_size, STREAM_FIRST)
    until, stretch = 0, shortest
    while until < total:
        started, before, until = time.perf_counter(), until, min(total, until + stretch)
        piece, logits, state, history, tail, prev, counts, t, owing = draw(
            logits, state, history, tail, prev, counts, t, tf.constant([until]), skip, owing,
            *rows,
        )  # fmt: skip
        skip = tf.zeros_like(skip)  # (a healed prompt's text begins the first stretch)
        rate = (until - before) / max(time.perf_counter() - started, 1e-6)  # tokens/s
        stretch = max(shortest, int(rate * STREAM_INTERVAL))
        ready, stopped = finish.add(piece.numpy()[0].decode("utf-8"))
        if ready:
            yield ready
        if stopped:
            return
        if counts.numpy()[0] < until:  # the copy guard ended it
            break
    rest = finish.rest()
    if rest:
        yield rest
