"""`textgen train` and `textgen compare`: commands that train."""

from __future__ import annotations

import os
import sys

import click

from textgen.cli.common import quiet_tensorflow
from textgen.cli.options import run_options, train_settings
from textgen.core.config import settings_by_section
from textgen.training.distribute import STRATEGIES


# fmt: off
@click.command()
@train_settings
@run_options
@click.option("--resume", is_flag=True, help="Continue the run in --run-dir (or the newest).")
@click.option("--init-from", type=click.Path(file_okay=False), metavar="RUN",
              help="Fine-tune: a new run starting from this run's model, on --corpus.")
@click.option("--init-weights", type=click.Choice(["best", "latest"]), default="best",
              help="Which of --init-from's checkpoints to start from.")
@click.option("--vocab", "vocab_mode", type=click.Choice(["extend", "keep"]), default="extend",
              help="Fine-tune: add the new text's tokens, or keep the parent's ([UNK] the rest).")
@click.option("--strategy", type=click.Choice(STRATEGIES), default=STRATEGIES[0],
              help="tf.distribute strategy (multi-worker: the cluster from TF_CONFIG).")
@click.option("--samples", "closing_samples", type=click.IntRange(min=0), default=3,
              help="Samples printed when training ends (0: none).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
# fmt: on
def train(**opts) -> None:
    """Train a model and save a run folder under --root."""
    from textgen.core.config import RunConfig

    if opts["init_from"] and opts["preset"]:
        raise click.UsageError("--preset and --init-from: a fine-tune's model is its parent's")
    settings = settings_by_section(opts, opts["preset"])
    if not (opts["resume"] or opts["init_from"]):  # bad settings: an error before TensorFlow
        RunConfig.from_preset(opts["preset"]).with_overrides(**settings)
    quiet_tensorflow()
    from textgen.training.interrupts import TrainingInterrupted
    from textgen.training.start import train as train_run

    try:
        run_path = train_run(
            None if opts["resume"] else RunConfig.from_preset(opts["preset"]),
            run_dir=opts["run_dir"], root=opts["root"], resume=opts["resume"],
            settings=settings, log=click.echo,
            verbose=0 if opts["quiet"] else 1, strategy=opts["strategy"],
            init_from=opts["init_from"], init_weights=opts["init_weights"],
            vocab=opts["vocab_mode"],
        )  # fmt: skip
    except TrainingInterrupted as stop:
        click.echo(
            f"\nStopped by {stop.signal_name}; progress saved. Resume with:\n"
            f"  textgen train --run-dir {stop.folder.path} --resume",
            err=True,
        )
        sys.exit(stop.exit_code)
    if run_path is None:  # a worker other than the chief: the chief has the run folder
        click.echo("Worker done; the chief wrote the run folder.")
        return
    from textgen.runs.run import load_run

    run = load_run(run_path)
    if opts["closing_samples"]:
        click.echo(f"\nSamples from {run_path} (weights: {os.path.basename(run.weights_path)}):")
        for text in run.generate([""] * opts["closing_samples"], max_new_tokens=200, seed=0):
            click.echo(f"---\n{text.strip(chr(10))}")
        click.echo("---")
    how = "--num-samples 10" if run.items else "--prompt 'ROMEO:'"
    click.echo(f"Sample with: textgen sample --run-dir {run_path} {how}")

# fmt: off
@click.command()
@click.option("--cells", default="rnn,lstm,gru",
              help="Cells to compare, comma-separated (rnn, lstm, gru).")
@click.option("--budget-minutes", type=click.FloatRange(min=0.05), default=5.0,
              help="Training time per cell.")
@click.option("--eval-steps", type=click.IntRange(min=1), default=50,
              help="Validate every N steps (the curve's points).")
@click.option("--probe-steps", type=click.IntRange(min=0), default=600,
              help="Training steps of each cell's long-range probe (0: no probe).")
@click.option("--probe-distances", default="15,25,50,75,100,150",
              help="Distances (words) at which the probe is scored.")
@click.option("--report", type=click.Path(file_okay=False),
              help="Report folder (default: reports/compare-DATE-TIME).")
@train_settings
@click.option("--quiet", is_flag=True, help="No progress bars.")
# fmt: on
def compare(**opts) -> None:
    """Train RNN, LSTM and GRU on the same data and budget; write a report folder."""
    import time

    from textgen.evaluate.probe import parse_distances

    distances = parse_distances(opts["probe_distances"])
    report = opts["report"] or f"reports/compare-{time.strftime('%Y%m%d-%H%M%S')}"
    quiet_tensorflow()
    from textgen.core.config import RunConfig
    from textgen.evaluate.compare import compare as compare_cells

    compare_cells(
        [cell.strip() for cell in opts["cells"].split(",") if cell.strip()],
        RunConfig.from_preset(opts["preset"]).with_overrides(**settings_by_section(opts)),
        report, budget_minutes=opts["budget_minutes"], eval_steps=opts["eval_steps"],
        probe_steps=opts["probe_steps"], probe_distances=distances, log=click.echo,
        verbose=0 if opts["quiet"] else 1,
    )  # fmt: skip
    click.echo(f"\nReport: {report}/compare.md (table), compare.png (plot), compare.csv")
    click.echo(open(f"{report}/compare.md", encoding="utf-8").read())
