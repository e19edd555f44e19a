import numpy as np
import pytest
import tensorflow as tf

from textgen.config import ModelConfig
from textgen.models import OneStep, build_model


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_logits_shape_per_cell(cell):
    model = build_model(30, ModelConfig(cell=cell, layers=2, units=16, embedding_dim=8))
    logits = model(tf.zeros((3, 7), tf.int32))
    assert logits.shape == (3, 7, 30)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_one_step_with_carried_state_equals_the_full_sequence(cell):
    model = build_model(
        30, ModelConfig(cell=cell, layers=3, units=16, embedding_dim=8, dropout=0.2)
    )
    ids = np.random.default_rng(0).integers(0, 30, size=(2, 6)).astype(np.int32)
    full = model(ids, training=False).numpy()
    step = OneStep(model)
    state = step.zero_state(2)
    for t in range(6):
        logits, state = step(tf.constant(ids[:, t]), state)
        np.testing.assert_allclose(logits.numpy(), full[:, t], atol=1e-5)
    assert len(state) == 3 and len(state[0]) == (2 if cell == "lstm" else 1)
