"""Item corpora and labels: reading, wrapping, holding out, sampling whole items, labels."""

import importlib.util
import json
import random

import pytest
import tensorflow as tf

import textgen
from tests.conftest import built_once, run_cli, tiny_config
from textgen.core.config import DataConfig
from textgen.core.errors import ConfigError, CorpusError
from textgen.data.corpus import load_corpus
from textgen.data.items import (
    ITEM_END,
    ITEM_START,
    Item,
    item_prefix,
    items_text,
    label_token,
    parse_items,
    read_items,
)
from textgen.data.tokenizers import Tokenizer, build_vocabulary
from textgen.evaluate.evaluation import item_figures
from textgen.generate.settings import SamplingSettings

from serving_standin import ServingStandIn


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _kinds_corpus(path, count=300, seed=0):
    """Two kinds of item that look nothing alike: 'soft' (l, m, n, a, o) and 'hard'
    (K, T, X, 7, 9)."""
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        kind = ("soft", "lmnao") if i % 2 else ("hard", "KTX79")
        text = "".join(rng.choice(kind[1]) for _ in range(rng.randint(4, 9)))
        rows.append({"text": text, "kind": kind[0]})
    return _write_jsonl(path, rows)


@pytest.mark.parametrize("level", ["char", "word", "subword"])
def test_items_are_wrapped_in_marker_tokens_that_are_never_printed(level):
    items = [Item("Good night", "verse"), Item("Return the sum.", "doc"), Item("Hello")]
    text = items_text(items, ["doc", "verse"])
    vocab = build_vocabulary(text, level)
    tokenizer = Tokenizer(vocab)
    ids = tokenizer.encode_text(text)
    tokens = [vocab.tokens[i - 1] for i in ids]
    for marker in (ITEM_START, ITEM_END, label_token(["doc", "verse"], "verse")):
        assert marker in tokens  # one token each, at either level
    assert tokenizer.decode(ids) == text  # no spaces added around the markers
    assert [(i.text, i.label) for i in parse_items(text, ["doc", "verse"])] == [
        ("Good night", "verse"),
        ("Return the sum.", "doc"),
        ("Hello", None),
    ]


def test_reading_lines_paragraphs_jsonl_csv_and_labelled_sources(tmp_path):
    lines = tmp_path / "names.txt"
    lines.write_text("Ann\n\n  \nBob\r\nCy\n", encoding="utf-8")
    assert [i.text for i in read_items(lines, "lines", "text", None, None)] == ["Ann", "Bob", "Cy"]
    poems = tmp_path / "poems.txt"
    poems.write_text("Roses red,\nviolets blue.\n\n\nSecond\npoem\n", encoding="utf-8")
    assert [i.text for i in read_items(poems, "paragraphs", "text", None, "poem")] == [
        "Roses red,\nviolets blue.",
        "Second\npoem",
    ]
    records = _write_jsonl(tmp_path / "t.jsonl", [{"body": "a b", "k": "x"}, {"body": 7, "k": 1}])
    assert [(i.text, i.label) for i in read_items(records, None, "body", "k", None)] == [
        ("a b", "x"),
        ("7", "1"),
    ]
    table = tmp_path / "t.csv"
    table.write_text('title,genre\n"Hello, world",greeting\nBye,farewell\n', encoding="utf-8")
    assert [(i.text, i.label) for i in read_items(table, None, "title", "genre", None)] == [
        ("Hello, world", "greeting"),
        ("Bye", "farewell"),
    ]
    poems_corpus = load_corpus(DataConfig(sources=[str(poems)], items="paragraphs"))
    assert poems_corpus.fingerprint()["multiline_items"] is True  # (no stop at line breaks)
    corpus = load_corpus(DataConfig(sources=[f"people={lines}", f"poems={poems}"], items="lines"))
    assert corpus.labels == {"people": 3, "poems": 4}  # lines mode: each poem line an item


@pytest.mark.parametrize(
    "content, arguments, message",
    [
        ('{"text": "ok"}\n{"text": broken\n', ("text", None), r"bad\.jsonl:2: not valid JSON"),
        ('{"text": "ok"}\n["a"]\n', ("text", None), r"bad\.jsonl:2: not a JSON object"),
        ('{"text": "ok"}\n{"txt": "x"}\n', ("text", None), r"bad\.jsonl:2: no field 'text'"),
        ('{"text": "ok", "l": "a"}\n{"text": "x"}\n', ("text", "l"), r"bad\.jsonl:2: no field 'l'"),
        ("", ("text", None), r"bad\.jsonl: no items"),
    ],
)
def test_bad_item_files_name_the_file_and_line(tmp_path, content, arguments, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(CorpusError, match=message):
        read_items(path, None, *arguments, None)


def test_a_missing_csv_column_is_named(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("title,genre\nA,b\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"t\.csv:1: no column 'text' \(columns: title, genre\)"):
        read_items(path, None, "text", None, None)


def test_validation_holds_out_whole_items(tmp_path):
    names = [f"name{i:03d}" for i in range(200)]
    path = tmp_path / "names.txt"
    path.write_text("\n".join(names) + "\n", encoding="utf-8")
    corpus = load_corpus(DataConfig(sources=[str(path)], items="lines", val_fraction=0.1))
    train = [i.text for i in parse_items(corpus.train, [])]
    held = [i.text for i in parse_items(corpus.validation, [])]
    assert len(held) == 20 and len(train) == 180
    assert sorted(train + held) == names  # every item whole, in one split only
    assert corpus.validation.startswith(ITEM_START) and corpus.validation.endswith(ITEM_END + "\n")
    assert corpus.fingerprint()["items"] == {"train": 180, "validation": 20}
    assert corpus.fingerprint()["multiline_items"] is False


@pytest.fixture(scope="module")
def item_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("items")
    corpus = _kinds_corpus(folder / "kinds.jsonl")
    config = tiny_config(corpus, epochs=3, steps_per_epoch=40).with_overrides(
        data={"label_field": "kind"}
    )
    run_dir = textgen.train(config, run_dir=folder / "run", log=lambda _: None, verbose=0)
    return textgen.load_run(run_dir, xla=False)


@pytest.fixture(scope="module")
def item_export(item_run, tmp_path_factory):
    """The item run's default export (a token per loop iteration: quicker to trace) and its
    LiteRT export, built once for both test processes."""
    from textgen.export.litert import export_litert
    from textgen.export.saved_model import export_run

    def build(folder):
        saved = export_run(item_run.folder.path, export_dir=folder, unroll=1)
        if importlib.util.find_spec("ai_edge_litert") is None:
            return saved, None
        return saved, export_litert(item_run.folder.path, export_dir=folder / "lite")

    return built_once(tmp_path_factory, "item-export", build)


def test_samples_are_whole_items_and_labels_steer_them(item_run):
    run = item_run
    assert run.items and run.labels == ["hard", "soft"]
    for label, letters in (("hard", set("KTX79")), ("soft", set("lmnao"))):
        samples = run.generate([""] * 16, max_new_tokens=40, seed=1, label=label)
        assert all("\n" not in s and s for s in samples)  # one item each, ended
        assert not any(ITEM_END in s or ITEM_START in s for s in samples)
        in_kind = sum(c in letters for s in samples for c in s) / sum(len(s) for s in samples)
        assert in_kind > 0.8, (label, samples)
    streamed = "".join(run.stream("", max_new_tokens=40, seed=4, label="soft"))
    assert streamed == run.generate([""], max_new_tokens=40, seed=4, label="soft")[0]


def test_the_label_changes_the_logits(item_run):
    prompts = [item_prefix(item_run.labels, label) for label in ("hard", "soft", None)]
    logits, *_ = item_run.generator.prime(tf.constant(prompts))
    assert not bool(tf.reduce_all(tf.abs(logits[0] - logits[1]) < 1e-4))
    assert not bool(tf.reduce_all(tf.abs(logits[0] - logits[2]) < 1e-4))


def test_a_labelled_run_keeps_the_items_label_in_mind_at_every_step(item_run):
    import numpy as np

    from textgen.data.windows import LabelsBefore
    from textgen.model.label_memory import MEMORY_LAYER, window_inputs
    from textgen.model.network import forward_from_state
    from textgen.model.numpy_step import NumpyStep
    from textgen.model.one_step import OneStep

    run = item_run
    assert run.config.model.label_memory == 2  # hard, soft
    hard, soft = (item_prefix(run.labels, label) for label in ("hard", "soft"))
    text = "K" + soft + "lmna lm" + ITEM_END + "\n" + hard + "KT 79" + ITEM_END + ITEM_START + "ao"
    ids = run.generator.tokenizer.encode_text(text)[None]
    memory = run.model.get_layer(MEMORY_LAYER)
    in_mind, _ = memory(tf.constant(ids))
    rows = memory.rows().numpy()
    expected = [0] * 2 + [2] * 8 + [0] * 3 + [1] * 6 + [0] * 4  # none, soft, cleared, hard, ...
    assert len(expected) == ids.shape[1]
    np.testing.assert_array_equal(in_mind.numpy()[0], rows[expected])
    # a training window that starts inside an item is given the label in mind before it
    before = LabelsBefore(ids[0], memory.roles)(np.arange(len(expected)))
    assert [max(label, 0) for label in [0] + expected[:-1]] == before.tolist()
    for start in (5, 14):
        late, _ = memory(tf.constant(ids[:, start:]), tf.constant(before[start : start + 1]))
        np.testing.assert_array_equal(late.numpy()[0], rows[expected[start:]])
    # one token at a time (in process and in NumPy) and a window split in two agree with it
    whole = run.model(window_inputs(run.model, tf.constant(ids))).numpy()[0]
    one_step, numpy_step = OneStep(run.model), NumpyStep(run.folder.numpy_weights_file)
    state, numpy_state = one_step.zero_state(1), numpy_step.zero_state()
    for t, token in enumerate(ids[0]):
        logits, state = one_step(tf.constant([token]), state)
        numpy_logits, numpy_state = numpy_step.step(int(token), numpy_state)
        np.testing.assert_allclose(logits.numpy()[0], whole[t], atol=1e-4)
        np.testing.assert_allclose(numpy_logits, whole[t], atol=1e-4)
    first, state = forward_from_state(run.model, tf.constant(ids[:, :5]), one_step.zero_state(1))
    second, _ = forward_from_state(run.model, tf.constant(ids[:, 5:]), state)
    np.testing.assert_allclose(np.concatenate([first[0], second[0]]), whole, atol=1e-4)


def test_without_label_input_or_labels_a_model_has_no_label_memory(tmp_path, trained_runs):
    corpus = _kinds_corpus(tmp_path / "kinds.jsonl", count=100)
    config = tiny_config(corpus, epochs=1, steps_per_epoch=2).with_overrides(
        data={"label_field": "kind"}, model={"label_input": False}
    )
    run_dir = textgen.train(config, run_dir=tmp_path / "run", log=lambda _: None, verbose=0)
    run = textgen.load_run(run_dir, xla=False)
    assert run.labels and run.config.model.label_memory == 0
    assert "label_memory" not in {layer.name for layer in run.model.layers}
    assert trained_runs.loaded("char", "lstm").config.model.label_memory == 0  # no labels


def test_unknown_labels_and_labels_for_unlabelled_runs_fail_in_one_line(item_run, trained_runs):
    with pytest.raises(ConfigError, match=r"unknown label 'pink'; this run knows: hard, soft"):
        item_run.generate([""], label="pink")
    result = run_cli("sample", "--run-dir", item_run.folder.path, "--label", "pink", expect=2)
    assert result.output.count("\n") == 1
    result = run_cli("sample", "--run-dir", trained_runs("char", "lstm"), "--label", "x", expect=2)
    assert "not trained on items" in result.output


def test_prompts_file_and_jsonl_output(item_run, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("K\nl\n", encoding="utf-8")
    out = tmp_path / "items.jsonl"
    run_cli(
        "sample", "--run-dir", item_run.folder.path, "--prompts-file", prompts,
        "--num-samples", 3, "--seed", 5, "--label", "hard", "--format", "jsonl",
        "--output", out,
    )  # fmt: skip
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["prompt"] for r in records] == ["K"] * 3 + ["l"] * 3
    assert {r["label"] for r in records} == {"hard"} and {r["seed"] for r in records} == {5}
    expected = item_run.generate(
        ["K"] * 3 + ["l"] * 3, seed=5, label="hard", max_new_tokens=item_run.config.sample.length
    )
    assert [r["completion"] for r in records] == expected
    for seed in range(3):  # items of one line end at a line break too: one item per line
        text = run_cli(
            "sample", "--run-dir", item_run.folder.path, "--num-samples", 5, "--seed", seed
        ).output
        assert len(text.strip("\n").split("\n")) == 5


def test_export_starts_items_and_takes_a_label(item_run, item_export):
    # unroll 1 traces faster; an item ends as a stop string does, inside blocks of 8 tokens
    # too (test_generation.py), and the label is read before the loop
    result, _ = item_export
    loaded = tf.saved_model.load(str(result.path))
    labels = ["hard", "soft", "", "pink"]
    n = len(labels)
    out = loaded.signatures["generate_labelled"](
        prompt=tf.constant(["", "", "K", ""]), max_new_tokens=tf.fill([n], 40),
        temperature=tf.fill([n], 0.0), top_k=tf.fill([n], 0), top_p=tf.fill([n], 1.0),
        seed=tf.fill([n], tf.constant(1, tf.int64)), repetition_penalty=tf.fill([n], 1.0),
        repetition_window=tf.fill([n], 64), no_repeat_ngram=tf.fill([n], 0),
        label=tf.constant(labels),
    )  # fmt: skip
    exported = [c.decode("utf-8") for c in out["completion"].numpy()]
    library = [
        item_run.generate([""], temperature=0, max_new_tokens=40, label="hard")[0],
        item_run.generate([""], temperature=0, max_new_tokens=40, label="soft")[0],
        item_run.generate(["K"], temperature=0, max_new_tokens=40)[0],
        item_run.generate([""], temperature=0, max_new_tokens=40)[0],  # unknown: no label
    ]
    assert exported == library
    assert out["text"].numpy()[2].decode("utf-8") == "K" + library[2]
    with ServingStandIn(str(result.path)) as server:  # as TF Serving would serve it
        printed = run_cli(
            "sample", "--server", server.url, "--label", "soft", "--temperature", 0,
            "--length", 40, "--num-samples", 2,
        ).output  # fmt: skip
    assert printed == f"{library[1]}\n{library[1]}\n"


def test_litert_export_writes_whole_items_of_a_label(item_run, item_export):
    pytest.importorskip("ai_edge_litert", reason="needs ai-edge-litert")
    from textgen.export.litert_sampler import LiteRTSampler

    sampler = LiteRTSampler(item_export[1].path)
    for label in ("hard", "soft", None):
        expected = item_run.generate([""], temperature=0, max_new_tokens=40, label=label)[0]
        assert sampler.generate([""], max_new_tokens=40, temperature=0, label=label) == [expected]
    seeded = item_run.generate([""] * 3, max_new_tokens=40, seed=9, label="soft")
    assert sampler.generate([""] * 3, max_new_tokens=40, seed=9, label="soft") == seeded
    with pytest.raises(ConfigError, match="unknown label 'pink'; this run knows: hard, soft"):
        sampler.generate([""], label="pink")


def test_info_and_evaluate_describe_items(item_run):
    info = run_cli("info", "--run-dir", item_run.folder.path).output
    assert "hard (150), soft (150)" in info and "the label at every step" in info
    report = json.loads(
        run_cli("evaluate", "--run-dir", item_run.folder.path, "--samples", 6, "--json").output
    )
    assert 0 <= report["novelty"] <= 1 and report["item_lengths"]["training_median"] >= 4
    assert set(report["label_loss"]) == {"with_label", "without_label"}


def test_novelty_and_lengths_by_hand():
    novelty, lengths = item_figures(["Ann", "Bob", "Zed", "Bo"], ["Ann", "Bob", "Cyrus"])
    assert novelty == 0.5
    assert lengths == {
        "sampled_mean": 2.75,
        "sampled_median": 3.0,
        "training_mean": 11 / 3,
        "training_median": 3.0,
    }


def test_a_bad_item_corpus_leaves_no_run_folder(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "a"}\nnot json\n', encoding="utf-8")
    result = run_cli("train", "--corpus", bad, "--root", tmp_path / "runs", expect=1)
    assert "bad.jsonl:2: not valid JSON" in result.output
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_the_numpy_sampler_writes_the_items_of_a_label_as_the_generator_does(item_run):
    from textgen.runs.numpy_run import NumpyRun

    fast = NumpyRun(item_run.folder)
    for label in ("hard", "soft", None):
        settings = {"max_new_tokens": 40, "temperature": 0.9, "seed": 3, "label": label}
        assert fast.generate([""] * 3, **settings) == item_run.generate([""] * 3, **settings)
    with pytest.raises(ConfigError, match="unknown label 'pink'"):
        fast.generate([""], label="pink")


def test_a_co_writing_session_starts_items_of_its_label(item_run):
    from textgen.generate.cowriting import CoWriting
    from textgen.generate.settings import SamplingSettings
    from textgen.runs.numpy_run import NumpyRun

    shown = []
    settings = SamplingSettings(max_new_tokens=40, temperature=0)
    writing = CoWriting(
        NumpyRun(item_run.folder), settings, lambda text="", **_: shown.append(text)
    )
    for label in ("hard", "soft"):
        writing.line("/reset")  # a new text: as `sample` starts one
        writing.line(f"/label {label}")
        shown.clear()
        writing.line("")  # a new item of the label, continued
        expected = item_run.generate([""], max_new_tokens=40, temperature=0, label=label)[0]
        assert "".join(shown) == expected
    writing.line("/label pink")  # one line, the session goes on
    assert "unknown label 'pink'" in shown[-1]
    # label guidance: the session carries the text read without its label too
    settings = {"max_new_tokens": 40, "temperature": 0.9, "label": "soft"}
    seed = next(  # a seed whose guided item differs from the unguided one
        seed for seed in range(20)
        if item_run.generate(["m"], seed=seed, label_strength=3.0, **settings)
        != item_run.generate(["m"], seed=seed, **settings)
    )  # fmt: skip
    guided = item_run.generate(["m"], seed=seed, label_strength=3.0, **settings)
    commands = ("/reset", "/temperature 0.9", f"/seed {seed}", "/label soft", "/label-strength 3")
    for command in commands:
        writing.line(command)
    shown.clear()
    writing.line("m")
    assert "".join(shown) == guided[0]
    writing.line("/label -")  # no label, no strength (no error)
    writing.line("/label-strength 2")
    assert "--label-strength steers a --label" in shown[-1]


def test_beam_search_finds_whole_items_of_the_label_ranked_per_token(item_run):
    for label, letters in (("hard", set("KTX79")), ("soft", set("lmnao"))):
        (beams,) = item_run.search([""], beams=4, count=4, max_new_tokens=40, label=label)
        assert len(beams) >= 2
        for beam in beams:
            text = beam.completion
            assert text and "\n" not in text and ITEM_END not in text and ITEM_START not in text
            assert beam.num_tokens < 40  # ended by the item's end, which it counts
            assert sum(c in letters for c in text) / len(text) > 0.8, (label, beams)
        means = [b.log_probability / b.num_tokens for b in beams]
        assert means == sorted(means, reverse=True)


def test_label_guidance_writes_the_same_text_in_every_backend(item_run, item_export):
    from textgen.export.client import RemoteSampler
    from textgen.runs.numpy_run import NumpyRun

    run, numpy_run = item_run, NumpyRun(item_run.folder)
    settings = {"max_new_tokens": 40, "seed": 3, "label": "soft", "temperature": 0.9}
    plain = run.generate([""] * 6, label_strength=1.0, **settings)
    guided = run.generate([""] * 6, label_strength=3.0, **settings)
    assert guided != plain  # the twin's logits change the draws
    default = run.generate([""] * 6, **settings)  # the run's default strength: 2
    assert run.config.sample.label_strength == 2.0
    assert default == run.generate([""] * 6, label_strength=2.0, **settings) != plain
    assert numpy_run.generate([""] * 6, **settings) == default
    assert numpy_run.generate([""] * 6, label_strength=3.0, **settings) == guided
    assert "".join(numpy_run.stream("", label_strength=3.0, **settings)) == guided[0]
    assert "".join(run.stream("", label_strength=3.0, **settings)) == guided[0]
    result, lite_export = item_export
    with ServingStandIn(str(result.path)) as standin:
        remote = RemoteSampler(standin.url)
        assert remote.generate([""] * 6, label_strength=3.0, **settings) == guided
        assert remote.generate([""] * 6, label_strength=1.0, **settings) == plain
        assert remote.generate([""] * 6, **settings) == default
        # rows with and without guidance in one request
        assert remote.generate(["", "K"], label_strength=3.0, **settings)[0] == guided[0]
        # streamed: chunks of the `continue` signatures, the twin carried in the state
        assert "".join(remote.stream("", label_strength=3.0, **settings)) == guided[0]
        assert "".join(remote.stream("", label_strength=1.0, **settings)) == plain[0]
        assert "".join(remote.stream("", **settings)) == default[0]
        asked = SamplingSettings(label_strength=3.0, **settings)
        chunk, text = remote.continue_text("", b"", asked, chunk_tokens=3), ""
        for _ in range(20):  # 3 tokens a call
            text += chunk.completion
            if chunk.done:
                break
            chunk = remote.continue_text("", chunk.state, asked, chunk_tokens=3)
        assert chunk.done and text + chunk.pending == guided[0] and len(guided[0]) > 3
    pytest.importorskip("ai_edge_litert", reason="the LiteRT interpreter is not installed")
    from textgen.export.litert_sampler import LiteRTSampler

    lite = LiteRTSampler(lite_export.path)
    assert lite.generate([""] * 6, label_strength=3.0, **settings) == guided
    assert lite.generate([""] * 6, **settings) == default


def test_label_strength_errors_are_one_line(item_run):
    run_dir = item_run.folder.path
    for args, message in (
        (["--label-strength", "2"], "--label-strength steers a --label"),
        (["--label", "soft", "--label-strength", "0"], "label strength must be in"),
        (["--label", "soft", "--label-strength", "11"], "label strength must be in"),
    ):
        result = run_cli("sample", "--run-dir", run_dir, *args, expect=2)
        assert message in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("labels", [3, 70])  # a one-hot product, a gather (many labels)
def test_the_label_memory_sets_keeps_and_clears_the_label_by_hand(labels):
    import numpy as np

    from textgen.model.label_memory import LabelMemory

    roles = [0, 0, -1, 1, 2, labels]  # ids 0-1 keep, 2 clears, 3.. set labels 1, 2, last
    ids = np.array([[0, 3, 1, 1, 4, 2, 0, 5, 1], [1, 1, 5, 0, 2, 3, 0, 0, 1]], np.int32)
    memory = LabelMemory(roles, labels, 4)
    vectors, last = memory(tf.constant(ids), tf.constant([2, 0]))  # rows begun: 2, none
    expected = [[2, 1, 1, 1, 2, 0, 0, labels, labels], [0, 0, labels, labels, 0, 1, 1, 1, 1]]
    rows = memory.rows().numpy()
    np.testing.assert_allclose(vectors.numpy(), rows[np.array(expected)], atol=1e-6)
    np.testing.assert_allclose(last.numpy(), rows[[labels, 1]], atol=1e-6)


def test_a_fine_tune_keeps_its_parents_label_tokens_when_a_new_label_sorts_first(
    item_run, tmp_path
):
    """The parent's labels keep their tokens (and ids); a new label ("bold", sorted
    before them) takes the next token, not one of theirs."""
    rows = [{"text": "ABBA", "kind": "bold"}, {"text": "lmno", "kind": "soft"}] * 60
    corpus = _write_jsonl(tmp_path / "more.jsonl", rows)
    run_dir = textgen.train(
        run_dir=tmp_path / "child", init_from=item_run.folder.path, log=lambda _: None,
        verbose=0, settings={"data": {"sources": [str(corpus)]},
                             "train": {"epochs": 1, "steps_per_epoch": 2, "batch_size": 8}},
    )  # fmt: skip
    child = textgen.load_run(run_dir, xla=False)
    assert child.labels == ["hard", "soft", "bold"]
    for label in ("hard", "soft"):
        token = label_token(item_run.labels, label)
        assert label_token(child.labels, label) == token
        assert child.vocab.tokens.index(token) == item_run.vocab.tokens.index(token)
