"""Fine-tuning: `train --init-from RUN` starts a new run from a trained one."""

from __future__ import annotations

import collections
import hashlib
import json
import shutil

import numpy as np
import pytest
import tensorflow as tf

import textgen
from textgen.core.config import TrainConfig
from textgen.core.errors import ConfigError, RunError
from textgen.data.vocabulary import Vocabulary, extend_vocabulary
from textgen.runs.folder import RunFolder

from conftest import make_corpus, run_cli

QUIET = {"log": lambda _: None, "verbose": 0}
# Training settings small enough for a test; the model comes from the parent.
SHORT = {"train": {"epochs": 2, "steps_per_epoch": 6, "batch_size": 8, "xla": False}}


def _folder_digest(path) -> str:
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(path)).encode() + file.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def new_corpus(tmp_path_factory):
    """Play-like text with two characters the parent never saw: 'é' and '|'."""
    text = make_corpus(300, seed=5).replace("e ", "é ").replace(",", "|")
    path = tmp_path_factory.mktemp("new") / "new.txt"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def fine_tuned(trained_runs, new_corpus, tmp_path_factory):
    parent = trained_runs("char", "lstm")
    before = _folder_digest(parent)
    run_dir = textgen.train(
        run_dir=tmp_path_factory.mktemp("ft") / "run",
        init_from=parent,
        settings={**SHORT, "data": {"sources": [str(new_corpus)]}},
        **QUIET,
    )
    return parent, run_dir, before


def test_extend_vocabulary_keeps_every_id_and_appends_the_new_tokens_by_frequency():
    parent = Vocabulary("char", ["a", "b", "\n"])
    counts = collections.Counter({"b": 9, "é": 5, "|": 7, "a": 1, "z": 5})
    extended = extend_vocabulary(parent, counts)
    assert extended.tokens == ["a", "b", "\n", "|", "z", "é"]  # ties by token
    assert extend_vocabulary(parent, counts, max_size=6).tokens == ["a", "b", "\n", "|", "z"]
    assert extend_vocabulary(parent, counts, max_size=3).tokens == parent.tokens


def test_a_fine_tune_starts_from_its_parents_weights_with_the_new_tokens_added(fine_tuned):
    parent_dir, run_dir, _ = fine_tuned
    parent = textgen.load_run(parent_dir, xla=False)
    child_folder = RunFolder(run_dir)
    child_vocab = child_folder.load_vocab()
    assert child_vocab.tokens[: len(parent.vocab.tokens)] == parent.vocab.tokens
    assert set(child_vocab.tokens[len(parent.vocab.tokens) :]) == {"é", "|"}
    # The step-0 checkpoint holds the first weights: the parent's, grown by two tokens.
    from textgen.model.network import build_model

    start = build_model(child_vocab.size, child_folder.load_config().model)
    step0 = str(child_folder.latest_dir / "ckpt-0")
    tf.train.Checkpoint(model=start).restore(step0).expect_partial()
    ids = tf.constant([[parent.vocab.start_id, 3, 4, 5, 6, 7]])  # old tokens only
    parent_logits = parent.model(ids).numpy()
    child_logits = start(ids).numpy()
    old = parent.vocab.size
    np.testing.assert_allclose(child_logits[..., :old], parent_logits, rtol=1e-5, atol=1e-5)
    # each new token starts as an average token: its logit is the mean of the old ones
    mean = parent_logits.mean(axis=-1)
    np.testing.assert_allclose(child_logits[..., old], mean, rtol=1e-4, atol=1e-4)


def test_the_lineage_is_recorded_and_the_parent_is_never_written(fine_tuned):
    parent_dir, run_dir, before = fine_tuned
    lineage = RunFolder(run_dir).load_config().parent
    assert lineage["path"] == str(parent_dir.resolve()) and lineage["weights"] == "best"
    config_bytes = (parent_dir / "config.json").read_bytes()
    assert lineage["config_sha256"] == hashlib.sha256(config_bytes).hexdigest()
    assert len(lineage["weights_sha256"]) == 64 and lineage["tokens_added"] == 2
    assert lineage["vocab"] == "extend"
    assert _folder_digest(parent_dir) == before
    info = run_cli("info", "--run-dir", run_dir).output
    assert f"fine-tuned from  {parent_dir.resolve()}" in info and "+ 2 tokens" in info


def test_the_new_characters_can_be_generated_and_the_export_has_them(fine_tuned, tmp_path):
    from textgen.export.saved_model import export_run

    _, run_dir, _ = fine_tuned
    run = textgen.load_run(run_dir, xla=False)
    text = "".join(run.generate([""] * 8, max_new_tokens=200, temperature=1.5, seed=3))
    assert "é" in text or "|" in text
    exported = export_run(run_dir, export_dir=tmp_path, unroll=1)
    served = tf.saved_model.load(str(exported.path)).signatures["generate"]
    answer = served(
        prompt=tf.constant(["NURSE:"]),
        max_new_tokens=tf.constant([30]),
        temperature=tf.constant([0.0]),
        top_k=tf.constant([0]),
        top_p=tf.constant([1.0]),
        seed=tf.constant([1], tf.int64),
    )
    greedy = run.generate(["NURSE:"], max_new_tokens=30, temperature=0)[0]
    assert answer["completion"][0].numpy().decode() == greedy


def test_vocab_keep_reads_new_characters_as_unk(trained_runs, new_corpus, tmp_path):
    parent = trained_runs("char", "lstm")
    run_dir = textgen.train(
        run_dir=tmp_path / "keep",
        init_from=parent,
        vocab="keep",
        settings={**SHORT, "data": {"sources": [str(new_corpus)]}},
        **QUIET,
    )
    assert RunFolder(run_dir).load_vocab() == RunFolder(parent).load_vocab()
    assert RunFolder(run_dir).load_config().parent["tokens_added"] == 0


def test_a_fine_tune_that_lost_its_first_checkpoint_resumes_from_the_parent(
    fine_tuned, new_corpus, tmp_path
):
    """Stopped between writing its folder and its step-0 checkpoint, a fine-tune resumes
    from its parent's weights (from the lineage), as an unbroken fine-tune did."""
    parent_dir, whole, _ = fine_tuned
    cut = tmp_path / "cut"
    shutil.copytree(whole, cut)
    shutil.rmtree(cut / "checkpoints")
    shutil.rmtree(cut / "logs")
    textgen.train(run_dir=cut, resume=True, **QUIET)
    got = [(r["step"], r["loss"], r["val_loss"]) for r in RunFolder(cut).read_log()]
    want = [(r["step"], r["loss"], r["val_loss"]) for r in RunFolder(whole).read_log()]
    assert got == want


def test_settings_that_fix_the_model_cannot_change(trained_runs, new_corpus, tmp_path):
    parent = trained_runs("char", "lstm")
    settings = {"data": {"sources": [str(new_corpus)], "level": "word"}, "model": {"units": 8}}
    with pytest.raises(ConfigError) as err:
        textgen.train(run_dir=tmp_path / "r", init_from=parent, settings=settings, **QUIET)
    assert "units is 24 in the parent run, 8 given" in str(err.value)
    assert "level is 'char' in the parent run, 'word' given" in str(err.value)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    "make_parent, extra, code, message",
    [
        (lambda tmp, run: tmp, [], 1, "is missing config.json"),
        (lambda tmp, run: tmp / "nope", [], 1, "run folder not found"),
        (lambda tmp, run: run, ["--resume"], 2, "give one of them"),
        (lambda tmp, run: run, ["--preset", "quick"], 2, "--preset and --init-from"),
        (lambda tmp, run: run, ["--cell", "gru"], 2, "cell is 'lstm' in the parent run"),
    ],
)
def test_bad_init_from_is_one_line_and_leaves_no_run_folder(
    trained_runs, new_corpus, tmp_path, make_parent, extra, code, message
):
    parent = make_parent(tmp_path, trained_runs("char", "lstm"))
    root = tmp_path / "runs"
    args = ["train", "--init-from", parent, "--corpus", new_corpus, "--root", root, *extra]
    result = run_cli(*args, "--quiet", "--samples", 0, expect=code)
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not root.exists() or not any(root.iterdir())


def test_a_damaged_parent_is_one_line_naming_its_checkpoint(trained_runs, new_corpus, tmp_path):
    damaged = tmp_path / "damaged"
    shutil.copytree(trained_runs("char", "lstm"), damaged)
    for data in damaged.glob("checkpoints/*/*.data-*"):
        data.write_bytes(data.read_bytes()[:100])
    with pytest.raises(RunError, match="cannot load weights from"):
        textgen.train(
            run_dir=tmp_path / "r",
            init_from=damaged,
            settings={**SHORT, "data": {"sources": [str(new_corpus)]}},
            **QUIET,
        )
    assert not (tmp_path / "r").exists()


def test_train_init_from_on_the_command_line(trained_runs, new_corpus, tmp_path):
    parent = trained_runs("char", "lstm")
    root = tmp_path / "runs"
    result = run_cli(
        "train", "--init-from", parent, "--corpus", new_corpus, "--root", root,
        "--epochs", 1, "--steps-per-epoch", 4, "--batch-size", 8, "--no-xla",
        "--samples", 1,
    )  # fmt: skip
    assert "vocabulary extend, " in result.output and "+ 2 new characters" in result.output
    (run_dir,) = root.iterdir()
    config = json.loads((run_dir / "config.json").read_text())
    # training settings are textgen's defaults, not the parent's (its sample_length is 0)
    assert config["train"]["sample_length"] == TrainConfig().sample_length > 0
    assert config["model"]["units"] == 24 and config["parent"]["vocab"] == "extend"
