"""Token healing: a prompt that ends inside a word goes on with the word, not from the
token boundary the prompt happened to cut.

A subword run reads "Let me see the kin" as "... the" + " kin", and a model that never saw
" kin" end a word writes what follows that piece ("dred", "d", a space) where the char
model would have written "g". Healing backs off the prompt's last pieces inside the cut
word (`Healing.split`: as many as leave a text some piece begins with), reads the prompt
without them, and lets the first token drawn be only one whose text begins with the
backed-off text (" king", " kind", " kin" itself), the model's own choice among them; the
completion shown starts after the backed-off text. The same rule in both forms: NumPy
(one row) and the graph (a batch), comparing each id's text with the backed-off text.
Levels whose tokens carry their own text (subword pieces) heal; characters gain nothing
(a character's only extension is itself) and words read a partial word as `[UNK]`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from textgen.core.lazy_tf import tf
from textgen.data.items import is_marker

NEG_INF = float("-inf")


MAX_BACKOFF = 4  # the pieces of a cut word backed off at most


def heals_after(text: str) -> bool:
    """Whether a piece whose text is `text` may be backed off: it ends in a letter or
    digit (and is no item or label marker)."""
    return bool(text) and text[-1].isalnum() and not any(map(is_marker, text))


class Healing:
    """The healing of a vocabulary whose ids' texts are `texts` (`[UNK]` first)."""

    def __init__(self, texts: Sequence[str]):
        self.texts = list(texts)
        self._graph = None

    # NumPy form ---------------------------------------------------------------------
    def split(self, ids: Sequence[int]) -> tuple[list[int], tuple[int, ...]]:
        """The prompt's `ids` to read and the ids backed off: the most of the cut word's
        last pieces (up to `MAX_BACKOFF`, each ending in a letter or digit, all but the
        first letters or digits alone) whose text some piece begins with."""
        ids, best, text = list(ids), 0, ""
        for k in range(1, min(MAX_BACKOFF, len(ids)) + 1):
            piece = self.texts[ids[-k]]
            if not heals_after(piece):
                break
            text = piece + text
            if any(t.startswith(text) for t in self.texts[1:]):
                best = k
            if not piece.isalnum():  # the word's first piece (" S" of " S" + "we")
                break
        return ids[: len(ids) - best], tuple(ids[len(ids) - best :])

    def _starts(self, text: str) -> list[bool]:
        """Per id: does its text begin with `text` ([UNK] never)?"""
        return [i > 0 and t.startswith(text) for i, t in enumerate(self.texts)]

    def numpy(self, logits: np.ndarray, healed: Sequence[int]) -> np.ndarray:
        """The first step's logits (vocab,): -inf but on the ids whose text begins with
        the text of the ids `healed` (backed off; none: as they are)."""
        if not healed:
            return logits
        allowed = np.array(self._starts(self.backed_off(healed)))
        return np.where(allowed, logits, -np.inf).astype(np.float32)

    def backed_off(self, healed: Sequence[int]) -> str:
        """The text the first token's text begins with (not shown again)."""
        return "".join(self.texts[i] for i in healed)

    # Graph form ---------------------------------------------------------------------
    def graph_tables(self):
        """Each id's text (UTF-8), whether it may be backed off, whether it is letters or
        digits alone: built once (first outside a graph function, so every graph
        captures them)."""
        if self._graph is None:
            self._graph = (
                tf.constant([t.encode("utf-8") for t in self.texts]),
                tf.constant([i > 0 and heals_after(t) for i, t in enumerate(self.texts)]),
                tf.constant([t.isalnum() for t in self.texts]),
            )
        return self._graph

    def graph_split(self, ids: tf.RaggedTensor, rows=None) -> tuple[tf.RaggedTensor, tf.Tensor]:
        """Each row's ids (ragged (batch, tokens)) to read, and the text backed off
        (batch,) ("": none), as `split`; `rows` (batch,) bools: the rows that may heal
        (None: all)."""
        texts, heals, inside = self.graph_tables()
        lengths = ids.row_lengths()
        padded = tf.pad(ids.to_tensor(), [[0, 0], [0, 1]])  # (a column for empty rows)
        going = tf.ones(tf.shape(lengths), tf.bool) if rows is None else rows
        text = best_text = tf.fill(tf.shape(lengths), "")
        best = tf.zeros_like(lengths)
        for k in range(1, MAX_BACKOFF + 1):
            position = lengths - k
            token = tf.gather(padded, tf.maximum(position, 0), batch_dims=1)
            going &= (position >= 0) & tf.gather(heals, token)
            text = tf.where(going, tf.strings.join([tf.gather(texts, token), text]), text)
            extended = going & tf.reduce_any(self._graph_starts(text), axis=1)
            best = tf.where(extended, tf.cast(k, best.dtype), best)
            best_text = tf.where(extended, text, best_text)
            going &= tf.gather(inside, token)
        head = tf.RaggedTensor.from_tensor(padded, lengths=lengths - best)
        return head, best_text

    def _graph_starts(self, prefixes: tf.Tensor) -> tf.Tensor:
        """(batch, vocab) bools: does each id's text begin with the row's prefix ("" and
        [UNK]: never)?"""
        texts = self.graph_tables()[0]
        shape = [tf.shape(prefixes)[0], tf.shape(texts)[0]]
        size = tf.broadcast_to(tf.strings.length(prefixes)[:, None], shape)
        heads = tf.strings.substr(tf.broadcast_to(texts, shape), tf.zeros(shape, tf.int32), size)
        known = tf.range(shape[1]) > 0
        return (heads == prefixes[:, None]) & (size > 0) & known[None, :]

    def graph(self, logits: tf.Tensor, backed: tf.Tensor) -> tf.Tensor:
        """The first step's logits (batch, vocab): -inf but on the ids whose text begins
        with each row's `backed` text (a row with "" as it was)."""
        keep = self._graph_starts(backed) | (tf.strings.length(backed) == 0)[:, None]
        return tf.where(keep, logits, NEG_INF)

    @staticmethod
    def graph_skip(backed: tf.Tensor) -> tf.Tensor:
        """Bytes (batch,) the completion's text begins with that are not shown (0: none)."""
        return tf.strings.length(backed)


def strip_bytes(text: tf.Tensor, skip: tf.Tensor) -> tf.Tensor:
    """`text` (batch,) without its first `skip` (batch,) bytes (all of a shorter one)."""
    size = tf.strings.length(text)
    skip = tf.minimum(skip, size)
    return tf.strings.substr(text, skip, size - skip)
