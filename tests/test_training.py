import json
from unittest.mock import ANY

import numpy as np
import pytest
import tensorflow as tf

import textgen
from textgen.core.errors import CorpusError, RunError
from textgen.runs.folder import RunFolder

from conftest import make_corpus, run_cli, tiny_config


def _rows(run_dir):
    return RunFolder(run_dir).read_log()


def test_run_folder_describes_itself(trained_runs):
    folder = RunFolder(trained_runs("char", "lstm"))
    config = folder.load_config()
    assert config.textgen_version == textgen.__version__
    assert len(config.corpus["sha256"]) == 64
    assert folder.vocab_file.is_file() and folder.weights_path("best")
    assert folder.weights_path("latest") and (folder.tensorboard_dir).is_dir()
    assert [r["epoch"] for r in _rows(folder.path)] == [1, 2]
    assert not list(folder.path.rglob("*.pkl")) and not list(folder.path.rglob("*.pickle"))


def test_reloaded_run_gives_the_same_logits_as_the_trained_model(tmp_path, corpus_file):
    from textgen.data.prepared import prepare_data
    from textgen.training.trainer import Trainer

    config = tiny_config(corpus_file, epochs=1, precision="float32")  # bfloat16: test_precision
    folder = RunFolder(tmp_path / "r")
    folder.path.mkdir()
    prepared = prepare_data(config)
    folder.save_config(config)
    prepared.vocab.save(folder.vocab_file)
    trainer = Trainer(config, folder, prepared, log=lambda _: None, verbose=0)
    trainer.fit()
    ids = tf.constant([[3, 4, 5, 6, 7]])
    trained = trainer.model(ids, training=False).numpy()
    reloaded = textgen.load_run(folder.path, weights="latest", xla=False).model(ids).numpy()
    np.testing.assert_array_equal(trained, reloaded)


def test_training_lowers_the_loss(trained_runs):
    rows = _rows(trained_runs("char", "lstm"))
    assert float(rows[-1]["val_loss"]) < float(rows[0]["val_loss"])


def _with_dropout(config):
    return config.with_overrides(model={"dropout": 0.3})  # so the dropout RNG must resume too


def test_resume_continues_where_it_stopped_and_matches_an_unbroken_run(tmp_path, corpus_file):
    quiet = {"log": lambda _: None, "verbose": 0}
    whole = textgen.train(
        _with_dropout(tiny_config(corpus_file, epochs=3)), run_dir=tmp_path / "whole", **quiet
    )
    part = textgen.train(
        _with_dropout(tiny_config(corpus_file, epochs=2)), run_dir=tmp_path / "part", **quiet
    )
    textgen.train(run_dir=part, resume=True, epochs=3, **quiet)
    whole_rows, part_rows = _rows(whole), _rows(part)
    assert [r["epoch"] for r in part_rows] == [1, 2, 3]
    assert [r["loss"] for r in part_rows] == [r["loss"] for r in whole_rows]
    assert [r["val_loss"] for r in part_rows] == [r["val_loss"] for r in whole_rows]


def test_weight_decay_shrinks_the_weights_and_resumes_exactly(tmp_path, corpus_file):
    quiet = {"log": lambda _: None, "verbose": 0}
    runs = {}
    for decay in (0.0, 0.3):
        config = tiny_config(corpus_file, epochs=2, weight_decay=decay)
        runs[decay] = textgen.train(config, run_dir=tmp_path / f"decay{decay}", **quiet)
    weights = {
        d: {w.path: w.numpy() for w in textgen.load_run(r).model.weights} for d, r in runs.items()
    }
    kernels = [p for p in weights[0.0] if "kernel" in p]
    assert kernels
    norm = lambda d, paths: sum(float(np.sum(weights[d][p] ** 2)) for p in paths)  # noqa: E731
    assert norm(0.3, kernels) < 0.9 * norm(0.0, kernels)
    assert RunFolder(runs[0.3]).load_config().train.weight_decay == 0.3
    # Resumed, AdamW ends where an unbroken run does.
    part = textgen.train(
        tiny_config(corpus_file, epochs=1, weight_decay=0.3), run_dir=tmp_path / "part", **quiet
    )
    textgen.train(run_dir=part, resume=True, epochs=2, **quiet)
    assert [r["loss"] for r in _rows(part)] == [r["loss"] for r in _rows(runs[0.3])]
    assert [r["val_loss"] for r in _rows(part)] == [r["val_loss"] for r in _rows(runs[0.3])]


def test_new_run_refuses_an_existing_run_folder(trained_runs, corpus_file):
    run_dir = trained_runs("char", "lstm")
    before = sorted(p.name for p in run_dir.rglob("*"))
    with pytest.raises(RunError, match="already holds a run"):
        textgen.train(tiny_config(corpus_file), run_dir=run_dir, log=lambda _: None)
    assert sorted(p.name for p in run_dir.rglob("*")) == before


def test_resume_refuses_a_changed_corpus(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text(make_corpus(200))
    run_dir = textgen.train(
        tiny_config(corpus, epochs=1), run_dir=tmp_path / "r", log=lambda _: None, verbose=0
    )
    corpus.write_text(make_corpus(200, seed=1))
    with pytest.raises(CorpusError, match="corpus changed"):
        textgen.train(run_dir=run_dir, resume=True, epochs=2, log=lambda _: None)


def test_early_stopping_stops_when_validation_stops_improving(tmp_path, corpus_file, monkeypatch):
    from textgen.training.trainer import Trainer

    # Validation losses that improve twice, then get worse: with patience 2 the run
    # stops after epoch 4, and the best checkpoint is epoch 2's.
    losses = iter([2.0, 1.5, 1.6, 1.7, 1.8, 1.9])
    monkeypatch.setattr(Trainer, "validation_loss", lambda self: next(losses))
    config = tiny_config(corpus_file, epochs=6, steps_per_epoch=2, patience=2)
    run_dir = textgen.train(config, run_dir=tmp_path / "r", log=lambda _: None, verbose=0)
    rows = _rows(run_dir)
    assert [r["val_loss"] for r in rows] == [2.0, 1.5, 1.6, 1.7]
    assert RunFolder(run_dir).weights_path("best").endswith("ckpt-4")  # step 4: epoch 2


def test_too_short_corpus_is_an_error_and_writes_nothing(tmp_path):
    corpus = tmp_path / "short.txt"
    corpus.write_text("ROMEO: hi\n")
    with pytest.raises(CorpusError, match="too short"):
        textgen.train(tiny_config(corpus), root=tmp_path / "runs", log=lambda _: None)
    assert not (tmp_path / "runs").exists()


def test_ctrl_c_mid_epoch_saves_and_resume_matches_an_unbroken_run(
    tmp_path, corpus_file, monkeypatch
):
    from textgen.training.interrupts import TrainingInterrupted
    from textgen.training.trainer import Trainer

    quiet = {"log": lambda _: None, "verbose": 0}
    config = _with_dropout(tiny_config(corpus_file, epochs=2))  # 15 steps an epoch
    whole = textgen.train(config, run_dir=tmp_path / "whole", **quiet)

    real_step, calls = Trainer._train_step, []

    def ctrl_c_at_step_20(self, iterator):
        calls.append(1)
        if len(calls) == 20:
            raise KeyboardInterrupt
        return real_step(self, iterator)

    monkeypatch.setattr(Trainer, "_train_step", ctrl_c_at_step_20)
    with pytest.raises(TrainingInterrupted):
        textgen.train(config, run_dir=tmp_path / "cut", **quiet)
    monkeypatch.setattr(Trainer, "_train_step", real_step)
    latest = RunFolder(tmp_path / "cut").weights_path("latest")
    assert latest.endswith("ckpt-19")  # 19 steps ran; the 20th was interrupted
    textgen.train(run_dir=tmp_path / "cut", resume=True, **quiet)
    assert _rows(tmp_path / "cut") == [
        {**row, "seconds": ANY, "tokens_per_sec": ANY} for row in _rows(whole)
    ]


def test_a_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(
    tmp_path, corpus_file, monkeypatch
):
    import tensorflow as tf

    from textgen.training.interrupts import TrainingDiverged
    from textgen.training.trainer import Trainer

    quiet = {"log": lambda _: None, "verbose": 0}
    run_dir = textgen.train(tiny_config(corpus_file, epochs=1), run_dir=tmp_path / "r", **quiet)
    good = RunFolder(run_dir).weights_path("latest")
    real_step, calls = Trainer._train_step, []

    def diverge_at_step_4(self, iterator):
        calls.append(1)
        loss = real_step(self, iterator)
        return tf.constant(float("nan")) if len(calls) == 4 else loss

    monkeypatch.setattr(Trainer, "_train_step", diverge_at_step_4)
    with pytest.raises(TrainingDiverged, match="loss became nan at step 19.*--learning-rate"):
        textgen.train(run_dir=run_dir, resume=True, epochs=3, **quiet)
    assert RunFolder(run_dir).weights_path("latest") == good
    textgen.load_run(run_dir, weights="latest", xla=False).generate(["a"], max_new_tokens=5)


@pytest.mark.slow
def test_sigterm_saves_the_run_and_exits_143(tmp_path, corpus_file):
    import os
    import signal
    import subprocess
    import sys
    import time

    command = [
        sys.executable, "-m", "textgen.cli", "train", "--corpus", str(corpus_file),
        "--run-dir", str(tmp_path / "r"), "--seq-len", "24", "--units", "24",
        "--batch-size", "8", "--epochs", "1000", "--steps-per-epoch", "5", "--no-xla",
    ]  # fmt: skip
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        for line in process.stdout:  # wait until training is under way
            if line.startswith("epoch 2:"):
                break
        time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 143, stderr[-2000:]
    assert "Stopped by SIGTERM" in stderr and f"--run-dir {tmp_path / 'r'} --resume" in stderr
    assert RunFolder(tmp_path / "r").weights_path("latest") is not None


def test_stateful_training_carries_the_state_from_window_to_window(corpus_file, tmp_path):
    import numpy as np
    import tensorflow as tf

    from textgen.data.prepared import prepare_data
    from textgen.data.windows import stateful_dataset
    from textgen.model.network import forward_from_state
    from textgen.training.trainer import Trainer

    config = tiny_config(corpus_file, stateful=True, xla=False)
    prepared = prepare_data(config)
    trainer = Trainer(config, RunFolder(tmp_path / "r"), prepared, log=lambda _: None, verbose=0)
    zeros = tuple(tuple(tf.zeros_like(v) for v in layer) for layer in trainer.rnn_state)
    state = zeros

    batches = iter(stateful_dataset(prepared.train_ids, config.data.seq_len, 8))
    for _window in range(3):
        inputs, _ = next(batches)
        _, expected = forward_from_state(trainer.model, inputs, state)  # weights before this step
        trainer._train_step(trainer.iterator)
        for variables, values in zip(trainer.rnn_state, expected):
            for variable, value in zip(variables, values):
                np.testing.assert_allclose(variable.numpy(), value.numpy(), atol=1e-5)
        state = tuple(tuple(tf.identity(v) for v in layer) for layer in trainer.rnn_state)
    assert not np.allclose(state[0][0].numpy(), 0)
    # the first window of the next pass starts from zeros again
    trainer.step.assign(trainer.windows_per_pass)
    inputs, _ = next(iter(stateful_dataset(prepared.train_ids, config.data.seq_len, 8)))
    _, expected = forward_from_state(trainer.model, inputs, zeros)
    trainer._train_step(iter(stateful_dataset(prepared.train_ids, config.data.seq_len, 8)))
    np.testing.assert_allclose(trainer.rnn_state[0][0].numpy(), expected[0][0], atol=1e-5)


def test_stateful_resume_matches_an_unbroken_run(tmp_path, corpus_file):
    quiet = {"log": lambda _: None, "verbose": 0}
    config = tiny_config(corpus_file, epochs=3, steps_per_epoch=7, stateful=True)
    whole = textgen.train(config, run_dir=tmp_path / "whole", **quiet)
    part = textgen.train(
        config.with_overrides(train={"epochs": 2}), run_dir=tmp_path / "part", **quiet
    )
    textgen.train(run_dir=part, resume=True, epochs=3, **quiet)
    assert [r["loss"] for r in _rows(part)] == [r["loss"] for r in _rows(whole)]
    # evaluate scores a stateful run as it was validated: streams, state carried
    result = json.loads(run_cli("evaluate", "--run-dir", whole, "--json", "--samples", "1").output)
    assert result["loss"] == pytest.approx(min(r["val_loss"] for r in _rows(whole)), abs=1e-4)
    assert "state carried" in result["text"]


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_ends_with_an_unbroken_runs_weights(
    tmp_path, corpus_file
):
    """Kill -9 a real `textgen train` 3 times (inside steps, checkpoint writes, epoch-end
    samples, start-up); after each kill `sample` works (once a checkpoint exists) and the
    same command with --resume continues; the final weights equal an uninterrupted run's.

    Kills are placed by the run's own progress (a random number of its output lines, then
    a random delay), not by wall time alone, so they land mid-run on fast and slow machines.
    """
    import os
    import random
    import signal
    import subprocess
    import sys
    import time

    import numpy as np

    def command(run_dir, *extra):
        return [
            sys.executable, "-m", "textgen.cli", "train", "--corpus", str(corpus_file),
            "--run-dir", str(run_dir), "--seq-len", "24", "--units", "24", "--layers", "2",
            "--embedding-dim", "8", "--batch-size", "8", "--epochs", "20",
            "--steps-per-epoch", "6", "--dropout", "0.2", "--no-xla", "--samples", "0", *extra,
        ]  # fmt: skip

    env = dict(os.environ, PYTHONUNBUFFERED="1")
    # The unbroken run goes on beside the killed ones (it only needs to finish first).
    whole = subprocess.Popen(command(tmp_path / "whole"), env=env, stdout=subprocess.DEVNULL)
    rng = random.Random(1)
    cut = tmp_path / "cut"
    kills = 0
    while kills < 3:
        extra = ["--resume"] if RunFolder(cut).exists() else []
        process = subprocess.Popen(
            command(cut, *extra), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
        )
        for _ in range(rng.randint(0, 3)):  # 0: the kill lands in start-up
            process.stdout.readline()
        time.sleep(rng.uniform(0.0, 1.0))
        if process.poll() is not None:  # finished before the kill: go on killing the next
            process.communicate()
            break
        os.kill(process.pid, signal.SIGKILL)
        process.communicate()
        kills += 1
        if RunFolder(cut).weights_path("latest"):
            run_cli("sample", "--run-dir", cut, "--length", 10, "--seed", 1, "--no-xla")
    done = subprocess.run(command(cut, "--resume"), env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert whole.wait(timeout=300) == 0
    assert kills >= 2
    final = textgen.load_run(cut, weights="latest", xla=False).model.get_weights()
    expected = textgen.load_run(tmp_path / "whole", weights="latest", xla=False).model.get_weights()
    for got, want in zip(final, expected):
        np.testing.assert_array_equal(got, want)


def test_a_full_disk_is_one_clear_error_and_keeps_the_last_checkpoint(
    tmp_path, corpus_file, monkeypatch
):
    import errno

    import tensorflow as tf

    quiet = {"log": lambda _: None, "verbose": 0}
    run_dir = textgen.train(tiny_config(corpus_file, epochs=1), run_dir=tmp_path / "r", **quiet)
    good = RunFolder(run_dir).weights_path("latest")

    def disk_full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tf.train.CheckpointManager, "save", disk_full)
    with pytest.raises(RunError, match="No space left on device; the last good checkpoint"):
        textgen.train(run_dir=run_dir, resume=True, epochs=2, **quiet)
    monkeypatch.undo()
    assert RunFolder(run_dir).weights_path("latest") == good
    textgen.train(run_dir=run_dir, resume=True, epochs=2, **quiet)  # and resume works


def test_the_last_epochs_weights_averaged_are_kept_only_if_they_validate_better(
    tmp_path, corpus_file
):
    lines = []
    config = tiny_config(corpus_file, epochs=3, average_last=2)
    run_dir = textgen.train(config, run_dir=tmp_path / "run", log=lines.append, verbose=0)
    (said,) = [line for line in lines if "weights averaged" in line]
    average_loss = float(said.split("validation loss ")[1].split(",")[0])
    run, rows = textgen.load_run(run_dir), _rows(run_dir)
    paths = tf.train.get_checkpoint_state(str(RunFolder(run_dir).latest_dir))
    by_step = {}
    for path in paths.all_model_checkpoint_paths:  # the epochs' ends: steps 15, 30, 45
        tf.train.Checkpoint(model=run.model).read(path).expect_partial()
        by_step[int(path.rsplit("-", 1)[1])] = [w.numpy() for w in run.model.weights]
    assert sorted(by_step) == [15, 30, 45]
    average = [(a + b) / 2 for a, b in zip(by_step[30], by_step[45])]
    best_epoch = min(rows, key=lambda r: r["val_loss"])
    if average_loss < best_epoch["val_loss"]:
        assert "kept as the best weights" in said
        expected = average
    else:
        assert "not kept" in said
        expected = by_step[15 * best_epoch["epoch"]]
    best = textgen.load_run(run_dir)
    for weight, value in zip(best.model.weights, expected):
        np.testing.assert_allclose(weight.numpy(), value, rtol=1e-5, atol=1e-6)


def test_the_averages_of_the_last_two_and_three_epochs_are_each_validated(tmp_path, corpus_file):
    from textgen.evaluate.evaluation import evaluate_run

    lines = []
    config = tiny_config(corpus_file, epochs=3, average_last=3)
    run_dir = textgen.train(config, run_dir=tmp_path / "run", log=lines.append, verbose=0)
    said = [line for line in lines if "weights averaged" in line]
    assert [line.split(" epochs'")[0] for line in said] == ["The last 2", "The last 3"]
    averages = [float(line.split("validation loss ")[1].split(",")[0]) for line in said]
    epochs = [float(row["val_loss"]) for row in _rows(run_dir)]
    best = textgen.load_run(run_dir, xla=False)  # the best of the epochs and the averages
    assert evaluate_run(best, samples=0).loss == pytest.approx(min(*epochs, *averages), abs=1e-4)


def test_average_last_is_checked_against_the_checkpoints_kept():
    from textgen.core.config import RunConfig
    from textgen.core.errors import ConfigError

    with pytest.raises(ConfigError, match="average_last"):
        RunConfig().with_overrides(train={"average_last": 4, "keep_checkpoints": 3})
