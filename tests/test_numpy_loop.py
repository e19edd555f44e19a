"""The NumPy loop (prime, step, choose, finish over a one-token step) writes the graph
generator's text for every sampling setting, and a continued place writes what one
sample of the whole text writes."""

import keras
import pytest
import tensorflow as tf

from tests.conftest import make_corpus
from textgen.core.config import ModelConfig
from textgen.core.errors import ConfigError
from textgen.data.span_index import SpanIndex, text_codes
from textgen.data.tokenizers import Tokenizer, build_vocabulary
from textgen.data.vocabulary import UNK, token_piece
from textgen.generate.copy_guard import CopyGuard
from textgen.generate.generator import Generator
from textgen.generate.numpy_loop import NumpyLoop
from textgen.generate.rules.copy_guard import SpanGuard
from textgen.generate.settings import SamplingSettings
from textgen.model.network import build_model
from textgen.model.numpy_step import NumpyStep, write_weights

SPAN = 6
# One row each: every setting `sample` takes, alone and together (the extreme top-p too).
SETTINGS = [
    {"temperature": 0.0},
    {"temperature": 0.9, "seed": 3},
    {"temperature": 1.2, "top_k": 4, "seed": 5},
    {"temperature": 1.0, "top_p": 0.7, "seed": 6},
    {"temperature": 0.8, "top_p": 1e-40, "seed": 1},
    {"temperature": 0.0, "repetition_penalty": 1.8},
    {"temperature": 0.7, "repetition_penalty": 1.5, "repetition_window": 4, "seed": 2},
    {"temperature": 0.0, "no_repeat_ngram": 2},
    {"temperature": 1.0, "no_repeat_ngram": 3, "top_k": 6, "seed": 9},
    {"temperature": 0.0, "max_copy": SPAN},
    {"temperature": 1.0, "max_copy": SPAN, "no_repeat_ngram": 2, "seed": 4},
    {"temperature": 0.9, "stop": ("e",), "seed": 8},
    {"temperature": 1.0, "exclude": ("e", "th"), "seed": 7},
    {"temperature": 0.0, "exclude": ("the", "Love"), "max_copy": SPAN},
    {"temperature": 0.9, "top_k": 3, "exclude": ("o",), "no_repeat_ngram": 2, "seed": 5},
]


@pytest.fixture(scope="module", params=["char", "word"])
def pair(request, tmp_path_factory):
    """An untrained model's graph generators (with and without the copy guard) and a
    NumPy loop over the same weights (the Keras one-token step)."""
    corpus = make_corpus(lines=60, seed=4)
    vocab = build_vocabulary(corpus, request.param)
    tokenizer = Tokenizer(vocab)
    index = SpanIndex.build(lambda: text_codes(tokenizer.encode_text(corpus), vocab), SPAN)
    keras.utils.set_random_seed(1)
    config = ModelConfig(cell="gru", layers=2, units=16, embedding_dim=8, dropout=0.0)
    model = build_model(vocab.size, config)
    weights = tmp_path_factory.mktemp("weights") / "weights.npz"
    write_weights(model, weights, "ckpt-0")
    network = NumpyStep(weights)  # the model's step in NumPy (tests hold it to Keras')
    piece = token_piece(vocab)
    loop = NumpyLoop(
        network.step, network.zero_state(), lambda text: tokenizer.encode_text(text).tolist(),
        piece, [UNK, *vocab.tokens], vocab.start_id,
        span_guard=lambda span: SpanGuard(index, piece),
    )  # fmt: skip

    generators = {}

    def generator(settings: SamplingSettings) -> Generator:
        key = (settings.stop or (), bool(settings.max_copy))
        if key not in generators:
            guard = CopyGuard(index, vocab) if settings.max_copy else None
            generators[key] = Generator(model, vocab, stop=key[0], copy_guard=guard)
        return generators[key]

    return loop, generator


PROMPTS = ["ROMEO:\nLove the", ""]


def _resolved(pair, **changes):
    """The loop, the generator for `changes` and the settings resolved by it."""
    loop, generator = pair
    g = generator(SamplingSettings.of(**changes))
    return loop, g, g.resolve(SamplingSettings.of(**changes))


def _numpy(loop: NumpyLoop, prompt: str, settings: SamplingSettings, stream=0) -> str:
    return "".join(loop.pieces(loop.read(loop.start(), prompt), settings, stream))


@pytest.mark.parametrize("changes", SETTINGS, ids=lambda c: ",".join(c))
def test_numpy_loop_writes_the_generators_text(pair, changes):
    loop, g, resolved = _resolved(pair, max_new_tokens=40, **changes)
    expected = g.generate(PROMPTS, resolved)
    assert [_numpy(loop, p, resolved, stream) for stream, p in enumerate(PROMPTS)] == expected
    assert "".join(g.stream(PROMPTS[0], resolved)) == expected[0]


def test_a_continued_place_writes_what_one_sample_of_the_whole_text_writes(pair):
    loop, g, resolved = _resolved(
        pair, max_new_tokens=30, temperature=0.9, seed=2, repetition_penalty=1.3, no_repeat_ngram=2
    )
    _, place = list(loop.draw(loop.read(loop.start(), "ROMEO:"), resolved))[-1]
    place = loop.read(place, " Fair")
    expected = g.generate([place.text], resolved)[0]
    assert "".join(loop.pieces(place, resolved)) == expected


def test_a_loop_without_the_training_text_refuses_max_copy(pair):
    loop, _ = pair
    bare = NumpyLoop(loop.step, loop.zero_state, loop.encode, loop.piece, loop.tokens,
                     loop.start_id)  # fmt: skip
    with pytest.raises(ConfigError, match="--max-copy"):
        _numpy(bare, "", SamplingSettings(max_new_tokens=5, temperature=0.0, max_copy=SPAN))


BEAM_SETTINGS = [
    {"beams": 1},
    {"beams": 3},
    {"beams": 4, "repetition_penalty": 1.5, "no_repeat_ngram": 2},
    {"beams": 3, "stop": ("e",)},
    {"beams": 2, "max_copy": SPAN},
    {"beams": 3, "exclude": ("e", "th")},
]


@pytest.mark.parametrize("changes", BEAM_SETTINGS, ids=lambda c: ",".join(c))
def test_numpy_beam_search_finds_the_generators_beams(pair, changes):
    from textgen.generate.numpy_beams import beam_search
    from textgen.generate.sampler import beams_of

    loop, g, resolved = _resolved(pair, max_new_tokens=12, **changes)
    prompts = PROMPTS
    size, fields = [len(prompts)], resolved.request_fields()
    found = g.beam_search_ids(
        tf.constant(prompts), tf.fill(size, 12), tf.fill(size, resolved.beams),
        tf.fill(size, float(fields["repetition_penalty"])),
        tf.fill(size, fields["repetition_window"]),
        tf.fill(size, fields["no_repeat_ngram"]), tf.fill(size, fields["exclude"]),
        tf.fill(size, fields["include"]),
    )  # fmt: skip
    expected = beams_of(*(found[k].numpy().tolist() for k in ("completion", "log_probability",
                                                              "num_tokens")))  # fmt: skip
    for prompt, graph in zip(prompts, expected):
        numpy = beam_search(loop, loop.read(loop.start(), prompt), resolved)
        graph = [b for b in graph if b.num_tokens]  # (empty slots)
        assert [(b.completion, b.num_tokens) for b in numpy] == [
            (b.completion, b.num_tokens) for b in graph
        ]
        assert [b.log_probability for b in numpy] == pytest.approx(
            [b.log_probability for b in graph], abs=1e-4
        )
