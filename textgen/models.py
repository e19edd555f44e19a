"""The Keras model (Embedding -> N x LSTM|GRU|SimpleRNN -> Dense) and its one-step form."""

from __future__ import annotations

import keras
import tensorflow as tf

from textgen.config import ModelConfig

RNN_LAYERS = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU, "rnn": keras.layers.SimpleRNN}


def build_model(vocab_size: int, config: ModelConfig) -> keras.Model:
    """ids (batch, time) int32 -> next-token logits (batch, time, vocab)."""
    ids = keras.Input(shape=(None,), dtype="int32", name="ids")
    x = keras.layers.Embedding(vocab_size, config.embedding_dim, name="embedding")(ids)
    for i in range(config.layers):
        x = RNN_LAYERS[config.cell](config.units, return_sequences=True, name=f"rnn_{i}")(x)
        if config.dropout:
            x = keras.layers.Dropout(config.dropout, name=f"dropout_{i}")(x)
    logits = keras.layers.Dense(vocab_size, name="logits")(x)
    return keras.Model(ids, logits, name=f"textgen_{config.cell}")


class OneStep(tf.Module):
    """The model advanced one token at a time, with its per-layer state explicit.

    Calls the RNN layers' cells directly (the weights are shared with the Keras model), so
    a graph loop can carry state from token to token instead of re-reading a window.
    State: a tuple with one tuple per layer, `(h, c)` for LSTM and `(h,)` otherwise.
    """

    def __init__(self, model: keras.Model):
        super().__init__(name="one_step")
        self.embedding = model.get_layer("embedding")
        self.cells = [layer.cell for layer in model.layers if isinstance(layer, keras.layers.RNN)]
        self.head = model.get_layer("logits")

    def zero_state(self, batch_size: tf.Tensor) -> tuple[tuple[tf.Tensor, ...], ...]:
        state = []
        for cell in self.cells:
            sizes = cell.state_size if isinstance(cell.state_size, list) else [cell.state_size]
            state.append(tuple(tf.zeros([batch_size, size]) for size in sizes))
        return tuple(state)

    def __call__(self, ids: tf.Tensor, state: tuple) -> tuple[tf.Tensor, tuple]:
        """ids (batch,) int32 -> logits (batch, vocab), the next state."""
        x = self.embedding(ids)  # (batch, embedding_dim)
        new_state = []
        for cell, layer_state in zip(self.cells, state):
            x, cell_state = cell(x, list(layer_state), training=False)  # (batch, units)
            new_state.append(tuple(cell_state) if isinstance(cell_state, list) else (cell_state,))
        return self.head(x), tuple(new_state)
