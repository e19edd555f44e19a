import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from textgen.data.tokenizers import (
    Tokenizer,
    build_vocabulary,
    count_tokens,
    split_tokens,
    whole_token_chunks,
)
from textgen.data.vocabulary import UNK_ID, Vocabulary

TEXT = (
    "ROMEO:\n'Tis but thy name that is my enemy; know't well--\n"
    "Thou art thyself, (though) not a Montague. Ça va? 日本\n"
)


def test_char_level_round_trips_exactly_including_unicode():
    vocab = build_vocabulary(TEXT, "char")
    tokenizer = Tokenizer(vocab)
    ids = tokenizer.encode_text(TEXT)
    assert len(ids) == len(TEXT)
    assert tokenizer.decode(ids) == TEXT
    assert UNK_ID not in ids


def test_char_vocabulary_keeps_case_and_orders_by_frequency():
    vocab = build_vocabulary("aaabbc A", "char")
    assert vocab.tokens[:3] == ["a", "b", " "] or vocab.tokens[:2] == ["a", "b"]
    assert "A" in vocab.tokens and vocab.size == len(set("aaabbc A")) + 1


def test_word_level_splits_words_punctuation_and_newlines():
    tokens = [t.decode() for t in split_tokens(tf.constant(TEXT), "word", False).numpy()]
    assert tokens[:4] == ["ROMEO", ":", "\n", "'Tis"]
    assert "know't" in tokens and "\n" in tokens and ";" in tokens
    assert ["well", "-", "-"] == tokens[tokens.index("well") : tokens.index("well") + 3]


def test_word_level_detokenizes_the_way_people_write():
    vocab = build_vocabulary(TEXT, "word")
    tokenizer = Tokenizer(vocab)
    assert tokenizer.decode(tokenizer.encode_text(TEXT)) == TEXT


def test_word_level_lowercase_and_unknown_words_map_to_unk():
    vocab = build_vocabulary("The cat. the dog.", "word", lowercase=True)
    assert "The" not in vocab.tokens and "the" in vocab.tokens
    tokenizer = Tokenizer(vocab)
    ids = tokenizer.encode_text("THE zebra")
    assert ids[0] == vocab.tokens.index("the") + 1 and ids[1] == UNK_ID


def test_max_vocab_keeps_the_most_frequent_tokens():
    vocab = build_vocabulary("a a a b b c d", "word", max_size=3)
    assert vocab.tokens == ["a", "b"] and vocab.size == 3
    ids = Tokenizer(vocab).encode_text("c d a")
    np.testing.assert_array_equal(ids, [UNK_ID, UNK_ID, 1])


def test_vocabulary_saves_and_loads(tmp_path):
    vocab = build_vocabulary(TEXT, "word", lowercase=True, max_size=20)
    vocab.save(tmp_path / "vocab.json")
    assert Vocabulary.load(tmp_path / "vocab.json") == vocab


def test_batched_encoding_is_ragged_and_matches_single():
    tokenizer = Tokenizer(build_vocabulary(TEXT, "word"))
    ragged = tokenizer.encode(tf.constant(["ROMEO: my name", ""]))
    assert ragged.shape[0] == 2
    np.testing.assert_array_equal(ragged[0].numpy(), tokenizer.encode_text("ROMEO: my name"))
    assert ragged[1].shape[0] == 0


@pytest.mark.parametrize("level", ["char", "word", "subword"])
def test_start_id_is_the_newline(level):
    vocab = build_vocabulary(TEXT, level)
    assert vocab.tokens[vocab.start_id - 1] == "\n"


MIXED = "Héllo WÖRLD\r\nİstanbul ǅ ß ﬁ 🙂 a\rb\n\tend " * 5


@pytest.mark.parametrize("lowercase", [False, True])
def test_fast_char_encoding_equals_the_graph_ops(lowercase):
    vocab = build_vocabulary(MIXED[:20], "char", lowercase)  # some characters stay unknown
    tokenizer = Tokenizer(vocab)
    expected = tokenizer.encode(tf.constant(MIXED)).numpy()
    np.testing.assert_array_equal(tokenizer.encode_text(MIXED), expected)
    assert UNK_ID in expected


@pytest.mark.parametrize("level", ["char", "word"])
def test_counting_in_chunks_equals_counting_the_whole_text(level):
    text = TEXT * 7 + MIXED
    chunks = [text[i : i + 13] for i in range(0, len(text), 13)]  # cuts words and \r\n
    assert count_tokens(chunks, level, False) == count_tokens([text], level, False)
    assert "".join(whole_token_chunks(chunks)) == text
    whole = build_vocabulary(text, level)
    assert Vocabulary.from_counts(count_tokens(chunks, level, False), level).tokens == whole.tokens


@settings(max_examples=300, deadline=None)
@given(
    st.text(  # ASCII, and item markers (textgen.data.items)
        alphabet=st.sampled_from([*"ab Z9_'-.,!?\n\r\t\x0b\x0c\x1e(", "\U000f0000", "\U000f0101"]),
        max_size=40,
    ),
    st.booleans(),
)
def test_word_tokens_without_tensorflow_equal_the_graphs(text, lowercase):
    from textgen.data.levels.word import word_tokens

    graph = [t.decode("utf-8") for t in split_tokens(tf.constant(text), "word", lowercase).numpy()]
    assert word_tokens(text, lowercase) == graph
