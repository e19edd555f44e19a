"""Sampling without TensorFlow: the NumPy step equals the network's step, the NumPy
sampler writes the TensorFlow generator's text, and `textgen sample` picks it when it
can, falls back when it cannot, and commands that only read files never import
TensorFlow."""

import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import textgen
from tests.conftest import run_cli
from textgen.core.errors import ConfigError, RunError
from textgen.generate.settings import SamplingSettings
from textgen.model.numpy_step import NumpyStep, write_weights
from textgen.model.one_step import OneStep
from textgen.runs.folder import RunFolder
from textgen.runs.numpy_run import NumpyRun
from textgen.runs.open import open_run
from textgen.runs.run import Run

SETTINGS = [
    {"max_new_tokens": 60, "temperature": 0},
    {"max_new_tokens": 60, "temperature": 1.0, "seed": 3},
    {"max_new_tokens": 60, "temperature": 0.8, "top_k": 5, "seed": 4},
    {"max_new_tokens": 60, "temperature": 1.2, "top_p": 0.8, "seed": 5},
    {"max_new_tokens": 80, "temperature": 0.7, "seed": 6, "stop": ["\n\n", "!"]},
    {"max_new_tokens": 60, "temperature": 0, "repetition_penalty": 1.5, "no_repeat_ngram": 2},
    {"max_new_tokens": 60, "temperature": 0.9, "seed": 7, "repetition_window": 8,
     "repetition_penalty": 1.3, "max_copy": 10},
    {"max_new_tokens": 60, "temperature": 0.8, "seed": 1, "top_p": 1e-40},
]


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
def test_the_numpy_step_gives_the_networks_logits(trained_runs, cell):
    run = trained_runs.loaded("char", cell)
    numpy_step, one_step = NumpyStep(run.folder.numpy_weights_file), OneStep(run.model)
    state, numpy_state = one_step.zero_state(1), numpy_step.zero_state()
    for token in [run.vocab.start_id, *run.generator.tokenizer.encode_text("ROMEO: love")]:
        logits, state = one_step(tf.constant([token]), state)
        numpy_logits, numpy_state = numpy_step.step(token, numpy_state)
        np.testing.assert_allclose(numpy_logits, logits[0].numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "level, cell", [("char", "gru"), ("char", "lstm"), ("char", "rnn"), ("word", "gru")]
)
def test_numpy_and_tensorflow_write_the_same_text(trained_runs, level, cell):
    run = trained_runs.loaded(level, cell)
    fast = NumpyRun(run.folder)
    prompts = ["ROMEO:", "", "love the", "ROMEO:"]  # the repeated prompt: another stream
    for settings in SETTINGS:
        assert fast.generate(prompts, **settings) == run.generate(prompts, **settings)
        assert "".join(fast.stream("NURSE:", **settings)) == run.generate(["NURSE:"], **settings)[0]
    for beams in ({"beams": 3}, {"beams": 4, "no_repeat_ngram": 2, "stop": ["\n\n"]}):
        found, expected = (s.search(prompts[:3], max_new_tokens=30, count=2, **beams)
                           for s in (fast, run))  # fmt: skip
        assert [[(b.completion, b.num_tokens) for b in row] for row in found] == [
            [(b.completion, b.num_tokens) for b in row] for row in expected
        ]


# `textgen ARGS` as its console script runs it, saying on exit whether TensorFlow was imported
_RUN = (
    "import atexit, sys\n"
    "said = lambda: sys.stderr.write(f'\\nTENSORFLOW={\"tensorflow\" in sys.modules}\\n')\n"
    "atexit.register(said)\n"
    "sys.argv = ['textgen', *sys.argv[1:]]\n"
    "from textgen.cli import main\n"
    "main()\n"
)


def _textgen(*args):
    """Run `textgen ARGS` in a new process: exit code, stdout, stderr, whether it imported
    TensorFlow."""
    result = subprocess.run(
        [sys.executable, "-c", _RUN, *map(str, args)], capture_output=True, text=True, timeout=300
    )
    errors, _, flag = result.stderr.rpartition("\nTENSORFLOW=")
    return result.returncode, result.stdout, errors, flag.strip() == "True"


def test_sample_answers_without_tensorflow_with_the_generators_text(trained_runs):
    run_dir = trained_runs("char", "gru")
    args = ["sample", "--run-dir", run_dir, "--prompt", "ROMEO:", "--length", 80, "--seed", 2]
    code, fast, _, tensorflow = _textgen(*args)
    assert code == 0 and not tensorflow
    assert fast == run_cli(*args, "--backend", "tensorflow").output
    many = [*args, "--num-samples", 3, "--temperature", 0.9, "--format", "jsonl"]
    code, fast, _, tensorflow = _textgen(*many)
    assert code == 0 and not tensorflow
    assert fast == run_cli(*many, "--backend", "tensorflow").output


def test_sample_falls_back_to_tensorflow_for_what_numpy_lacks(trained_runs):
    run_dir = trained_runs("char", "gru")
    args = ["sample", "--run-dir", run_dir, "--prompt", "ROMEO:", "--length", 40, "--seed", 2]
    controlled = [*args, "--repetition-penalty", 1.3, "--no-repeat-ngram", 3, "--max-copy", 9]
    code, out, _, tensorflow = _textgen(*controlled)  # every setting but beams: no TensorFlow
    assert code == 0 and not tensorflow
    assert out == run_cli(*controlled, "--backend", "tensorflow").output
    searched = [*args, "--beams", 3, "--num-samples", 2, "--no-repeat-ngram", 2]
    code, out, _, tensorflow = _textgen(*searched)  # beams too
    assert code == 0 and not tensorflow
    assert out == run_cli(*searched, "--backend", "tensorflow").output
    code, _, errors, tensorflow = _textgen(*args, "--weights", "latest", "--backend", "numpy")
    assert code == 2 and "--backend numpy cannot serve this: it samples the best" in errors
    assert len(errors.strip().splitlines()) == 1 and not tensorflow
    # what else goes to TensorFlow: other weights, non-ASCII words, many tokens
    folder, word = RunFolder(run_dir), RunFolder(trained_runs("word", "gru"))
    assert isinstance(open_run(folder, weights="latest", xla=False), Run)
    assert isinstance(open_run(word, ["Ñame"], xla=False), Run)
    assert isinstance(open_run(word, ["Name"], xla=False), NumpyRun)
    many = SamplingSettings(max_new_tokens=4096)
    assert isinstance(open_run(folder, ["x"] * 25, many, xla=False), Run)
    assert isinstance(open_run(folder, ["x"] * 25, many, backend="numpy"), NumpyRun)


def test_weights_older_than_the_best_checkpoint_are_not_used(trained_runs, tmp_path):
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(trained_runs("char", "lstm"), run_dir)
    folder = RunFolder(run_dir)
    run = textgen.load_run(run_dir, xla=False)
    write_weights(run.model, folder.numpy_weights_file, "ckpt-0")  # names another checkpoint
    with pytest.raises(RunError, match="older than the best checkpoint"):
        NumpyRun(folder)
    assert isinstance(open_run(folder, xla=False), Run)
    folder.numpy_weights_file.unlink()  # a run from before the file: the same
    with pytest.raises(RunError, match="weights.npz is missing"):
        NumpyRun(folder)
    args = ["sample", "--run-dir", run_dir, "--length", 30, "--seed", 1]
    assert run_cli(*args).output == run_cli(*args, "--backend", "tensorflow").output


def test_a_label_and_settings_are_checked_as_in_process(trained_runs):
    fast = NumpyRun(RunFolder(trained_runs("char", "gru")))
    with pytest.raises(ConfigError, match="not trained on items"):
        fast.generate([""], label="x")
    with pytest.raises(ConfigError, match="no-repeat n-gram size must be"):
        fast.generate([""], no_repeat_ngram=9)


@pytest.mark.parametrize(
    "args",
    [
        ["info"],
        ["--help"],
        ["sample", "--help"],
        ["sample", "--temperature", "-1"],
        ["sample", "--top-p", "2"],
        ["sample", "--run-dir", "no/such/run"],
        ["export", "--max-copy", "1"],
        ["export", "--version", "0"],
        ["train", "--units", "-1"],
        ["train", "--preset", "quick", "--dropout", "1.5"],
    ],
)
def test_commands_that_read_files_never_import_tensorflow(trained_runs, args):
    run_dir = trained_runs("char", "gru")
    if args == ["info"]:
        args = ["info", "--run-dir", run_dir]
    _, _, _, tensorflow = _textgen(*args)
    assert not tensorflow
