"""Token healing: a prompt that ends inside a word goes on with the word, not from the
token boundary the prompt happened to cut.

A subword run reads "Let me see the kin" as "... the" + " kin", and a model that never saw
" kin" end a word writes what follows that piece ("dred", "d", a space) where the char
model would have written "g". Healing backs off the prompt's last token when its text
ends in a letter or digit, reads the prompt without it, and lets the first token drawn be
only one whose text begins with the backed-off text (" king", " kind", " kin" itself), the
model's own choice among them; the completion shown starts after the backed-off text.

The allowed first tokens of each token are a table built once from the tokens' texts
(`extensions`), the same table in both forms: NumPy (one row) and the graph (a batch).
Levels whose tokens carry their own text (subword pieces) heal; characters gain nothing
(a character's only extension is itself) and words read a partial word as `[UNK]`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from textgen.core.lazy_tf import tf
from textgen.data.items import is_marker

NEG_INF = float("-inf")


def heals_after(text: str) -> bool:
    """Whether a prompt whose last token's text is `text` is healed."""
    return bool(text) and text[-1].isalnum() and not any(map(is_marker, text))


class Healing:
    """The healing of a vocabulary whose ids' texts are `texts` (`[UNK]` first)."""

    def __init__(self, texts: Sequence[str]):
        self.texts = list(texts)
        first_ids: dict[str, list[int]] = {}
        for i, text in enumerate(self.texts):
            if i and heals_after(text):
                first_ids.setdefault(text, []).append(i)
        extensions: list[list[int]] = [[] for _ in self.texts]
        for t, text in enumerate(self.texts):  # each token is an extension of its prefixes
            for end in range(1, len(text) + 1) if t else ():
                for r in first_ids.get(text[:end], ()):
                    extensions[r].append(t)
        self.extensions = extensions  # id -> ids whose text begins with its text (or [])
        self._graph = None

    # NumPy form ---------------------------------------------------------------------
    def split(self, ids: Sequence[int]) -> tuple[list[int], int]:
        """The prompt's `ids` to read and the id backed off (-1: none)."""
        ids = list(ids)
        if ids and self.extensions[ids[-1]]:
            return ids[:-1], ids[-1]
        return ids, -1

    def numpy(self, logits: np.ndarray, healed: int) -> np.ndarray:
        """The first step's logits (vocab,): -inf but on the extensions of `healed`."""
        if healed < 0:
            return logits
        masked = np.full(logits.shape, -np.inf, np.float32)
        allowed = self.extensions[healed]
        masked[allowed] = logits[allowed]
        return masked

    def backed_off(self, healed: int) -> str:
        """The text the first token's text begins with (not shown again)."""
        return self.texts[healed] if healed >= 0 else ""

    # Graph form ---------------------------------------------------------------------
    def graph_tables(self):
        """(extensions as a ragged constant (vocab, None), each id's backed-off bytes);
        built once (first outside a graph function, so every graph captures them)."""
        if self._graph is None:
            ragged = tf.ragged.constant(self.extensions, dtype=tf.int32, ragged_rank=1)
            pairs = zip(self.texts, self.extensions)
            sizes = [len(text.encode("utf-8")) if ext else 0 for text, ext in pairs]
            self._graph = (ragged, tf.constant(sizes, tf.int32))
        return self._graph

    def graph_split(self, ids: tf.RaggedTensor, rows=None) -> tuple[tf.RaggedTensor, tf.Tensor]:
        """Each row's ids (ragged (batch, tokens)) to read, and the id backed off (batch,)
        (-1: none); `rows` (batch,) bools: the rows that may heal (None: all)."""
        extensions, _ = self.graph_tables()
        lengths = ids.row_lengths()
        padded = tf.pad(ids.to_tensor(), [[0, 0], [0, 1]])  # an empty row's "last" is [UNK]
        last = tf.gather(padded, tf.maximum(lengths - 1, 0), batch_dims=1)
        heal = tf.gather(extensions.row_lengths(), last) > 0
        if rows is not None:
            heal &= rows
        kept = lengths - tf.cast(heal, lengths.dtype)
        head = tf.RaggedTensor.from_tensor(padded, lengths=kept)
        return head.with_row_splits_dtype(ids.row_splits.dtype), tf.where(heal, last, -1)

    def graph(self, logits: tf.Tensor, healed: tf.Tensor) -> tf.Tensor:
        """The first step's logits (batch, vocab): -inf but on the extensions of each
        row's `healed` id (a row with -1 as it was)."""
        extensions, _ = self.graph_tables()
        allowed = tf.gather(extensions, tf.maximum(healed, 0))  # ragged (batch, None)
        rows = tf.cast(allowed.value_rowids(), tf.int32)
        where = tf.stack([rows, allowed.values], axis=1)
        marks = tf.scatter_nd(where, tf.ones_like(allowed.values, tf.bool), tf.shape(logits))
        keep = marks | (healed < 0)[:, None]
        return tf.where(keep, logits, NEG_INF)

    def graph_skip(self, healed: tf.Tensor) -> tf.Tensor:
        """Bytes (batch,) the completion's text begins with that are not shown (0: none)."""
        _, sizes = self.graph_tables()
        return tf.where(healed >= 0, tf.gather(sizes, tf.maximum(healed, 0)), 0)


def strip_bytes(text: tf.Tensor, skip: tf.Tensor) -> tf.Tensor:
    """`text` (batch,) without its first `skip` (batch,) bytes (all of a shorter one)."""
    size = tf.strings.length(text)
    skip = tf.minimum(skip, size)
    return tf.strings.substr(text, skip, size - skip)
