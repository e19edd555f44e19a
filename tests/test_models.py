import numpy as np
import pytest
import tensorflow as tf

from textgen.core.config import ModelConfig
from textgen.model.network import build_model
from textgen.model.one_step import OneStep
from textgen.model.sizes import parameter_count


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_logits_shape_per_cell(cell):
    model = build_model(30, ModelConfig(cell=cell, layers=2, units=16, embedding_dim=8))
    logits = model(tf.zeros((3, 7), tf.int32))
    assert logits.shape == (3, 7, 30)


@pytest.mark.parametrize("skip", [True, False])
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_one_step_with_carried_state_equals_the_full_sequence(cell, skip):
    config = ModelConfig(
        cell=cell, layers=3, units=16, embedding_dim=8, dropout=0.2, skip_connections=skip
    )
    model = build_model(30, config)
    ids = np.random.default_rng(0).integers(0, 30, size=(2, 6)).astype(np.int32)
    full = model(ids, training=False).numpy()
    step = OneStep(model)
    state = step.zero_state(2)
    for t in range(6):
        logits, state = step(tf.constant(ids[:, t]), state)
        np.testing.assert_allclose(logits.numpy(), full[:, t], atol=1e-5)
    assert len(state) == 3 and len(state[0]) == (2 if cell == "lstm" else 1)


@pytest.mark.parametrize("frozen", [False, True])
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("skip", [True, False])
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_the_feature_major_step_equals_the_full_sequence(cell, skip, batch, frozen):
    """The generation loop without XLA steps with (units, batch) state: same logits,
    and the same state transposed; frozen (an export), from kernels transposed once."""
    config = ModelConfig(cell=cell, layers=2, units=16, embedding_dim=8, skip_connections=skip)
    model = build_model(30, config)
    ids = np.random.default_rng(1).integers(0, 30, size=(batch, 6)).astype(np.int32)
    full = model(ids, training=False).numpy()
    step = OneStep(model, frozen=frozen)
    weights, weights_t = step.read_weights(), step.read_weights(feature_major=True)
    state = step.zero_state(batch)
    state_t = tf.nest.map_structure(tf.transpose, state)
    for t in range(6):
        logits, state = step.step(weights, tf.constant(ids[:, t]), state)
        logits_t, state_t = step.step(weights_t, tf.constant(ids[:, t]), state_t, True)
        np.testing.assert_allclose(logits_t.numpy(), full[:, t], atol=1e-5)
        for a, b in zip(tf.nest.flatten(state), tf.nest.flatten(state_t)):
            assert b.shape == (16, batch)
            np.testing.assert_allclose(tf.transpose(b).numpy(), a.numpy(), atol=1e-6)


def test_a_frozen_step_keeps_the_weights_it_was_made_with():
    """Frozen is for an export: later training does not reach its feature-major step."""
    model = build_model(30, ModelConfig(cell="gru", layers=1, units=8, embedding_dim=4))
    frozen, live = OneStep(model, frozen=True), OneStep(model)
    ids, state = tf.constant([3]), tf.nest.map_structure(tf.transpose, live.zero_state(1))
    before = frozen.step(frozen.read_weights(True), ids, state, True)[0].numpy()
    kernel = model.get_layer("rnn_0").cell.kernel
    kernel.assign(kernel + 1.0)
    after = frozen.step(frozen.read_weights(True), ids, state, True)[0].numpy()
    moved = live.step(live.read_weights(True), ids, state, True)[0].numpy()
    np.testing.assert_array_equal(after, before)
    assert np.abs(moved - before).max() > 1e-3


@pytest.mark.parametrize("layers", [1, 3])
@pytest.mark.parametrize("skip", [True, False])
def test_skip_connections_feed_every_layer_to_the_logits(skip, layers):
    config = ModelConfig(
        cell="lstm", layers=layers, units=16, embedding_dim=8, skip_connections=skip
    )
    model = build_model(30, config)
    head_inputs = 16 * layers if skip else 16
    assert config.head_inputs == head_inputs
    assert model.get_layer("logits").kernel.shape == (head_inputs, 30)
    assert parameter_count(30, config) == model.count_params()
    # With skips the lowest layer reaches the logits directly: cut the top layer off from
    # the layers below, and the logits still move when the lowest one changes.
    ids = np.arange(12, dtype=np.int32).reshape(2, 6)
    top = model.get_layer(f"rnn_{layers - 1}").cell
    top.kernel.assign(tf.zeros_like(top.kernel))  # the top layer no longer reads below
    before = model(ids).numpy()
    first = model.get_layer("rnn_0").cell
    first.bias.assign(first.bias + 1.0)
    moved = np.abs(model(ids).numpy() - before).max() > 1e-3
    assert moved == (skip or layers == 1)


def _biases(cell, memory_span):
    config = ModelConfig(cell=cell, layers=1, units=64, embedding_dim=8, memory_span=memory_span)
    return build_model(20, config).get_layer("rnn_0").cell.bias.numpy()


def test_chrono_init_spreads_lstm_forget_biases_up_to_the_memory_span():
    bias = _biases("lstm", 100)
    i, f, c, o = np.split(bias, 4)
    assert 0 <= f.min() and f.max() <= np.log(99) and f.std() > 0.3
    np.testing.assert_allclose(i, -f)
    assert not c.any() and not o.any()
    keras_default = _biases("lstm", 0)
    np.testing.assert_array_equal(np.split(keras_default, 4)[1], 1.0)  # unit_forget_bias


def test_defaults_start_with_long_memories_and_large_embeddings():
    # The settings measured on the long-range probe (README): chrono gates up to 100 steps
    # and token embeddings at U(-1, 1), not Keras' U(-0.05, 0.05).
    config = ModelConfig(units=64, embedding_dim=32)
    assert config.memory_span == 100 and config.embedding_init == 1.0
    embeddings = build_model(500, config).get_layer("embedding").embeddings.numpy()
    assert 0.45 < embeddings.std() < 0.7 and np.abs(embeddings).max() <= 1.0
    keras_scale = ModelConfig(units=64, embedding_dim=32, embedding_init=0.05)
    assert np.abs(build_model(500, keras_scale).get_layer("embedding").embeddings).max() <= 0.05


def test_logits_layer_starts_at_logits_init_times_glorots_range():
    glorot = np.sqrt(6 / (64 + 500))  # Keras' Glorot-uniform limit for a (64, 500) kernel
    for scale in (1.0, 3.0):
        config = ModelConfig(layers=1, units=64, embedding_dim=32, logits_init=scale)
        kernel = build_model(500, config).get_layer("logits").kernel.numpy()
        assert np.abs(kernel).max() <= scale * glorot
        assert kernel.std() == pytest.approx(scale * glorot / np.sqrt(3), rel=0.05)
    # per-cell defaults, as measured (README): 8x for the LSTM, Glorot's for the others
    assert ModelConfig(cell="lstm").logits_scale == 8.0
    assert ModelConfig(cell="gru").logits_scale == ModelConfig(cell="rnn").logits_scale == 1.0
    assert ModelConfig(cell="gru", logits_init=2.0).logits_scale == 2.0


def test_chrono_init_sets_the_gru_update_gate_bias():
    bias = _biases("gru", 50)  # (2, 3 * units): input and recurrent biases of z, r, h
    z = bias[0, :64]
    assert 0 <= z.min() and z.max() <= np.log(49) and z.std() > 0.3
    assert not bias[0, 64:].any() and not bias[1].any()
    assert not _biases("gru", 0).any()


@pytest.mark.parametrize("variational", [False, True])
def test_variational_dropout_drops_the_same_units_at_every_step(variational):
    config = ModelConfig(
        layers=2, units=16, embedding_dim=8, dropout=0.5, variational_dropout=variational
    )
    model = build_model(20, config)
    layer = model.get_layer("dropout_0")
    kept = layer(tf.ones([4, 30, 16]), training=True).numpy() != 0  # (batch, time, units)
    same_at_every_step = (kept == kept[:, :1]).all()
    assert same_at_every_step == variational
    assert 0.3 < kept.mean() < 0.7  # about half the units, either way
    assert (layer(tf.ones([4, 30, 16]), training=False).numpy() == 1).all()
