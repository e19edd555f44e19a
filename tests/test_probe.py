from collections import Counter

from textgen.data.tokenizers import build_vocabulary
from textgen.evaluate.probe import (
    ITEMS,
    OVERHEAD,
    PLACES,
    chance_accuracy,
    probe_accuracy,
    probe_corpus,
    probe_examples,
)


def test_probe_is_deterministic_under_a_seed():
    assert probe_corpus(20, seed=3) == probe_corpus(20, seed=3)
    assert probe_corpus(20, seed=3) != probe_corpus(20, seed=4)
    assert probe_examples((20,), 5) == probe_examples((20,), 5)


def test_the_answer_is_named_only_at_the_given_distance_back():
    for example in probe_examples((15, 40, 120), per_distance=30):
        words = example.prompt.split()
        places = [i for i, word in enumerate(words) if word in PLACES]
        assert [words[i] for i in places] == [example.answer]  # the cue, and nothing else
        assert len(words) - places[0] == example.distance  # answer position - cue position
        assert example.distance >= OVERHEAD


def test_without_the_cue_the_answer_is_unpredictable():
    examples = probe_examples((30,), per_distance=1200)
    counts = Counter(example.answer for example in examples)
    assert set(counts) == set(PLACES)
    expected = len(examples) * chance_accuracy()
    assert all(abs(n - expected) < 0.35 * expected for n in counts.values())
    # what follows the cue does not depend on the answer: same item, another place
    by_item = Counter((e.prompt.split()[-4], e.answer) for e in examples)
    assert all(by_item[item, place] > 0 for item in ITEMS for place in PLACES)


def test_a_model_that_reads_the_cue_scores_full_marks_and_one_that_cannot_scores_chance():
    import numpy as np

    from textgen.data.tokenizers import Tokenizer

    vocab = build_vocabulary(probe_corpus(50), "word")
    place_ids = {Tokenizer(vocab).encode_text(p)[0] for p in PLACES}

    def oracle(ids, training=False):  # logits favouring the one place in the prompt
        logits = np.zeros((*ids.shape, vocab.size), np.float32)
        for row, seq in enumerate(ids):
            cue = next(i for i in seq if i in place_ids)
            logits[row, -1, cue] = 1.0
        return logits

    def forgetful(ids, training=False):
        logits = np.zeros((*ids.shape, vocab.size), np.float32)
        logits[:, -1, min(place_ids)] = 1.0
        return logits

    examples = probe_examples((20, 60), per_distance=60)
    assert probe_accuracy(oracle, vocab, examples) == {20: 1.0, 60: 1.0}
    assert all(a < 0.25 for a in probe_accuracy(forgetful, vocab, examples).values())
