"""The token-choice rules: each rule's NumPy form (the specification the NumPy loop runs)
equals its graph form (the generator's loop), rule by rule and composed."""

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import make_corpus
from textgen.core.config import MAX_NGRAM, REPETITION_HISTORY
from textgen.data.span_index import SpanIndex, text_codes
from textgen.data.tokenizers import Tokenizer, build_vocabulary
from textgen.data.vocabulary import UNK_ID, token_piece
from textgen.generate.copy_guard import CopyGuard
from textgen.generate.rules import checks as candidate_checks
from textgen.generate.rules.checks import CheckedChoice
from textgen.generate.rules.copy_guard import SpanGuard
from textgen.generate.rules.label_guidance import LabelGuidance
from textgen.generate.rules.ngram_ban import NgramBan
from textgen.generate.rules.pipeline import Row, TokenRules
from textgen.generate.rules.repetition import Repetition, RepetitionControls
from textgen.generate.rules.repetition_penalty import RepetitionPenalty
from textgen.generate.rules.seeded_draw import SeededDraw
from textgen.generate.rules.temperature import Temperature
from textgen.generate.rules.token_choice import sampling_scores
from textgen.generate.rules.truncation import Truncation
from textgen.generate.settings import SamplingSettings

SUBNORMAL = 1e-40  # a float32 subnormal: 0 to TensorFlow's flush-to-zero kernels


def _logits(rng, vocab=40, scale=3.0):
    return rng.normal(0, scale, vocab).astype(np.float32)


def _history(rng, vocab=6, empty=10):
    """A history over few tokens (so n-grams repeat), its oldest `empty` slots empty."""
    history = rng.integers(1, vocab, REPETITION_HISTORY).astype(np.int32)
    history[:empty] = -1
    return history


def test_noise_numpy_equals_graph():
    seeds = tf.constant([[7, 0], [2**40 + 3, 5], [0, 0]], tf.int64)
    for step in (0, 1, 999, 2**32 + 1):
        expected = SeededDraw.noise(seeds, step, 70).numpy()
        for row, (seed, stream) in enumerate(seeds.numpy().tolist()):
            got = SeededDraw.noise_numpy(seed, stream, step, 70)
            np.testing.assert_allclose(got, expected[row], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("temperature", [0.0, SUBNORMAL, 1e-30, 0.3, 0.7, 1.0, 1.7, 1e6])
def test_temperature_numpy_equals_graph(temperature):
    logits = _logits(np.random.default_rng(1))
    graph = (tf.constant(logits)[None] * Temperature.graph(tf.constant([temperature])))[0]
    np.testing.assert_array_equal(Temperature.numpy(logits, temperature), graph.numpy())
    drawn = bool(Temperature.graph_drawn(tf.constant([temperature]))[0])
    assert Temperature.drawn(temperature) == drawn == (temperature >= 1.2e-38)


@pytest.mark.parametrize(
    "top_k, top_p", [(0, 1.0), (1, 1.0), (5, 1.0), (0, 0.9), (0, 0.3), (7, 0.5), (0, SUBNORMAL)]
)
def test_truncation_numpy_equals_graph(top_k, top_p):
    rng = np.random.default_rng(2)
    for _ in range(20):
        scaled = _logits(rng)
        graph = Truncation.graph(tf.constant(scaled)[None], tf.constant([top_k]),
                                 tf.constant([top_p], tf.float32))[0].numpy()  # fmt: skip
        numpy = Truncation.numpy(scaled, top_k, top_p)
        np.testing.assert_array_equal(np.isfinite(numpy), np.isfinite(graph))
        np.testing.assert_array_equal(numpy[np.isfinite(numpy)], graph[np.isfinite(graph)])
        assert np.isfinite(numpy).sum() >= 1 and not np.isfinite(numpy[UNK_ID])


def test_a_subnormal_top_p_keeps_only_the_best_token_everywhere():
    scaled = _logits(np.random.default_rng(3))
    best = int(np.argmax(np.where(np.arange(len(scaled)) == UNK_ID, -np.inf, scaled)))
    kept = np.flatnonzero(np.isfinite(Truncation.numpy(scaled, 0, SUBNORMAL)))
    assert kept.tolist() == [best]
    graph = Truncation.graph(tf.constant(scaled)[None], tf.constant([0]), tf.constant([1.4e-45]))
    assert np.flatnonzero(np.isfinite(graph.numpy()[0])).tolist() == [best]


@pytest.mark.parametrize("penalty, window", [(1.3, 64), (1.3, 5), (0.8, 1), (2.0, 1024)])
def test_repetition_penalty_numpy_equals_graph(penalty, window):
    rng = np.random.default_rng(4)
    for _ in range(10):
        logits, history = _logits(rng, 8), _history(rng, 8, empty=int(rng.integers(0, 64)))
        graph = RepetitionPenalty.graph(
            tf.constant(logits)[None], tf.constant(history)[None], tf.constant([penalty]),
            tf.constant([window]),
        )[0]  # fmt: skip
        numpy = RepetitionPenalty.numpy(logits, history, penalty, window)
        np.testing.assert_array_equal(numpy, graph.numpy())


@pytest.mark.parametrize("ngram", range(MAX_NGRAM + 1))
def test_ngram_ban_numpy_equals_graph(ngram):
    rng = np.random.default_rng(5 + ngram)
    for trial in range(15):
        logits = _logits(rng, 6)
        history = _history(rng, 4, empty=[0, 3, 61, 62, 63][trial % 5])
        graph = NgramBan.graph(
            tf.constant(logits)[None], tf.constant(history)[None], tf.constant([ngram])
        )[0]
        np.testing.assert_array_equal(NgramBan.numpy(logits, history, ngram), graph.numpy())


def test_repetition_controls_together_numpy_equals_graph_with_the_fallback():
    rng = np.random.default_rng(6)
    cases = [(1.0, 64, 1), (1.5, 8, 2), (1.2, 64, 0), (1.0, 64, 3)]
    for penalty, window, ngram in cases * 5:
        logits, history = _logits(rng, 5), _history(rng, 5, empty=int(rng.integers(0, 64)))
        controls = RepetitionControls.of(
            tf.constant([penalty]), tf.constant([window]), tf.constant([ngram])
        )
        graph = Repetition.graph(tf.constant(logits)[None], tf.constant(history)[None], controls)
        numpy = Repetition(penalty, window, ngram).numpy(logits, history)
        np.testing.assert_array_equal(numpy, graph.numpy()[0])
    every = np.array([-1] * 62 + [1, 2], np.int32)  # a unigram ban of all real tokens
    logits = np.array([0.0, 1.0, 2.0], np.float32)
    np.testing.assert_array_equal(Repetition(1.0, 64, 1).numpy(logits, every), logits)


@pytest.mark.parametrize("strength", [1.0, 2.0, 0.5])
def test_label_guidance_numpy_equals_graph(strength):
    rng = np.random.default_rng(7)
    labelled, unlabelled = _logits(rng), _logits(rng)
    graph = LabelGuidance.graph(tf.constant(np.stack([labelled, unlabelled])),
                                tf.constant([strength]))[0]  # fmt: skip
    np.testing.assert_array_equal(LabelGuidance.numpy(labelled, unlabelled, strength), graph)


@pytest.mark.parametrize("level", ["char", "word", "subword"])
def test_copy_guard_numpy_equals_graph(level):
    corpus = make_corpus(lines=40, seed=2)
    vocab = build_vocabulary(corpus, level)
    ids = Tokenizer(vocab).encode_text(corpus)
    index = SpanIndex.build(lambda: text_codes(ids, vocab), 6)
    graph, numpy = CopyGuard(index, vocab), SpanGuard(index, token_piece(vocab))
    rng = np.random.default_rng(8)
    ended = chosen_other = 0
    for trial in range(40):
        start = int(rng.integers(1, len(ids) - 20))
        prev, tail = int(ids[start - 1]), ""
        for token in ids[start : start + 6] if trial % 2 else ():  # a tail from the text
            tail = candidate_checks.advance(tail, numpy.piece(prev, int(token)), 5)
            prev = int(token)
        nxt = int(ids[start + 6]) if trial % 2 else int(rng.integers(1, vocab.size))
        scores = _logits(rng, vocab.size, scale=1.0)
        scores[nxt] = 10.0  # the text's own next token first: it copies
        scores[UNK_ID] = -np.inf
        codes = [-1] * (5 - len(tail)) + [ord(c) for c in tail]
        state = (tf.constant([codes]), tf.constant([prev]), tf.constant([1]))
        got, allowed = CheckedChoice([graph], graph.pieces, 1).choose(
            tf.constant(scores)[None], state
        )
        expected = candidate_checks.choose(scores, [numpy], tail, prev)
        if expected is None:
            ended += 1
            assert not bool(allowed[0])
        else:
            assert bool(allowed[0]) and int(got[0]) == expected
            chosen_other += expected != nxt
            after = graph.pieces.advance(tf.constant([codes]), tf.constant([prev]), got)[0].numpy()
            piece = numpy.piece(prev, expected)
            assert "".join(chr(c) for c in after if c >= 0) == candidate_checks.advance(
                tail, piece, 5
            )
    assert chosen_other > 0


@settings(max_examples=40, deadline=None)
@given(
    temperature=st.sampled_from([0.0, SUBNORMAL, 0.5, 1.0, 1.6]),
    top_k=st.sampled_from([0, 1, 3, 10]),
    top_p=st.sampled_from([1.0, 0.6, SUBNORMAL, 1.4e-45]),
    penalty=st.sampled_from([1.0, 1.4, 0.7]),
    window=st.integers(1, REPETITION_HISTORY),
    ngram=st.integers(0, MAX_NGRAM),
    seed=st.integers(0, 2**40),
    step=st.integers(0, 500),
)
def test_the_whole_choice_numpy_equals_graph(
    temperature, top_k, top_p, penalty, window, ngram, seed, step
):
    """`TokenRules` (NumPy, one row) against the graph's composition, the loop's order."""
    rng = np.random.default_rng(seed % 1000)
    logits, history = _logits(rng, 12), _history(rng, 12, empty=int(rng.integers(0, 64)))
    s = SamplingSettings(
        temperature=temperature, top_k=top_k, top_p=top_p, seed=seed, max_new_tokens=1,
        repetition_penalty=penalty, repetition_window=window, no_repeat_ngram=ngram,
    )  # fmt: skip
    numpy = TokenRules(s, stream=3).choose(logits, Row(history, None, "", 1, step))
    t = tf.constant([temperature], tf.float32)
    controls = RepetitionControls.of(tf.constant([penalty]), tf.constant([window]),
                                     tf.constant([ngram]))  # fmt: skip
    adjusted = Repetition.graph(tf.constant(logits)[None], tf.constant(history)[None], controls)
    noise = SeededDraw.graph(SeededDraw.noise(tf.constant([[seed, 3]], tf.int64), step, 12), t)
    scores = sampling_scores(adjusted, Temperature.graph(t), tf.constant([top_k]),
                             tf.constant([top_p], tf.float32), noise, True)  # fmt: skip
    assert numpy == int(tf.argmax(scores[0])) and numpy != UNK_ID


def test_the_pipeline_lists_the_rules_in_use_in_order():
    plain = SamplingSettings(temperature=0.8, top_k=0, top_p=1.0, repetition_penalty=1.0,
                             no_repeat_ngram=0)  # fmt: skip
    assert TokenRules(plain, 0).names == ["temperature", "seeded draw"]
    steered = SamplingSettings(
        temperature=0.8, top_k=5, top_p=0.9, repetition_penalty=1.2, repetition_window=8,
        no_repeat_ngram=0, label="x", label_strength=2.0,
    )  # fmt: skip
    corpus = make_corpus(lines=10)
    vocab = build_vocabulary(corpus, "char")
    index = SpanIndex.build(lambda: text_codes(Tokenizer(vocab).encode_text(corpus), vocab), 6)
    names = TokenRules(steered, 0, [SpanGuard(index, token_piece(vocab))]).names
    assert names == ["label guidance", "repetition controls", "temperature", "top-k / top-p",
                     "seeded draw", "candidate checks"]  # fmt: skip
