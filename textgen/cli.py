"""The `textgen` command: a thin click layer over the library.

Heavy imports (TensorFlow) happen inside the commands so `textgen --help` is instant.
Every user error is printed as one line on stderr with a non-zero exit code.
"""

from __future__ import annotations

import os
import secrets
import sys

import click

from textgen.config import (
    CELLS,
    LEVELS,
    LR_SCHEDULES,
    MAX_BATCH,
    MAX_NEW_TOKENS,
    PRESETS,
    validate_sampling,
)
from textgen.errors import TextgenError

DEFAULT_ROOT = "checkpoints"


class TextgenGroup(click.Group):
    """A click group that reports every error as one line, never a traceback."""

    def main(self, args=None, prog_name=None, **kwargs):
        kwargs.pop("standalone_mode", None)
        try:
            code = super().main(args, prog_name or "textgen", standalone_mode=False, **kwargs)
        except click.ClickException as err:  # usage errors: bad option values and so on
            _fail(err.format_message(), err.exit_code)
        except TextgenError as err:
            _fail(str(err), err.exit_code)
        except (KeyboardInterrupt, click.Abort):
            _fail("aborted", 130)
        except Exception as err:  # a bug or an unforeseen failure: still one line
            if _debug(args):
                raise
            first = (str(err).strip().splitlines() or [""])[0][:300]
            _fail(
                f"{type(err).__name__}: {first} (rerun with --debug or TEXTGEN_DEBUG=1 "
                "for the traceback)",
                1,
            )
        sys.exit(code if isinstance(code, int) else 0)


def _debug(args) -> bool:
    args = sys.argv[1:] if args is None else list(args)
    return "--debug" in args or os.environ.get("TEXTGEN_DEBUG", "") not in ("", "0")


def _fail(message: str, code: int) -> None:
    click.echo(f"Error: {' '.join(message.split())}", err=True)
    sys.exit(code)


def _quiet_tensorflow() -> None:
    """Import TensorFlow without its start-up chatter on stderr (CUDA probes, absl notes)."""
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import tensorflow as tf

            tf.config.list_physical_devices()  # the CUDA probe logs an error on CPU machines
    finally:
        os.dup2(saved, 2)
        os.close(saved)


run_dir_option = click.option(
    "--run-dir",
    type=click.Path(file_okay=False),
    help="Run folder (default: the newest run under --root).",
)
root_option = click.option(
    "--root",
    default=DEFAULT_ROOT,
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder that holds the run folders.",
)


@click.group(cls=TextgenGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="textgen")
@click.option("--debug", is_flag=True, help="Show tracebacks of unexpected errors.")
def cli(debug: bool) -> None:
    """Train RNN text generators, sample from them, and export them to TF Serving."""


def train_settings(command):
    """The options that set a run's config (shared by `train` and `compare`)."""
    for option in reversed(_SETTING_OPTIONS):
        command = option(command)
    return command


_SETTING_OPTIONS = [
    click.option(
        "--corpus",
        "sources",
        multiple=True,
        metavar="SOURCE",
        help="Text file, directory, glob, tfds:NAME or 'shakespeare' (built in). Repeatable.",
    ),
    click.option("--preset", type=click.Choice(list(PRESETS)), help="Start from these settings."),
    click.option("--level", type=click.Choice(LEVELS), help="Tokens: characters or words."),
    click.option("--lowercase/--no-lowercase", default=None, help="Lowercase the text first."),
    click.option("--max-vocab", type=int, help="Keep the N most frequent tokens (word: 10000)."),
    click.option("--cell", type=click.Choice(CELLS), help="Recurrent cell type (default gru)."),
    click.option("--layers", type=int, help="Number of stacked recurrent layers."),
    click.option("--units", type=int, help="Units per recurrent layer."),
    click.option("--embedding-dim", type=int, help="Size of the token embedding."),
    click.option("--dropout", type=float, help="Dropout after each recurrent layer, in [0, 1)."),
    click.option(
        "--skip-connections/--no-skip-connections",
        default=None,
        help="Logits read every recurrent layer's output, not only the top's (default on).",
    ),
    click.option(
        "--logits-init",
        type=float,
        help="Logits layer's initial range, times Glorot's (default: 8 for LSTM, else 1).",
    ),
    click.option(
        "--memory-span",
        type=int,
        help="Chrono-init LSTM/GRU gates to remember 1..N steps (default 100; 0: Keras' init).",
    ),
    click.option("--seq-len", type=int, help="Tokens per training window."),
    click.option("--batch-size", type=int, help="Windows per batch."),
    click.option("--epochs", type=int, help="Epochs to train (with --resume: the new total)."),
    click.option("--steps-per-epoch", type=int, help="Batches per epoch (default: one pass)."),
    click.option("--learning-rate", type=float, help="Adam learning rate."),
    click.option("--lr-schedule", type=click.Choice(LR_SCHEDULES), help="Learning-rate decay."),
    click.option("--clipnorm", type=float, help="Clip the global gradient norm (0: off)."),
    click.option("--val-fraction", type=float, help="Tail of each source held out for validation."),
    click.option("--patience", type=int, help="Stop after N epochs without improvement (0: off)."),
    click.option("--val-tokens", type=int, help="Validate on at most N tokens (1M; 0: all)."),
    click.option("--max-minutes", type=float, help="Stop (validate and save) after this long."),
    click.option("--temperature", type=float, help="Default sampling temperature of the run."),
    click.option("--seed", type=int, help="Random seed for weights and data order."),
    click.option(
        "--xla/--no-xla", default=None, help="XLA-compile the training step (default on)."
    ),
    click.option(
        "--stateful/--no-stateful",
        default=None,
        help="Carry the RNN state across windows (truncated BPTT; default off).",
    ),
    click.option("--tfds-manual-dir", type=click.Path(), help="Offline files for tfds: sources."),
    click.option(
        "--data-dir", type=click.Path(), help="Cache for corpora and TFDS (default: data)."
    ),
]


@cli.command()
@train_settings
@run_dir_option
@root_option
@click.option("--resume", is_flag=True, help="Continue the run in --run-dir (or the newest).")
@click.option(
    "--strategy",
    type=click.Choice(["auto", "one-device", "mirrored", "multi-worker"]),
    default="auto",
    show_default=True,
    help="tf.distribute strategy (multi-worker: the cluster from TF_CONFIG).",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train(**opts) -> None:
    """Train a model and save a run folder under --root."""
    _quiet_tensorflow()
    from textgen.config import RunConfig
    from textgen.training import TrainingInterrupted
    from textgen.training import train as train_run

    settings = _given_settings(opts)
    if opts["resume"] and opts["preset"]:  # the preset's settings count as given
        preset = PRESETS[opts["preset"]]
        settings = {s: {**preset.get(s, {}), **values} for s, values in settings.items()}
    try:
        run_path = train_run(
            None if opts["resume"] else RunConfig.from_preset(opts["preset"]),
            run_dir=opts["run_dir"],
            root=opts["root"],
            resume=opts["resume"],
            settings=settings,
            log=click.echo,
            verbose=0 if opts["quiet"] else 1,
            strategy=opts["strategy"],
        )
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
    from textgen.runs import load_run

    run = load_run(run_path)
    click.echo(f"\nSamples from {run_path} (weights: {os.path.basename(run.weights_path)}):")
    for text in run.generate([""] * 3, max_new_tokens=200, seed=0):
        click.echo("---")
        click.echo(text.strip("\n"))
    click.echo(f"---\nMore with: textgen sample --run-dir {run_path} --prompt 'ROMEO:'")


# Which config section each `textgen train` setting option fills.
_TRAIN_SETTINGS = {
    "data": (
        "sources", "level", "lowercase", "max_vocab", "seq_len", "val_fraction",
        "tfds_manual_dir", "data_dir",
    ),
    "model": (
        "cell", "layers", "units", "embedding_dim", "dropout", "skip_connections", "memory_span",
        "logits_init",
    ),
    "train": (
        "batch_size", "epochs", "steps_per_epoch", "learning_rate", "lr_schedule", "clipnorm",
        "patience", "seed", "xla", "val_tokens", "max_minutes", "stateful",
    ),
    "sample": ("temperature",),
}  # fmt: skip


def _given_settings(opts: dict) -> dict[str, dict]:
    """The settings the user gave, by config section (unset options are None or ())."""
    given = {
        k: (list(v) if isinstance(v, tuple) else v) for k, v in opts.items() if v not in (None, ())
    }
    return {
        section: {k: v for k, v in given.items() if k in names}
        for section, names in _TRAIN_SETTINGS.items()
    }


@cli.command()
@click.option(
    "--cells",
    default="rnn,lstm,gru",
    show_default=True,
    help="Cells to compare, comma-separated (rnn, lstm, gru).",
)
@click.option(
    "--budget-minutes",
    type=click.FloatRange(min=0.05),
    default=5.0,
    show_default=True,
    help="Training time per cell.",
)
@click.option(
    "--eval-steps",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="Validate every N steps (the curve's points).",
)
@click.option(
    "--probe-steps",
    type=click.IntRange(min=0),
    default=600,
    show_default=True,
    help="Training steps of each cell's long-range probe (0: no probe).",
)
@click.option(
    "--probe-distances",
    default="15,25,50,75,100,150",
    show_default=True,
    help="Distances (words) at which the probe is scored.",
)
@click.option(
    "--report",
    type=click.Path(file_okay=False),
    help="Report folder (default: reports/compare-DATE-TIME).",
)
@train_settings
@click.option("--quiet", is_flag=True, help="No progress bars.")
def compare(**opts) -> None:
    """Train RNN, LSTM and GRU on the same data and budget; write a report folder."""
    import time

    cells = [c.strip() for c in opts["cells"].split(",") if c.strip()]
    try:
        distances = [int(d) for d in opts["probe_distances"].split(",")]
    except ValueError:
        raise click.UsageError(
            "--probe-distances must be integers separated by commas, "
            f"got {opts['probe_distances']!r}"
        ) from None
    if any(d < 12 for d in distances):
        raise click.UsageError(f"--probe-distances must be >= 12, got {opts['probe_distances']}")
    report = opts["report"] or f"reports/compare-{time.strftime('%Y%m%d-%H%M%S')}"
    _quiet_tensorflow()
    from textgen.compare import compare as compare_cells
    from textgen.config import RunConfig

    config = RunConfig.from_preset(opts["preset"]).with_overrides(**_given_settings(opts))
    compare_cells(
        cells,
        config,
        report,
        budget_minutes=opts["budget_minutes"],
        eval_steps=opts["eval_steps"],
        probe_steps=opts["probe_steps"],
        probe_distances=distances,
        log=click.echo,
        verbose=0 if opts["quiet"] else 1,
    )
    click.echo(f"\nReport: {report}/compare.md (table), compare.png (plot), compare.csv")
    click.echo(open(f"{report}/compare.md", encoding="utf-8").read())


@cli.command()
@run_dir_option
@root_option
@click.option("--prompt", default="", help="Text to continue (default: start of a line).")
@click.option(
    "--length",
    type=click.IntRange(1, MAX_NEW_TOKENS),
    help=f"Tokens to generate, 1-{MAX_NEW_TOKENS} (default: the run's, 500).",
)
@click.option("--temperature", type=float, help="0 is greedy; higher is more random.")
@click.option("--top-k", type=int, help="Sample from the K most likely tokens (0: off).")
@click.option("--top-p", type=float, help="Sample from the smallest set with mass P (1: off).")
@click.option(
    "--num-samples",
    default=1,
    show_default=True,
    type=click.IntRange(1, MAX_BATCH),
    help=f"Samples, drawn as one batch (at most {MAX_BATCH}).",
)
@click.option("--seed", type=int, help="Same seed, same text (default: random).")
@click.option("--stop", multiple=True, help="End at this text (not printed). Repeatable.")
@click.option(
    "--weights",
    type=click.Choice(["best", "latest"]),
    default="best",
    show_default=True,
    help="Which checkpoint to sample from.",
)
@click.option("--stream/--no-stream", default=True, help="Print a single sample as it is drawn.")
@click.option("--server", metavar="URL", help="Ask a TF Serving model at URL instead.")
@click.option("--xla/--no-xla", default=True, show_default=True, help="XLA-compile the token loop.")
def sample(**opts) -> None:
    """Continue --prompt with text from a trained run (the newest by default)."""
    validate_sampling(_or(opts["temperature"], 1.0), _or(opts["top_k"], 0), _or(opts["top_p"], 1.0))
    seed = opts["seed"] if opts["seed"] is not None else secrets.randbelow(2**31)
    if opts["server"]:
        from textgen.client import generate_remote

        texts = generate_remote(
            opts["server"],
            [opts["prompt"]] * opts["num_samples"],
            max_new_tokens=opts["length"],
            temperature=opts["temperature"],
            top_k=opts["top_k"],
            top_p=opts["top_p"],
            seed=seed,
        )
        _print_samples(opts["prompt"], texts)
        return
    _quiet_tensorflow()
    from textgen.runs import load_run

    run = load_run(opts["run_dir"], opts["root"], weights=opts["weights"], xla=opts["xla"])
    settings = {
        "max_new_tokens": opts["length"],
        "temperature": opts["temperature"],
        "top_k": opts["top_k"],
        "top_p": opts["top_p"],
        "seed": seed,
        "stop": list(opts["stop"]) or None,
    }
    if opts["num_samples"] == 1 and opts["stream"]:
        pieces = run.stream(opts["prompt"], **settings)  # settings are checked here
        click.echo(opts["prompt"], nl=False)
        for piece in pieces:
            click.echo(piece, nl=False)
        click.echo()
        return
    _print_samples(opts["prompt"], run.generate([opts["prompt"]] * opts["num_samples"], **settings))


def _or(value, default):
    return default if value is None else value


def _print_samples(prompt: str, completions: list[str]) -> None:
    for i, completion in enumerate(completions):
        if len(completions) > 1:
            click.echo(f"----- sample {i + 1} -----")
        click.echo(prompt + completion)


@cli.command()
@run_dir_option
@root_option
@click.option(
    "--corpus",
    "sources",
    multiple=True,
    metavar="SOURCE",
    help="Score this text instead of the run's validation text. Repeatable.",
)
@click.option("--samples", default=8, show_default=True, help="Samples for distinct-n/copy rate.")
@click.option("--sample-length", default=300, show_default=True, help="Tokens per sample.")
@click.option("--seed", default=0, show_default=True, help="Seed of the samples.")
@click.option(
    "--weights",
    type=click.Choice(["best", "latest"]),
    default="best",
    show_default=True,
    help="Which checkpoint to evaluate.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object.")
def evaluate(run_dir, root, sources, samples, sample_length, seed, weights, as_json) -> None:
    """Held-out loss (bits/char or perplexity) and sample diversity of a run."""
    if samples < 0 or sample_length < 1:
        raise click.UsageError(
            f"--samples must be >= 0 and --sample-length >= 1, got {samples} and {sample_length}"
        )
    _quiet_tensorflow()
    import json

    from textgen.evaluation import evaluate_run
    from textgen.runs import load_run

    run = load_run(run_dir, root, weights=weights)
    result = evaluate_run(run, list(sources), samples, sample_length, seed).to_dict()
    if as_json:
        click.echo(json.dumps(result))
        return
    unit = "bits/char" if "bpc" in result else "perplexity"
    figure = result.get("bpc", result.get("perplexity"))
    rows = [
        ("run", str(run.folder.path)),
        ("text", result["text"]),
        ("tokens", f"{result['tokens']:,}"),
        ("loss", f"{result['loss']:.4f} nats/token ({unit} {figure:.3f})"),
    ]
    if result["samples"]:
        distinct = " ".join(f"{v:.3f}" for v in result["distinct"].values())
        rows += [
            ("samples", f"{result['samples']} x {result['sample_tokens']} tokens, seed {seed}"),
            ("distinct-1..4", distinct),
            (
                "copy rate",
                f"{result['copy_rate']:.1%} of sampled characters are in spans of 20+ "
                "characters found verbatim in the training text",
            ),
        ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        click.echo(f"{key:<{width}}  {value}")


@cli.command()
@run_dir_option
@root_option
def info(run_dir, root) -> None:
    """Describe a run: settings, corpus, vocabulary, progress."""
    _quiet_tensorflow()
    from textgen.runs import RunFolder

    folder = RunFolder.find(run_dir, root)
    config = folder.load_config()
    vocab = folder.load_vocab()
    m, d, t = config.model, config.data, config.train
    corpus = config.corpus
    rows = [
        ("run", str(folder.path)),
        ("textgen", config.textgen_version),
        ("preset", config.preset or "-"),
        (
            "model",
            f"{m.layers} x {m.cell.upper()}({m.units}), embedding {m.embedding_dim}, "
            f"dropout {m.dropout}{', skip connections' if m.skip_connections else ''}",
        ),
        ("parameters", f"{_parameter_count(config, vocab.size):,}"),
        ("level", f"{d.level}{' (lowercased)' if d.lowercase else ''}, vocabulary {vocab.size}"),
        ("corpus", ", ".join(corpus.get("sources", []))),
        (
            "corpus size",
            f"{corpus.get('train_chars', 0):,} train + "
            f"{corpus.get('validation_chars', 0):,} validation characters",
        ),
        ("corpus sha256", corpus.get("sha256", "")),
        (
            "training",
            f"seq_len {d.seq_len}, batch {t.batch_size}, lr {t.learning_rate} "
            f"({t.lr_schedule}), epochs {t.epochs}",
        ),
    ]
    rows += _progress_rows(folder)
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        click.echo(f"{key:<{width}}  {value}")


def _parameter_count(config, vocab_size: int) -> int:
    _quiet_tensorflow()
    from textgen.models import build_model

    return build_model(vocab_size, config.model).count_params()


def _progress_rows(folder) -> list[tuple[str, str]]:
    import csv

    if not folder.log_csv.is_file():
        return [("progress", "no epoch finished yet")]
    with open(folder.log_csv, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return [("progress", "no epoch finished yet")]
    last = rows[-1]
    losses = [float(r["val_loss"]) for r in rows if r["val_loss"]]
    best = f"{min(losses):.4f}" if losses else "n/a"
    return [
        ("progress", f"epoch {last['epoch']}, step {last['step']}"),
        ("loss", f"train {float(last['loss']):.4f}, best validation {best}"),
        ("speed", f"{last['tokens_per_sec']} tokens/s in the last epoch"),
    ]


@cli.command()
@run_dir_option
@root_option
@click.option(
    "--export-dir",
    type=click.Path(file_okay=False),
    help="Base folder for TF Serving models (default: RUN/export).",
)
@click.option("--model-name", default="textgen", show_default=True, help="TF Serving model name.")
@click.option("--version", "version", type=int, help="Version number (default: next free).")
@click.option("--force", is_flag=True, help="Replace an existing version.")
@click.option(
    "--max-new-tokens-cap",
    default=1024,
    show_default=True,
    help="Most tokens one request may generate.",
)
@click.option(
    "--weights",
    type=click.Choice(["best", "latest"]),
    default="best",
    show_default=True,
    help="Which checkpoint to export.",
)
@click.option("--stop", multiple=True, help="End generation at this text (default: the run's).")
@click.option(
    "--xla/--no-xla",
    default=False,
    show_default=True,
    help="Compile the token loop with XLA: ~2x faster, but TF Serving then needs "
    "--xla_cpu_compilation_enabled=true on CPU and cannot serve it on GPU.",
)
def export(
    run_dir, root, export_dir, model_name, version, force, max_new_tokens_cap, weights, stop, xla
):
    """Write a SavedModel that TensorFlow Serving serves (string in, string out)."""
    _quiet_tensorflow()
    from textgen.export import export_run, serving_commands

    result = export_run(
        run_dir,
        root,
        export_dir,
        model_name,
        version,
        force,
        max_new_tokens_cap,
        weights,
        stop=list(stop) or None,
        xla=xla,
    )
    docker, curl = serving_commands(result)
    click.echo(f"Exported {result.path} ({result.size_bytes / 1e6:.1f} MB, {result.seconds:.1f}s)")
    click.echo(f"Serve it:\n  {docker}\nTry it:\n  {curl}")


def main() -> None:
    cli.main()


if __name__ == "__main__":
    main()
