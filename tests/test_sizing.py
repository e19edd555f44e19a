"""Sizing a budget run (`textgen train --minutes N` alone): the rule's choices are the
grid's measurements, the plan says why, flags given win, `--dry-run` writes nothing."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

import textgen
from textgen.core.config import ModelConfig
from textgen.model.sizes import recurrent_parameter_count
from textgen.training import sizing
from textgen.training.plan import Plan

from conftest import run_cli

GRID = Path(__file__).parents[1] / "docs" / "data" / "sizing.jsonl"


def grid_runs() -> dict[tuple[str, float, str], list[dict]]:
    """The sizing grid's runs (docs/data/sizing.jsonl), by corpus, budget and level: where a case's
    grid (not only its other windows and batches, `auto:w50`) was run again under the
    budget's validation share (`val_rule`), those runs only, each scored (`best`) on the
    whole held-out text."""
    runs = defaultdict(list)
    for line in GRID.read_text().splitlines():
        row = json.loads(line)
        if "superseded" in row:  # a run of a rule or protocol since changed (it says how)
            continue
        scored = {**row, "best": row.get("held_out", row["best"])}
        runs[row["corpus"], row["minutes"], row.get("level", "char")].append(scored)
    for case, rows in runs.items():
        again = [row for row in rows if "val_rule" in row]
        if any(not row["config"].startswith("auto:") for row in again):  # not only windows
            runs[case] = again
    return runs


def option_of(row: dict, corpus_tokens: int, vocab_size: int, level: str) -> sizing.Option:
    """A grid run as the rule would weigh it: its model at its measured step time, for
    the training seconds the run had."""
    model = ModelConfig(**{**row["model"]})
    weighed = [o for o in row.get("sizing", {}).get("options", []) if o["units"] == model.units]
    steps, per_step = row["steps"], row["seconds_per_step"]
    if weighed:  # a sized run: its budget's steps before the text cut them short
        steps, per_step = weighed[0]["steps"], weighed[0]["seconds_per_step"]
    seconds = steps * per_step
    return sizing.weigh(model, per_step, True, seconds, corpus_tokens, vocab_size, level)


SIZED_CASES = sorted(grid_runs())


@pytest.mark.parametrize("case", SIZED_CASES, ids=lambda case: "{}-{:g}-{}".format(*case))
def test_the_rules_choice_is_within_2_percent_of_the_grids_best(case):
    """The rule, given the grid's corpus and each size's measured steps, chooses a size
    and regularisation whose run (at the level's learning rate, the rule's batch and
    window) scored within 2% of the best run of the grid (other batches and windows
    among them)."""
    runs = [r for r in grid_runs()[case] if r["config"] not in ("default", "olddefault")]
    tokens, vocab = runs[0]["corpus_tokens"], runs[0]["vocab_size"]
    first = {}  # each size of the grid as the rule weighs it (at its first run's step time)
    for r in sorted(runs, key=lambda r: r["config"] == "auto"):  # the auto run's size last
        if r["config"] == "auto" or not r["config"].startswith("auto"):  # (auto:w50: windows)
            first.setdefault(r["model"]["units"], r)
    level = case[2]
    chosen = sizing.choose([option_of(r, tokens, vocab, level) for r in first.values()])
    regularised = chosen.regularisation == "full"
    rate = sizing.learning_rate(chosen.units, level)
    same = [  # the grid's run of that choice (the auto-sized run's where the grid has none)
        r for r in sorted(runs, key=lambda r: r["config"] == "auto")
        if r["model"]["units"] == chosen.units and (r["model"]["dropout"] > 0) == regularised
        and r["train"]["learning_rate"] == rate and r["train"]["batch_size"] == sizing.BATCH
        and r["seq_len"] == sizing.WINDOW
    ]  # fmt: skip
    best = min(r["best"] for r in runs)
    assert same and same[0]["best"] <= 1.02 * best, (
        chosen,
        [(r["config"], r["best"]) for r in runs],
    )


def options(tokens_per_step=3200, corpus=1_000_000, seconds=110.0, vocab=65):
    """The rule's options for a corpus and budget, step times growing as units squared."""
    return [
        sizing.weigh(
            ModelConfig(units=u, embedding_dim=sizing.embedding_dim(u)),
            0.05 * (u / 128) ** 2,
            True,
            seconds,
            corpus,
            vocab,
            "char",
            tokens_per_step,
        )  # fmt: skip
        for u in sizing.CANDIDATE_UNITS
    ]


def test_the_rule_picks_the_largest_size_the_budget_can_teach_and_grows_with_it():
    chosen = [sizing.choose(options(seconds=60 * m)).units for m in (0.5, 2, 10, 60)]
    assert chosen == sorted(chosen) and chosen[0] < chosen[-1]
    for minutes in (0.5, 2, 10, 60):
        ranked = sorted(options(seconds=60 * minutes), key=lambda o: o.units)
        pick = sizing.choose(ranked)
        larger = [o for o in ranked if o.units > pick.units]
        assert sizing.teachable(pick) or pick is ranked[0]
        assert not any(sizing.teachable(o) for o in larger)


def test_more_budget_than_text_means_a_larger_size_regularised_reading_it_at_most_21_times():
    big = sizing.choose(options(corpus=10_000_000))
    small = sizing.choose(options(corpus=100_000))
    assert (small.regularisation, big.regularisation) == ("full", "none")
    assert sizing.DATA_BOUND_MOST_PASSES >= small.passes >= sizing.DATA_BOUND_PASSES > big.passes
    # the text limits: past some budget, ten times more trains the same size as long
    plenty = sizing.choose(options(corpus=100_000, seconds=6600))
    more = sizing.choose(options(corpus=100_000, seconds=66_000))
    assert (more.units, more.steps) == (plenty.units, plenty.steps)
    assert plenty.passes == pytest.approx(sizing.DATA_BOUND_MOST_PASSES, rel=0.01)
    assert plenty.exposure <= sizing.MOST_EXPOSURE and plenty.steps >= 500
    # long windows on a small text: no size reads it 20 times in 500 steps; the largest
    # that reads it 20 times in fewer is chosen, not one that cannot read it twice
    long = sizing.choose(options(tokens_per_step=6400, corpus=90_000))
    assert long.passes >= 0.99 * sizing.DATA_BOUND_PASSES and long.steps >= sizing.FEWEST_STEPS
    larger = [sizing.read_at_most(o, sizing.DATA_BOUND_MOST_PASSES)
              for o in options(corpus=100_000, seconds=6600) if o.units > plenty.units]  # fmt: skip
    assert larger and all(o.exposure > sizing.MOST_EXPOSURE for o in larger)


def test_the_rule_counts_the_recurrent_layers_so_a_vocabulary_moves_it_only_by_step_times():
    """Words' and pieces' embeddings and logits grow with the vocabulary, not with what the
    model can learn: at the same step times, 65 characters and 10,000 words size alike."""
    for minutes in (0.5, 2, 10):
        chars, words = options(seconds=60 * minutes), options(seconds=60 * minutes, vocab=10_000)
        assert sizing.choose(chars).units == sizing.choose(words).units
        assert all(w.parameters > 10 * w.recurrent for w in words if w.units <= 128)
    model = ModelConfig(units=128, embedding_dim=64)
    option = sizing.weigh(model, 0.1, True, 100.0, 500_000, 2000, "subword")
    assert option.recurrent == recurrent_parameter_count(model) < option.parameters
    assert option.tokens_per_parameter == pytest.approx(1000 * 3200 / option.recurrent)


@pytest.mark.parametrize("level", ["subword", "word"])
def test_subword_and_word_runs_are_sized(level, corpus_file, tmp_path):
    result = run_cli("train", "--corpus", corpus_file, "--level", level, "--minutes", 1,
                     "--dry-run", "--root", tmp_path / "runs",
                     "--data-dir", tmp_path / "data")  # fmt: skip
    lines = result.output.splitlines()
    sized = next(line for line in lines if line.startswith("Sized for 1 minutes: 2 x GRU("))
    assert "in its recurrent layers" in sized and "per recurrent parameter" in sized
    expected = next(line for line in lines if line.startswith("Expected held-out loss: "))
    # a word outside the vocabulary is [UNK]: its letters are not scored, no range is given
    assert ("not estimated for words" in expected) == (level == "word")
    assert any(line.startswith("Plan for 1 minutes: ") for line in lines)
    assert lines[-1] == "Dry run: nothing trained, no run folder written"


def test_words_train_at_a_higher_rate_and_are_regularised_by_their_passes():
    """Words learn fastest at a higher rate (for sizes up to `WORD_RATE_UP_TO`) and, at
    it, learn the text by heart after a few passes whatever the recurrent layers' size:
    an option read `WORD_FULL_PASSES` times is regularised as words, not as characters."""
    assert sizing.learning_rate(128, "word") > sizing.learning_rate(128, "char")
    assert sizing.learning_rate(512, "word") == sizing.learning_rate(512, "char")
    model = ModelConfig(units=64, embedding_dim=64)
    read = {
        level: sizing.weigh(model, 0.2, True, 300.0, 260_000, 10_000, level)
        for level in ("char", "word")
    }  # fmt: skip
    assert read["word"].passes >= sizing.WORD_FULL_PASSES
    assert read["word"].exposure < sizing.FULL_EXPOSURE
    assert (read["char"].regularisation, read["word"].regularisation) == ("none", "full")
    settings = sizing.settings_of(read["word"], epochs=4)
    assert settings["model"]["dropout"] > 0 and settings["train"]["learning_rate"] == 1e-2


def test_the_expected_loss_falls_with_the_budget():
    short, long = sizing.expected_bits(2.6, 2), sizing.expected_bits(2.6, 20)
    assert short[0] < short[1] and long[1] < short[1] and long[0] < short[0]


def test_a_dry_run_prints_the_size_the_plan_and_the_memory_and_writes_nothing(
    corpus_file, tmp_path
):
    root = tmp_path / "runs"
    result = run_cli("train", "--corpus", corpus_file, "--minutes", 1, "--dry-run",
                     "--root", root, "--data-dir", tmp_path / "data")  # fmt: skip
    lines = result.output.splitlines()
    sized = next(line for line in lines if line.startswith("Sized for 1 minutes: 2 x GRU("))
    units = int(sized.split("GRU(")[1].split(")")[0])
    assert units in sizing.CANDIDATE_UNITS
    assert any(line.startswith("Weighed: GRU(") for line in lines)
    assert any(line.startswith("Expected held-out loss: ") for line in lines)
    assert any(line.startswith("Plan for 1 minutes: ") for line in lines)
    # 13 KB of text read 20 times in far less than a minute on any machine: the text limits
    limits = next(line for line in lines if line.startswith("The text, not the time, limits"))
    assert "ends after about " in limits and " of the 1 minutes" in limits
    assert any(line.startswith("Memory at the peak about ") for line in lines)
    assert lines[-1] == "Dry run: nothing trained, no run folder written"
    assert not root.exists()


def test_flags_given_win_over_the_rule_which_plans_the_rest(corpus_file, tmp_path):
    lines: list[str] = []
    config = textgen.RunConfig().with_overrides(
        data={"sources": [str(corpus_file)], "data_dir": str(tmp_path / "data")},
        model={"units": 48, "dropout": 0.25},
        train={"minutes": 0.25, "sample_length": 0},
    )
    given = {"model": {"units": 48, "dropout": 0.25}, "train": {"minutes": 0.25}}
    run = textgen.train(config, run_dir=tmp_path / "r", settings=given, auto_size=True,
                        log=lines.append, verbose=0)  # fmt: skip
    saved = json.loads((run / "config.json").read_text())
    assert saved["model"]["units"] == 48 and saved["model"]["dropout"] == 0.25
    assert saved["train"]["batch_size"] == sizing.BATCH  # the rule's, not the default's
    assert saved["train"]["learning_rate"] == sizing.learning_rate(48, "char")
    assert saved["sizing"]["chosen"] == 48
    assert [option["units"] for option in saved["sizing"]["options"]] == [48]
    assert any(line.startswith("Sized for 0.25 minutes: 2 x GRU(48)") for line in lines)
    plan = Plan.from_dict(saved["plan"])
    # 13 KB of text: the text limits the run, cut to the passes the rule allows (unless
    # the machine is so slow that a quarter-minute reads it fewer than 20 times)
    cut = any(line.startswith("The text, not the time, limits this run") for line in lines)
    assert cut == (saved["sizing"]["steps"] < saved["sizing"]["options"][0]["steps"])
    assert saved["train"]["max_steps"] == (saved["sizing"]["steps"] if cut else None)
    assert plan.total_steps <= (plan.most_steps or plan.total_steps)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--minutes", "0.01"], "too short to train on this machine"),
        (["--minutes", "1", "--val-fraction", "0.99"], "fewer than --batch-size 32"),
        (["--max-steps", "50"], "max_steps caps a budget: give --minutes"),
    ],
)
def test_a_budget_or_corpus_too_small_is_one_line_and_exit_2(corpus_file, tmp_path, args, message):
    root = tmp_path / "runs"
    result = run_cli("train", "--corpus", corpus_file, "--root", root, "--data-dir",
                     tmp_path / "data", *args, expect=2)  # fmt: skip
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not root.exists()


def test_a_dry_run_of_epochs_says_how_long_they_would_take(corpus_file, tmp_path):
    root = tmp_path / "runs"
    result = run_cli("train", "--corpus", corpus_file, "--preset", "quick", "--epochs", 2,
                     "--steps-per-epoch", 30, "--dry-run", "--root", root,
                     "--data-dir", tmp_path / "data")  # fmt: skip
    plan = next(line for line in result.output.splitlines() if line.startswith("Plan: "))
    assert plan.startswith("Plan: 2 epochs of 30 steps (") and "minutes" in plan
    assert "Sized for" not in result.output  # a preset is taken as it is
    assert not root.exists()
