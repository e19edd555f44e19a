"""The LiteRT export and its reference sampling loop: the same text as textgen's sampler."""

import json

import pytest

from tests.conftest import run_cli
from textgen.core.errors import ExportError
from textgen.export.litert import export_litert
from textgen.export.litert_sampler import LiteRTSampler
from textgen.runs.numpy_run import NumpyRun

pytest.importorskip("ai_edge_litert", reason="needs ai-edge-litert (pip install -e '.[test]')")


@pytest.mark.slow
@pytest.mark.parametrize(
    "level, cell", [("char", "lstm"), ("char", "gru"), ("word", "gru"), ("subword", "gru")]
)
def test_litert_export_writes_textgens_text(trained_runs, tmp_path, level, cell):
    run_dir = trained_runs(level, cell)
    result = export_litert(run_dir, export_dir=tmp_path / "lite")
    meta = json.loads((result.path / "textgen.json").read_text(encoding="utf-8"))
    assert meta["level"] == level and (result.path / "model.tflite").stat().st_size > 1000
    sampler = LiteRTSampler(result.path)
    run = trained_runs.loaded(level, cell)  # shared: its traced generators too
    prompts = ["ROMEO:", "", "Love the"]
    for prompt in prompts:
        greedy = run.generate([prompt], max_new_tokens=60, temperature=0)[0]
        assert sampler.generate([prompt], max_new_tokens=60, temperature=0) == [greedy]
    seeded = {"max_new_tokens": 60, "temperature": 0.9, "seed": 11}  # row i: stream i
    assert sampler.generate(prompts, **seeded) == run.generate(prompts, **seeded)
    controlled = {**seeded, "repetition_penalty": 1.4, "no_repeat_ngram": 2, "top_p": 1e-40}
    assert sampler.generate(prompts, **controlled) == run.generate(prompts, **controlled)
    searched = {"max_new_tokens": 30, "beams": 3, "repetition_penalty": 1.3}
    assert sampler.generate(prompts, **searched) == run.generate(prompts, **searched)
    excluded = {**seeded, "exclude": ("e", "th")}
    assert sampler.generate(prompts, **excluded) == run.generate(prompts, **excluded)
    included = {**seeded, "include": ("sword", "moon")}  # the NumPy samplers' rule
    expected = NumpyRun(run.folder).generate(prompts, **included)
    assert sampler.generate(prompts, **included) == expected
    printed = run_cli(
        "sample", "--litert", result.path, "--prompt", "ROMEO:", "--temperature", 0,
        "--length", 60,
    ).output  # fmt: skip
    greedy = run.generate(["ROMEO:"], max_new_tokens=60, temperature=0)[0]
    assert printed == f"ROMEO:{greedy}\n"


def test_quantized_exports_are_smaller_and_run(trained_runs, tmp_path):
    run_dir = trained_runs("char", "gru")
    sizes = {}
    for quantize in ("none", "dynamic", "float16"):
        result = export_litert(run_dir, export_dir=tmp_path / quantize, quantize=quantize)
        sizes[quantize] = (result.path / "model.tflite").stat().st_size
        text = LiteRTSampler(result.path).generate(["ROMEO:"], max_new_tokens=40, temperature=0)[0]
        assert len(text) == 40  # (char level: a character per token, no stop strings)
    assert sizes["dynamic"] < sizes["float16"] < sizes["none"]


def test_litert_export_refusals_and_errors(trained_runs, tmp_path):
    run_dir = trained_runs("char", "gru")
    result = run_cli("export", "--run-dir", run_dir, "--format", "litert", "--xla", expect=1)
    assert "--xla: only for the SavedModel export" in result.output
    result = run_cli("export", "--run-dir", run_dir, "--format", "web", "--max-copy", 8, expect=1)
    assert "--max-copy: only for the SavedModel export" in result.output
    export_litert(run_dir, export_dir=tmp_path / "a")
    with pytest.raises(ExportError, match="already exists; pass --force"):
        export_litert(run_dir, export_dir=tmp_path / "a")
    result = run_cli("sample", "--litert", tmp_path, expect=1)
    assert "is not a textgen LiteRT export" in result.output
    result = run_cli("sample", "--litert", tmp_path / "a", "--max-copy", 12, expect=2)
    assert "--max-copy needs the run's training text" in result.output


def test_a_session_over_a_litert_export_writes_what_sample_writes(trained_runs, tmp_path):
    from click.testing import CliRunner

    from textgen.cli.main import cli
    from textgen.generate.cowriting import CoWriting
    from textgen.generate.settings import SamplingSettings

    export_litert(trained_runs("char", "gru"), export_dir=tmp_path / "a")
    options = ["--litert", tmp_path / "a", "--length", 30, "--seed", 2, "--no-repeat-ngram", 3]
    sampled = run_cli("sample", "--prompt", "ROMEO:", *options).output
    args = ["sample", "--interactive", "--prompt", "ROMEO:", *map(str, options)]
    piped = CliRunner().invoke(cli, args, input="/quit\n")
    assert piped.exit_code == 0 and "ROMEO:" + piped.output == sampled
    shown = []
    echo = lambda text="", nl=True, err=False: shown.append((text, err))  # noqa: E731
    writing = CoWriting(LiteRTSampler(tmp_path / "a"), SamplingSettings(max_new_tokens=10), echo)
    writing.line("/max-copy 12")  # a setting this export cannot honour: one line, go on
    assert shown[-1] == ("Error: --max-copy needs the run's training text: sample the run "
                         "folder, not --litert", True)  # fmt: skip
    writing.line("ROMEO:")
    assert len(writing.place.text) > len("ROMEO:") and writing.settings.max_copy == 0


def test_web_export_without_the_npm_runtime_says_how_to_get_it(trained_runs, tmp_path):
    from textgen.export.web import export_web

    with pytest.raises(ExportError, match=r"npm ci --prefix .*textgen/export/web"):
        export_web(trained_runs("char", "gru"), export_dir=tmp_path / "web", node_modules=tmp_path)
    assert not (tmp_path / "web").exists()
