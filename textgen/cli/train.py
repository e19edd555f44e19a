"""`textgen train` and `textgen compare`: commands that train."""

from __future__ import annotations

import click

from textgen.cli.options import CHECKPOINTS, opt, run_options, train_settings
from textgen.core.quiet import quiet_tensorflow
from textgen.core.settings import settings_by_section
from textgen.training.distribute import STRATEGIES

VOCAB, STRATEGY = click.Choice(["extend", "keep"]), click.Choice(STRATEGIES)


# fmt: off
@click.command()
@train_settings
@run_options
@opt("--resume", is_flag=True, help="Continue the run in --run-dir (or the newest).")
@opt("--init-from", metavar="RUN", help="Fine-tune: a new run from this run's model, on --corpus.")
@opt("--init-weights", type=CHECKPOINTS, default="best", help="The checkpoint of --init-from.")
@opt("--vocab", "vocab_mode", type=VOCAB, default="extend",
     help="Fine-tune: add the new text's tokens, or keep the parent's ([UNK] the rest).")
@opt("--strategy", type=STRATEGY, default=STRATEGIES[0],
     help="tf.distribute strategy (multi-worker: the cluster from TF_CONFIG).")
@opt("--samples", "closing_samples", default=3, help="Samples printed at the end (0: none).")
@opt("--quiet", is_flag=True, help="Print only the summary at the end (and errors).")
@opt("--dry-run", is_flag=True, help="Print the plan (size, steps, time, memory) and exit.")
# fmt: on
def train(**opts) -> None:
    """Train a model and save a run folder under --root."""
    from textgen.core.config import RunConfig

    if opts["init_from"] and opts["preset"]:
        raise click.UsageError("--preset and --init-from: a fine-tune's model is its parent's")
    if opts["dry_run"] and opts["resume"]:
        raise click.UsageError("--dry-run plans a new run; a resumed run follows its plan")
    settings = settings_by_section(opts, opts["preset"])
    # A budget with no preset: the sizing rule chooses what the user did not give.
    auto_size = bool(opts["minutes"] and not opts["preset"] and not opts["init_from"])
    if not (opts["resume"] or opts["init_from"]):  # bad settings: an error before TensorFlow
        RunConfig.from_preset(opts["preset"]).with_overrides(**settings)
    quiet_tensorflow()
    from textgen.runs.describe import closing_lines
    from textgen.training.progress import shown_progress
    from textgen.training.start import train as train_run

    quiet = opts["quiet"]
    run_path = train_run(
        None if opts["resume"] else RunConfig.from_preset(opts["preset"]),
        run_dir=opts["run_dir"], root=opts["root"], resume=opts["resume"], settings=settings,
        log=(lambda _: None) if quiet else click.echo, verbose=shown_progress(quiet),
        strategy=opts["strategy"], init_from=opts["init_from"], init_weights=opts["init_weights"],
        vocab=opts["vocab_mode"], auto_size=auto_size and not opts["resume"],
        dry_run=opts["dry_run"],
    )  # fmt: skip
    if opts["dry_run"]:
        return
    for line in closing_lines(run_path, 0 if quiet else opts["closing_samples"], summary=quiet):
        click.echo(line)



@click.command()
@opt("--cells", default="rnn,lstm,gru", help="Cells to compare, comma-separated (rnn, lstm, gru).")
@opt("--levels", help="Levels to compare, comma-separated (char, word, subword; default --level).")
@opt("--budget-minutes", type=click.FloatRange(min=0.05), default=5.0, help="Time per run.")
@opt("--eval-steps", type=click.IntRange(min=1), default=50, help="Validate every N steps.")
@opt("--probe-steps", default=600, help="Steps of each cell's long-range probe (0: none).")
@opt("--probe-distances", default="15,25,50,75,100,150", help="Distances (words) it scores.")
@opt("--report", help="Report folder (default: reports/compare-DATE-TIME).")
@train_settings
@opt("--quiet", is_flag=True, help="No progress bars or lines.")
def compare(**opts) -> None:
    """Train RNN, LSTM and GRU (at one level or several) on the same data and budget;
    write a report folder."""
    import time

    from textgen.evaluate.probe import parse_distances

    distances = parse_distances(opts["probe_distances"])
    report = opts["report"] or f"reports/compare-{time.strftime('%Y%m%d-%H%M%S')}"
    quiet_tensorflow()
    from textgen.core.config import RunConfig
    from textgen.evaluate.compare import compare as compare_cells
    from textgen.training.progress import shown_progress

    compare_cells(
        _listed(opts["cells"]),
        RunConfig.from_preset(opts["preset"]).with_overrides(**settings_by_section(opts)),
        report, budget_minutes=opts["budget_minutes"], eval_steps=opts["eval_steps"],
        probe_steps=opts["probe_steps"], probe_distances=distances, log=click.echo,
        verbose=shown_progress(opts["quiet"]), levels=_listed(opts["levels"]),
    )  # fmt: skip
    click.echo(f"\nReport: {report}/compare.md (table), compare.png (plot), compare.csv")
    click.echo(open(f"{report}/compare.md", encoding="utf-8").read())


def _listed(value: str | None) -> list[str] | None:
    """A comma-separated option's items (None if not given)."""
    return None if value is None else [item.strip() for item in value.split(",") if item.strip()]
