"""Commands that read a trained run: `evaluate`, `info`, `export`, `serve-web`."""

from __future__ import annotations

import click

from textgen.cli.common import print_table, quiet_tensorflow
from textgen.cli.options import (
    CONTROLS,
    control_options,
    max_copy_option,
    run_options,
    weights_option,
)
from textgen.core.config import EXPORT_MAX_NEW_TOKENS, EXPORT_MODEL_NAME


@click.command()
@run_options
@click.option(
    "--corpus", "sources", multiple=True, metavar="SOURCE",
    help="Score this text instead of the run's validation text. Repeatable.",
)  # fmt: skip
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
    from textgen.generate.settings import SamplingSettings

    SamplingSettings.of(**{name: opts[name] for name in CONTROLS})  # checked before loading
    quiet_tensorflow()
    import json

    from textgen.evaluate.evaluation import evaluate_run
    from textgen.runs.run import load_run

    run = load_run(opts["run_dir"], opts["root"], weights=opts["weights"])
    controls = {name: opts[name] for name in CONTROLS}
    sources, samples, length, seed = (
        list(opts["sources"]), opts["samples"], opts["sample_length"], opts["seed"]
    )  # fmt: skip
    result = evaluate_run(run, sources, samples, length, seed, sampling=controls)
    if opts["as_json"]:
        click.echo(json.dumps(result.to_dict()))
        return
    print_table([("run", str(run.folder.path)), *result.rows(opts["seed"])])


@click.command()
@run_options
def info(run_dir, root) -> None:
    """Describe a run: settings, corpus, vocabulary, progress."""
    from textgen.runs.describe import describe_run
    from textgen.runs.folder import RunFolder

    print_table(describe_run(RunFolder.find(run_dir, root)))


@click.command()
@run_options
@click.option(
    "--export-dir", type=click.Path(file_okay=False),
    help="Base folder for TF Serving models (default: RUN/export).",
)  # fmt: skip
@click.option("--model-name", default=EXPORT_MODEL_NAME, help="TF Serving model name.")
@click.option("--version", "version", type=int, help="Version number (default: next free).")
@click.option("--force", is_flag=True, help="Replace an existing version.")
@click.option(
    "--max-new-tokens-cap", default=EXPORT_MAX_NEW_TOKENS, help="Most tokens one request may ask."
)
@weights_option("export")
@click.option("--stop", multiple=True, help="End generation at this text (default: the run's).")
@click.option(
    "--xla/--no-xla", default=False,
    help="Compile the token loop with XLA: ~2x faster, but TF Serving then needs "
    "--xla_cpu_compilation_enabled=true on CPU and cannot serve it on GPU.",
)  # fmt: skip
@max_copy_option
@click.option(
    "--format", "export_format", type=click.Choice(["saved-model", "litert", "web"]),
    default="saved-model",
    help="saved-model (TF Serving), litert (a .tflite for phones and devices) or web (a "
    "static page that generates in the browser).",
)  # fmt: skip
@click.option(
    "--quantize", type=click.Choice(["none", "dynamic", "float16"]), default="none",
    help="litert/web: smaller weights (dynamic: int8, float16: half precision).",
)  # fmt: skip
@click.option(
    "--node-modules", type=click.Path(file_okay=False),
    help="web: the node_modules folder holding @litertjs/core (default: found).",
)  # fmt: skip
def export(**opts):
    """Write a SavedModel that TensorFlow Serving serves (string in, string out), or a
    LiteRT file, or a web page."""
    from textgen.core.config import validate_max_copy

    validate_max_copy(opts["max_copy"])
    quiet_tensorflow()
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


@click.command(name="serve-web")
@click.argument("export_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--port", default=8000, help="Port on localhost.")
def serve_web(export_dir, port) -> None:
    """Serve a web export (textgen export --format web) on http://localhost:PORT/."""
    from textgen.export.web import serve

    serve(export_dir, port, announce=click.echo)
