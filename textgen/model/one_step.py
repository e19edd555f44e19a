"""The model advanced one token at a time, its per-layer state explicit (generation's step)."""

from __future__ import annotations

import keras
import tensorflow as tf

from textgen.model.label_memory import memory_of, step_memory
from textgen.model.network import SKIP_LAYER


class OneStep(tf.Module):
    """The model advanced one token at a time, with its per-layer state explicit.

    Shares the Keras model's weights, so a graph loop can carry state from token to
    token instead of re-reading a window. The step is written out with the weights read
    once per loop (`read_weights`, then `step`): a generation loop then runs a handful
    of ops per layer per token, which is what bounds its speed at batch 1. The maths is
    Keras' (tests hold it equal to the model). State: a tuple with one tuple per layer,
    `(h, c)` for LSTM and `(h,)` otherwise, then `(label,)` if the model has a label
    memory (`textgen.model.label_memory`).
    """

    # The Keras layers are held, not tracked: a SavedModel saves their weights once, as
    # the tf.Variables that `step` reads (see textgen.export.saved_model.ServingModule), not twice.
    @tf.__internal__.tracking.no_automatic_dependency_tracking
    def __init__(self, model: keras.Model, frozen: bool = False):
        super().__init__(name="one_step")
        self.embedding = model.get_layer("embedding")
        self.cells = [layer.cell for layer in model.layers if isinstance(layer, keras.layers.RNN)]
        self.kinds = [_cell_kind(cell) for cell in self.cells]
        self.head = model.get_layer("logits")
        self.skip = SKIP_LAYER in {layer.name for layer in model.layers}
        self.memory = memory_of(model)
        # `frozen` (an export, whose weights no longer change): the kernels transposed
        # once, here, for the feature-major step, which then reads only these.
        self.frozen_kernels = None
        if frozen:
            self.frozen_kernels = [
                tuple(
                    tf.Variable(tf.transpose(w), trainable=False, name=f"layer_{i}_{part}_t")
                    for w, part in zip(cell.weights[:2], ("kernel", "recurrent_kernel"))
                )
                for i, cell in enumerate(self.cells)
            ]

    @property
    def variables_to_serve(self) -> list[tf.Variable]:
        """Every tf.Variable `step` reads, in a fixed order (frozen: the frozen kernels in
        place of the Keras ones, which only the feature-major step reads then)."""
        served = [w.value for w in self.embedding.weights]
        for index, cell in enumerate(self.cells):
            kernels = (
                self.frozen_kernels[index]
                if self.frozen_kernels is not None
                else [w.value for w in cell.weights[:2]]
            )
            served += [*kernels, cell.weights[2].value]
        memory = [self.memory.table.value] if self.memory is not None else []
        return served + [w.value for w in self.head.weights] + memory

    def zero_state(self, batch_size: tf.Tensor) -> tuple[tuple[tf.Tensor, ...], ...]:
        state = []
        for cell in self.cells:
            sizes = cell.state_size if isinstance(cell.state_size, list) else [cell.state_size]
            state.append(tuple(tf.zeros([batch_size, size]) for size in sizes))
        if self.memory is not None:
            state.append((tf.zeros([batch_size, self.memory.dim]),))
        return tuple(state)

    def read_weights(self, feature_major: bool = False) -> tuple:
        """The weights as tensors, arranged for `step` (read once, outside a loop); with
        `feature_major` for `step(..., feature_major=True)`: kernels transposed (the frozen
        ones, else transposed here), biases as columns."""
        column = (lambda b: b[:, None]) if feature_major else (lambda b: b)
        layers = []
        for index, (kind, cell) in enumerate(zip(self.kinds, self.cells)):
            if not feature_major:
                kernel, recurrent = (tf.convert_to_tensor(w) for w in cell.weights[:2])
            elif self.frozen_kernels is not None:  # (the Keras kernels are not read)
                kernel, recurrent = (tf.convert_to_tensor(w) for w in self.frozen_kernels[index])
            else:
                kernel, recurrent = (tf.transpose(w) for w in cell.weights[:2])
            bias = tf.convert_to_tensor(cell.weights[2])
            if kind == "gru":  # input and recurrent biases apart: r scales the latter
                layers.append((kernel, recurrent, column(bias[0]), column(bias[1])))
            else:  # (stacking the kernels would copy megabytes per call: slower)
                layers.append((kernel, recurrent, column(bias)))
        head = (tf.convert_to_tensor(self.head.kernel), tf.convert_to_tensor(self.head.bias))
        memory = ()
        if self.memory is not None:  # each id's role, each role's vector
            memory = (tf.constant(self.memory.roles, tf.int32), self.memory.rows())
        return tf.convert_to_tensor(self.embedding.embeddings), tuple(layers), head, memory

    def step(
        self, weights: tuple, ids: tf.Tensor, state: tuple, feature_major: bool = False
    ) -> tuple[tf.Tensor, tuple]:
        """ids (batch,) int32 -> logits (batch, vocab), the next state.

        State tensors are (batch, units), or with `feature_major` (units, batch) (and
        `weights` from `read_weights(feature_major=True)`). A TensorFlow loop without XLA
        runs the latter faster: the gates split along axis 0 are views, not copies, and
        oneDNN multiplies by a transposed kernel faster (docs/performance.md). XLA runs
        the batch-major step faster. The maths is the same; the sums of a product may
        round differently in the last bit.
        """
        embeddings, layers, _, memory = weights
        x = tf.gather(embeddings, ids)  # (batch, embedding_dim)
        label = ()
        if memory:  # the label in mind, added to the input
            held = state[-1][0]
            held = tf.transpose(held) if feature_major else held
            held = step_memory(*memory, ids, held)  # (no `:=`: AutoGraph cannot read it)
            x = x + held
            label = ((tf.transpose(held) if feature_major else held),)
        if feature_major:
            axis = 0
            x = tf.transpose(x)  # (embedding_dim, batch)
            project = lambda x, kernel_t: tf.matmul(kernel_t, x)  # noqa: E731
            add_bias = tf.add  # biases are columns
        else:
            axis = 1
            project = tf.matmul
            add_bias = tf.nn.bias_add
        new_state = []
        for kind, w, layer_state in zip(self.kinds, layers, state):
            h = layer_state[0]
            if kind == "lstm":
                z = add_bias(project(x, w[0]) + project(h, w[1]), w[2])
                i, f, g, o = tf.split(z, 4, axis=axis)  # (batch, units) each, or transposed
                c = tf.sigmoid(f) * layer_state[1] + tf.sigmoid(i) * tf.tanh(g)
                x = tf.sigmoid(o) * tf.tanh(c)
                new_state.append((x, c))
                continue
            if kind == "gru":
                xz, xr, xh = tf.split(add_bias(project(x, w[0]), w[2]), 3, axis=axis)
                hz, hr, hh = tf.split(add_bias(project(h, w[1]), w[3]), 3, axis=axis)
                z = tf.sigmoid(xz + hz)
                candidate = tf.tanh(xh + tf.sigmoid(xr + hr) * hh)
                x = candidate + z * (h - candidate)  # z * h + (1 - z) * candidate
            else:
                x = tf.tanh(add_bias(project(x, w[0]) + project(h, w[1]), w[2]))
            new_state.append((x,))
        new_state += [label] if label else []
        return self.head_logits(weights, tuple(new_state), feature_major), tuple(new_state)

    def head_logits(self, weights: tuple, state: tuple, feature_major: bool = False) -> tf.Tensor:
        """The logits (batch, vocab) that `step` gave with `state` (the same ops: the same
        numbers), from its layers' outputs."""
        head_kernel, head_bias = weights[2]
        outputs = [layer_state[0] for layer_state in state[: len(self.kinds)]]
        x = tf.concat(outputs, axis=0 if feature_major else 1) if self.skip else outputs[-1]
        if feature_major:  # (batch, vocab) either way
            return tf.matmul(x, head_kernel, transpose_a=True) + head_bias
        return tf.nn.bias_add(tf.matmul(x, head_kernel), head_bias)

    def __call__(self, ids: tf.Tensor, state: tuple) -> tuple[tf.Tensor, tuple]:
        """ids (batch,) int32 -> logits (batch, vocab), the next state."""
        return self.step(self.read_weights(), ids, state)


def _cell_kind(cell) -> str:
    """'lstm', 'gru' or 'rnn', checking the cell is configured as `step` assumes."""
    kind = {"LSTMCell": "lstm", "GRUCell": "gru", "SimpleRNNCell": "rnn"}[type(cell).__name__]
    if kind == "gru" and not cell.reset_after:
        raise ValueError("OneStep needs GRU cells with reset_after=True (Keras' default)")
    return kind
