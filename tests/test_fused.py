"""The fused CPU layers must compute what Keras' layers compute, gradients included."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from textgen.core.config import ModelConfig
from textgen.model.fused import FusedGRU, FusedLSTM
from textgen.model.network import build_model

PAIRS = {"lstm": (keras.layers.LSTM, FusedLSTM), "gru": (keras.layers.GRU, FusedGRU)}
STATES = {"lstm": 2, "gru": 1}


def _twin_layers(cell: str, units: int, features: int, **kwargs):
    """A Keras layer and a fused one with the same random (non-trivial) weights."""
    plain_cls, fused_cls = PAIRS[cell]
    plain = plain_cls(units, return_sequences=True, return_state=True, **kwargs)
    fused = fused_cls(units, return_sequences=True, return_state=True, **kwargs)
    plain.build((None, None, features))
    fused.build((None, None, features))
    rng = np.random.default_rng(1)
    for a, b in zip(plain.weights, fused.weights):
        value = rng.normal(scale=0.5, size=a.shape).astype(np.float32)
        a.assign(value)
        b.assign(value)
    return plain, fused


def _outputs_and_gradients(layer, x, initial_state):
    with tf.GradientTape() as tape:
        tape.watch([x, *initial_state])
        output, *states = layer(x, initial_state=initial_state, training=True)
        # Weight every output and final state differently, so each gradient path counts.
        loss = tf.reduce_sum(
            tf.square(output) * tf.range(1.0, tf.cast(tf.shape(output)[1], tf.float32) + 1)[:, None]
        )
        loss += sum(tf.reduce_sum(tf.sin(s)) for s in states)
    grads = tape.gradient(loss, [x, *initial_state, *layer.trainable_weights])
    return [output, *states], grads


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_fused_layer_equals_keras_outputs_states_and_gradients(cell):
    plain, fused = _twin_layers(cell, units=12, features=5)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(3, 9, 5)), tf.float32)
    states = [tf.constant(rng.normal(size=(3, 12)), tf.float32) for _ in range(STATES[cell])]
    expected_out, expected_grads = _outputs_and_gradients(plain, x, states)
    out, grads = _outputs_and_gradients(fused, x, states)
    for a, b in zip(expected_out, out):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)
    assert len(grads) == len(expected_grads) == 4 + len(states)  # x, states, 3 weights
    for a, b in zip(expected_grads, grads):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_fused_layer_under_xla_equals_keras(cell):
    plain, fused = _twin_layers(cell, units=8, features=4)
    x = tf.random.stateless_normal((2, 6, 4), seed=[1, 2])
    states = [tf.zeros((2, 8))] * STATES[cell]
    compiled = tf.function(lambda x: _outputs_and_gradients(fused, x, states), jit_compile=True)
    expected_out, expected_grads = _outputs_and_gradients(plain, x, states)
    out, grads = compiled(x)
    np.testing.assert_allclose(expected_out[0].numpy(), out[0].numpy(), atol=1e-5)
    for a, b in zip(expected_grads, grads):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_input_dropout_and_masks_still_work(cell):
    """Cell dropout goes through the fused path; masks fall back to Keras' loop."""
    plain, fused = _twin_layers(cell, units=6, features=3, dropout=0.5)
    x = tf.ones((2, 5, 3))
    keras.utils.set_random_seed(3)
    dropped = fused(x, training=True)[0]
    assert not np.allclose(dropped.numpy(), fused(x, training=False)[0].numpy())
    mask = tf.constant([[True] * 5, [True, True, True, False, False]])
    np.testing.assert_allclose(
        plain(x, mask=mask)[0].numpy(), fused(x, mask=mask)[0].numpy(), atol=1e-5
    )


def test_models_use_the_fused_layers_and_keep_keras_weight_names():
    model = build_model(20, ModelConfig(cell="lstm", layers=2, units=8, embedding_dim=4))
    assert [type(layer) for layer in model.layers if "rnn" in layer.name] == [FusedLSTM] * 2
    assert [w.path for w in model.get_layer("rnn_0").weights] == [
        "rnn_0/lstm_cell/kernel",
        "rnn_0/lstm_cell/recurrent_kernel",
        "rnn_0/lstm_cell/bias",
    ]
