"""The Keras model (Embedding -> N x LSTM|GRU|SimpleRNN -> Dense) and its one-step form.

With skip connections (the default) the Dense layer reads every recurrent layer's output.
"""

from __future__ import annotations

import os

import keras
import numpy as np
import tensorflow as tf

from textgen.config import ModelConfig, RunConfig
from textgen.errors import ConfigError
from textgen.fused import FusedGRU, FusedLSTM

# LSTM and GRU train with a cuDNN-style fused loop on CPUs (textgen.fused) and keep
# Keras' own cuDNN path on GPUs; the weights are Keras' either way.
RNN_LAYERS = {"lstm": FusedLSTM, "gru": FusedGRU, "rnn": keras.layers.SimpleRNN}
SKIP_LAYER = "skip_concat"  # joins every recurrent layer's output for the logits layer


@keras.saving.register_keras_serializable(package="textgen")
class ChronoBias(keras.initializers.Initializer):
    """Gate biases that make a fresh LSTM or GRU remember for 1..`span` steps.

    Chrono initialization (Tallec & Ollivier, "Can recurrent neural networks warp time?",
    ICLR 2018): the keep gate's bias is log(u), u ~ Uniform(1, span - 1), so units start
    with memory time scales spread up to `span` steps, where a bias of 0 or 1 starts them
    all at a few steps and the gradient from a distant token vanishes before training can
    lengthen them. LSTM (bias i, f, c, o): f = log(u), i = -f. GRU (reset_after, biases
    (2, 3 x units) as z, r, h; z keeps the old state): the input bias of z is log(u).
    """

    def __init__(self, span: int, seed=None):
        self.span, self.seed = span, seed
        self._uniform = keras.initializers.RandomUniform(1.0, max(span - 1.0, 1.0), seed=seed)

    def __call__(self, shape, dtype=None):
        units = shape[-1] // (4 if len(shape) == 1 else 3)
        keep = keras.ops.log(self._uniform((units,), dtype=dtype))
        zeros = keras.ops.zeros((units,), dtype=dtype)
        if len(shape) == 1:  # LSTM: i, f, c, o
            return keras.ops.concatenate([-keep, keep, zeros, zeros])
        rest = keras.ops.zeros((shape[-1] - units,), dtype=dtype)
        input_bias = keras.ops.concatenate([keep, rest])
        return keras.ops.stack([input_bias, keras.ops.zeros((shape[-1],), dtype=dtype)])

    def get_config(self):
        return {"span": self.span, "seed": self.seed}


def build_model(vocab_size: int, config: ModelConfig) -> keras.Model:
    """ids (batch, time) int32 -> next-token logits (batch, time, vocab)."""
    ids = keras.Input(shape=(None,), dtype="int32", name="ids")
    scale = config.embedding_init
    x = keras.layers.Embedding(
        vocab_size,
        config.embedding_dim,
        embeddings_initializer=keras.initializers.RandomUniform(-scale, scale),
        name="embedding",
    )(ids)
    gates = {}
    if config.memory_span and config.cell != "rnn":
        gates = {"bias_initializer": ChronoBias(config.memory_span)}
        if config.cell == "lstm":
            gates["unit_forget_bias"] = False  # else Keras puts ones over the forget bias
    outputs = []
    for i in range(config.layers):
        layer = RNN_LAYERS[config.cell](
            config.units, return_sequences=True, return_state=True, name=f"rnn_{i}", **gates
        )
        x = layer(x)[0]  # (the final states are for `forward_from_state`)
        if config.dropout:
            x = keras.layers.Dropout(config.dropout, name=f"dropout_{i}")(x)
        outputs.append(x)
    if config.skip_connections and config.layers > 1:
        x = keras.layers.Concatenate(name=SKIP_LAYER)(outputs)
    head_init = keras.initializers.VarianceScaling(config.logits_scale**2, "fan_avg", "uniform")
    logits = keras.layers.Dense(vocab_size, kernel_initializer=head_init, name="logits")(x)
    return keras.Model(ids, logits, name=f"textgen_{config.cell}")


def forward_from_state(
    model: keras.Model, ids: tf.Tensor, state: tuple, training: bool = False
) -> tuple[tf.Tensor, tuple]:
    """The model's forward pass starting from `state` instead of zeros.

    ids (batch, time) -> logits (batch, time, vocab) and the state after the last token.
    State: one tuple per layer, `(h, c)` for LSTM and `(h,)` otherwise (as `OneStep`).
    Stateful training (truncated backpropagation through time) carries it across windows.
    """
    layers = {layer.name: layer for layer in model.layers}
    x = layers["embedding"](ids)
    final, outputs = [], []
    for i, layer_state in enumerate(state):
        x, *layer_final = layers[f"rnn_{i}"](x, initial_state=list(layer_state), training=training)
        final.append(tuple(layer_final))
        if f"dropout_{i}" in layers:
            x = layers[f"dropout_{i}"](x, training=training)
        outputs.append(x)
    if SKIP_LAYER in layers:
        x = layers[SKIP_LAYER](outputs)
    return layers["logits"](x), tuple(final)


def copy_weights_growing_vocabulary(source: keras.Model, target: keras.Model) -> None:
    """Give `target` the weights of `source`, a model of the same shape but for a
    vocabulary with fewer (leading) ids: the old ids' embedding rows and logits columns are
    copied; each new id's row and column (and logits bias) start at the mean of the old
    ones, so the model first treats a new token like an average token, neither favoured nor
    ruled out, and learns what it is from the new text."""
    for old, new in zip(source.weights, target.weights):
        old_value, shape = old.numpy(), tuple(new.shape)
        grown = [axis for axis, (a, b) in enumerate(zip(old_value.shape, shape)) if a != b]
        if not grown:
            new.assign(old_value)
            continue
        (axis,) = grown  # the vocabulary axis: embedding rows, logits columns and bias
        extra = shape[axis] - old_value.shape[axis]
        mean = old_value.mean(axis=axis, keepdims=True)
        new.assign(np.concatenate([old_value, np.repeat(mean, extra, axis=axis)], axis=axis))


def state_sizes(config: ModelConfig) -> list[list[int]]:
    """Per layer, the sizes of its state tensors: [units, units] for LSTM, else [units]."""
    return [[config.units] * (2 if config.cell == "lstm" else 1)] * config.layers


GATES = {"lstm": 4, "gru": 3, "rnn": 1}


def parameter_count(vocab_size: int, config: ModelConfig) -> int:
    """Weights of `build_model(vocab_size, config)`, computed without building it."""
    count = vocab_size * config.embedding_dim + config.head_inputs * vocab_size + vocab_size
    inputs = config.embedding_dim
    for _ in range(config.layers):
        biases = 2 if config.cell == "gru" else 1  # GRU (reset_after): two bias vectors
        count += GATES[config.cell] * config.units * (inputs + config.units + biases)
        inputs = config.units
    return count


def training_memory_bytes(vocab_size: int, config: ModelConfig, batch: int, seq_len: int) -> int:
    """About what training needs: float32 weights, gradients and two Adam moments, plus
    the activations one step keeps for its backward pass (gates, states, logits)."""
    per_token = config.layers * (GATES[config.cell] + 2) * config.units
    per_token += config.embedding_dim + 3 * vocab_size  # embeddings; logits, softmax, grads
    return 4 * (4 * parameter_count(vocab_size, config) + batch * seq_len * per_token)


def check_memory(config: RunConfig, vocab_size: int) -> None:
    """Refuse a model that cannot train in this machine's memory, before anything is written."""
    needed = training_memory_bytes(
        vocab_size, config.model, config.train.batch_size, config.data.seq_len
    )
    available = available_memory_bytes()
    if available and needed > available:
        params = parameter_count(vocab_size, config.model)
        raise ConfigError(
            f"the model is too large for this machine: {params:,} parameters and about "
            f"{needed / 2**30:,.1f} GiB to train (weights, Adam state and the activations of "
            f"a {config.train.batch_size} x {config.data.seq_len} batch), but "
            f"{available / 2**30:,.1f} GiB of memory is available; lower --units, --layers, "
            "--embedding-dim, --batch-size or --seq-len"
        )


def available_memory_bytes() -> int | None:
    """MemAvailable from /proc/meminfo (Linux), else physical memory, else None."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


class OneStep(tf.Module):
    """The model advanced one token at a time, with its per-layer state explicit.

    Shares the Keras model's weights, so a graph loop can carry state from token to
    token instead of re-reading a window. The step is written out with the weights read
    once per loop (`read_weights`, then `step`): a generation loop then runs a handful
    of ops per layer per token, which is what bounds its speed at batch 1. The maths is
    Keras' (tests hold it equal to the model). State: a tuple with one tuple per layer,
    `(h, c)` for LSTM and `(h,)` otherwise.
    """

    # The Keras layers are held, not tracked: a SavedModel saves their weights once, as
    # the tf.Variables that `step` reads (see textgen.export.ServingModule), not twice.
    @tf.__internal__.tracking.no_automatic_dependency_tracking
    def __init__(self, model: keras.Model, frozen: bool = False):
        super().__init__(name="one_step")
        self.embedding = model.get_layer("embedding")
        self.cells = [layer.cell for layer in model.layers if isinstance(layer, keras.layers.RNN)]
        self.kinds = [_cell_kind(cell) for cell in self.cells]
        self.head = model.get_layer("logits")
        self.skip = SKIP_LAYER in {layer.name for layer in model.layers}
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
        return served + [w.value for w in self.head.weights]

    def zero_state(self, batch_size: tf.Tensor) -> tuple[tuple[tf.Tensor, ...], ...]:
        state = []
        for cell in self.cells:
            sizes = cell.state_size if isinstance(cell.state_size, list) else [cell.state_size]
            state.append(tuple(tf.zeros([batch_size, size]) for size in sizes))
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
        return tf.convert_to_tensor(self.embedding.embeddings), tuple(layers), head

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
        embeddings, layers, (head_kernel, head_bias) = weights
        if feature_major:
            axis = 0
            x = tf.transpose(tf.gather(embeddings, ids))  # (embedding_dim, batch)
            project = lambda x, kernel_t: tf.matmul(kernel_t, x)  # noqa: E731
            add_bias = tf.add  # biases are columns
        else:
            axis = 1
            x = tf.gather(embeddings, ids)  # (batch, embedding_dim)
            project = tf.matmul
            add_bias = tf.nn.bias_add
        new_state, outputs = [], []
        for kind, w, layer_state in zip(self.kinds, layers, state):
            h = layer_state[0]
            if kind == "lstm":
                z = add_bias(project(x, w[0]) + project(h, w[1]), w[2])
                i, f, g, o = tf.split(z, 4, axis=axis)  # (batch, units) each, or transposed
                c = tf.sigmoid(f) * layer_state[1] + tf.sigmoid(i) * tf.tanh(g)
                x = tf.sigmoid(o) * tf.tanh(c)
                new_state.append((x, c))
                outputs.append(x)
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
            outputs.append(x)
        if self.skip:
            x = tf.concat(outputs, axis=axis)
        if feature_major:  # (batch, vocab) either way
            return tf.matmul(x, head_kernel, transpose_a=True) + head_bias, tuple(new_state)
        return tf.nn.bias_add(tf.matmul(x, head_kernel), head_bias), tuple(new_state)

    def __call__(self, ids: tf.Tensor, state: tuple) -> tuple[tf.Tensor, tuple]:
        """ids (batch,) int32 -> logits (batch, vocab), the next state."""
        return self.step(self.read_weights(), ids, state)


def _cell_kind(cell) -> str:
    """'lstm', 'gru' or 'rnn', checking the cell is configured as `step` assumes."""
    kind = {"LSTMCell": "lstm", "GRUCell": "gru", "SimpleRNNCell": "rnn"}[type(cell).__name__]
    if kind == "gru" and not cell.reset_after:
        raise ValueError("OneStep needs GRU cells with reset_after=True (Keras' default)")
    return kind
