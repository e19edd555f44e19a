import math

import numpy as np
import pytest
import tensorflow as tf

from textgen.data.vocabulary import UNK_ID
from textgen.generate.rules.seeded_draw import SeededDraw
from textgen.generate.rules.truncation import Truncation

from conftest import choose

gumbel_noise, top_filter = SeededDraw.noise, Truncation.graph

PROBS = np.array([0.4, 0.3, 0.15, 0.1, 0.05], np.float32)  # id 0 is [UNK]


def _choose(batch, temperature=1.0, top_k=0, top_p=1.0, seed=0, step=0, logits=None):
    logits = np.log(np.tile(PROBS, (batch, 1))) if logits is None else logits
    seeds = tf.constant([[seed, row] for row in range(batch)], tf.int64)
    return choose(logits, temperature, top_k, top_p, seeds, step)


def test_unk_is_never_chosen_even_when_most_likely():
    assert UNK_ID not in _choose(2000)
    assert set(_choose(5, temperature=0)) == {1}


def test_temperature_zero_and_top_k_one_are_both_greedy():
    logits = np.random.default_rng(0).normal(size=(64, 50)).astype(np.float32)
    greedy = _choose(64, temperature=0, logits=logits)
    top1 = _choose(64, temperature=1.5, top_k=1, logits=logits)
    masked = logits.copy()
    masked[:, UNK_ID] = -np.inf
    np.testing.assert_array_equal(greedy, masked.argmax(-1))
    np.testing.assert_array_equal(top1, greedy)


def test_samples_follow_the_distribution():
    counts = np.bincount(_choose(20000), minlength=5) / 20000
    expected = PROBS[1:] / PROBS[1:].sum()
    np.testing.assert_allclose(counts[1:], expected, atol=0.02)


def test_top_k_and_top_p_restrict_the_support():
    assert set(_choose(3000, top_k=2)) == {1, 2}
    # without [UNK]: 0.5, 0.25, 0.167, 0.083 -> top_p 0.6 keeps the first two
    assert set(_choose(3000, top_p=0.6)) == {1, 2}


def test_low_temperature_sharpens():
    hot = np.bincount(_choose(5000, temperature=2.0), minlength=5)[1] / 5000
    cold = np.bincount(_choose(5000, temperature=0.3), minlength=5)[1] / 5000
    assert cold > 0.8 > 0.5 > hot


def test_top_filter_masks_outside_top_k():
    logits = tf.constant([[1.0, 3.0, 2.0, 0.0]])
    out = top_filter(logits, tf.constant([2]), tf.constant([1.0])).numpy()
    assert np.isinf(out[0, [0, 3]]).all() and np.isfinite(out[0, [1, 2]]).all()


def test_noise_depends_only_on_the_rows_own_seed_and_step():
    a = gumbel_noise(tf.constant([[7, 0], [8, 0]], tf.int64), tf.constant(3), 10).numpy()
    b = gumbel_noise(tf.constant([[9, 0], [7, 0]], tf.int64), tf.constant(3), 10).numpy()
    # Equal up to float rounding (vectorized log may round the last bit differently).
    np.testing.assert_allclose(a[0], b[1], rtol=1e-6)
    assert not np.allclose(a[0], a[1])
    c = gumbel_noise(tf.constant([[7, 0]], tf.int64), tf.constant(4), 10).numpy()
    assert not np.array_equal(a[0], c[0])


def test_noise_for_a_chunk_of_steps_equals_the_noise_of_each_step():
    seeds = tf.constant([[7, 0], [7, 1], [2**40 + 3, 5]], tf.int64)
    chunk = gumbel_noise(seeds, tf.range(10, 14), 33).numpy()  # (4, 3, 33)
    assert chunk.shape == (4, 3, 33)
    for i, step in enumerate(range(10, 14)):
        np.testing.assert_allclose(chunk[i], gumbel_noise(seeds, step, 33).numpy(), rtol=1e-6)


def test_repetition_penalty_divides_positive_and_multiplies_negative_logits_of_recent_tokens():
    from textgen.generate.rules.repetition_penalty import RepetitionPenalty

    penalize_repeats = RepetitionPenalty.graph

    logits = tf.constant([[2.0, 3.0, -1.0, 4.0, -2.0], [2.0, 3.0, -1.0, 4.0, -2.0]])
    history = tf.constant([[-1, 3, 2, 1, 1], [3, 2, -1, -1, 1]])  # oldest first, -1 empty
    penalty, window = tf.constant([2.0, 2.0]), tf.constant([5, 2])
    out = penalize_repeats(logits, history, penalty, window).numpy()
    # row 0: tokens 1, 2, 3 are recent; row 1's window of 2 holds only token 1
    np.testing.assert_allclose(out[0], [2.0, 1.5, -2.0, 2.0, -2.0])
    np.testing.assert_allclose(out[1], [2.0, 1.5, -1.0, 4.0, -2.0])


def test_no_repeat_ngram_bans_the_tokens_that_followed_the_last_n_minus_1_tokens():
    from textgen.generate.rules.ngram_ban import NgramBan

    ban_repeated_ngrams = NgramBan.graph

    logits = tf.zeros([3, 6])
    history = tf.constant(
        [
            [-1, 1, 2, 3, 1, 2, 4, 1, 2],  # n 3: "1 2" was followed by 3 and 4 -> ban both
            [-1, 1, 2, 3, 1, 2, 4, 1, 2],  # n 2: "2" was followed by 3 and 4
            [-1, 1, 2, 3, 1, 2, 4, 1, 2],  # n 0: off
        ]
    )
    out = ban_repeated_ngrams(logits, history, tf.constant([3, 2, 0])).numpy()
    assert np.isinf(out[0]).tolist() == [False, False, False, True, True, False]
    assert np.isinf(out[1]).tolist() == [False, False, False, True, True, False]
    assert not np.isinf(out[2]).any()
    bigram_seen_once = ban_repeated_ngrams(
        tf.zeros([1, 6]), tf.constant([[-1, -1, 5, 1, 4, 5]]), tf.constant([2])
    ).numpy()
    assert np.isinf(bigram_seen_once[0]).tolist() == [False, True, False, False, False, False]
    unigrams = ban_repeated_ngrams(tf.zeros([1, 6]), tf.constant([[-1, 2, 4]]), tf.constant([1]))
    assert np.isinf(unigrams.numpy()[0]).tolist() == [False, False, True, False, True, False]


def test_a_row_whose_every_token_is_banned_keeps_its_logits():
    from textgen.generate.rules.repetition import Repetition, RepetitionControls

    control_repetition = Repetition.graph

    logits = tf.constant([[0.0, 1.0, 2.0]])
    history = tf.constant([[1, 2]])  # n 1 bans both real tokens; [UNK] never counts
    controls = RepetitionControls.of(tf.constant([1.0]), tf.constant([2]), tf.constant([1]))
    np.testing.assert_array_equal(control_repetition(logits, history, controls), logits)


def _fmix32(h: int) -> int:
    """MurmurHash3's 32-bit finalizer on Python ints (the reference for the graph's)."""
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & 0xFFFFFFFF
    return h ^ (h >> 16)


def test_gumbel_noise_equals_a_reference_hash_for_any_seed_and_step():
    seeds = [[0, 0], [1, 2], [-1, -9], [2**62 + 12345, 2**40 + 7], [-(2**63), 2**63 - 1]]
    steps = [0, 1, 2**31 + 5, 2**32 + 1]
    vocab = 40
    got = gumbel_noise(tf.constant(seeds, tf.int64), tf.constant(steps, tf.int64), vocab).numpy()
    for s, step in enumerate(steps):
        for row, (seed, stream) in enumerate(seeds):
            key = _fmix32((step * 0x9E3779B9 + 0x7F4A7C15) & 0xFFFFFFFF)
            for part in (stream, seed >> 32, seed):
                key = _fmix32(key ^ (part & 0xFFFFFFFF))
            for token in range(vocab):
                bits = _fmix32(key ^ _fmix32((token * 0x61C88647) & 0xFFFFFFFF)) >> 9
                uniform = (bits + 0.5) / 2**23
                expected = -math.log(-math.log(uniform))
                assert got[s, row, token] == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_the_noise_is_finite_where_the_hashs_bits_are_all_ones():
    # seed 1, step 375: token 374's hash has 24 one bits on top, which in float32 made
    # u = 1 and an infinite noise (the token chosen whatever its probability, or NaN)
    reference_noise = SeededDraw.noise_numpy

    noise = gumbel_noise(tf.constant([[1, 0]], tf.int64), tf.constant(375), 400).numpy()[0]
    assert np.isfinite(noise).all() and noise[374] == noise.max()
    np.testing.assert_allclose(reference_noise(1, 0, 375, 400), noise, atol=1e-6)
