"""The LiteRT export and its reference sampling loop: the same text as textgen's sampler."""

import json

import numpy as np
import pytest
import tensorflow as tf

import textgen
from tests.conftest import choose, run_cli
from textgen.core.errors import ExportError
from textgen.export.litert import export_litert
from textgen.export.litert_sampler import LiteRTSampler
from textgen.generate import reference as litert_sampler
from textgen.generate.sampling import gumbel_noise, top_filter

pytest.importorskip("ai_edge_litert", reason="needs ai-edge-litert (pip install -e '.[test]')")


def test_noise_equals_the_generators():
    seeds = tf.constant([[7, 0], [2**40 + 3, 0], [0, 0]], tf.int64)
    for step in (0, 1, 999):
        expected = gumbel_noise(seeds, step, 70).numpy()
        for row, (seed, stream) in enumerate(seeds.numpy().tolist()):
            got = litert_sampler.gumbel_noise(seed, stream, step, 70)
            np.testing.assert_allclose(got, expected[row], rtol=1e-5, atol=1e-6)


def test_choosing_equals_the_generators_step():
    rng = np.random.default_rng(0)
    for trial in range(30):
        logits = rng.normal(0, 3, [1, 50]).astype(np.float32)
        temperature = [0.0, 0.7, 1.3][trial % 3]
        top_k, top_p = [(0, 1.0), (5, 1.0), (0, 0.8), (10, 0.5)][trial % 4]
        expected = choose(logits, temperature, top_k, top_p, tf.constant([[trial, 0]], tf.int64))
        got = litert_sampler.choose(logits[0], temperature, top_k, top_p, trial, 0, 0)
        assert got == expected[0]
        if top_k or top_p < 1:
            kept = top_filter(tf.constant(logits), tf.constant([top_k]), tf.constant([top_p]))
            row = logits[0].copy()
            row[0] = -np.inf  # [UNK], which neither filter counts
            filtered = litert_sampler.top_filter(row, top_k, top_p)
            assert np.array_equal(np.isfinite(filtered), np.isfinite(kept.numpy()[0]))


@pytest.mark.slow
@pytest.mark.parametrize("level, cell", [("char", "lstm"), ("char", "gru"), ("word", "gru")])
def test_litert_export_writes_textgens_text(trained_runs, tmp_path, level, cell):
    run_dir = trained_runs(level, cell)
    result = export_litert(run_dir, export_dir=tmp_path / "lite")
    meta = json.loads((result.path / "textgen.json").read_text(encoding="utf-8"))
    assert meta["level"] == level and (result.path / "model.tflite").stat().st_size > 1000
    sampler = LiteRTSampler(result.path)
    run = textgen.load_run(run_dir, xla=False)
    prompts = ["ROMEO:", "", "Love the"]
    for prompt in prompts:
        greedy = run.generate([prompt], max_new_tokens=60, temperature=0)[0]
        assert sampler.generate([prompt], max_new_tokens=60, temperature=0) == [greedy]
    seeded = {"max_new_tokens": 60, "temperature": 0.9, "seed": 11}  # row i: stream i
    assert sampler.generate(prompts, **seeded) == run.generate(prompts, **seeded)
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
    result = run_cli("sample", "--litert", tmp_path / "a", "--repetition-penalty", 1.2, expect=2)
    assert "not in LiteRT exports" in result.output


def test_web_export_without_the_npm_runtime_says_how_to_get_it(trained_runs, tmp_path):
    from textgen.export.web import export_web

    with pytest.raises(ExportError, match=r"npm ci --prefix .*textgen/export/web"):
        export_web(trained_runs("char", "gru"), export_dir=tmp_path / "web", node_modules=tmp_path)
    assert not (tmp_path / "web").exists()
