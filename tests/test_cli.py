"""End-to-end: the `textgen` command as a user runs it (through click's CliRunner)."""

from __future__ import annotations

import pytest

from textgen.core.config import TrainConfig
from textgen.runs.folder import RunFolder

from conftest import run_cli

# A tiny model, XLA off and no closing samples: what most CLI tests need, fast.
TINY = (
    "--seq-len 24 --layers 2 --units 24 --embedding-dim 8 --batch-size 8 --epochs 2 "
    "--steps-per-epoch 10 --no-xla --samples 0"
).split()
SAMPLE = ["sample", "--no-xla"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "level, cell", [("char", "lstm"), ("char", "gru"), ("word", "lstm"), ("word", "gru")]
)
def test_train_then_sample(tmp_path, corpus_file, level, cell):
    root = tmp_path / "runs"
    # The user's defaults (XLA on, closing samples) once; the fast settings for the rest.
    defaults = (level, cell) == ("char", "lstm")
    tiny = [*TINY, "--xla", "--samples", 3] if defaults else TINY
    sample = ["sample"] if defaults else SAMPLE
    result = run_cli(
        "train", "--corpus", corpus_file, "--level", level, "--cell", cell, "--root", root, *tiny
    )
    assert "Total params" in result.output and "epoch 2: loss" in result.output
    assert ("Samples from" in result.output) == defaults
    (run_dir,) = root.iterdir()
    # sample finds the newest run under --root by itself
    one = run_cli(*sample, "--root", root, "--prompt", "ROMEO:", "--length", 30, "--seed", 7)
    assert one.output.startswith("ROMEO:")
    again = run_cli(
        *sample, "--run-dir", run_dir, "--prompt", "ROMEO:", "--length", 30, "--seed", 7
    )
    assert again.output == one.output
    many = run_cli(
        *sample,
        "--root",
        root,
        "--prompt",
        "JULIET:",
        "--num-samples",
        3,
        "--length",
        20,
        "--temperature",
        1.2,
        "--top-k",
        5,
        "--top-p",
        0.9,
        "--seed",
        1,
    )
    assert many.output.count("----- sample") == 3 and many.output.count("JULIET:") >= 3
    info = run_cli("info", "--root", root)
    assert f"{level}," in info.output and cell.upper() in info.output and "epoch 2" in info.output


@pytest.fixture(scope="module")
def root_with_run(tmp_path_factory, trained_runs):
    run_dir = trained_runs("char", "lstm")
    return run_dir.parent


def test_greedy_sample_is_the_same_with_temperature_zero_and_top_k_one(root_with_run):
    args = [*SAMPLE, "--root", root_with_run, "--prompt", "NURSE:", "--length", 40]
    greedy = run_cli(*args, "--temperature", 0)
    top1 = run_cli(*args, "--temperature", 1, "--top-k", 1, "--seed", 99)
    assert greedy.output == top1.output


def test_stop_string_is_not_printed(root_with_run):
    args = [*SAMPLE, "--root", root_with_run, "--prompt", "ROMEO:", "--length", 200, "--seed", 3]
    free = run_cli(*args).output
    stop = free[len("ROMEO:") + 5 : len("ROMEO:") + 7]
    stopped = run_cli(*args, "--stop", stop).output
    assert stopped.removesuffix("\n") == free[: free.index(stop, len("ROMEO:"))]


def test_help_lists_the_contract_options():
    out = run_cli("train", "--help").output
    for option in ["--corpus", "--level", "--cell", "--preset", "--resume", "--patience"]:
        assert option in out
    assert "--top-p" in run_cli("sample", "--help").output


BAD_TRAIN = [
    (["--corpus", "nope.txt"], 1, "corpus not found: nope.txt"),
    (["--level", "byte"], 2, "'byte' is not one of 'char', 'word'"),
    (["--cell", "lstmx"], 2, "'lstmx' is not one of"),
    (["--units", "0"], 2, "units must be a positive number"),
    (["--layers", "-1"], 2, "layers must be a positive number"),
    (["--seq-len", "0"], 2, "seq_len must be a positive number"),
    (["--batch-size", "0"], 2, "batch_size must be a positive number"),
    (["--dropout", "1"], 2, "dropout must be in [0, 1)"),
    (["--dropout", "-0.2"], 2, "dropout must be in [0, 1)"),
    (["--logits-init", "0"], 2, "logits_init must be a positive number"),
]


@pytest.mark.parametrize("args, code, message", BAD_TRAIN)
def test_bad_train_input_is_one_line_on_stderr(tmp_path, corpus_file, args, code, message):
    base = ["train", "--root", tmp_path / "runs", "--corpus", corpus_file]
    result = run_cli(*base, *args, expect=code)
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert message in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "content, code, message",
    [
        (b"", 1, "the corpus is empty"),
        (b"ab\xff\xfecd" * 10, 1, "not UTF-8"),
        (b"ROMEO: hi\n", 2, "too short"),  # too short for the settings: a usage error
    ],
)
def test_bad_corpus_files_are_one_line_errors(tmp_path, content, code, message):
    corpus = tmp_path / "c.txt"
    corpus.write_bytes(content)
    result = run_cli("train", "--corpus", corpus, "--root", tmp_path / "runs", *TINY, expect=code)
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["--temperature", "-1"], 2, "temperature must be >= 0"),
        (["--top-p", "0"], 2, "top_p must be in (0, 1]"),
        (["--top-p", "1.5"], 2, "top_p must be in (0, 1]"),
        (["--num-samples", "0"], 2, "0 is not in the range 1<=x<=100000"),
        (["--repetition-penalty", "0"], 2, "repetition penalty must be > 0"),
        (["--repetition-penalty", "-1.5"], 2, "repetition penalty must be > 0"),
        (["--no-repeat-ngram", "0"], 2, "n-gram size must be 1 to 5"),
        (["--no-repeat-ngram", "-2"], 2, "n-gram size must be 1 to 5"),
        (["--repetition-window", "0"], 2, "repetition window must be 1 to 1024"),
    ],
)
def test_bad_sample_input_is_one_line_on_stderr(root_with_run, args, code, message):
    result = run_cli(*SAMPLE, "--root", root_with_run, *args, expect=code)
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_no_runs_found(tmp_path):
    for command in ("sample", "info"):
        result = run_cli(command, "--root", tmp_path / "empty", expect=1)
        assert "no runs found" in result.stderr and "textgen train" in result.stderr


def test_run_folder_missing_a_file(tmp_path, trained_runs):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(trained_runs("char", "lstm"), broken)
    (broken / "vocab.json").unlink()
    result = run_cli(*SAMPLE, "--run-dir", broken, expect=1)
    assert "missing vocab.json" in result.stderr
    shutil.rmtree(broken / "checkpoints")
    (broken / "vocab.json").write_text("{}")
    result = run_cli("info", "--run-dir", broken, expect=1)
    assert "no checkpoint" in result.stderr


def test_resume_refuses_settings_that_contradict_the_run(trained_runs):
    run_dir = trained_runs("char", "lstm")  # named: other tests add runs beside it
    result = run_cli(
        "train", "--run-dir", run_dir, "--resume", "--units", "8", "--level", "word", expect=2
    )
    assert "units is 24 in the run, 8 given" in result.stderr
    assert "level is 'char' in the run, 'word' given" in result.stderr
    assert result.stderr.count("\n") == 1
    result = run_cli("train", "--run-dir", run_dir, "--resume", "--no-skip-connections", expect=2)
    assert "skip_connections is True in the run, False given" in result.stderr


def test_run_folders_from_before_skip_connections_still_sample(tmp_path, corpus_file):
    """A run written before `skip_connections` existed (its config.json lacks the field)
    has a logits layer that reads only the top layer: it must load as it was trained."""
    import json

    root = tmp_path / "runs"
    run_cli("train", "--corpus", corpus_file, "--root", root, "--no-skip-connections", *TINY)
    (run_dir,) = root.iterdir()
    config = json.loads((run_dir / "config.json").read_text())
    assert config["model"].pop("skip_connections") is False
    (run_dir / "config.json").write_text(json.dumps(config))
    sample = run_cli(*SAMPLE, "--run-dir", run_dir, "--prompt", "ROMEO:", "--length", 20)
    assert sample.output.startswith("ROMEO:")
    assert "skip connections" not in run_cli("info", "--run-dir", run_dir).output


def test_logits_init_option_sets_the_logits_layers_initial_range(tmp_path, corpus_file):
    import json

    import numpy as np

    from textgen.runs.run import load_run

    ranges = {}
    for scale in (1.0, 6.0):
        root = tmp_path / f"runs{scale:g}"
        args = ["--cell", "lstm", "--logits-init", scale, "--epochs", 1, "--steps-per-epoch", 1]
        run_cli("train", "--corpus", corpus_file, "--root", root, *TINY, *args)
        (run_dir,) = root.iterdir()
        assert json.loads((run_dir / "config.json").read_text())["model"]["logits_init"] == scale
        kernel = load_run(run_dir, xla=False).model.get_layer("logits").kernel.numpy()
        ranges[scale] = np.abs(kernel).max()
    assert 4 < ranges[6.0] / ranges[1.0] < 7  # one step moves it little; the start was 6x


def test_resume_accepts_the_same_command_again_and_records_changes(tmp_path, corpus_file):
    import json

    root = tmp_path / "runs"
    command = ["train", "--corpus", corpus_file, "--root", root, *TINY]
    run_cli(*command)
    (run_dir,) = root.iterdir()
    again = run_cli(*command, "--resume", "--epochs", 3, "--learning-rate", 0.001)
    assert "Changed on resume: epochs 2 -> 3" in again.output
    assert f"learning_rate {TrainConfig().learning_rate:g} -> 0.001" in again.output
    assert "epoch 3: loss" in again.output and "epoch 2: loss" not in again.output
    saved = json.loads((run_dir / "config.json").read_text())["train"]
    assert saved["epochs"] == 3 and saved["learning_rate"] == 0.001
    log = RunFolder(run_dir).read_log()
    assert log[-1]["learning_rate"] == 0.001  # the new learning rate is the one used


def test_train_on_tfds_tiny_shakespeare_offline(tmp_path, tiny_shakespeare_manual_dir):
    manual = tiny_shakespeare_manual_dir
    root = tmp_path / "runs"
    run_cli(
        "train",
        "--corpus",
        "tfds:tiny_shakespeare",
        "--tfds-manual-dir",
        manual,
        "--data-dir",
        tmp_path / "data",
        "--root",
        root,
        *TINY,
    )
    info = run_cli("info", "--root", root).output
    assert "tfds:tiny_shakespeare" in info
    assert "1,003,855 train + 55,771 validation characters" in info


def test_damaged_weights_are_one_line_naming_the_file(tmp_path, trained_runs):
    import shutil

    damaged = tmp_path / "damaged"
    shutil.copytree(trained_runs("char", "lstm"), damaged)
    for data in damaged.glob("checkpoints/*/*.data-*"):
        data.write_bytes(data.read_bytes()[:100])
    # the best weights' NumPy copy is intact: `sample` reads it without TensorFlow
    assert run_cli(*SAMPLE, "--run-dir", damaged, "--length", 5).output
    npz = damaged / "checkpoints" / "best" / "weights.npz"
    npz.write_bytes(npz.read_bytes()[:100])  # damaged too: the checkpoint's error
    result = run_cli(*SAMPLE, "--run-dir", damaged, "--length", 5, expect=1)
    assert "cannot load weights from" in result.stderr and "ckpt-" in result.stderr
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1
    result = run_cli("train", "--run-dir", damaged, "--resume", "--quiet", expect=1)
    assert "checkpoints/latest/ckpt-" in result.stderr and "Traceback" not in result.stderr


def test_a_model_too_big_for_memory_is_refused_before_anything_is_written(tmp_path, corpus_file):
    root = tmp_path / "runs"
    args = ["train", "--corpus", corpus_file, "--root", root, *TINY]
    result = run_cli(*args, "--units", 2_000_000_000, expect=2)
    assert "too large for this machine" in result.stderr and "parameters" in result.stderr
    assert "GiB of memory is available" in result.stderr and "Traceback" not in result.stderr
    assert not root.exists()


@pytest.mark.parametrize("length", [0, -1, 100_000_000])
def test_length_out_of_range_names_the_range(root_with_run, length):
    result = run_cli(*SAMPLE, "--root", root_with_run, "--length", length, expect=2)
    assert "1<=x<=4096" in result.stderr


def test_files_mixed_from_two_runs_are_refused_naming_the_file(tmp_path, trained_runs):
    import json
    import shutil

    mixed = tmp_path / "mixed"
    shutil.copytree(trained_runs("char", "lstm"), mixed)
    vocab = json.loads((mixed / "vocab.json").read_text())
    vocab["tokens"] = vocab["tokens"][:-3]  # edited: three tokens fewer
    (mixed / "vocab.json").write_text(json.dumps(vocab))
    for weights in ("best", "latest"):  # weights-only and full checkpoints
        result = run_cli(*SAMPLE, "--run-dir", mixed, "--weights", weights, expect=1)
        assert "vocab.json has" in result.stderr and "different runs" in result.stderr
    shutil.copy(trained_runs("char", "lstm") / "vocab.json", mixed / "vocab.json")
    config = json.loads((mixed / "config.json").read_text())
    config["model"]["units"] = 32  # another run's config
    (mixed / "config.json").write_text(json.dumps(config))
    for weights in ("best", "latest"):
        result = run_cli(*SAMPLE, "--run-dir", mixed, "--weights", weights, expect=1)
        assert "config.json describes another model" in result.stderr
