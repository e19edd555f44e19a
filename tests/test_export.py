"""The TF Serving export: signatures, equality with the sampler, the REST protocol."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import tensorflow as tf

from textgen.core.errors import ExportError, RunError, ServerError
from textgen.export.client import RemoteSampler
from textgen.export.saved_model import export_run, next_version

from conftest import run_cli
from serving_standin import ServingStandIn

LOAD_WITHOUT_TEXTGEN = r"""
import json, sys
sys.modules["textgen"] = None   # importing textgen (or Keras) would now fail
sys.modules["keras"] = None
import tensorflow as tf
model = tf.saved_model.load(sys.argv[1])
prompts = tf.constant(["ROMEO:", "", "\u0192\u0192\u0192"])
gen = model.signatures["generate"](
    prompt=prompts,
    max_new_tokens=tf.constant([10, 5, 1000]),
    temperature=tf.constant([0.0, 1.0, -3.0]),
    top_k=tf.constant([0, 3, 0]),
    top_p=tf.constant([1.0, 0.9, 0.5]),
    seed=tf.constant([1, 2, 3], tf.int64),
)
default = model.signatures["serving_default"](prompt=prompts)
score = model.signatures["score"](text=tf.constant(["ROMEO:\nMy love.", ""]))
print(json.dumps({
    "generate": {k: v.numpy().tolist() for k, v in gen.items()},
    "default": sorted(default),
    "score": {k: v.numpy().tolist() for k, v in score.items()},
}, default=lambda b: b.decode()))
"""


def test_export_loads_and_runs_with_tensorflow_alone(char_export):
    done = subprocess.run(
        [sys.executable, "-c", LOAD_WITHOUT_TEXTGEN, str(char_export.path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    gen = out["generate"]
    assert gen["num_tokens"] == [10, 5, 64]  # the third asks for more than the cap (64)
    assert [len(c) for c in gen["completion"]] == [10, 5, 64]
    assert gen["text"][0] == "ROMEO:" + gen["completion"][0]
    assert out["default"] == ["completion", "num_tokens", "text"]
    assert out["score"]["num_tokens"] == [len("ROMEO:\nMy love."), 0]
    assert out["score"]["mean_nll"][0] > 0 and out["score"]["mean_nll"][1] == 0


def test_saved_model_cli_lists_the_three_signatures(char_export):
    done = subprocess.run(
        ["saved_model_cli", "show", "--dir", str(char_export.path), "--all"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    for name in ("serving_default", "generate", "score"):
        assert f"signature_def['{name}']" in done.stdout
    for line in ("inputs['prompt']", "inputs['seed']", "dtype: DT_INT64", "outputs['completion']"):
        assert line in done.stdout


@pytest.mark.parametrize(
    "signature, inputs, output",
    [
        (
            "generate",
            'prompt=["ROMEO:"];max_new_tokens=[7];temperature=[0.8];top_k=[0];top_p=[1.0];seed=[1]',
            "Result for output key num_tokens:\n[7]",
        ),
        ("score", 'text=["ROMEO:"]', "Result for output key num_tokens:\n[6]"),
    ],
)
def test_saved_model_cli_runs_the_export_as_tf_serving_loads_it(
    char_export, signature, inputs, output
):
    """`saved_model_cli run` loads by the SavedModel's saver (in a TF1 session), as
    TensorFlow Serving's C++ loader does, not by the Python object graph: every variable
    the signatures read must be restored that way too."""
    done = subprocess.run(
        ["saved_model_cli", "run", "--dir", str(char_export.path), "--tag_set", "serve"]
        + ["--signature_def", signature, "--input_exprs", inputs],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert output in done.stdout


def test_export_stores_each_weight_once(char_export, trained_runs):
    import numpy as np
    import tensorflow as tf

    from textgen.model.sizes import parameter_count
    from textgen.runs.folder import RunFolder

    folder = RunFolder(trained_runs("char", "lstm"))
    weights = parameter_count(folder.load_vocab().size, folder.load_config().model)
    stored = tf.train.list_variables(str(Path(char_export.path) / "variables" / "variables"))
    values = [shape for name, shape in stored if name.endswith("VARIABLE_VALUE")]
    assert sum(int(np.prod(shape)) for shape in values) == weights


def _post(url: str, body: dict) -> dict:
    request = urllib.request.Request(
        url + ":predict", data=json.dumps(body).encode(), method="POST"
    )
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())


def test_greedy_export_equals_textgen_sample(served, trained_runs):
    result = run_cli(
        "sample",
        "--run-dir",
        trained_runs("char", "lstm"),
        "--prompt",
        "ROMEO:",
        "--length",
        40,
        "--temperature",
        0,
    )
    body = {
        "signature_name": "generate",
        "instances": [
            {
                "prompt": "ROMEO:",
                "max_new_tokens": 40,
                "temperature": 0.0,
                "top_k": 0,
                "top_p": 1.0,
                "seed": 1,
            }
        ],
    }
    (row,) = _post(served.url, body)["predictions"]
    assert row["text"] == result.output.removesuffix("\n")


def generate_remote(url: str, prompts: list[str], **settings) -> list[str]:
    return RemoteSampler(url).generate(prompts, **settings)


def test_export_seeds_match_the_library_and_differ_from_each_other(served, trained_runs):
    run = trained_runs.loaded("char", "lstm")
    local = run.generate(["JULIET:"], max_new_tokens=30, temperature=1.0, seed=5)[0]
    remote = generate_remote(
        served.url, ["JULIET:"] * 2, max_new_tokens=30, temperature=1.0, top_k=0, top_p=1.0, seed=5
    )
    again = generate_remote(
        served.url, ["JULIET:"], max_new_tokens=30, temperature=1.0, top_k=0, top_p=1.0, seed=5
    )
    assert remote[0] == local == again[0]
    assert remote[1] != remote[0]
    # several samples of one prompt: row i draws with (seed, stream i), as in process
    prompts = ["JULIET:", "JULIET:", "ROMEO:"]
    settings = {"max_new_tokens": 30, "temperature": 1.0, "seed": 5}
    assert generate_remote(served.url, prompts, **settings) == run.generate(prompts, **settings)
    jsonl = run_cli(
        "sample", "--server", served.url, "--prompt", "JULIET:", "--num-samples", 2,
        "--length", 30, "--temperature", 1.0, "--seed", 5, "--format", "jsonl",
    ).output  # fmt: skip
    records = [json.loads(line) for line in jsonl.splitlines()]
    assert [r["completion"] for r in records] == run.generate(prompts[:2], **settings)
    assert [r["stream"] for r in records] == [0, 1]


def test_requests_batched_together_get_what_each_gets_alone(served):
    """TF Serving's request batching (--enable_batching) runs several requests as one call,
    their rows concatenated: each row must still get its own text. Rows here differ in
    every setting (greedy, top-k, top-p, repetition controls, lengths up to the cap)."""
    signature = served.model.signatures["generate_controlled"]
    rows = [
        # prompt, max_new_tokens, temperature, top_k, top_p, seed, penalty, window, ngram
        ("ROMEO:", 40, 0.0, 0, 1.0, 1, 1.0, 64, 0),
        ("", 25, 1.0, 5, 1.0, 7, 1.3, 32, 0),
        ("JULIET:\nO", 64, 0.8, 0, 0.9, 3, 1.0, 64, 3),
        ("KING", 1, 1.0, 0, 1.0, 2, 1.0, 64, 0),
        ("ROMEO:", 200, 1.2, 0, 1.0, 1, 1.0, 64, 0),  # over the cap (64)
    ]
    specs = signature.structured_input_signature[1]
    order = ["prompt", "max_new_tokens", "temperature", "top_k", "top_p", "seed",
             "repetition_penalty", "repetition_window", "no_repeat_ngram"]  # fmt: skip
    assert sorted(specs) == sorted(order)

    def call(batch):
        columns = {name: [row[i] for row in batch] for i, name in enumerate(order)}
        out = signature(**{n: tf.constant(columns[n], specs[n].dtype) for n in order})
        return list(zip(out["completion"].numpy().tolist(), out["num_tokens"].numpy().tolist()))

    alone = [call([row])[0] for row in rows]
    assert call(rows) == alone
    assert call(rows[::-1]) == alone[::-1]
    assert [n for _, n in alone] == [40, 25, 64, 1, 64]


def test_readme_request_bodies_work_in_row_and_columnar_form(served):
    row = {
        "signature_name": "generate",
        "instances": [
            {
                "prompt": "ROMEO:",
                "max_new_tokens": 20,
                "temperature": 0.8,
                "top_k": 0,
                "top_p": 0.95,
                "seed": 1,
            },
            {
                "prompt": "JULIET:",
                "max_new_tokens": 20,
                "temperature": 0.8,
                "top_k": 0,
                "top_p": 0.95,
                "seed": 2,
            },
        ],
    }
    predictions = _post(served.url, row)["predictions"]
    assert [sorted(p) for p in predictions] == [["completion", "num_tokens", "text"]] * 2
    columnar = {
        "signature_name": "generate",
        "inputs": {
            "prompt": ["ROMEO:", "JULIET:"],
            "max_new_tokens": [20, 20],
            "temperature": [0.8, 0.8],
            "top_k": [0, 0],
            "top_p": [0.95, 0.95],
            "seed": [1, 2],
        },
    }
    outputs = _post(served.url, columnar)["outputs"]
    assert outputs["text"] == [p["text"] for p in predictions]
    default = _post(served.url, {"instances": [{"prompt": "ROMEO:"}]})["predictions"]
    assert default[0]["text"].startswith("ROMEO:")
    scored = _post(served.url, {"signature_name": "score", "inputs": {"text": ["ROMEO: hi"]}})
    assert scored["outputs"]["num_tokens"] == [9]


# Where the curl requests users copy are written.
DOCUMENTS = [
    Path(__file__).resolve().parents[1] / name for name in ("README.md", "docs/deployment.md")
]


def _curl_bodies(text: str) -> list[dict]:
    return [json.loads(body) for body in re.findall(r"-d '(\{.*?\})'", text, re.DOTALL)]


def test_the_documented_curl_requests_work_as_written(served):
    bodies = [body for doc in DOCUMENTS for body in _curl_bodies(doc.read_text(encoding="utf-8"))]
    assert {"instances", "inputs"} <= {key for body in bodies for key in body}
    for body in bodies:
        answer = _post(served.url, body)
        if "instances" in body:
            assert len(answer["predictions"]) == len(body["instances"])
            assert all("num_tokens" in row for row in answer["predictions"])
        else:
            (first_input,) = list(body["inputs"].values())[:1]
            assert all(len(v) == len(first_input) for v in answer["outputs"].values())


def test_sample_through_the_server_prints_the_completion(served):
    result = run_cli(
        "sample", "--server", served.url, "--prompt", "ROMEO:", "--length", 12, "--temperature", 0
    )
    # the prompt, 12 characters (newlines among them, possibly last), the echo's newline
    assert result.output.startswith("ROMEO:") and len(result.output.removesuffix("\n")) == 18


def test_server_errors_are_one_line(served):
    with pytest.raises(ServerError, match="answered"):
        generate_remote(served.url.replace("textgen", "other"), ["x"])
    result = run_cli("sample", "--server", "http://127.0.0.1:9/v1/models/x", expect=1)
    assert "cannot reach TF Serving" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.slow
@pytest.mark.parametrize("level, cell", [("word", "lstm"), ("word", "gru")])
def test_every_level_and_cell_exports_and_matches_the_sampler(trained_runs, tmp_path, level, cell):
    """One token per loop iteration, which traces faster (the char level: the shared
    export of the LSTM run and the XLA export of the GRU run below; the default loop,
    blocks of tokens: the shared char export; test_generation.py holds the two equal)."""
    run_dir = trained_runs(level, cell)
    result = export_run(run_dir, export_dir=tmp_path, unroll=1)
    run = trained_runs.loaded(level, cell)  # shared: its traced generators too
    expected = run.generate(["ROMEO: love"], max_new_tokens=15, temperature=0.7, seed=9)[0]
    with ServingStandIn(str(result.path)) as standin:
        got = generate_remote(
            standin.url,
            ["ROMEO: love"],
            max_new_tokens=15,
            temperature=0.7,
            top_k=0,
            top_p=1.0,
            seed=9,
        )
    assert got == [expected]


def test_export_versions_and_refusals(trained_runs, tmp_path):
    run_dir = trained_runs("char", "lstm")
    first = export_run(run_dir, export_dir=tmp_path, unroll=1)  # unroll 1: quicker to trace
    assert first.version == 1 and (tmp_path / "textgen" / "1" / "saved_model.pb").is_file()
    (tmp_path / "textgen" / "7").mkdir()  # a version folder written by hand
    assert next_version(tmp_path / "textgen") == 8
    stamp = (first.path / "saved_model.pb").stat().st_mtime_ns
    with pytest.raises(ExportError, match="already exists; pass --force"):
        export_run(run_dir, export_dir=tmp_path, version=1, unroll=1)
    assert (first.path / "saved_model.pb").stat().st_mtime_ns == stamp
    replaced = export_run(run_dir, export_dir=tmp_path, version=1, force=True, unroll=1)
    assert (replaced.path / "saved_model.pb").is_file()
    assert sorted(p.name for p in (tmp_path / "textgen").iterdir()) == ["1", "7"]


def test_export_of_missing_or_incomplete_runs_and_unwritable_dirs(trained_runs, tmp_path):
    with pytest.raises(RunError, match="run folder not found"):
        export_run(tmp_path / "nope")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text("{}")
    with pytest.raises(RunError, match="missing vocab.json"):
        export_run(tmp_path / "half")
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = run_cli(
        "export",
        "--run-dir",
        trained_runs("char", "lstm"),
        "--export-dir",
        blocker / "sub",
        expect=1,
    )
    assert "cannot write to" in result.stderr
    assert blocker.read_text() == "not a directory"


def test_export_cli_prints_docker_and_curl(trained_runs, tmp_path, monkeypatch):
    from textgen.export import saved_model

    monkeypatch.setattr(saved_model, "UNROLL", 1)  # a token per loop iteration: quicker to trace
    result = run_cli(
        "export",
        "--run-dir",
        trained_runs("char", "lstm"),
        "--export-dir",
        tmp_path,
        "--model-name",
        "poet",
    )
    assert "tensorflow/serving" in result.output and "MODEL_NAME=poet" in result.output
    assert "curl" in result.output and "/v1/models/poet:predict" in result.output
    (body,) = _curl_bodies(result.output)
    with ServingStandIn(str(tmp_path / "poet" / "1"), model_name="poet") as standin:
        (row,) = _post(standin.url, body)["predictions"]
    assert row["text"].startswith(body["instances"][0]["prompt"])
    assert (tmp_path / "poet" / "1" / "saved_model.pb").is_file()


def test_stop_strings_end_generation_inside_the_exported_graph(stop_served, trained_runs):
    run = trained_runs.loaded("char", "lstm")
    free = {}  # the first seed whose free text holds the export's stop string past its start
    for seed in range(20):
        free = run.generate(["ROMEO:"], max_new_tokens=60, temperature=1.0, seed=seed)[0]
        if "\n\n" in free[1:]:
            break
    assert "\n\n" in free[1:]
    body = {
        "signature_name": "generate",
        "inputs": {
            "prompt": ["ROMEO:"],
            "max_new_tokens": [60],
            "temperature": [1.0],
            "top_k": [0],
            "top_p": [1.0],
            "seed": [seed],
        },
    }
    outputs = _post(stop_served.url, body)["outputs"]
    assert outputs["completion"] == [free[: free.index("\n\n")]]
    assert outputs["num_tokens"][0] < 60


def test_requests_over_the_caps_are_refused_with_a_message(char_export):
    import tensorflow as tf

    from textgen.core.config import MAX_BATCH, MAX_TEXT_BYTES

    model = tf.saved_model.load(str(char_export.path))
    score = model.signatures["score"]
    assert score(text=tf.constant(["ok"] * MAX_BATCH))["num_tokens"].shape == (MAX_BATCH,)
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"at most {MAX_BATCH} texts"):
        score(text=tf.constant(["ok"] * (MAX_BATCH + 1)))
    with pytest.raises(tf.errors.InvalidArgumentError, match="at most 65536 bytes"):
        model.signatures["serving_default"](prompt=tf.constant(["x" * (MAX_TEXT_BYTES + 1)]))


def test_repetition_controls_in_the_export_equal_the_library(served, trained_runs):
    """`generate_controlled` over REST: the library's text for the same seed and settings;
    out-of-range controls are off, as `generate` (which has no such inputs) is."""
    run = trained_runs.loaded("char", "lstm")
    controls = {"repetition_penalty": 1.5, "repetition_window": 16, "no_repeat_ngram": 3}
    settings = {"max_new_tokens": 40, "temperature": 0.9, "top_k": 0, "top_p": 1.0}
    local = run.generate(["JULIET:"], seed=8, **settings, **controls)[0]
    assert local != run.generate(["JULIET:"], seed=8, **settings)[0]
    remote = generate_remote(served.url, ["JULIET:"], seed=8, **settings, **controls)
    assert remote == [local]
    off = {"repetition_penalty": 0.0, "repetition_window": 0, "no_repeat_ngram": 99}
    row = {"prompt": "JULIET:", "seed": 8, **settings}
    body = {"signature_name": "generate_controlled", "instances": [{**row, **off}]}
    (unchanged,) = _post(served.url, body)["predictions"]
    assert (
        unchanged["completion"] == generate_remote(served.url, ["JULIET:"], seed=8, **settings)[0]
    )


def test_a_subnormal_top_p_means_the_same_through_the_server(served, trained_runs):
    """top_p 1e-40 (a float32 subnormal) keeps only the best token in every sampler; the
    served graph reads it so too, in a raw request as through the client."""
    from textgen.runs.numpy_run import NumpyRun

    run = trained_runs.loaded("char", "lstm")
    settings = {"max_new_tokens": 40, "temperature": 0.8, "top_p": 1e-40, "seed": 1}
    local = run.generate(["JULIET:"], **settings)
    assert local == run.generate(["JULIET:"], max_new_tokens=40, temperature=0)
    assert generate_remote(served.url, ["JULIET:"], **settings) == local
    assert NumpyRun(run.folder).generate(["JULIET:"], **settings) == local
    row = {"prompt": "JULIET:", "max_new_tokens": 40, "temperature": 0.8, "top_k": 0,
           "top_p": 1e-40, "seed": 1}  # fmt: skip
    (answer,) = _post(served.url, {"signature_name": "generate", "instances": [row]})["predictions"]
    assert answer["completion"] == local[0]


@pytest.mark.parametrize("xla", [False, True])
def test_the_default_and_the_xla_export_write_the_librarys_text_and_weigh_the_same(
    trained_runs, char_export, tmp_path, xla
):
    """Whatever loop each export runs (blocks of tokens and frozen kernels without XLA:
    the shared default export of the LSTM run; XLA: a GRU run's), it writes the library's
    text, and saves each weight once."""
    if xla:
        run = trained_runs.loaded("char", "gru")
        result = export_run(run.folder.path, export_dir=tmp_path, xla=True, max_new_tokens_cap=64)
    else:
        run, result = trained_runs.loaded("char", "lstm"), char_export
    prompts = ["ROMEO:", "", "To be"]
    settings = {"max_new_tokens": 40, "temperature": 0.8, "seed": 4}
    model = tf.saved_model.load(str(result.path))
    out = model.signatures["sample"](
        prompt=tf.constant(prompts), max_new_tokens=tf.fill([3], 40),
        temperature=tf.fill([3], 0.8), top_k=tf.fill([3], 0), top_p=tf.fill([3], 1.0),
        seed=tf.fill([3], tf.constant(4, tf.int64)), stream=tf.range(3, dtype=tf.int64),
        repetition_penalty=tf.fill([3], -1.0), repetition_window=tf.fill([3], -1),
        no_repeat_ngram=tf.fill([3], -1), label=tf.fill([3], ""), exclude=tf.fill([3], ""),
        include=tf.fill([3], ""),
    )  # fmt: skip
    assert [c.decode() for c in out["completion"].numpy()] == run.generate(prompts, **settings)
    variables = sum(p.stat().st_size for p in (result.path / "variables").iterdir())
    weights = sum(w.numpy().nbytes for w in run.model.weights)
    assert weights <= variables < 1.2 * weights


def test_the_wheel_carries_every_file_the_web_page_is_built_from():
    """pyproject's package data holds each of the page's own files (a file missing there
    exports fine from a clone and fails from an installed wheel)."""
    import fnmatch
    import tomllib
    from pathlib import Path

    from textgen.export.web import PAGE_FILES

    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["textgen.export"]
    for name in PAGE_FILES:
        assert any(fnmatch.fnmatch(f"web/{name}", pattern) for pattern in patterns), name
