import numpy as np
import pytest
import tensorflow as tf

from textgen.data.vocabulary import UNK
from textgen.generate import streaming
from textgen.generate.generator import Generator


def _off(batch):
    """The repetition controls', excluded and included strings' inputs of `generate_ids`,
    off: penalty 1, window 64, n 0, nothing excluded or included."""
    none = tf.fill([batch], "")
    return tf.fill([batch], 1.0), tf.fill([batch], 64), tf.fill([batch], 0), none, none


@pytest.fixture(scope="module")
def run(trained_runs):
    return trained_runs.loaded("char", "lstm")


def test_same_seed_same_text_and_different_seeds_differ(run):
    a = run.generate(["ROMEO:"], max_new_tokens=60, temperature=1.0, seed=11)
    b = run.generate(["ROMEO:"], max_new_tokens=60, temperature=1.0, seed=11)
    c = run.generate(["ROMEO:"], max_new_tokens=60, temperature=1.0, seed=12)
    assert a == b and a != c


def test_samples_in_one_batch_differ_but_each_is_reproducible(run):
    three = run.generate(["JULIET:"] * 3, max_new_tokens=40, temperature=1.0, seed=5)
    assert len(set(three)) == 3
    assert run.generate(["JULIET:"], max_new_tokens=40, temperature=1.0, seed=5) == three[:1]


def test_streaming_yields_the_same_text_as_batch_generation(run):
    settings = {"max_new_tokens": 150, "temperature": 0.9, "top_k": 5, "seed": 3}
    pieces = list(run.stream("NURSE:", **settings))
    assert len(pieces) > 1
    assert "".join(pieces) == run.generate(["NURSE:"], **settings)[0]


@pytest.mark.parametrize("interval, most_pieces", [(0.0, 150), (60.0, 2)])
def test_stream_stretches_follow_the_measured_rate(run, monkeypatch, interval, most_pieces):
    """A reader who may wait 60 s gets the text in two pieces (the first chunk, then the
    rest); one who may wait 0 s, a piece per chunk. The text is the same either way."""
    monkeypatch.setattr(streaming, "STREAM_INTERVAL", interval)
    settings = {"max_new_tokens": 150, "temperature": 0.9, "seed": 4}
    generator = Generator(run.model, run.vocab, chunk_size=16)
    list(generator.stream("x", max_new_tokens=1))  # built first: its time is not the rate
    pieces = list(generator.stream("NURSE:", **settings))
    assert "".join(pieces) == generator.generate(["NURSE:"], **settings)[0]
    if interval:
        assert len(pieces) == most_pieces
    else:
        assert len(pieces) == -(-150 // 16)  # a piece per chunk of 16


def test_temperature_zero_equals_top_k_one(run):
    greedy = run.generate(["ROMEO:", "x"], max_new_tokens=40, temperature=0, seed=1)
    top1 = run.generate(["ROMEO:", "x"], max_new_tokens=40, temperature=1.3, top_k=1, seed=2)
    assert greedy == top1


def test_greedy_follows_the_model_argmax(run):
    completion = run.generate(["ROMEO:"], max_new_tokens=5, temperature=0)[0]
    tokenizer = run.generator.tokenizer
    ids = [run.vocab.start_id, *tokenizer.encode_text("ROMEO:")]
    for char in completion:
        logits = run.model(tf.constant([ids]), training=False).numpy()[0, -1]
        logits[0] = -np.inf
        assert run.vocab.tokens[int(logits.argmax()) - 1] == char
        ids.append(run.vocab.tokens.index(char) + 1)


def test_greedy_with_a_repetition_penalty_equals_a_loop_by_hand(run):
    penalty, window = 1.8, 12
    settings = {"temperature": 0, "repetition_penalty": penalty, "repetition_window": window}
    completion = run.generate(["ROMEO:"], max_new_tokens=30, **settings)[0]
    assert completion != run.generate(["ROMEO:"], max_new_tokens=30, temperature=0)[0]
    ids = [run.vocab.start_id, *run.generator.tokenizer.encode_text("ROMEO:")]
    for char in completion:
        logits = run.model(tf.constant([ids]), training=False).numpy()[0, -1]
        for token in set(ids[-window:]):  # CTRL's rule on the window's tokens
            value = logits[token]
            logits[token] = value / penalty if value > 0 else value * penalty
        logits[0] = -np.inf
        assert run.vocab.tokens[int(logits.argmax()) - 1] == char
        ids.append(run.vocab.tokens.index(char) + 1)


def test_no_repeat_ngram_leaves_no_word_pair_twice(trained_runs):
    run = trained_runs.loaded("word", "gru")
    settings = {"max_new_tokens": 40, "temperature": 0, "no_repeat_ngram": 2}
    free = run.generate(["romeo"], max_new_tokens=40, temperature=0)[0]
    controlled = run.generate(["romeo"], **settings)[0]
    pairs = lambda words: list(zip(words, words[1:]))  # noqa: E731
    tokens = run.generator.tokenizer.encode_text("romeo" + controlled).tolist()
    assert len(pairs(tokens)) == len(set(pairs(tokens)))
    assert len(set(pairs(run.generator.tokenizer.encode_text(free).tolist()))) < 39  # it loops


def test_repetition_controls_stream_as_they_generate(run):
    settings = {"max_new_tokens": 90, "temperature": 0.9, "seed": 5, "no_repeat_ngram": 4}
    settings |= {"repetition_penalty": 1.3, "repetition_window": 20}
    assert "".join(run.stream("NURSE:", **settings)) == run.generate(["NURSE:"], **settings)[0]


def test_length_counts_tokens(run):
    for n in (0, 1, 17):
        (text,) = run.generate(["ROMEO:"], max_new_tokens=n, temperature=1.0, seed=1)
        assert len(text) == n  # char level: one token is one character


def test_stop_string_ends_generation_and_is_not_returned(run):
    free = run.generate(["ROMEO:"], max_new_tokens=200, temperature=1.0, seed=4)[0]
    stop = free[10:12]
    stopped = run.generate(["ROMEO:"], max_new_tokens=200, temperature=1.0, seed=4, stop=[stop])[0]
    assert stopped == free[: free.index(stop)]
    streamed = "".join(
        run.stream("ROMEO:", max_new_tokens=200, temperature=1.0, seed=4, stop=[stop])
    )
    assert streamed == stopped


def test_unknown_prompt_characters_and_empty_prompts_work(run):
    texts = run.generate(["", "ƒ∂ß", "ROMEO:"], max_new_tokens=20, temperature=0.5, seed=1)
    assert all(len(t) == 20 for t in texts)
    assert UNK not in "".join(texts)


def test_score_is_lower_for_text_like_the_corpus(run):
    (good, n_good), (bad, n_bad), (empty, n_empty) = run.score(
        ["ROMEO:\nMy love is fair.\n", "qzqzqz xkcd 12345 @@@", ""]
    )
    assert n_good == len("ROMEO:\nMy love is fair.\n") and n_empty == 0 and empty == 0.0
    assert good < bad


def test_word_level_generation_joins_words(trained_runs):
    run = trained_runs.loaded("word", "gru")
    (text,) = run.generate(["ROMEO:"], max_new_tokens=30, temperature=0.8, seed=2)
    assert UNK not in text and "  " not in text.replace("\n", "")
    assert text == "".join(run.stream("ROMEO:", max_new_tokens=30, temperature=0.8, seed=2))


def test_generator_caps_max_new_tokens(run):
    generator = Generator(run.model, run.vocab, max_new_tokens_cap=7)
    completion, counts = generator.generate_ids(
        tf.constant(["a"]),
        tf.constant([100]),
        tf.constant([1.0]),
        tf.constant([0]),
        tf.constant([1.0]),
        tf.constant([[1, 0]], tf.int64),
        *_off(1),
    )
    assert counts.numpy().tolist() == [7] and len(completion.numpy()[0].decode()) == 7


def test_xla_compiled_generator_writes_the_same_text(run):
    plain = Generator(run.model, run.vocab, stop=["\n\n"], defaults=run.config.sample)
    compiled = Generator(
        run.model, run.vocab, stop=["\n\n"], defaults=run.config.sample, jit_compile=True
    )
    prompts = ["ROMEO:", "", "JULIET:\nMy"]
    for settings in (
        {"temperature": 0},
        {"temperature": 1.0, "seed": 7},
        {"temperature": 0.8, "top_k": 4, "top_p": 0.9, "seed": 3},
    ):
        expected = plain.generate(prompts, max_new_tokens=150, **settings)
        assert compiled.generate(prompts, max_new_tokens=150, **settings) == expected


def test_chunk_size_does_not_change_the_text(run):
    texts = {
        size: Generator(run.model, run.vocab, chunk_size=size).generate(
            ["ROMEO:", "x"], max_new_tokens=70, temperature=1.0, seed=9
        )
        for size in (1, 7, 64)
    }
    assert texts[1] == texts[7] == texts[64]


def test_num_tokens_counts_through_the_token_that_completes_a_stop_string(run):
    free = run.generate(["ROMEO:"], max_new_tokens=200, temperature=1.0, seed=4)[0]
    stop = free[30:33]
    generator = run.generator_for([stop])
    completion, counts = generator.generate_ids(
        tf.constant(["ROMEO:", "ROMEO:"]),
        tf.constant([200, 20]),
        tf.constant([1.0, 1.0]),
        tf.constant([0, 0]),
        tf.constant([1.0, 1.0]),
        tf.constant([[4, 0], [4, 0]], tf.int64),
        *_off(2),
    )
    first = free.index(stop)
    assert completion.numpy()[0].decode() == free[:first]
    assert counts.numpy().tolist() == [first + len(stop), min(20, first + len(stop))]


def test_prompts_read_in_blocks_prime_and_score_as_one_token_per_iteration(run):
    """The default export reads prompts in blocks of 8 tokens too, while at least half a
    block is prompt; the rows' ends inside a block are masked. Lengths 1-26 tokens (with
    the start token), in one batch and one alone."""
    one, unrolled = (Generator(run.model, run.vocab, unroll=unroll) for unroll in (1, 8))
    text = "ROMEO:\nBut soft, what light"
    prompts = tf.constant([text[:n] for n in (0, 3, 4, 6, 7, 8, 11, 12, 15, 16, 20, 25)])
    for batch in (prompts, prompts[3:4]):  # alone: 7 tokens, a block with one masked
        for a, b in zip(tf.nest.flatten(one.prime(batch)), tf.nest.flatten(unrolled.prime(batch))):
            np.testing.assert_allclose(b.numpy(), a.numpy(), atol=1e-6)
        scores = one.score(batch), unrolled.score(batch)
        np.testing.assert_allclose(scores[1]["mean_nll"], scores[0]["mean_nll"], atol=1e-6)
        np.testing.assert_array_equal(scores[1]["num_tokens"], scores[0]["num_tokens"])


UNROLL_SETTINGS = {
    0: [
        {"temperature": 1.0, "seed": 5},
        {"temperature": 0.9, "top_k": 5, "top_p": 0.9, "seed": 2},
        {"temperature": 1.0, "repetition_penalty": 1.3, "no_repeat_ngram": 3, "seed": 8},
    ],
    3: [{"temperature": 0.5, "seed": 3}],
}


@pytest.mark.parametrize("max_copy", [0, 3])
def test_the_unrolled_loop_writes_what_one_token_per_iteration_writes(run, max_copy):
    # Lengths on both sides of a block of 8 and of a chunk of 16; each setting's stop
    # string ends its rows inside blocks; with max_copy, the copy guard's loop. (One pair
    # of generators serves every setting: they are inputs, traced once.)
    guard = run.copy_guard(max_copy) if max_copy else None
    every = UNROLL_SETTINGS[max_copy]
    stops = tuple(run.generate(["ROMEO:"], max_new_tokens=60, **s)[0][21:23] for s in every)
    for stop in ((), stops):
        one, unrolled = (
            Generator(
                run.model, run.vocab, stop=stop, chunk_size=16, unroll=unroll, copy_guard=guard
            )
            for unroll in (1, 8)
        )
        prompts = ["ROMEO:", "", "JULIET:\nMy"]
        for settings in every:
            for length in (1, 7, 8, 9, 16, 17, 45):
                expected = one.generate(prompts, max_new_tokens=length, **settings)
                assert unrolled.generate(prompts, max_new_tokens=length, **settings) == expected
            if guard is not None and not stop:  # the guard did turn tokens away here
                free = Generator(run.model, run.vocab).generate(
                    prompts, max_new_tokens=45, **settings
                )
                assert free != expected
