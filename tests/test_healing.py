"""Token healing (`textgen.generate.rules.healing`): a subword prompt that ends inside a
word goes on with the word. The table of each token's extensions, its NumPy and graph
forms held equal, and every backend writing the same healed text."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from textgen.generate.rules.healing import Healing, strip_bytes
from textgen.generate.settings import SamplingSettings
from textgen.runs.folder import RunFolder
from textgen.runs.numpy_run import NumpyRun

TEXTS = ["[UNK]", "\n", " ", "a", " k", " kin", " king", " kind", "ing", "é", ":", "\x1e", "ki"]
# Prompts that end inside a word of the tests' corpus (`conftest.WORDS`), and two that do not.
PROMPTS = ["ROMEO:\nSwe", "JULIET:\nMy hea", "NURSE:\nThe moo", "ROMEO:\n", ""]


def test_the_cut_words_last_pieces_are_backed_off_while_a_piece_begins_with_them():
    healing = Healing(TEXTS)
    ids = {text: i for i, text in enumerate(TEXTS)}
    split = lambda *texts: healing.split([ids[t] for t in texts])  # noqa: E731
    assert split("\n", "a", " kin") == ([1, 3], (ids[" kin"],))  # " kin" starts the word
    assert split(" k", "ing") == ([], (ids[" k"], ids["ing"]))  # " king" begins with both
    assert split("a", "ki") == ([3], (ids["ki"],))  # no piece begins with "aki"
    assert split("é") == ([], (ids["é"],))
    # a piece that does not end inside a word (a space, a line end, a sign, a marker)
    # and [UNK] are never backed off
    for text in ("[UNK]", "\n", " ", ":", "\x1e"):
        assert split("a", text) == ([3, ids[text]], ())
    assert healing.split([]) == ([], ())
    assert healing.backed_off((ids[" k"], ids["ing"])) == " king"
    logits = np.zeros(len(TEXTS), np.float32)
    allowed = np.isfinite(healing.numpy(logits, (ids[" k"],)))
    assert {TEXTS[i] for i in np.flatnonzero(allowed)} == {" k", " kin", " king", " kind"}


def test_the_numpy_and_graph_forms_back_off_and_mask_alike():
    healing = Healing(TEXTS)
    healing.graph_tables()
    rng = np.random.default_rng(1)
    rows = [[1, 3, 5], [4, 8], [3, 12], [], [9], [5, 10], [0], [2, 4, 8, 8, 8, 8]]
    rows += [list(rng.integers(0, len(TEXTS), rng.integers(0, 6))) for _ in range(40)]
    ragged = tf.ragged.constant(rows, dtype=tf.int32)
    head, backed = healing.graph_split(ragged)
    expected = [healing.split(row) for row in rows]
    assert head.to_list() == [ids for ids, _ in expected]
    texts = [healing.backed_off(healed) for _, healed in expected]
    assert [b.decode() for b in backed.numpy()] == texts
    assert any(texts) and not all(texts)
    logits = rng.normal(size=(len(rows), len(TEXTS))).astype(np.float32)
    masked = healing.graph(tf.constant(logits), backed).numpy()
    for row, (_, healed) in enumerate(expected):
        np.testing.assert_array_equal(masked[row], healing.numpy(logits[row], healed))
    skip = healing.graph_skip(backed).numpy().tolist()
    assert skip == [len(text.encode()) for text in texts]
    stripped = strip_bytes(tf.constant([" kind", "", "éa"]), tf.constant([4, 3, 2]))
    assert stripped.numpy().tolist() == [b"d", b"", b"a"]


def test_only_subword_runs_heal(trained_runs):
    from textgen.data.levels import level_class

    assert level_class("subword").heals
    assert not level_class("char").heals and not level_class("word").heals
    run = NumpyRun(RunFolder(trained_runs("char", "lstm")))
    place = run.loop.read_prompt(run.loop.start(), "ROMEO:\nSwe")
    assert place.healed == ()


@pytest.fixture(scope="module")
def subword(trained_runs):
    return trained_runs("subword", "gru"), trained_runs.loaded("subword", "gru")


def test_a_healed_prompts_first_token_begins_with_the_text_backed_off(subword):
    folder, _ = subword
    run = NumpyRun(RunFolder(folder))
    loop = run.loop
    healed = 0
    for prompt in PROMPTS:
        place = loop.read_prompt(loop.start(), prompt)
        backed_off = loop.backed_off(place)
        assert place.text == prompt
        healed += bool(backed_off)
        assert prompt.endswith(backed_off)
        for seed in range(4):
            settings = SamplingSettings(max_new_tokens=5, temperature=1.0, seed=seed)
            shown, after = next(iter(loop.draw(place, settings.with_defaults(run.defaults))))
            first = loop.tokens[after.last]
            assert first.startswith(backed_off)
            assert after.text == prompt + first[len(backed_off) :]
    assert healed == 3  # the prompts that end inside a word


def test_every_backend_writes_the_same_healed_text(subword):
    folder, run = subword
    numpy_run = NumpyRun(RunFolder(folder))
    for settings in (
        {"max_new_tokens": 30, "temperature": 0.9, "seed": 3},
        {"max_new_tokens": 30, "temperature": 0.0},
        {"max_new_tokens": 30, "temperature": 0.8, "seed": 1, "repetition_penalty": 1.3,
         "stop": ("\n\n",)},
    ):  # fmt: skip
        expected = numpy_run.generate(PROMPTS, **settings)
        assert run.generate(PROMPTS, **settings) == expected
        assert ["".join(run.stream(p, **settings)) for p in PROMPTS] == [
            numpy_run.generate([p], **settings)[0] for p in PROMPTS
        ]
    searched = {"max_new_tokens": 20, "beams": 3}
    assert run.generate(PROMPTS, **searched) == numpy_run.generate(PROMPTS, **searched)
    xla = run.generator_for([], jit_compile=True)
    plain = run.generator_for([], jit_compile=False, unroll=8, frozen=True)
    seeded = {"max_new_tokens": 30, "temperature": 0.9, "seed": 3}
    assert xla.generate(PROMPTS, **seeded) == plain.generate(PROMPTS, **seeded)
    assert plain.generate(PROMPTS, **seeded) == numpy_run.generate(PROMPTS, stop=(), **seeded)


def test_a_healed_prompt_continues_in_chunks_as_in_one_call(subword):
    from textgen.data.tokenizers import string_tensor

    _, run = subword
    generator = run.generator_for(["\n\n"], unroll=8, frozen=True, jit_compile=False)
    n, total = len(PROMPTS), 24
    rows = (
        tf.fill([n], 0.9), tf.fill([n], 0), tf.fill([n], 1.0),
        tf.constant([[7, i] for i in range(n)], tf.int64), tf.fill([n], -1.0),
        tf.fill([n], -1), tf.fill([n], -1), tf.fill([n], ""), tf.fill([n], ""),
    )  # fmt: skip
    whole, _ = generator.generate_ids(string_tensor(PROMPTS), tf.fill([n], total), *rows)
    texts, states, got = string_tensor(PROMPTS), tf.fill([n], ""), [""] * n
    for _ in range(total // 5 + 2):
        out = generator.continue_from(texts, states, tf.fill([n], total), tf.fill([n], 5), *rows)
        got = [a + b.decode() for a, b in zip(got, out["completion"].numpy())]
        texts, states = tf.fill([n], ""), out["state_bytes"]
        if out["done"].numpy().all():
            break
    got = [a + p.decode() for a, p in zip(got, out["pending"].numpy())]
    assert got == [w.decode() for w in whole.numpy()]


def test_a_session_heals_the_line_typed_as_sample_does(subword):
    from textgen.generate.cowriting import CoWriting

    folder, _ = subword
    run = NumpyRun(RunFolder(folder))
    shown: list[str] = []
    settings = SamplingSettings(max_new_tokens=20, temperature=0.9, seed=4)
    writing = CoWriting(run, settings, echo=lambda text="", nl=True, err=False: shown.append(text))
    writing.line(PROMPTS[1])
    expected = run.generate([PROMPTS[1]], max_new_tokens=20, temperature=0.9, seed=4)[0]
    assert "".join(shown) == expected
    assert writing.place.text == PROMPTS[1] + expected and not writing.place.healed
    writing.line("/undo")  # back to the healed place: the next line reads its pieces first
    assert writing.place.healed and writing.place.text == PROMPTS[1]
    writing.line("rt and")
    assert writing.place.text.startswith(PROMPTS[1] + "rt and")
