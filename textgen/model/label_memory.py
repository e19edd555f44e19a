"""The label of the item being read, added to every step's input (runs with labels).

An item starts with its label's token, which a recurrent state forgets within a few
dozen steps, so a sample asked for one kind drifts into the commoner kind. A model with a
label memory keeps the item's label as a vector, set by the label's token, cleared by an
item marker, and added to each token's embedding: the label is an input at every step
(docs/experiments.md, "The label at every step"). It is a function of the tokens read, so
it needs no second input in generation, which carries it as one more state (every
sampler, the export and the state it hands back already carry states). Training windows
begin anywhere in an item, so the Keras model takes, beside the ids, the label in mind
before each window (`textgen.data.windows.LabelsBefore`; `window_inputs` for callers).
"""

from __future__ import annotations

import keras
import tensorflow as tf

MEMORY_LAYER = "label_memory"
ONE_HOT_LABELS = 64


def role_in_mind(roles: list[int], ids: tf.Tensor) -> tf.Tensor:
    """(batch, time): what each position has in mind, by the ids' `roles`: 0 nothing set
    yet in the window, -1 cleared, k label k."""
    roles = tf.gather(tf.constant(roles, tf.int32), ids)
    setter = roles != 0
    batch, time = tf.shape(ids)[0], tf.shape(ids)[1]
    # The steps from one setting token to the next are one segment; a segment's role is
    # its first token's (0 in the segment before a window's first setting token).
    count = tf.cumsum(tf.cast(setter, tf.int32), axis=1)
    segment = tf.range(batch)[:, None] * (time + 1) + count
    role_of = tf.math.unsorted_segment_sum(tf.where(setter, roles, 0), segment, batch * (time + 1))
    return tf.gather(role_of, segment)


@keras.saving.register_keras_serializable(package="textgen")
class LabelMemory(keras.layers.Layer):
    """ids (batch, time) -> the label vector in mind at each step (batch, time, dim), and
    the last step's (batch, dim).

    `roles` (one per id, `textgen.data.items.token_roles`): 0 keeps the label, -1 clears
    it, k >= 1 sets label k, whose vector is row k - 1 of `table`. No label: zeros.
    Before the window: the label `before` (batch,) (0: none), or the vector `initial`
    (batch, dim) (a carried state); default none.
    """

    def __init__(self, roles, labels: int, dim: int, scale: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.roles, self.labels, self.dim, self.scale = list(roles), labels, dim, scale

    def build(self, input_shape):
        init = keras.initializers.RandomUniform(-self.scale, self.scale)
        self.table = self.add_weight(shape=(self.labels, self.dim), initializer=init, name="table")

    def rows(self, dtype: str = "float32") -> tf.Tensor:
        """The vector of each role's label, (labels + 1, dim): row 0 (no label) zeros."""
        table = tf.cast(tf.convert_to_tensor(self.table), dtype)
        return tf.concat([tf.zeros([1, self.dim], table.dtype), table], 0)

    def call(self, ids, before=None, initial=None):
        role = role_in_mind(self.roles, ids)
        vectors = self._vectors(tf.maximum(role, 0))
        if before is not None:
            initial = self._vectors(before[:, None])[:, 0]
        if initial is not None:
            initial = tf.cast(initial, vectors.dtype)
            vectors = tf.where((role == 0)[..., None], initial[:, None, :], vectors)
        return vectors, vectors[:, -1]

    def _vectors(self, index: tf.Tensor) -> tf.Tensor:
        """The rows of `index` (batch, time). A few labels: one-hot times the rows, not a
        gather, whose gradient (a scatter) made an XLA training step with dropout 5x
        slower; many: a gather (the one-hot product would cost more)."""
        if self.labels > ONE_HOT_LABELS:
            return tf.gather(self.rows(self.compute_dtype), index)
        rows = self.rows(self.compute_dtype)
        return tf.einsum("btl,ld->btd", tf.one_hot(index, self.labels + 1, dtype=rows.dtype), rows)

    def compute_output_spec(self, ids, before=None, initial=None):
        shape = tuple(ids.shape)
        return (
            keras.KerasTensor(shape + (self.dim,), self.compute_dtype),
            keras.KerasTensor((shape[0], self.dim), self.compute_dtype),
        )

    def get_config(self):
        config = super().get_config()
        config.update(roles=self.roles, labels=self.labels, dim=self.dim, scale=self.scale)
        return config


def step_memory(roles: tf.Tensor, rows: tf.Tensor, ids: tf.Tensor, held: tf.Tensor) -> tf.Tensor:
    """One step of the memory: the vector (batch, dim) in mind after reading `ids` (batch,)
    with `held` in mind before (as `LabelMemory` over a window)."""
    role = tf.gather(roles, ids)
    return tf.where((role != 0)[:, None], tf.gather(rows, tf.maximum(role, 0)), held)


def memory_of(model) -> LabelMemory | None:
    """The model's label memory, None if it has none (or is no Keras model)."""
    layers = {layer.name: layer for layer in getattr(model, "layers", ())}
    return layers.get(MEMORY_LAYER)


def window_inputs(model, ids, before=None):
    """What `model` reads for windows of `ids` (batch, time): the ids, and with a label
    memory the label in mind before each window (`before`, default none)."""
    if memory_of(model) is None:
        return ids
    if before is None:
        before = tf.zeros([tf.shape(ids)[0]], tf.int32)
    return ids, before
