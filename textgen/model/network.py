"""The Keras model (Embedding -> N x LSTM|GRU|SimpleRNN -> Dense) and its one-step form.

With skip connections (the default) the Dense layer reads every recurrent layer's output.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from textgen.core.config import ModelConfig
from textgen.model.fused import FusedGRU, FusedLSTM
from textgen.model.label_memory import MEMORY_LAYER, LabelMemory

# LSTM and GRU train with a cuDNN-style fused loop on CPUs (textgen.model.fused) and keep
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


def build_model(
    vocab_size: int, config: ModelConfig, roles: list[int] | None = None
) -> keras.Model:
    """ids (batch, time) int32 -> next-token logits (batch, time, vocab). A model with a
    label memory (`config.label_memory` labels) needs each id's `roles`
    (`textgen.data.items.token_roles`)."""
    ids = keras.Input(shape=(None,), dtype="int32", name="ids")
    scale = config.embedding_init
    x = keras.layers.Embedding(
        vocab_size,
        config.embedding_dim,
        embeddings_initializer=keras.initializers.RandomUniform(-scale, scale),
        name="embedding",
    )(ids)
    inputs = ids
    if config.label_memory:  # (ids, the label in mind before each window)
        if roles is None or len(roles) != vocab_size:
            raise ValueError("a model with a label memory needs one role per id")
        before = keras.Input(shape=(), dtype="int32", name="label_before")
        memory = LabelMemory(
            roles, config.label_memory, config.embedding_dim, scale, name=MEMORY_LAYER
        )
        x = keras.layers.Add(name="with_label")([x, memory(ids, before)[0]])
        inputs = [ids, before]
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
            shape = (None, 1, config.units) if config.variational_dropout else None
            x = keras.layers.Dropout(config.dropout, noise_shape=shape, name=f"dropout_{i}")(x)
        outputs.append(x)
    if config.skip_connections and config.layers > 1:
        x = keras.layers.Concatenate(name=SKIP_LAYER)(outputs)
    head_init = keras.initializers.VarianceScaling(config.logits_scale**2, "fan_avg", "uniform")
    logits = keras.layers.Dense(vocab_size, kernel_initializer=head_init, name="logits")(x)
    return keras.Model(inputs, logits, name=f"textgen_{config.cell}")


def forward_from_state(
    model: keras.Model, ids: tf.Tensor, state: tuple, training: bool = False
) -> tuple[tf.Tensor, tuple]:
    """The model's forward pass starting from `state` instead of zeros.

    ids (batch, time) -> logits (batch, time, vocab) and the state after the last token.
    State: one tuple per layer, `(h, c)` for LSTM and `(h,)` otherwise, then `(label,)`
    with a label memory (as `OneStep`). Stateful training (truncated backpropagation
    through time) carries it across windows.
    """
    layers = {layer.name: layer for layer in model.layers}
    x = layers["embedding"](ids)
    final, outputs = [], []
    if MEMORY_LAYER in layers:
        *state, (held,) = state
        vectors, last = layers[MEMORY_LAYER](ids, initial=held)  # (the state carries it)
        x = x + vectors
    for i, layer_state in enumerate(state):
        x, *layer_final = layers[f"rnn_{i}"](x, initial_state=list(layer_state), training=training)
        final.append(tuple(layer_final))
        if f"dropout_{i}" in layers:
            x = layers[f"dropout_{i}"](x, training=training)
        outputs.append(x)
    if SKIP_LAYER in layers:
        x = layers[SKIP_LAYER](outputs)
    if MEMORY_LAYER in layers:
        final.append((last,))
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
