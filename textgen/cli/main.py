"""The `textgen` command: a thin click layer over the library.

Each command parses its options, calls one library function and prints what it returns.
Heavy imports (TensorFlow) happen inside the commands so `textgen --help` is instant.
Every user error is printed as one line on stderr with a non-zero exit code.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

import click

from textgen.cli.options import (
    control_options,
    control_settings,
    max_copy_option,
    root_option,
    run_dir_option,
    train_settings,
    weights_option,
)
from textgen.core.config import (
    EXPORT_MAX_NEW_TOKENS,
    EXPORT_MODEL_NAME,
    MAX_BATCH,
    MAX_NEW_TOKENS,
    MAX_SAMPLES,
    settings_by_section,
)
from textgen.core.errors import TextgenError
from textgen.training.distribute import STRATEGIES


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
    # 3: not even C++ "errors" that are notes (oneDNN's fallbacks print as errors mid-text);
    # a real failure still reaches the user as a Python exception.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
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


def _print_table(rows: list[tuple[str, str]]) -> None:
    """Print (name, value) rows with the values aligned."""
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        click.echo(f"{name:<{width}}  {value}")


@click.group(
    cls=TextgenGroup,
    context_settings={"help_option_names": ["-h", "--help"], "show_default": True},
)
@click.version_option(package_name="textgen")
@click.option("--debug", is_flag=True, help="Show tracebacks of unexpected errors.")
def cli(debug: bool) -> None:
    """Train RNN text generators, sample from them, and export them to TF Serving."""


@cli.command()
@train_settings
@run_dir_option
@root_option
@click.option("--resume", is_flag=True, help="Continue the run in --run-dir (or the newest).")
@click.option(
    "--init-from",
    type=click.Path(file_okay=False),
    metavar="RUN",
    help="Fine-tune: a new run starting from this run's model, on --corpus.",
)
@click.option(
    "--init-weights",
    type=click.Choice(["best", "latest"]),
    default="best",
    help="Which of --init-from's checkpoints to start from.",
)
@click.option(
    "--vocab",
    "vocab_mode",
    type=click.Choice(["extend", "keep"]),
    default="extend",
    help="Fine-tune: add the new text's tokens, or keep the parent's ([UNK] for the rest).",
)
@click.option(
    "--strategy",
    type=click.Choice(STRATEGIES),
    default=STRATEGIES[0],
    help="tf.distribute strategy (multi-worker: the cluster from TF_CONFIG).",
)
@click.option(
    "--samples",
    "closing_samples",
    type=click.IntRange(min=0),
    default=3,
    help="Samples printed when training ends (0: none).",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train(**opts) -> None:
    """Train a model and save a run folder under --root."""
    _quiet_tensorflow()
    from textgen.core.config import RunConfig
    from textgen.training.interrupts import TrainingInterrupted
    from textgen.training.start import train as train_run

    if opts["init_from"] and opts["preset"]:
        raise click.UsageError("--preset and --init-from: a fine-tune's model is its parent's")
    try:
        run_path = train_run(
            None if opts["resume"] else RunConfig.from_preset(opts["preset"]),
            run_dir=opts["run_dir"],
            root=opts["root"],
            resume=opts["resume"],
            settings=settings_by_section(opts, opts["preset"]),
            log=click.echo,
            verbose=0 if opts["quiet"] else 1,
            strategy=opts["strategy"],
            init_from=opts["init_from"],
            init_weights=opts["init_weights"],
            vocab=opts["vocab_mode"],
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
    if opts["closing_samples"]:
        from textgen.runs.run import load_run

        run = load_run(run_path)
        weights = os.path.basename(run.weights_path)
        click.echo(f"\nSamples from {run_path} (weights: {weights}):")
        for text in run.generate([""] * opts["closing_samples"], max_new_tokens=200, seed=0):
            click.echo("---")
            click.echo(text.strip("\n"))
        click.echo("---")
    from textgen.runs.folder import RunFolder

    items = RunFolder.find(run_path).load_config().data.items
    how = "--num-samples 10" if items else "--prompt 'ROMEO:'"
    click.echo(f"Sample with: textgen sample --run-dir {run_path} {how}")


@cli.command()
@click.option(
    "--cells", default="rnn,lstm,gru", help="Cells to compare, comma-separated (rnn, lstm, gru)."
)
@click.option(
    "--budget-minutes", type=click.FloatRange(min=0.05), default=5.0, help="Training time per cell."
)
@click.option(
    "--eval-steps",
    type=click.IntRange(min=1),
    default=50,
    help="Validate every N steps (the curve's points).",
)
@click.option(
    "--probe-steps",
    type=click.IntRange(min=0),
    default=600,
    help="Training steps of each cell's long-range probe (0: no probe).",
)
@click.option(
    "--probe-distances",
    default="15,25,50,75,100,150",
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

    from textgen.evaluate.probe import parse_distances

    distances = parse_distances(opts["probe_distances"])
    report = opts["report"] or f"reports/compare-{time.strftime('%Y%m%d-%H%M%S')}"
    _quiet_tensorflow()
    from textgen.core.config import RunConfig
    from textgen.evaluate.compare import compare as compare_cells

    compare_cells(
        [cell.strip() for cell in opts["cells"].split(",") if cell.strip()],
        RunConfig.from_preset(opts["preset"]).with_overrides(**settings_by_section(opts)),
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
    type=click.IntRange(1, MAX_SAMPLES),
    help=f"Samples per prompt, drawn in batches of {MAX_BATCH}.",
)
@click.option("--label", help="An item run's kind of item to generate (see `textgen info`).")
@click.option(
    "--prompts-file",
    type=click.Path(dir_okay=False),
    help="Prompts, one per line (each gets --num-samples samples).",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False),
    help="Write the samples to this file instead of printing them.",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "jsonl"]),
    default="text",
    help="text, or JSONL records: prompt, label, seed, stream, completion.",
)
@click.option("--seed", type=int, help="Same seed, same text (default: random).")
@click.option("--stop", multiple=True, help="End at this text (not printed). Repeatable.")
@weights_option("sample from")
@click.option("--stream/--no-stream", default=True, help="Print a single sample as it is drawn.")
@click.option("--server", metavar="URL", help="Ask a TF Serving model at URL instead.")
@click.option(
    "--litert",
    metavar="DIR",
    type=click.Path(file_okay=False),
    help="Run a LiteRT export (textgen export --format litert) instead.",
)
@click.option("--xla/--no-xla", default=True, help="XLA-compile the token loop.")
@control_options
def sample(**opts) -> None:
    """Continue --prompt with text from a trained run (the newest by default)."""
    from textgen.core.config import validate_sampling

    validate_sampling(opts["temperature"], opts["top_k"], opts["top_p"])
    prompts = [p for p in _read_prompts(opts) for _ in range(opts["num_samples"])]
    settings = {
        "max_new_tokens": opts["length"],
        "temperature": opts["temperature"],
        "top_k": opts["top_k"],
        "top_p": opts["top_p"],
        "seed": opts["seed"] if opts["seed"] is not None else secrets.randbelow(2**31),
        **control_settings(opts),
    }
    if opts["server"]:
        from textgen.export.client import generate_remote

        completions = generate_remote(opts["server"], prompts, label=opts["label"], **settings)
        _write_samples(opts, prompts, completions, settings["seed"], items=bool(opts["label"]))
        return
    _quiet_tensorflow()
    settings.update(stop=list(opts["stop"]) or None, label=opts["label"])
    alone = len(prompts) == 1 and not opts["output"] and opts["output_format"] == "text"
    if opts["litert"]:
        _sample_litert(opts, prompts, settings, alone)
        return
    from textgen.runs.run import load_run

    run = load_run(opts["run_dir"], opts["root"], weights=opts["weights"], xla=opts["xla"])
    if alone and opts["stream"]:
        _echo_stream(prompts[0], run.stream(prompts[0], **settings))  # settings checked here
        return
    completions = run.generate(prompts, **settings)
    _write_samples(opts, prompts, completions, settings["seed"], items=run.items)


def _echo_stream(prompt: str, pieces) -> None:
    """Print the prompt, then the completion piece by piece as it is drawn."""
    click.echo(prompt, nl=False)
    for piece in pieces:
        click.echo(piece, nl=False)
    click.echo()


def _sample_litert(opts: dict, prompts: list[str], settings: dict, alone: bool) -> None:
    """`sample --litert DIR`: the reference loop over the LiteRT interpreter."""
    from textgen.export.litert_sampler import LiteRTSampler

    controls = ("repetition_penalty", "repetition_window", "no_repeat_ngram", "max_copy")
    if any(settings.get(name) for name in controls):
        raise click.UsageError("the repetition controls and --max-copy are not in LiteRT exports")
    sampler = LiteRTSampler(opts["litert"])
    keys = ("max_new_tokens", "temperature", "top_k", "top_p", "seed", "label", "stop")
    chosen = {key: settings[key] for key in keys}
    if alone and opts["stream"]:
        _echo_stream(prompts[0], sampler.stream(prompts[0], **chosen))
        return
    completions = [
        sampler.generate(prompt, stream_index=i, **chosen) for i, prompt in enumerate(prompts)
    ]
    items = bool(sampler.meta["item_start"])
    _write_samples(opts, prompts, completions, settings["seed"], items=items)


def _read_prompts(opts: dict) -> list[str]:
    """The prompts: --prompt, or each line of --prompts-file."""
    if not opts["prompts_file"]:
        return [opts["prompt"]]
    try:
        with open(opts["prompts_file"], encoding="utf-8") as f:
            prompts = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise click.BadParameter(str(err), param_hint="--prompts-file") from None
    if not prompts:
        message = f"{opts['prompts_file']} has no lines"
        raise click.BadParameter(message, param_hint="--prompts-file")
    return prompts


def _write_samples(opts: dict, prompts, completions, seed: int, items: bool) -> None:
    """Print the samples (or write --output): text (an item run's items one per line,
    else samples under headers when several), or JSONL records."""
    import json

    if opts["output_format"] == "jsonl":
        lines = [
            json.dumps(
                {"prompt": p, "label": opts["label"], "seed": seed, "stream": i, "completion": c},
                ensure_ascii=False,
            )
            for i, (p, c) in enumerate(zip(prompts, completions))
        ]
    elif items or len(completions) == 1:
        lines = [p + c for p, c in zip(prompts, completions)]
    else:
        lines = []
        for i, (p, c) in enumerate(zip(prompts, completions)):
            lines += [f"----- sample {i + 1} -----", p + c]
    if not opts["output"]:
        for line in lines:
            click.echo(line)
        return
    from textgen.core.fileio import atomic_write_text

    try:
        atomic_write_text(opts["output"], "".join(line + "\n" for line in lines))
    except OSError as err:
        raise click.BadParameter(str(err), param_hint="--output") from None
    click.echo(f"Wrote {len(completions)} samples to {opts['output']}", err=True)


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
@click.option(
    "--samples", type=click.IntRange(min=0), default=8, help="Samples for distinct-n/copy rate."
)
@click.option("--sample-length", type=click.IntRange(min=1), default=300, help="Tokens per sample.")
@click.option("--seed", default=0, help="Seed of the samples.")
@weights_option("evaluate")
@control_options
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object.")
def evaluate(**opts) -> None:
    """Held-out loss (bits/char or perplexity) and sample diversity of a run."""
    controls = control_settings(opts)
    _quiet_tensorflow()
    import json

    from textgen.evaluate.evaluation import evaluate_run
    from textgen.runs.run import load_run

    run = load_run(opts["run_dir"], opts["root"], weights=opts["weights"])
    result = evaluate_run(
        run,
        list(opts["sources"]),
        opts["samples"],
        opts["sample_length"],
        opts["seed"],
        sampling=controls,
    )
    if opts["as_json"]:
        click.echo(json.dumps(result.to_dict()))
        return
    _print_table([("run", str(run.folder.path)), *result.rows(opts["seed"])])


@cli.command()
@run_dir_option
@root_option
def info(run_dir, root) -> None:
    """Describe a run: settings, corpus, vocabulary, progress."""
    _quiet_tensorflow()
    from textgen.runs.describe import describe_run
    from textgen.runs.folder import RunFolder

    _print_table(describe_run(RunFolder.find(run_dir, root)))


@cli.command()
@run_dir_option
@root_option
@click.option(
    "--export-dir",
    type=click.Path(file_okay=False),
    help="Base folder for TF Serving models (default: RUN/export).",
)
@click.option("--model-name", default=EXPORT_MODEL_NAME, help="TF Serving model name.")
@click.option("--version", "version", type=int, help="Version number (default: next free).")
@click.option("--force", is_flag=True, help="Replace an existing version.")
@click.option(
    "--max-new-tokens-cap",
    default=EXPORT_MAX_NEW_TOKENS,
    help="Most tokens one request may generate.",
)
@weights_option("export")
@click.option("--stop", multiple=True, help="End generation at this text (default: the run's).")
@click.option(
    "--xla/--no-xla",
    default=False,
    help="Compile the token loop with XLA: ~2x faster, but TF Serving then needs "
    "--xla_cpu_compilation_enabled=true on CPU and cannot serve it on GPU.",
)
@max_copy_option
@click.option(
    "--format",
    "export_format",
    type=click.Choice(["saved-model", "litert", "web"]),
    default="saved-model",
    help="saved-model (TF Serving), litert (a .tflite for phones and devices) or web (a "
    "static page that generates in the browser).",
)
@click.option(
    "--quantize",
    type=click.Choice(["none", "dynamic", "float16"]),
    default="none",
    help="litert/web: smaller weights (dynamic: int8, float16: half precision).",
)
@click.option(
    "--node-modules",
    type=click.Path(file_okay=False),
    help="web: the node_modules folder holding @litertjs/core (default: found).",
)
def export(**opts):
    """Write a SavedModel that TensorFlow Serving serves (string in, string out), or a
    LiteRT file, or a web page."""
    from textgen.core.config import validate_max_copy

    validate_max_copy(opts["max_copy"])
    _quiet_tensorflow()
    export_format, stop = opts.pop("export_format"), list(opts.pop("stop")) or None
    quantize, node_modules = opts.pop("quantize"), opts.pop("node_modules")
    if export_format != "saved-model":
        _export_for_devices(opts, export_format, stop, quantize, node_modules)
        return
    if quantize != "none" or node_modules:
        raise click.UsageError("--quantize and --node-modules are for --format litert or web")
    from textgen.export.saved_model import export_run, serving_commands

    result = export_run(**opts, stop=stop)
    docker, curl = serving_commands(result)
    click.echo(f"Exported {result.path} ({result.size_bytes / 1e6:.1f} MB, {result.seconds:.1f}s)")
    click.echo(f"Serve it:\n  {docker}\nTry it:\n  {curl}")


def _export_for_devices(opts, export_format, stop, quantize, node_modules) -> None:
    from textgen.export.litert import check_exportable, export_litert, read_metadata
    from textgen.export.web import export_web

    check_exportable(xla=opts["xla"], max_copy=opts["max_copy"], version=opts["version"])
    settings = {
        "run_dir": opts["run_dir"], "root": opts["root"], "export_dir": opts["export_dir"],
        "weights": opts["weights"], "quantize": quantize, "force": opts["force"],
        "max_new_tokens_cap": opts["max_new_tokens_cap"], "stop": stop,
    }  # fmt: skip
    if export_format == "litert":
        result = export_litert(**settings)
        items = read_metadata(result.path)["item_start"]  # an item run: whole items out
        try_it = "--num-samples 5" if items else "--prompt 'ROMEO:'"
        how = f"Try it:\n  textgen sample --litert {result.path} {try_it}"
    else:
        result = export_web(node_modules=node_modules, **settings)
        how = (
            f"Serve it:\n  textgen serve-web {result.path}\n"
            f"  (or any static server: python -m http.server -d {result.path})"
        )
    click.echo(f"Exported {result.path} ({result.size_bytes / 1e6:.1f} MB, {result.seconds:.1f}s)")
    click.echo(how)


@cli.command(name="serve-web")
@click.argument("export_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--port", default=8000, help="Port on localhost.")
def serve_web(export_dir, port) -> None:
    """Serve a web export (textgen export --format web) on http://localhost:PORT/."""
    import functools
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    if not (Path(export_dir) / "index.html").is_file():
        raise click.BadParameter(f"{export_dir} has no index.html", param_hint="EXPORT_DIR")
    handler = functools.partial(SimpleHTTPRequestHandler, directory=export_dir)
    try:
        server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError as err:
        raise click.ClickException(f"cannot listen on port {port}: {err.strerror}") from None
    click.echo(f"Serving {export_dir} at http://localhost:{port}/ (Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


def main() -> None:
    cli.main()


if __name__ == "__main__":
    main()
