"""Property-based tests (hypothesis): tokenizers and sampling settings on any input."""

import numpy as np
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from textgen.core.config import validate_sampling
from textgen.core.errors import ConfigError
from textgen.data.tokenizers import Tokenizer, build_vocabulary, string_tensor
from textgen.data.vocabulary import UNK_ID, valid_unicode
from textgen.generate.rules.pipeline import Row, TokenRules
from textgen.generate.settings import SamplingSettings

from conftest import choose

_ROW = Row(np.full(8, -1, np.int32), None, "", 1, 0)  # no history, the first step
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Any Unicode text; line endings are normalized to \n by design, so \r is left out here.
# Lone surrogates (category Cs) are not Unicode text: they get their own test below.
ANY_TEXT = st.text(
    st.characters(blacklist_characters="\r", blacklist_categories=("Cs",)), max_size=200
)
ANY_PYTHON_STR = st.text(st.characters(blacklist_characters="\r"), max_size=200)


@FAST
@given(ANY_TEXT)
def test_any_text_round_trips_at_char_level(text):
    tokenizer = Tokenizer(build_vocabulary(text, "char"))
    ids = tokenizer.encode_text(text)
    assert len(ids) == len(text) and UNK_ID not in ids
    assert tokenizer.decode(ids) == text
    np.testing.assert_array_equal(ids, tokenizer.encode(tf.constant(text)).numpy())


@FAST
@given(ANY_PYTHON_STR)
def test_lone_surrogates_read_as_replacement_characters(text):
    """A str Python made from undecodable bytes (an argv prompt) never crashes the tokenizer."""
    valid = valid_unicode(text)
    valid.encode("utf-8")  # is Unicode text now
    if "\ufffd" not in valid:
        assert valid == text or len(valid) < len(text)  # (only pairs were joined)
    tokenizer = Tokenizer(build_vocabulary(valid, "char"))
    ids = tokenizer.encode_text(text)
    assert tokenizer.decode(ids) == valid
    np.testing.assert_array_equal(ids, tokenizer.encode(string_tensor(text)).numpy())


def test_an_undecodable_prompt_byte_is_sampled_from_as_a_replacement_character():
    vocab = build_vocabulary("ab\ufffdc", "char")
    assert Tokenizer(vocab).decode(Tokenizer(vocab).encode_text("ab\udcffc")) == "ab\ufffdc"


@FAST
@given(ANY_PYTHON_STR, ANY_PYTHON_STR, st.booleans())
def test_word_level_never_crashes_on_any_text(train_text, other_text, lowercase):
    vocab = build_vocabulary(train_text, "word", lowercase, max_size=50)
    tokenizer = Tokenizer(vocab)
    ids = tokenizer.encode_text(other_text)
    assert ids.dtype == np.int32 and ((0 <= ids) & (ids < vocab.size)).all()
    assert isinstance(tokenizer.decode(ids), str)


@FAST
@given(
    temperature=st.floats(allow_nan=True, allow_infinity=True, width=32),
    top_k=st.integers(-5, 100),
    top_p=st.floats(allow_nan=True, allow_infinity=True, width=32),
    seed=st.integers(0, 2**62),
)
def test_sampling_settings_are_refused_or_draw_a_valid_token(temperature, top_k, top_p, seed):
    try:
        validate_sampling(temperature, top_k, top_p)
    except ConfigError:
        assert not (temperature >= 0 and top_k >= 0 and 0 < top_p <= 1)
        return
    assert np.isfinite(top_p)  # (an infinite temperature is allowed: uniform sampling)
    vocab = 30
    logits = tf.constant(np.random.default_rng(seed % 1000).normal(size=(4, vocab)), tf.float32)
    ids = choose(
        logits, temperature, top_k, top_p, tf.constant([[seed, row] for row in range(4)], tf.int64)
    )
    assert ((1 <= ids) & (ids < vocab)).all()  # a real token, never [UNK]
    numpy = [
        TokenRules(SamplingSettings(temperature=temperature, top_k=top_k, top_p=top_p,
                                    seed=seed), row).choose(logits.numpy()[row], _ROW)
        for row in range(4)
    ]  # fmt: skip
    assert numpy == ids.tolist()  # and the NumPy samplers draw the same
