"""The copy guard: a sample never holds a span of N characters of the training text.

A check on candidate tokens (`rules.checks`): a token is rejected if it would complete a
span of the run's span index (a Bloom filter, `textgen.data.span_index`; no false
negatives, so the guarantee holds). Spans are checked within the completion, not across
the prompt.

`SpanGuard` is the NumPy form (one row; its tail is the completion's last characters);
the graph form is `textgen.generate.copy_guard.CopyGuard` (the export carries it).
"""

from __future__ import annotations

from collections.abc import Callable

from textgen.data.span_index import SpanIndex


class SpanGuard:
    """The copy guard over `index` in NumPy; `piece(prev, token)` is a token's text."""

    def __init__(self, index: SpanIndex, piece: Callable[[int, int], str]):
        self.index, self.piece = index, piece
        self.tail_size = index.span - 1

    def rejects(self, tail: str, prev: int, token: int) -> bool:
        """Would `token` after `prev` complete an indexed span of the completion `tail`?"""
        tail = tail[-self.tail_size :] if self.tail_size else ""
        return bool(self.index.contains(tail + self.piece(prev, token)).any())
