"""The copy guard: its span index, its in-graph check, and the generation that uses it."""

import random
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import make_corpus, run_cli
from textgen.core.config import ModelConfig
from textgen.core.errors import ExportError
from textgen.data import span_index
from textgen.data.span_index import SpanIndex, text_codes
from textgen.data.tokenizers import Tokenizer, build_vocabulary
from textgen.data.vocabulary import Vocabulary
from textgen.generate.copy_guard import CopyGuard
from textgen.generate.generator import Generator
from textgen.model.network import build_model


def _text(codes) -> str:
    """The text of code points from `text_codes` ([UNK] as U+FFFD)."""
    codes = np.concatenate([np.zeros(0, np.int64), *codes])
    codes[codes == span_index.UNK_CODE] = 0xFFFD
    return codes.astype(np.uint32).tobytes().decode("utf-32-le")


def _copied_spans(sample: str, training_text: str, span: int) -> list[str]:
    return [
        sample[i : i + span]
        for i in range(len(sample) - span + 1)
        if sample[i : i + span] in training_text
    ]


def _random_text(rng: random.Random, alphabet: str, size: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(size))


def _untrained_generator(vocab: Vocabulary, guard: CopyGuard | None, seed: int) -> Generator:
    keras.utils.set_random_seed(seed)
    config = ModelConfig(cell="gru", layers=1, units=16, embedding_dim=8, dropout=0.0)
    return Generator(build_model(vocab.size, config), vocab, copy_guard=guard)


@pytest.mark.parametrize("level", ["char", "word"])
def test_text_codes_write_the_ids_as_decode_does(level, monkeypatch):
    text = make_corpus(lines=30) + "Unknown: ZZZ\n"
    vocab = build_vocabulary(make_corpus(lines=30), level)  # ZZZ is [UNK]
    tokenizer = Tokenizer(vocab)
    ids = tokenizer.encode_text(text)
    monkeypatch.setattr(span_index, "_CHUNK_TOKENS", 7)  # chunk seams inside words
    written = _text(text_codes(ids, vocab))
    assert written == tokenizer.decode(ids).replace("[UNK]", "\ufffd")
    assert "\ufffd" in written and "ZZZ" not in written


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10**6),
    span=st.integers(2, 9),
    size=st.integers(0, 600),
    chunk=st.integers(1, 50),
)
def test_index_finds_every_span_of_its_text_whatever_the_chunks(
    seed, span, size, chunk, tmp_path_factory
):
    rng = random.Random(seed)
    text = _random_text(rng, "ab c\n", size)
    codes = np.frombuffer(text.encode("utf-32-le"), np.uint32).astype(np.int64)
    pieces = lambda: (codes[i : i + chunk] for i in range(0, len(codes), chunk))  # noqa: E731
    index = SpanIndex.build(pieces, span)
    assert index.contains(text).all()  # no false negatives, also across chunk seams
    whole = SpanIndex.build(lambda: iter([codes]), span)
    assert np.array_equal(index.bits, whole.bits) and index.probes == whole.probes

    # The cache: the memory-mapped index gives the same answers as the fresh one.
    folder = tmp_path_factory.mktemp("cache")
    index.save(folder)
    cached = SpanIndex.load(folder, span)
    assert isinstance(cached.bits, np.memmap) and np.array_equal(cached.bits, index.bits)
    probe = _random_text(rng, "abc d\n", 300)
    assert np.array_equal(cached.contains(probe), index.contains(probe))
    assert SpanIndex.load(folder, span + 1) is None


def test_bit_positions_cover_filters_larger_than_the_hashes():
    """Each probe spreads over the whole filter, also past 2**31 bits (the hashes are
    31-bit): a 1 GiB filter is used evenly, and the graph computes the same positions."""
    rng = np.random.default_rng(0)
    h1, h2 = (rng.integers(0, 2**31 - 1, 200_000) for _ in range(2))
    mask = (1 << 33) - 1
    for probe in range(3):
        positions = span_index.bit_positions(h1, h2, probe, mask)
        quarters = np.bincount(positions >> 31, minlength=4) / len(positions)
        assert np.all(np.abs(quarters - 0.25) < 0.01), (probe, quarters)
        in_graph = span_index.bit_positions(
            tf.constant(h1), tf.constant(h2), tf.constant(probe, tf.int64), tf.constant(mask)
        )
        assert np.array_equal(in_graph.numpy(), positions)


def test_index_of_a_text_reports_few_new_spans_as_found():
    rng = random.Random(0)
    text = _random_text(rng, "abcdefghij", 50_000)
    index = SpanIndex.build(lambda: iter([np.array([ord(c) for c in text], np.int64)]), 12)
    new = [w for w in (_random_text(rng, "abcdefghij", 12) for _ in range(3000)) if w not in text]
    false_positives = sum(bool(index.contains(w)[0]) for w in new) / len(new)
    assert false_positives <= max(5 * index.false_positive_rate, 0.005)


@pytest.mark.parametrize("level", ["char", "word", "subword"])
def test_the_graph_check_equals_a_check_by_hand(level):
    """`CopyGuard.rejects` (hashes in the graph) against windows cut in Python and looked up
    with `SpanIndex.contains` (hashes in NumPy)."""
    corpus = make_corpus(lines=60, seed=3)
    vocab = build_vocabulary(corpus, level)
    tokenizer = Tokenizer(vocab)
    ids = tokenizer.encode_text(corpus)
    span = 9
    index = SpanIndex.build(lambda: text_codes(ids, vocab), span)
    guard = CopyGuard(index, vocab)
    training_text = _text(text_codes(ids, vocab))
    written = [i for i in range(1, vocab.size) if vocab.tokens[i - 1].strip("\0")]  # no bytes
    rng = random.Random(1)
    tails, prevs, candidates, expected = [], [], [], []
    for row in range(12):
        start = rng.randrange(len(ids) - 12)  # half the tails come from the text itself
        if row % 2:
            context = tokenizer.decode(ids[start : start + 8])
        else:
            context = tokenizer.decode(rng.choices(written, k=8))
        tail = context[-(span - 1) :].rjust(span - 1, "\0")
        prev = int(ids[start + 7]) if row % 2 else rng.choice(written)
        cands = [int(ids[start + 8]), *rng.sample(written, 5)]
        row_expected = []
        for c in cands:
            piece = tokenizer.pieces(tf.constant([prev]), tf.constant([c]))[0].numpy().decode()
            combined = tail + piece
            windows = [combined[i : i + span] for i in range(len(combined) - span + 1)]
            windows = [w for w in windows[-len(piece) :] if "\0" not in w]
            row_expected.append(any(index.contains(w)[0] for w in windows))
        tails.append([ord(c) if c != "\0" else -1 for c in tail])
        prevs.append(prev)
        candidates.append(cands)
        expected.append(row_expected)
    got = guard.rejects(tf.constant(tails), tf.constant(prevs), tf.constant(candidates))
    assert got.numpy().tolist() == expected
    assert any(any(row) for row in expected) and not all(all(row) for row in expected)
    # and advancing the tail writes the chosen token's text
    new_tails = guard.pieces.advance(
        tf.constant(tails), tf.constant(prevs), tf.constant(candidates)[:, 0]
    )
    for tail, prev, cands, new in zip(tails, prevs, candidates, new_tails.numpy()):
        piece = tokenizer.pieces(tf.constant([prev]), tf.constant([cands[0]]))[0].numpy().decode()
        text = "".join(chr(c) for c in tail if c >= 0) + piece
        assert "".join(chr(c) for c in new if c >= 0) == text[-(span - 1) :]
    assert training_text  # (the text the index holds)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10**6),
    span=st.integers(4, 6),
    level=st.sampled_from(["char", "word"]),
    temperature=st.sampled_from([0.0, 1.0, 1.5]),
)
def test_guarded_samples_never_hold_a_training_span(seed, span, level, temperature):
    """Random small corpora, random (untrained) models, any seed: no span of `span`
    characters of the training text gets through; without the guard some do."""
    rng = random.Random(seed)
    if level == "char":
        corpus = _random_text(rng, "ab \n", 400)
    else:
        corpus = " ".join(rng.choice(["a", "b", "c", "dd", ",", "\n"]) for _ in range(300))
    vocab = build_vocabulary(corpus, level)
    ids = Tokenizer(vocab).encode_text(corpus)
    training_text = _text(text_codes(ids, vocab))
    guard = CopyGuard(SpanIndex.build(lambda: text_codes(ids, vocab), span), vocab)
    generator = _untrained_generator(vocab, guard, seed)
    prompts = ["", "a", "b c", "ab"]
    samples = generator.generate(prompts, max_new_tokens=60, temperature=temperature, seed=seed)
    for sample in samples:
        assert not _copied_spans(sample, training_text, span), (sample, span)
    unguarded = _untrained_generator(vocab, None, seed).generate(
        prompts * 4, max_new_tokens=60, temperature=1.0, seed=seed
    )
    assert any(_copied_spans(s, training_text, span) for s in unguarded)


def test_a_row_with_every_candidate_excluded_ends_there():
    """Every 3-gram over "ab" is in a de Bruijn text, so after two characters of a
    completion, nothing may follow: each sample ends at 2 characters, streamed or not."""
    corpus = "aaababbbaa"  # all eight 3-grams of {a, b}
    vocab = build_vocabulary(corpus, "char")
    ids = Tokenizer(vocab).encode_text(corpus)
    guard = CopyGuard(SpanIndex.build(lambda: text_codes(ids, vocab), 3), vocab)
    generator = _untrained_generator(vocab, guard, 0)
    samples = generator.generate(["", "ab", "bbb"], max_new_tokens=50, temperature=1.0, seed=3)
    assert [len(s) for s in samples] == [2, 2, 2]
    assert "".join(generator.stream("ab", max_new_tokens=50, temperature=1.0, seed=3)) == samples[1]
    _, counts = generator.generate_ids(
        tf.constant(["a"]), tf.constant([50]), tf.constant([0.0]), tf.constant([0]),
        tf.constant([1.0]), tf.constant([[0, 0]], tf.int64), tf.constant([1.0]),
        tf.constant([64]), tf.constant([0]), tf.constant([""]), tf.constant([""]),
    )  # fmt: skip
    assert counts.numpy().tolist() == [2]


@pytest.fixture(scope="module")
def guarded_run(trained_runs):
    return trained_runs.loaded("char", "lstm")


def test_guarded_run_samples_stream_and_evaluate_without_copies(guarded_run):
    from textgen.evaluate.evaluation import evaluate_run

    run = guarded_run  # (barely trained: its text copies short spans only)
    training_text = open(run.config.data.sources[0], encoding="utf-8").read()
    prompts = ["", "ROMEO:", "", "JULIET:"]
    free = run.generate(prompts, max_new_tokens=200, temperature=1.0, seed=5)
    assert any(_copied_spans(s, training_text, 5) for s in free)  # it copies unguarded
    guarded = run.generate(prompts, max_new_tokens=200, temperature=1.0, seed=5, max_copy=5)
    assert not any(_copied_spans(s, training_text, 5) for s in guarded)
    assert guarded[0][:4] == free[0][:4]  # the first spans are too short to be copies
    streamed = run.stream("ROMEO:", max_new_tokens=200, temperature=1.0, seed=5, max_copy=5)
    assert (
        "".join(streamed)
        == run.generate(["ROMEO:"], max_new_tokens=200, temperature=1.0, seed=5, max_copy=5)[0]
    )
    # the index was cached in the run's data dir, beside its token ids
    assert list(Path(run.config.data.data_dir).glob("ids/*/copy-guard-5.bits"))
    result = evaluate_run(run, samples=4, sample_tokens=200, sampling={"max_copy": 5})
    assert result.copy_rate == 0.0


def test_max_copy_errors_are_one_line(trained_runs):
    run_dir = trained_runs("char", "lstm")
    for value in ("1", "-3", str(10**6)):
        result = run_cli("sample", "--run-dir", run_dir, "--max-copy", value, expect=2)
        assert "max-copy must be 2 to 256" in result.output
    run_cli("evaluate", "--run-dir", run_dir, "--max-copy", "1", expect=2)
    run_cli("export", "--run-dir", run_dir, "--max-copy", "1", expect=2)
    result = run_cli(
        "sample", "--server", "http://localhost:1", "--max-copy", "8", "--run-dir", run_dir,
        expect=2,
    )  # fmt: skip
    assert "export the run with --max-copy" in result.output


def test_export_carries_the_guard_and_writes_the_librarys_text(guarded_run, tmp_path):
    from textgen.export.saved_model import export_run

    run = guarded_run
    result = export_run(run.folder.path, export_dir=tmp_path, max_copy=12, unroll=1)
    served = tf.saved_model.load(str(result.path)).signatures["generate"]
    prompts = ["", "ROMEO:", "JULIET:"]
    batch = len(prompts)
    out = served(
        prompt=tf.constant(prompts), max_new_tokens=tf.fill([batch], 150),
        temperature=tf.constant([0.0, 0.0, 1.0]), top_k=tf.fill([batch], 0),
        top_p=tf.fill([batch], 1.0), seed=tf.constant([0, 0, 7], tf.int64),
    )  # fmt: skip
    exported = [c.decode("utf-8") for c in out["completion"].numpy()]
    library = run.generate(prompts[:2], max_new_tokens=150, temperature=0, max_copy=12)
    assert exported[:2] == library
    seeded = run.generate(prompts[2:], max_new_tokens=150, temperature=1.0, seed=7, max_copy=12)
    assert exported[2:] == seeded
    training_text = open(run.config.data.sources[0], encoding="utf-8").read()
    assert not any(_copied_spans(s, training_text, 12) for s in exported)


def test_export_refuses_an_index_over_its_cap(guarded_run, tmp_path, monkeypatch):
    from textgen.export import saved_model as export

    monkeypatch.setattr(export, "EXPORT_MAX_COPY_BYTES", 1024)
    with pytest.raises(ExportError, match="export without --max-copy"):
        export.export_run(guarded_run.folder.path, export_dir=tmp_path, max_copy=12)
    assert not list(tmp_path.rglob("saved_model.pb"))
