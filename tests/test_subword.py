"""Subword runs (`--level subword`): SentencePiece pieces learned from the run's text,
read the same by the NumPy form (the `sentencepiece` package) and the graph form
(TensorFlow Text's ops), lossless, and served string in, string out by an export that
uses only TensorFlow's core ops and TF Text's SentencePiece ops."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from textgen.core.errors import ConfigError
from textgen.data.levels import level_of
from textgen.data.tokenizers import Tokenizer, build_vocabulary, string_tensor
from textgen.data.vocabulary import Vocabulary
from textgen.runs.folder import RunFolder
from textgen.runs.numpy_run import NumpyRun

from conftest import built_once, make_corpus, run_cli

# A corpus with what a lossless tokenizer must keep: tabs, runs of spaces, blank lines,
# accented letters and a character outside the Basic Multilingual Plane.
ODD = "déjà vu\tcafé  naïve   fiancée\n\n\u00a0Ωμέγα 😀 end.\n"


@pytest.fixture(scope="module")
def vocab() -> Vocabulary:
    return build_vocabulary(make_corpus() + ODD * 3, "subword", max_size=400)


@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=60))
def test_any_text_round_trips_and_both_forms_read_it_alike(vocab, text):
    tokenizer = Tokenizer(vocab)
    ids = level_of(vocab).ids(text)
    assert ids == tokenizer.encode(string_tensor(text)).numpy().tolist()
    expected = text.replace("\r\n", "\n").replace("\r", "\n")
    try:
        expected.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates are read as U+FFFD, as by every level
        expected = expected.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    assert tokenizer.decode(np.asarray(ids, np.int32)) == expected


def test_the_vocabulary_holds_every_character_of_its_text_and_writes_spaces(vocab):
    assert vocab.tokens[0] == "\n" and vocab.start_id == 1  # a line end is a piece
    for character in set(ODD) - {" ", "\n"}:
        assert character in vocab.tokens, character
    assert any(t.startswith(" ") and len(t) > 2 for t in vocab.tokens)  # " sweet"
    left, right = level_of(vocab).glue()
    assert left.all() and right.all()  # pieces carry their own spaces


def test_a_text_cut_into_chunks_reads_as_the_whole(vocab):
    text = make_corpus(60, seed=3) + ODD
    level = level_of(vocab)
    chunks = [text[i : i + 37] for i in range(0, len(text), 37)]
    assert "".join(level.cut(chunks)) == text
    pieces = np.concatenate([level.encode_text(chunk) for chunk in level.cut(chunks)])
    assert pieces.tolist() == level.ids(text)


def test_a_vocabulary_saves_its_model_beside_it_and_checks_it(vocab, tmp_path):
    vocab.save(tmp_path / "vocab.json")
    saved = json.loads((tmp_path / "vocab.json").read_text(encoding="utf-8"))
    assert saved["model"]["file"] == "tokenizer.model"
    assert Vocabulary.load(tmp_path / "vocab.json") == vocab
    (tmp_path / "tokenizer.model").write_bytes(vocab.model[:-1] + b"x")
    with pytest.raises(Exception, match="not the one it names"):
        Vocabulary.load(tmp_path / "vocab.json")


def test_a_vocabulary_too_small_for_the_bytes_and_characters_is_one_line():
    with pytest.raises(ConfigError, match="--vocab-size 100 is too small .* need 3"):
        build_vocabulary(make_corpus(), "subword", max_size=100)


@pytest.fixture(scope="module")
def subword_run(trained_runs):
    """The session's subword GRU run (its corpus has no accented letters: a prompt's
    "é" is read as its bytes)."""
    return trained_runs("subword", "gru")


def test_a_subword_run_samples_the_same_text_in_numpy_and_tensorflow(subword_run):
    import textgen

    assert (subword_run / "tokenizer.model").is_file()
    config = json.loads((subword_run / "config.json").read_text())
    assert config["data"]["level"] == "subword"
    settings = {"max_new_tokens": 40, "temperature": 0.9, "seed": 5}
    prompts = ["ROMEO:\n", "déjà"]
    numpy_texts = NumpyRun(RunFolder(subword_run)).generate(prompts, **settings)
    graph_texts = textgen.load_run(subword_run, xla=False).generate(prompts, **settings)
    assert numpy_texts == graph_texts
    assert all(len(text) > len(prompt) for text, prompt in zip(numpy_texts, prompts))


def test_a_loaded_run_reads_prompts_after_keras_clears_its_session(subword_run):
    """`keras.backend.clear_session()` (sizing calls it; users do) clears TensorFlow's
    eager kernels: a reader whose model lived in one failed after it."""
    import gc

    import keras

    import textgen

    run = textgen.load_run(subword_run, xla=False)
    before = run.generate(["ROMEO:\nSwe"], max_new_tokens=12, temperature=0)
    keras.backend.clear_session()
    gc.collect()
    assert run.generate(["ROMEO:\nSwe"], max_new_tokens=12, temperature=0) == before


def test_evaluate_reports_bits_per_character_on_every_level(subword_run, trained_runs):
    import textgen
    from textgen.evaluate.evaluation import evaluate_run

    subword = evaluate_run(textgen.load_run(subword_run, xla=False), samples=2, sample_tokens=20)
    char = evaluate_run(trained_runs.loaded("char", "lstm"), samples=0)
    assert subword.characters_per_token > 1.5  # a piece reads several characters
    assert char.characters_per_token == pytest.approx(1.0)
    for result in (subword, char):
        figures = result.to_dict()
        assert figures["bpc"] == pytest.approx(
            result.loss / np.log(2) / result.characters_per_token
        )


def test_fine_tuning_a_subword_run_keeps_its_pieces_and_refuses_to_extend(subword_run, tmp_path):
    result = run_cli("train", "--init-from", subword_run, "--vocab", "extend",
                     "--run-dir", tmp_path / "child", expect=2)  # fmt: skip
    assert "keeps its parent's pieces" in result.output
    assert result.output.count("\n") == 1


@pytest.fixture(scope="module")
def subword_export(subword_run, tmp_path_factory):
    from textgen.export.saved_model import export_run

    return built_once(
        tmp_path_factory, "subword-export",
        lambda folder: export_run(subword_run, export_dir=folder, max_new_tokens_cap=32),
    )  # fmt: skip


def test_the_export_uses_only_core_ops_and_sentencepiece_ops(subword_export):
    import tensorflow as tf
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((subword_export.path / "saved_model.pb").read_bytes())
    graph = proto.meta_graphs[0].graph_def
    ops = {node.op for node in graph.node}
    for function in graph.library.function:
        ops |= {node.op for node in function.node_def}
    library = {f.signature.name for f in graph.library.function}
    ops -= library  # calls of the export's own functions
    core = set(dir(tf.raw_ops))
    sentencepiece = {op for op in ops if op.startswith("Sentencepiece")}
    assert sentencepiece, ops  # the graph reads the prompt with TF Text's ops
    assert ops - core - sentencepiece == set()


def test_the_export_loads_and_serves_in_a_process_that_cannot_import_textgen(
    subword_export, subword_run
):
    script = (
        "import sys, json\n"
        "sys.modules['textgen'] = None\n"
        "import tensorflow as tf, tensorflow_text\n"
        f"model = tf.saved_model.load({str(subword_export.path)!r})\n"
        "out = model.signatures['generate'](prompt=tf.constant(['ROMEO:\\n', 'déjà']),\n"
        "    max_new_tokens=tf.constant([20, 20]), temperature=tf.constant([0.9, 0.9]),\n"
        "    top_k=tf.constant([0, 0]), top_p=tf.constant([1.0, 1.0]),\n"
        "    seed=tf.constant([5, 5], tf.int64))\n"
        "print(json.dumps([t.decode('utf-8') for t in out['completion'].numpy()]))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    served = json.loads(done.stdout.strip().splitlines()[-1])
    run = NumpyRun(RunFolder(subword_run))
    # (a served row draws from its own seed alone: the first stream of a batch)
    expected = [run.generate([p], max_new_tokens=20, temperature=0.9, seed=5)[0]
                for p in ("ROMEO:\n", "déjà")]  # fmt: skip
    assert served == expected


@pytest.mark.skipif(not shutil.which("node"), reason="needs Node.js (scripts/test installs npm's)")
@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 2**16))
def test_the_pages_reader_segments_any_text_as_sentencepiece_does(vocab, tmp_path_factory, seed):
    """`textgen/export/web/sentencepiece.js` (run by Node) against the `sentencepiece`
    package, on pieces of the corpus and on random text (bytes for what no piece holds)."""
    from textgen.export.web import ASSETS

    rng = random.Random(seed)
    corpus = make_corpus(60, seed=seed % 7) + ODD
    alphabet = corpus + "".join(chr(rng.randrange(32, 0x3000)) for _ in range(40)) + "😀\t  "
    texts = []
    for _ in range(60):
        start = rng.randrange(len(corpus))
        texts.append(corpus[start : start + rng.randint(0, 120)])
        texts.append("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 25))))
    folder = tmp_path_factory.mktemp("reader")
    reader = level_of(vocab).page_reader()
    (folder / "in.json").write_text(json.dumps({"reader": reader, "texts": texts}))
    (folder / "read.mjs").write_text(
        f"import {{PieceReader}} from {json.dumps((ASSETS / 'sentencepiece.js').as_uri())};\n"
        "import fs from 'fs';\n"
        f"const data = JSON.parse(fs.readFileSync({json.dumps(str(folder / 'in.json'))}));\n"
        "const reader = new PieceReader(data.reader);\n"
        "console.log(JSON.stringify(data.texts.map((t) => reader.encode(t))));\n"
    )
    done = subprocess.run(["node", str(folder / "read.mjs")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout) == [level_of(vocab).ids(text) for text in texts]


def test_a_byte_piece_for_part_of_a_character_is_read_but_never_written(vocab):
    from textgen.generate.rules.unwritten import Unwritten

    unwritten = Unwritten(["[UNK]", *vocab.tokens])
    assert len(unwritten.ids) == 128  # <0x80> .. <0xFF>; the ASCII bytes are characters
    logits = np.random.default_rng(0).normal(size=vocab.size).astype(np.float32)
    logits[unwritten.ids[::7]] = 50.0  # the model's favourites
    numpy_scores = unwritten.numpy(logits)
    graph_scores = (logits + unwritten.graph()).numpy()
    np.testing.assert_array_equal(numpy_scores, graph_scores)
    assert int(np.argmax(numpy_scores)) not in set(unwritten.ids.tolist())
    assert not Unwritten(["[UNK]", "a", "b"])  # other levels have none
