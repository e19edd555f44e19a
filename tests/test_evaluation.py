import json
import math

import numpy as np
import pytest

from textgen.evaluate.evaluation import copy_rate, distinct_n
from textgen.model.window_loss import WindowLoss, loss_figures
from textgen.runs.folder import RunFolder

from conftest import run_cli


@pytest.fixture(scope="module")
def run(trained_runs):
    return trained_runs.loaded("char", "lstm")


def _nll_by_hand(model, ids):
    """-log p(ids[t + 1] | ids[: t + 1]) for each t, reading ids from a zero state."""
    logits = model(ids[None, :-1], training=False).numpy()[0]
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    return [-log_probs[t, ids[t + 1]] for t in range(len(ids) - 1)]


def test_window_loss_equals_a_by_hand_computation(run):
    ids = np.random.default_rng(0).integers(1, run.vocab.size, 103).astype(np.int32)
    loss, tokens = WindowLoss(run.model, seq_len=10, batch_size=4)(ids)
    by_hand = []
    for start in range(0, 99, 11):  # 9 whole windows of 11 ids: 10 inputs, 10 targets
        by_hand += _nll_by_hand(run.model, ids[start : start + 11])
    assert tokens == len(by_hand) == 90
    assert loss == pytest.approx(np.mean(by_hand), rel=1e-5)
    assert WindowLoss(run.model, 10, 4, jit_compile=False)(ids)[0] == pytest.approx(loss, 1e-6)


def test_stateful_window_loss_equals_each_stream_read_whole(run):
    """With the state carried, the windows of a stream score as the stream read in one go."""
    from textgen.model.sizes import state_sizes

    ids = np.random.default_rng(1).integers(1, run.vocab.size, 95).astype(np.int32)
    sizes = state_sizes(run.config.model)
    loss, tokens = WindowLoss(run.model, seq_len=10, batch_size=3, state_sizes=sizes)(ids)
    # 3 streams of 31 ids, 3 windows of 10 targets each: ids 0-30, 31-61, 62-92 (read 0-30 etc.)
    by_hand = []
    for start in (0, 31, 62):
        by_hand += _nll_by_hand(run.model, ids[start : start + 31])
    assert tokens == len(by_hand) == 90
    assert loss == pytest.approx(np.mean(by_hand), rel=1e-5)
    windowed, _ = WindowLoss(run.model, seq_len=10, batch_size=3)(ids)
    assert windowed != pytest.approx(loss, rel=1e-4)  # zero state per window differs
    short, short_tokens = WindowLoss(run.model, 10, 3, state_sizes=sizes)(ids[:12])
    assert short_tokens == 10 and math.isfinite(short)  # one stream, one window


def test_loss_figures_give_bits_per_character_on_every_level():
    assert loss_figures(math.log(2) * 1.5, 1.0)["bpc"] == pytest.approx(1.5)
    assert loss_figures(math.log(2) * 6.0, 4.0)["bpc"] == pytest.approx(1.5)  # 4 chars/token
    assert loss_figures(math.log(80.0), 5.0)["perplexity"] == pytest.approx(80.0)


def test_distinct_n_on_hand_made_tokens():
    tokens = [list("abab"), list("cc")]
    assert distinct_n(tokens, 1) == 3 / 6  # a b a b c c -> a, b, c
    assert distinct_n(tokens, 2) == 3 / 4  # ab ba ab | cc
    assert distinct_n(tokens, 5) == 0.0


@pytest.mark.parametrize("piece", [7, 1 << 22])
def test_copy_rate_counts_characters_in_long_verbatim_spans(piece):
    training = "the quick brown fox jumps over the lazy dog. " * 3
    copied = "quick brown fox jumps over"  # 26 characters of the training text
    sample = "ZZ" + copied + "QQ"
    assert copy_rate([sample], training, piece=piece) == pytest.approx(26 / 30)
    assert copy_rate(["quick brown fox QQQQQQQQQQQQQQQQQQ"], training, piece=piece) == 0.0
    assert copy_rate([sample, "Q" * 30], training, piece=piece) == pytest.approx(26 / 60)


def test_evaluate_json_matches_the_validation_loss_logged_in_training(trained_runs):
    run_dir = trained_runs("char", "lstm")
    result = json.loads(
        run_cli("evaluate", "--run-dir", run_dir, "--json", "--samples", "2").output
    )
    best = min(row["val_loss"] for row in RunFolder(run_dir).read_log())
    assert result["loss"] == pytest.approx(best, abs=1e-4)
    assert result["bpc"] == pytest.approx(result["loss"] / math.log(2))
    assert result["tokens"] > 0 and set(result["distinct"]) == {
        "distinct_1",
        "distinct_2",
        "distinct_3",
        "distinct_4",
    }
    assert 0 <= result["copy_rate"] <= 1


def test_evaluate_other_text_and_word_level_perplexity(trained_runs, tmp_path):
    other = tmp_path / "other.txt"
    other.write_text("ROMEO:\nLove is a sweet night.\n\n" * 20, encoding="utf-8")
    out = run_cli(
        "evaluate", "--run-dir", trained_runs("word", "gru"), "--corpus", other, "--samples", "0"
    ).output
    assert "perplexity" in out and "other.txt" in out
    run_cli("evaluate", "--run-dir", trained_runs("word", "gru"), "--samples", "-1", expect=2)


def test_generation_and_score_agree_with_window_loss_on_one_window(run):
    text = "ROMEO:\nMy love is fair.\n"
    ids = np.array([run.vocab.start_id, *run.generator.tokenizer.encode_text(text)], np.int32)
    ((mean_nll, _),) = run.score([text])
    loss, _ = WindowLoss(run.model, seq_len=len(ids) - 1, batch_size=1)(ids)
    assert mean_nll == pytest.approx(loss, rel=1e-4)
