"""The labels' contrast objective: windows read with their labels swapped, the model
trained to tell its own labels' reading from the swapped one."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import tensorflow as tf

import textgen
from tests.conftest import run_cli, tiny_config
from textgen.core.config import RunConfig
from textgen.core.errors import ConfigError
from textgen.data.items import ITEM_END, item_prefix
from textgen.model.label_memory import MEMORY_LAYER, window_inputs
from textgen.training.label_contrast import LabelContrast


def _ordered_corpus(path, count=400, seed=0):
    """Two kinds of item from the same letters, told apart only by their order: 'up'
    items climb (a..f), 'down' items fall; the first letter does not tell them apart."""
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        letters = sorted(rng.sample("abcdef", rng.randint(3, 6)), reverse=bool(i % 2))
        rows.append({"text": "".join(letters), "kind": "down" if i % 2 else "up"})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _train(corpus, folder, contrast, **train):
    train = {"epochs": 2, "steps_per_epoch": 60, "label_contrast": contrast, **train}
    config = tiny_config(corpus, **train)
    config = config.with_overrides(data={"label_field": "kind"}, model={"cell": "gru"})
    return textgen.train(config, run_dir=folder, log=lambda _: None, verbose=0)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return _ordered_corpus(tmp_path_factory.mktemp("ordered") / "ordered.jsonl")


def _gap(run, contrast: LabelContrast, items: list[tuple[str, str]]) -> float:
    """Mean over items of log p(item | its label) - log p(item | the other label)."""
    loss = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="none")
    gaps = []
    for text, label in items:
        ids = run.generator.tokenizer.encode_text(item_prefix(run.labels, label) + text + ITEM_END)
        inputs = window_inputs(run.model, tf.constant(ids[None, :-1]))
        targets = tf.constant(ids[None, 1:])
        own = loss(targets, run.model(inputs))
        swapped = loss(targets, run.model(contrast.swapped(tuple(inputs))))
        gaps.append(float(tf.reduce_sum(swapped - own)))
    return float(np.mean(gaps))


def test_swapping_moves_every_label_to_the_next_and_leaves_the_rest(corpus, tmp_path):
    run = textgen.load_run(_train(corpus, tmp_path / "r", 0.05), xla=False)
    assert "label contrast 0.05" in run_cli("info", "--run-dir", run.folder.path).output
    roles = run.model.get_layer(MEMORY_LAYER).roles
    contrast = LabelContrast(roles, 1.0)
    down, up = (item_prefix(run.labels, label) for label in ("down", "up"))
    text = "ab" + up + "abc" + ITEM_END + down + "fed"
    ids = run.generator.tokenizer.encode_text(text)[None]
    swapped_ids, swapped_before = contrast.swapped((tf.constant(ids), tf.constant([2])))
    expected = run.generator.tokenizer.encode_text("ab" + down + "abc" + ITEM_END + up + "fed")
    assert swapped_ids.numpy()[0].tolist() == list(expected)
    assert swapped_before.numpy().tolist() == [1]  # the label in mind before: 2 -> 1
    # a label in mind where the memory keeps one: before the window's first marker too
    mask = contrast.labelled((tf.constant(ids), tf.constant([2]))).numpy()[0]
    in_mind = run.model.get_layer(MEMORY_LAYER)(tf.constant(ids), tf.constant([2]))[0]
    assert mask.tolist() == (np.abs(in_mind.numpy()[0]).sum(-1) > 0).astype(float).tolist()
    assert contrast.labelled((tf.constant(ids[:, :2]), tf.constant([0]))).numpy().sum() == 0
    # the term: none without a label in mind, smaller the better the own labels read
    own, other = tf.fill([2, ids.shape[1]], 1.0), tf.fill([2, ids.shape[1]], 2.0)
    inputs = (tf.constant(np.concatenate([ids[:, :2], ids[:, :2]])), tf.constant([0, 1]))
    term = contrast.per_window(inputs, own[:, :2], other[:, :2]).numpy()
    assert term[0] == 0 and 0 < term[1] < np.log(2)
    assert contrast.per_window(inputs, other[:, :2], own[:, :2]).numpy()[1] > np.log(2)


def test_the_contrast_makes_the_label_tell_more(corpus, tmp_path):
    """Same seed, same steps: the items read likelier under their own label than under
    the other one by more with the contrast than without it."""
    items = [(json.loads(line)["text"], json.loads(line)["kind"]) for line in open(corpus)][:60]
    gaps = {}
    for weight in (0.0, 0.5):
        run = textgen.load_run(_train(corpus, tmp_path / f"w{weight}", weight), xla=False)
        roles = run.model.get_layer(MEMORY_LAYER).roles
        gaps[weight] = _gap(run, LabelContrast(roles, 1.0), items)
    assert gaps[0.5] > 1.2 * gaps[0.0] > 0, gaps  # (measured: 17.8 against 11.7 nats)


def test_a_contrast_run_resumes_to_the_weights_of_an_unbroken_one(corpus, tmp_path):
    whole = _train(corpus, tmp_path / "whole", 0.05)
    part = _train(corpus, tmp_path / "part", 0.05, epochs=1)
    textgen.train(run_dir=part, resume=True, epochs=2, log=lambda _: None, verbose=0)
    a, b = (textgen.load_run(d, weights="latest").model.get_weights() for d in (whole, part))
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_label_contrast_settings(corpus, tmp_path):
    result = run_cli("train", "--corpus", corpus, "--label-contrast", 2, expect=2)
    assert "label_contrast must be in [0, 1], got 2.0" in result.output
    assert len(result.output.strip().splitlines()) == 1
    with pytest.raises(ConfigError, match="label_contrast"):
        RunConfig().with_overrides(train={"label_contrast": -0.1})
    # runs from before the contrast keep training without it
    old = RunConfig().to_dict()
    del old["train"]["label_contrast"]
    assert RunConfig.from_dict(old).train.label_contrast == 0.0
    assert RunConfig().train.label_contrast == 0.05
