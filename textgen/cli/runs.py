"""Commands that read a trained run: `evaluate`, `info`, `export`, `serve-web`."""

from __future__ import annotations

import json

import click

from textgen.cli.options import (
    CONTROLS,
    control_options,
    field_options,
    options_of,
    run_options,
    weights_option,
)
from textgen.core.config import EXPORT_MAX_NEW_TOKENS, EXPORT_MODEL_NAME
from textgen.core.quiet import quiet_tensorflow
from textgen.export.formats import FORMATS
from textgen.generate.settings import SamplingSettings


# fmt: off
@click.command()
@run_options
@click.option("--corpus", "sources", multiple=True, metavar="SOURCE",
              help="Score this text instead of the run's validation text. Repeatable.")
@click.option("--samples", type=click.IntRange(min=0), default=8,
              help="Samples for distinct-n/copy rate.")
@click.option("--sample-length", type=click.IntRange(min=1), default=300, help="Tokens per sample.")
@click.option("--seed", default=0, help="Seed of the samples.")
@weights_option("evaluate")
@control_options
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object.")
# fmt: on
def evaluate(**opts) -> None:
    """Held-out loss (bits/char or perplexity) and sample diversity of a run."""
    controls = {name: opts[name] for name in CONTROLS if opts[name] is not None}
    SamplingSettings.of(**controls)  # checked before anything loads
    quiet_tensorflow()
    from textgen.evaluate.evaluation import evaluate_run
    from textgen.runs.describe import table
    from textgen.runs.run import load_run

    run = load_run(opts["run_dir"], opts["root"], weights=opts["weights"])
    result = evaluate_run(
        run, list(opts["sources"]), opts["samples"], opts["sample_length"], opts["seed"],
        sampling=controls,
    )  # fmt: skip
    if opts["as_json"]:
        return click.echo(json.dumps(result.to_dict()))
    click.echo(table([("run", str(run.folder.path)), *result.rows(opts["seed"])]))


@click.command()
@run_options
def info(run_dir, root) -> None:
    """Describe a run: settings, corpus, vocabulary, progress."""
    from textgen.runs.describe import describe_run, table
    from textgen.runs.folder import RunFolder

    click.echo(table(describe_run(RunFolder.find(run_dir, root))))


# fmt: off
@click.command()
@run_options
@click.option("--export-dir", type=click.Path(file_okay=False),
              help="Base folder for TF Serving models (default: RUN/export).")
@click.option("--model-name", default=EXPORT_MODEL_NAME, help="TF Serving model name.")
@click.option("--version", type=click.IntRange(min=1), help="Version number (default: next free).")
@click.option("--force", is_flag=True, help="Replace an existing version.")
@click.option("--max-new-tokens-cap", default=EXPORT_MAX_NEW_TOKENS,
              help="Most tokens one request may ask.")
@weights_option("export")
@click.option("--stop", multiple=True, help="End generation at this text (default: the run's).")
@click.option("--xla/--no-xla", default=False,
              help="Compile the token loop with XLA: ~2x faster, but TF Serving then needs "
              "--xla_cpu_compilation_enabled=true on CPU and cannot serve it on GPU.")
@options_of(field_options(SamplingSettings, only=("max_copy",)))
@click.option("--format", "export_format", type=click.Choice(FORMATS), default="saved-model",
              help="saved-model (TF Serving), litert (a .tflite for phones and devices) or "
              "web (a static page that generates in the browser).")
@click.option("--quantize", type=click.Choice(["none", "dynamic", "float16"]), default="none",
              help="litert/web: smaller weights (dynamic: int8, float16: half precision).")
@click.option("--node-modules", type=click.Path(file_okay=False),
              help="web: the node_modules folder holding @litertjs/core (default: found).")
# fmt: on
def export(**opts):
    """Write a SavedModel that TensorFlow Serving serves (string in, string out), or a
    LiteRT file, or a web page."""
    SamplingSettings.of(max_copy=opts["max_copy"])  # checked before TensorFlow loads
    quiet_tensorflow()
    from textgen.export.formats import export_as

    opts["stop"], opts["max_copy"] = list(opts["stop"]) or None, opts["max_copy"] or 0
    click.echo(export_as(**opts).summary())


@click.command(name="serve-web")
@click.argument("export_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--port", default=8000, help="Port on localhost.")
def serve_web(export_dir, port) -> None:
    """Serve a web export (textgen export --format web) on http://localhost:PORT/."""
    from textgen.export.web import serve

    serve(export_dir, port, announce=click.echo)
