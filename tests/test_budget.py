"""Training to a time budget: the plan fills it, is recorded, and a run given the plan
(a resumed one too) trains the same steps at the same rates."""

from __future__ import annotations

import json

import numpy as np
import pytest

import textgen
from textgen.core.config import RunConfig
from textgen.core.errors import ConfigError
from textgen.training.plan import (
    END_SECONDS,
    FEWEST_VALIDATION_TOKENS,
    FLOOR,
    MOST_EPOCHS,
    VALIDATION_SHARE,
    Plan,
    PlannedDecay,
    budget_validation_tokens,
    epoch_of,
    epoch_start,
    make_plan,
    plan_epochs,
    plan_lines,
    replan,
    validation_tokens,
)

from conftest import run_cli, tiny_config


@pytest.mark.parametrize(
    "minutes, per_step, validation", [(2, 0.05, 1.0), (20, 0.5, 8.0), (0.5, 0.001, 0.2)]
)
def test_a_plan_fills_its_budget_with_epochs_of_equal_steps(minutes, per_step, validation):
    spent = 7.0
    plan = make_plan(minutes, spent, per_step, validation, 11, windows_per_pass=500)
    assert plan.steps == plan.epochs * plan.steps_per_epoch
    assert 2 <= plan.epochs <= MOST_EPOCHS
    finish = spent + plan.estimated_seconds
    budget = 60 * minutes
    assert (
        budget - END_SECONDS - per_step <= finish <= budget - END_SECONDS + per_step * plan.epochs
    )
    assert plan.passes == pytest.approx(plan.steps / 500)
    assert Plan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan


def test_the_plan_warns_when_the_text_is_seen_too_few_or_too_many_times():
    few = make_plan(1, 5.0, 0.5, 1.0, 11, windows_per_pass=10_000)
    many = make_plan(10, 5.0, 0.01, 1.0, 11, windows_per_pass=100)
    assert few.passes < 1 and "only" in plan_lines(few, 2**30, 0)[-1]
    assert many.passes > 50 and "by heart" in plan_lines(many, 2**30, 0)[-1]
    fine = make_plan(2, 5.0, 0.05, 1.0, 11, windows_per_pass=500)
    assert not any("Warning" in line for line in plan_lines(fine, 2**30, 0))


def test_the_schedule_holds_the_peak_over_the_timed_steps_then_decays_to_its_floor():
    schedule = PlannedDecay(0.01)
    assert float(schedule(500)) == pytest.approx(0.01)  # not planned yet: the peak
    schedule.set(make_plan(2, 5.0, 0.05, 1.0, 11, windows_per_pass=500))
    rates = [float(schedule(step)) for step in range(0, int(schedule.total.numpy()) + 50, 7)]
    assert rates[0] == rates[1] == pytest.approx(0.01)  # steps 0 and 7: timed, at the peak
    assert all(a >= b for a, b in zip(rates, rates[1:]))
    assert rates[-1] == pytest.approx(FLOOR * 0.01)


@pytest.mark.parametrize("speed", [0.98, 1.0, 1.25])
def test_a_replan_ends_the_run_at_the_budget_as_the_steps_so_far_ran(speed):
    plan = make_plan(20, 10.0, 0.4, 6.0, 13, windows_per_pass=300)
    step = 3 * plan.steps_per_epoch  # the end of the third epoch
    rate = plan.seconds_per_step / speed
    used = 10.0 + (step - 13) * rate + 2 * plan.validation_seconds
    again = replan(plan, 2, step, used, rate, progress=0.3)
    finish = used + (again["steps"] - step) * rate + (plan.epochs - 2) * plan.validation_seconds
    assert 20 * 60 - END_SECONDS - rate <= finish <= 20 * 60 - END_SECONDS
    assert (again["steps"] > plan.steps) == (speed > 1)  # a faster machine: more steps
    assert again["step"] == step and again["progress"] == 0.3
    slow = replan(plan, 2, step, 1150.0, rate, progress=0.3)  # nearly all the time gone
    last_epoch = slow["steps"] - (plan.epochs - 1) * plan.steps_per_epoch
    assert last_epoch == plan.steps_per_epoch // 10  # shortened, to a tenth of an epoch


def test_a_replanned_schedule_goes_on_from_where_it_was_to_its_floor_at_the_new_end():
    plan = make_plan(20, 10.0, 0.4, 6.0, 13, windows_per_pass=300)
    schedule = PlannedDecay(0.01)
    schedule.set(plan)
    step = 3 * plan.steps_per_epoch
    before = float(schedule(step))
    again = replan(plan, 2, step, 400.0, 0.3, progress=float(schedule.done(step)))
    plan = Plan.from_dict({**plan.to_dict(), "replans": [again]})
    schedule.set(plan, step)
    assert float(schedule(step)) == pytest.approx(before, rel=1e-5)  # no jump
    assert float(schedule(again["steps"])) == pytest.approx(FLOOR * 0.01)
    rates = [float(schedule(s)) for s in range(step, again["steps"] + 1, 11)]
    assert all(a >= b for a, b in zip(rates, rates[1:]))
    schedule.set(plan, step - 1)  # a step before the re-plan: the first plan's stretch
    assert float(schedule(step)) == pytest.approx(before, rel=1e-5)
    assert float(schedule.total) == plan.steps
    per_epoch, epochs = plan.steps_per_epoch, plan.epochs
    starts = [epoch_start(plan, per_epoch, epoch) for epoch in range(epochs + 2)]
    assert starts[epochs] == again["steps"] and starts[epochs + 1] == again["steps"] + per_epoch
    assert starts[epochs - 1] == (epochs - 1) * per_epoch
    for step in [0, per_epoch - 1, per_epoch, again["steps"] - 1, again["steps"] + 3]:
        assert (
            starts[epoch_of(plan, per_epoch, step)]
            <= step
            < starts[epoch_of(plan, per_epoch, step) + 1]
        )


@pytest.fixture(scope="module")
def planned(corpus_file, tmp_path_factory):
    """A run of a 0.25-minute budget (room for a busy machine's start-up), and its lines."""
    lines: list[str] = []
    config = tiny_config(corpus_file).with_overrides(train={"minutes": 0.25})
    run_dir = tmp_path_factory.mktemp("budget") / "r"
    return textgen.train(config, run_dir=run_dir, log=lines.append, verbose=0), lines


def test_a_plan_with_most_steps_stops_there_and_ends_early():
    full = make_plan(10, 20.0, 0.1, 1.0, 13, windows_per_pass=100)
    cut = make_plan(10, 20.0, 0.1, 1.0, 13, windows_per_pass=100, most_steps=700)
    assert full.steps > 700 >= cut.steps > 700 - cut.epochs and cut.most_steps == 700
    assert cut.estimated_seconds < 0.2 * full.estimated_seconds
    again = replan(cut, 0, cut.steps_per_epoch, 30.0, 0.05, 0.3)  # a faster machine
    assert again["steps"] <= 700  # the text's cut holds, however fast the steps go
    assert Plan.from_dict(cut.to_dict()) == cut


@pytest.mark.parametrize("left", [20.0, 110.0, 590.0, 3600.0])
@pytest.mark.parametrize("per_token", [1e-6, 1e-5, 5e-5])
def test_a_budgets_validations_take_their_share_of_it_on_enough_text(left, per_token):
    """Never more than the text or 1M tokens, never fewer than the floor (or the text),
    and above the floor the validations of all epochs take the share of the budget."""
    for available in (10_000, 150_000, 1_000_000, 3_000_000):
        tokens = budget_validation_tokens(left, per_token, available)
        assert min(available, FEWEST_VALIDATION_TOKENS) <= tokens <= min(available, 1_000_000)
        if min(available, 1_000_000) > tokens > FEWEST_VALIDATION_TOKENS:
            spent = plan_epochs(left) * tokens * per_token
            assert spent == pytest.approx(VALIDATION_SHARE * left, rel=1e-3)
    # more time, or a faster machine, reads at least as much
    assert budget_validation_tokens(3600, 1e-5, 10**7) >= budget_validation_tokens(60, 1e-5, 10**7)
    assert budget_validation_tokens(60, 1e-6, 10**7) >= budget_validation_tokens(60, 1e-5, 10**7)


def test_validation_tokens_given_are_kept_and_0_is_all():
    train = RunConfig().train
    assert validation_tokens(train, 3_000_000) == 1_000_000  # unset: 1M
    assert validation_tokens(train, 5_000) == 5_000
    train.val_tokens = 0
    assert validation_tokens(train, 3_000_000) == 3_000_000
    train.val_tokens = 7
    assert validation_tokens(train, 3_000_000) == 7


def test_a_budget_run_records_its_plan_and_follows_it(planned):
    run_dir, lines = planned
    config = json.loads((run_dir / "config.json").read_text())
    # its validation tokens, chosen for its budget, recorded (a resumed run reads as many)
    validation = config["corpus"]["validation_tokens"]
    assert config["train"]["val_tokens"] == min(validation - 1, FEWEST_VALIDATION_TOKENS)
    plan = Plan.from_dict(config["plan"])
    assert config["train"]["epochs"] == plan.epochs
    assert config["train"]["steps_per_epoch"] == plan.steps_per_epoch
    assert [again["epoch"] for again in plan.replans] == list(range(1, plan.epochs))
    assert any(line.startswith("Plan for 0.25 minutes:") for line in lines)
    assert any(line.startswith("Memory at the peak about") for line in lines)
    assert lines[-1].startswith("Trained for ") and "of a 0.25-minute budget" in lines[-1]
    info = run_cli("info", "--run-dir", run_dir).output
    assert f"0.25 minutes: {plan.steps:,} steps planned" in info
    rows = textgen.load_run(run_dir).folder.read_log()
    stopped = any("time limit" in line for line in lines)  # the guard, on a slow spell
    ends = [epoch_start(plan, plan.steps_per_epoch, e) for e in range(1, plan.epochs + 1)]
    assert [row["step"] for row in rows] == ends or (stopped and rows[-1]["step"] < ends[-1])
    assert any(line.startswith("Re-planned: ") for line in lines)


def test_a_run_given_a_recorded_plan_and_resumed_trains_what_the_planned_run_trained(
    planned, tmp_path
):
    quiet = {"log": lambda _: None, "verbose": 0}
    planned, _ = planned
    recorded = textgen.load_run(planned).config
    given = RunConfig.from_dict(recorded.to_dict())
    given.train.epochs = 1  # stopped after its first epoch, then resumed to the plan's end
    part = textgen.train(given, run_dir=tmp_path / "b", **quiet)
    textgen.train(run_dir=part, resume=True, epochs=recorded.plan["epochs"], **quiet)
    whole_rows = textgen.load_run(planned).folder.read_log()
    part_rows = textgen.load_run(part).folder.read_log()
    assert [r["step"] for r in part_rows] == [r["step"] for r in whole_rows]
    assert [r["loss"] for r in part_rows] == [r["loss"] for r in whole_rows]
    a, b = textgen.load_run(planned).model, textgen.load_run(part).model
    for x, y in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(x, y)


def test_a_run_given_a_whole_recorded_plan_trains_its_steps_whatever_the_clock(planned, tmp_path):
    """The guard stops a run that keeps its own time; one given every re-plan follows it
    (here its budget, and so its guard, made far shorter than its steps take)."""
    planned, _ = planned
    given = RunConfig.from_dict(textgen.load_run(planned).config.to_dict())
    given.train.minutes = given.plan["minutes"] = 1e-4  # a guard of 7.5 ms
    lines: list[str] = []
    run = textgen.train(given, run_dir=tmp_path / "r", log=lines.append, verbose=0)
    plan = Plan.from_dict(given.plan)
    assert textgen.load_run(run).folder.read_log()[-1]["step"] == plan.total_steps
    assert not any("time limit" in line for line in lines)


def test_minutes_on_the_command_line(corpus_file, tmp_path):
    result = run_cli(
        "train", "--corpus", corpus_file, "--run-dir", tmp_path / "r", "--minutes", 0.1,
        "--preset", "quick", "--seq-len", 24, "--units", 24, "--layers", 1,
        "--embedding-dim", 8, "--batch-size", 8, "--no-xla", "--samples", 0,
        "--val-tokens", 50,
    )  # fmt: skip
    assert "Plan for 0.1 minutes:" in result.output
    saved = json.loads((tmp_path / "r" / "config.json").read_text())
    assert saved["train"]["val_tokens"] == 50  # given: kept, whatever the budget
    run_cli("train", "--corpus", corpus_file, "--minutes", 0, expect=2)
    with pytest.raises(ConfigError, match="minutes must be a positive number"):
        tiny_config(corpus_file).with_overrides(train={"minutes": -1})


def test_steps_given_replace_a_presets_budget_and_minutes_given_keep_it():
    from textgen.core.settings import settings_by_section

    def train(**given):
        settings = settings_by_section(given, "quick")
        return RunConfig.from_preset("quick").with_overrides(**settings).train

    assert train().minutes == 2.0
    assert train(epochs=3).minutes is None and train(epochs=3).epochs == 3
    assert train(steps_per_epoch=30).minutes is None
    assert train(minutes=5.0, epochs=3).minutes == 5.0
    assert RunConfig.from_preset("quick").with_overrides(train={"epochs": 3}).train.minutes is None


@pytest.mark.slow
def test_a_budget_run_killed_after_its_replan_resumes_to_the_weights_its_plan_gives(
    corpus_file, tmp_path
):
    """kill -9 in the epoch after a re-plan, then --resume: the run ends with the weights
    of an unbroken run given the plan the two processes recorded."""
    import os
    import signal
    import subprocess
    import sys
    import time

    cut = tmp_path / "cut"
    command = [
        sys.executable, "-m", "textgen.cli", "train", "--corpus", str(corpus_file),
        "--run-dir", str(cut), "--minutes", "0.15", "--seq-len", "24", "--units", "24",
        "--layers", "1", "--embedding-dim", "8", "--batch-size", "8", "--no-xla",
        "--precision", "float32",  # bfloat16 rounds as Grappler fuses: off in this process
        "--samples", "0",
    ]  # fmt: skip
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    )
    try:
        for line in process.stdout:  # the first epoch's end: re-planned, then saved
            if line.startswith("epoch 1:"):
                break
        time.sleep(1.0)  # into the second (last) epoch
        os.kill(process.pid, signal.SIGKILL)
        process.communicate()
    finally:
        process.kill()
    killed = json.loads((cut / "config.json").read_text())["plan"]
    assert len(killed["replans"]) == 1
    done = subprocess.run([*command, "--resume"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    recorded = textgen.load_run(cut).config
    assert recorded.plan["replans"] == killed["replans"]  # followed, not re-made
    given = RunConfig.from_dict(recorded.to_dict())
    whole = textgen.train(given, run_dir=tmp_path / "whole", log=lambda _: None, verbose=0)
    rows = [textgen.load_run(d).folder.read_log() for d in (cut, whole)]
    assert [r["step"] for r in rows[0]] == [r["step"] for r in rows[1]]
    assert rows[0][-1]["step"] == killed["replans"][0]["steps"]
    a = textgen.load_run(cut, weights="latest", xla=False).model.get_weights()
    b = textgen.load_run(whole, weights="latest", xla=False).model.get_weights()
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
