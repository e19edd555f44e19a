"""Stop strings: where a generation ends, found in the graph and in a Python stream.

TensorFlow is imported by the graph methods only: the TensorFlow-free samplers (the
NumPy loop, LiteRT) use the Python half.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import tensorflow as tf


def _re2_literal(text: str) -> str:
    """`text` as an RE2 pattern that matches it literally."""
    return "".join(c if c.isalnum() and c.isascii() else f"\\x{{{ord(c):x}}}" for c in text)


class StopStrings:
    """Strings that end a generation, found in the graph (regular expressions over the
    text drawn so far) and in Python (what a stream may show before a stop string)."""

    def __init__(self, strings: Sequence[str] = ()):
        self.strings = tuple(strings)
        alternatives = "|".join(_re2_literal(s) for s in self.strings)
        self._found = f"(?s).*(?:{alternatives}).*"
        self._from_stop = f"(?s)(?:{alternatives}).*"
        self._first = f"(?s)^.*?({alternatives}).*$"

    def __bool__(self) -> bool:
        return bool(self.strings)

    def found(self, text: tf.Tensor) -> tf.Tensor:
        """Whether each text (batch,) holds a stop string."""
        import tensorflow as tf

        return tf.strings.regex_full_match(text, self._found)

    def cut(self, text: tf.Tensor) -> tf.Tensor:
        """Each text without its first stop string and what follows."""
        import tensorflow as tf

        return tf.strings.regex_replace(text, self._from_stop, "")

    def end(self, text: tf.Tensor) -> tf.Tensor:
        """Bytes of each text through its first stop string (meaningful where `found`)."""
        import tensorflow as tf

        first = tf.strings.regex_replace(text, self._first, r"\1")
        return tf.strings.length(self.cut(text)) + tf.strings.length(first)

    def held_back(self, text: tf.Tensor) -> tf.Tensor:
        """Bytes at the end of each text (batch,) that may be the start of a stop string
        (the longest end that is a proper start of one), int32."""
        import tensorflow as tf

        size = tf.strings.length(text)
        held = tf.zeros_like(size)
        for stop in self.strings:
            encoded = stop.encode("utf-8")
            for k in range(1, len(encoded)):
                end = tf.strings.substr(text, tf.maximum(size - k, 0), tf.fill(tf.shape(size), k))
                ends = (size >= k) & (end == encoded[:k])
                held = tf.where(ends, tf.maximum(held, k), held)
        return held

    def found_text(self, text: str) -> bool:
        """Whether `text` holds a stop string (Python)."""
        return any(stop in text for stop in self.strings)

    def cut_text(self, text: str) -> str:
        """`text` without its first stop string and what follows (Python)."""
        cut = min((text.find(s) for s in self.strings if s in text), default=-1)
        return text if cut < 0 else text[:cut]

    def split_stream(self, pending: str) -> tuple[str, str, bool]:
        """(text a stream may show now, text held back as a possible stop start, stopped)."""
        cut = min((pending.find(s) for s in self.strings if s in pending), default=-1)
        if cut >= 0:
            return pending[:cut], "", True
        keep = max((_overlap(pending, s) for s in self.strings), default=0)
        return pending[: len(pending) - keep], pending[len(pending) - keep :], False


def _overlap(text: str, stop: str) -> int:
    """Length of the longest end of `text` that is a proper start of `stop`."""
    for size in range(min(len(text), len(stop) - 1), 0, -1):
        if stop.startswith(text[-size:]):
            return size
    return 0
