"""`textgen sample`: one call of a sampler, whichever runs it (in process, LiteRT, a
TF Serving server), with one `SamplingSettings`."""

from __future__ import annotations

import secrets

import click

from textgen.cli.options import NGRAM, field_options, given, options_of, run_options, weights_option
from textgen.core.config import MAX_BATCH, MAX_BEAMS, MAX_NEW_TOKENS, MAX_SAMPLES
from textgen.core.quiet import quiet_tensorflow
from textgen.export.samplers import open_sampler
from textgen.generate.records import FORMATS, read_prompts, samples_of, write_lines
from textgen.generate.settings import SamplingSettings
from textgen.runs.open import BACKENDS

SAMPLING = {  # the sampling settings' options, with their ranges
    **NGRAM,
    "max_new_tokens": {"type": click.IntRange(1, MAX_NEW_TOKENS)},
    "beams": {"type": click.IntRange(1, MAX_BEAMS)},
}


# fmt: off
@click.command()
@run_options
@click.option("--prompt", default="", help="Text to continue (default: start of a line).")
@click.option("--num-samples", default=1, type=click.IntRange(1, MAX_SAMPLES),
              help=f"Samples per prompt, drawn in batches of {MAX_BATCH}.")
@click.option("--prompts-file", type=click.Path(dir_okay=False),
              help="Prompts, one per line (each gets --num-samples samples).")
@click.option("--output", type=click.Path(dir_okay=False),
              help="Write the samples to this file instead of printing them.")
@click.option("--format", "output_format", type=click.Choice(FORMATS), default="text",
              help="text, or JSONL records: prompt, label, seed, stream, completion.")
@click.option("--seed", type=int, help="Same seed, same text (default: random).")
@weights_option("sample from")
@click.option("--stream/--no-stream", default=True, help="Print a single sample as it is drawn.")
@click.option("--interactive", is_flag=True,
              help="Write with the model: each line you type is continued (/help in it).")
@click.option("--server", metavar="URL", help="Ask a TF Serving model at URL instead.")
@click.option("--litert", metavar="DIR", type=click.Path(file_okay=False),
              help="Run a LiteRT export (textgen export --format litert) instead.")
@click.option("--xla/--no-xla", default=True, help="XLA-compile the token loop.")
@click.option("--backend", type=click.Choice(BACKENDS), default="auto",
              help="numpy: without TensorFlow (starts at once; the best weights); "
              "auto: numpy when it can, else tensorflow.")
@options_of(field_options(SamplingSettings, extra=SAMPLING))
# fmt: on
def sample(**opts) -> None:
    """Continue --prompt with text from a trained run (the newest by default)."""
    settings = SamplingSettings.of(  # checked: a bad value is an error before anything loads
        **{"seed": secrets.randbelow(2**31), **given(SamplingSettings, opts)}
    )
    prompts = read_prompts(opts["prompts_file"]) if opts["prompts_file"] else [opts["prompt"]]
    rows = prompts * (1 if settings.beams else opts["num_samples"])
    sampler = open_sampler(
        opts["server"], opts["litert"], opts["run_dir"], opts["root"], rows, settings,
        quiet_tensorflow, backend=opts["backend"], weights=opts["weights"], xla=opts["xla"],
    )  # fmt: skip
    if opts["interactive"]:
        from textgen.generate.cowriting import CoWriting, interact

        return interact(CoWriting(sampler, settings, click.echo), opts["prompt"])
    alone = opts["num_samples"] == len(prompts) == 1 and opts["output_format"] == "text"
    if alone and opts["stream"] and not (opts["output"] or settings.beams):
        click.echo(prompts[0], nl=False)
        for piece in sampler.stream(prompts[0], settings):
            click.echo(piece, nl=False)
        return click.echo()
    lines = samples_of(sampler, prompts, settings, opts["num_samples"], opts["output_format"])
    if not opts["output"]:
        return click.echo("\n".join(lines))
    write_lines(lines, opts["output"])
    click.echo(f"Wrote {len(prompts) * opts['num_samples']} samples to {opts['output']}", err=True)
