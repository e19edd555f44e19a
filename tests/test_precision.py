"""Training in bfloat16 (textgen.training.precision): float32 weights, bfloat16 arithmetic,
float32 validation; resumable and exact like a float32 run."""

import numpy as np
import pytest
import tensorflow as tf

import textgen
from textgen.core.errors import ConfigError
from textgen.runs.folder import RunFolder
from textgen.training.precision import cpu_has_bfloat16, resolve

from conftest import run_cli, tiny_config

QUIET = {"log": lambda _: None, "verbose": 0}


def _cpuinfo(tmp_path, flags: str):
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu sse2 {flags}\n")
    return path


def test_the_cpu_flags_decide_what_auto_means(tmp_path):
    assert cpu_has_bfloat16(_cpuinfo(tmp_path, "avx512f avx512_bf16 avx512_vnni"))
    assert cpu_has_bfloat16(_cpuinfo(tmp_path, "amx_tile amx_bf16"))
    assert not cpu_has_bfloat16(_cpuinfo(tmp_path, "avx2 avx512f avx512_vnni"))
    assert not cpu_has_bfloat16(tmp_path / "no-such-file")
    assert resolve("float32", 512) == "float32" and resolve("bfloat16", 64) == "bfloat16"
    assert resolve("auto", 512) == ("bfloat16" if cpu_has_bfloat16() else "float32")
    assert resolve("auto", 128) == "float32"  # narrow layers: float32 with XLA is faster


def test_an_unknown_precision_is_one_line_and_exit_2(tmp_path, corpus_file):
    with pytest.raises(ConfigError, match="precision must be one of auto, float32, bfloat16"):
        tiny_config(corpus_file, precision="half")
    result = run_cli("train", "--corpus", corpus_file, "--precision", "half",
                     "--run-dir", tmp_path / "r", expect=2)  # fmt: skip
    assert "half" in result.output and "Traceback" not in result.output


def _trainer(config, path):
    from textgen.data.prepared import prepare_data
    from textgen.training.trainer import Trainer

    folder = RunFolder(path)
    folder.path.mkdir()
    prepared = prepare_data(config)
    folder.save_config(config)
    prepared.vocab.save(folder.vocab_file)
    return Trainer(config, folder, prepared, **QUIET)


def test_bfloat16_computes_in_bfloat16_and_keeps_float32_weights(tmp_path, corpus_file):
    trainer = _trainer(tiny_config(corpus_file, epochs=1, precision="bfloat16"), tmp_path / "r")
    assert trainer.model.compute_dtype == "bfloat16"
    assert {w.dtype for w in trainer.model.weights} == {"float32"}
    assert trainer.scoring_model is not trainer.model
    assert trainer.scoring_model.compute_dtype == "float32"
    before = [w.numpy() for w in trainer.model.trainable_weights]
    trainer.fit()
    after = [w.numpy() for w in trainer.model.trainable_weights]
    assert all(not np.array_equal(a, b) for a, b in zip(before, after))
    # What the run reports is the float32 reading of its weights: as a reloaded run reads
    ids = tf.constant([[3, 4, 5, 6, 7]])
    reloaded = textgen.load_run(trainer.folder.path, weights="latest", xla=False).model(ids)
    scored = trainer.scoring_model(ids, training=False)  # synced at the epoch's validation
    np.testing.assert_array_equal(scored.numpy(), reloaded.numpy())
    rough = trainer.model(ids, training=False)
    assert rough.dtype == tf.bfloat16
    np.testing.assert_allclose(tf.cast(rough, tf.float32).numpy(), reloaded.numpy(), atol=0.1)
    from textgen.evaluate.evaluation import evaluate_run

    best = textgen.load_run(trainer.folder.path, weights="best", xla=False)
    reported = float(RunFolder(trainer.folder.path).read_log()[0]["val_loss"])
    assert evaluate_run(best, samples=0).loss == pytest.approx(reported, abs=1e-4)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_bfloat16_learns_as_float32_does(tmp_path, corpus_file, cell):
    losses = {}
    for precision in ("float32", "bfloat16"):
        config = tiny_config(corpus_file, cell=cell, epochs=2, precision=precision)
        run_dir = textgen.train(config, run_dir=tmp_path / precision, **QUIET)
        rows = RunFolder(run_dir).read_log()
        losses[precision] = [float(r["val_loss"]) for r in rows]
    assert losses["bfloat16"][-1] < losses["bfloat16"][0]
    assert losses["bfloat16"][-1] == pytest.approx(losses["float32"][-1], abs=0.05)


def test_bfloat16_resume_matches_an_unbroken_run(tmp_path, corpus_file):
    config = tiny_config(corpus_file, epochs=3, precision="bfloat16")
    config = config.with_overrides(model={"dropout": 0.3})
    whole = textgen.train(config, run_dir=tmp_path / "whole", **QUIET)
    first = textgen.train(config.with_overrides(train={"epochs": 2}), run_dir=tmp_path / "part",
                          **QUIET)  # fmt: skip
    textgen.train(run_dir=first, resume=True, epochs=3, **QUIET)
    assert [r["loss"] for r in RunFolder(first).read_log()] == [
        r["loss"] for r in RunFolder(whole).read_log()
    ]
    a = textgen.load_run(whole, weights="latest", xla=False).model.get_weights()
    b = textgen.load_run(first, weights="latest", xla=False).model.get_weights()
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_bfloat16_trains_stateful_and_labelled_runs(tmp_path, corpus_file):
    stateful = tiny_config(corpus_file, epochs=1, precision="bfloat16", stateful=True)
    run_dir = textgen.train(stateful, run_dir=tmp_path / "stateful", **QUIET)
    assert np.isfinite(float(RunFolder(run_dir).read_log()[-1]["val_loss"]))
    items = tmp_path / "items.jsonl"
    lines = [f'{{"text": "def f{i}(x): return x", "label": "code"}}' for i in range(60)]
    lines += [f'{{"text": "the licence grants {i} rights", "label": "prose"}}' for i in range(60)]
    items.write_text("\n".join(lines) + "\n")
    labelled = tiny_config(items, epochs=1, precision="bfloat16")
    labelled = labelled.with_overrides(data={"label_field": "label"})
    run_dir = textgen.train(labelled, run_dir=tmp_path / "labelled", **QUIET)
    run = textgen.load_run(run_dir, xla=False)
    assert run.model.compute_dtype == "float32"
    assert float(RunFolder(run_dir).read_log()[-1]["val_loss"]) < 4.0
