"""`textgen sample`: one call of a sampler, whichever runs it (in process, LiteRT, a
TF Serving server), with one `SamplingSettings`."""

from __future__ import annotations

import secrets

import click

from textgen.cli.common import quiet_tensorflow
from textgen.cli.options import CONTROLS, control_options, run_options, weights_option
from textgen.core.config import (
    MAX_BATCH,
    MAX_BEAMS,
    MAX_LABEL_STRENGTH,
    MAX_NEW_TOKENS,
    MAX_SAMPLES,
)
from textgen.generate.records import FORMATS, sample_lines
from textgen.generate.settings import SamplingSettings
from textgen.runs.open import BACKENDS


# fmt: off
@click.command()
@run_options
@click.option("--prompt", default="", help="Text to continue (default: start of a line).")
@click.option("--length", "max_new_tokens", type=click.IntRange(1, MAX_NEW_TOKENS),
              help=f"Tokens to generate, 1-{MAX_NEW_TOKENS} (default: the run's, 500).")
@click.option("--temperature", type=float, help="0 is greedy; higher is more random.")
@click.option("--top-k", type=int, help="Sample from the K most likely tokens (0: off).")
@click.option("--top-p", type=float, help="Sample from the smallest set with mass P (1: off).")
@click.option("--num-samples", default=1, type=click.IntRange(1, MAX_SAMPLES),
              help=f"Samples per prompt, drawn in batches of {MAX_BATCH}.")
@click.option("--beams", type=click.IntRange(1, MAX_BEAMS),
              help=f"The most likely text by beam search over N hypotheses, 1-{MAX_BEAMS}; "
              "--num-samples K <= N gives the K best.")
@click.option("--label", help="An item run's kind of item to generate (see `textgen info`).")
@click.option("--label-strength", type=float,
              help=f"Label guidance: how hard --label pulls, 1 (off) to {MAX_LABEL_STRENGTH:g} "
              "(default: the run's).")
@click.option("--prompts-file", type=click.Path(dir_okay=False),
              help="Prompts, one per line (each gets --num-samples samples).")
@click.option("--output", type=click.Path(dir_okay=False),
              help="Write the samples to this file instead of printing them.")
@click.option("--format", "output_format", type=click.Choice(FORMATS), default="text",
              help="text, or JSONL records: prompt, label, seed, stream, completion.")
@click.option("--seed", type=int, help="Same seed, same text (default: random).")
@click.option("--stop", multiple=True, help="End at this text (not printed). Repeatable.")
@weights_option("sample from")
@click.option("--stream/--no-stream", default=True, help="Print a single sample as it is drawn.")
@click.option("--interactive", is_flag=True,
              help="Write with the model: each line you type is continued (/help in it).")
@click.option("--server", metavar="URL", help="Ask a TF Serving model at URL instead.")
@click.option("--litert", metavar="DIR", type=click.Path(file_okay=False),
              help="Run a LiteRT export (textgen export --format litert) instead.")
@click.option("--xla/--no-xla", default=True, help="XLA-compile the token loop.")
@click.option("--backend", type=click.Choice(BACKENDS), default="auto",
              help="numpy: without TensorFlow (starts at once; best weights, no repetition "
              "controls or --max-copy); auto: numpy when it can, else tensorflow.")
@control_options
# fmt: on
def sample(**opts) -> None:
    """Continue --prompt with text from a trained run (the newest by default)."""
    names = ("max_new_tokens", "temperature", "top_k", "top_p", "label", "label_strength", "beams",
             *CONTROLS)  # fmt: skip
    settings = SamplingSettings.of(
        seed=opts["seed"] if opts["seed"] is not None else secrets.randbelow(2**31),
        stop=opts["stop"] or None,
        **{name: opts[name] for name in names},
    )  # checked here: a bad value is a usage error before anything loads
    for name in ("beams", "label_strength"):
        if getattr(settings, name) and opts["interactive"]:
            option = "--" + name.replace("_", "-")
            raise click.UsageError(f"{option} does not apply to --interactive (not yet)")
    count = 1 if settings.beams else opts["num_samples"]
    prompts = [p for p in _read_prompts(opts) for _ in range(count)]
    sampler = _open_sampler(opts, prompts, settings)
    if settings.beams:
        found = sampler.search(prompts, settings, count=opts["num_samples"])
        rows = [(p, beam) for p, beams in zip(prompts, found) for beam in beams]
        lines = sample_lines(
            [p for p, _ in rows], [b.completion for _, b in rows], settings,
            opts["output_format"], sampler.items, [b.log_probability for _, b in rows],
        )  # fmt: skip
        _write(lines, opts["output"], len(rows))
        return
    if opts["interactive"]:
        from textgen.cli.session import run_session

        run_session(sampler, settings, opts["prompt"])
        return
    alone = len(prompts) == 1 and not opts["output"] and opts["output_format"] == "text"
    if alone and opts["stream"]:
        click.echo(prompts[0], nl=False)
        for piece in sampler.stream(prompts[0], settings):
            click.echo(piece, nl=False)
        click.echo()
        return
    completions = sampler.generate(prompts, settings)
    items = sampler.items or bool(settings.label)  # a server does not say; a label does
    lines = sample_lines(prompts, completions, settings, opts["output_format"], items)
    _write(lines, opts["output"], len(completions))


def _open_sampler(opts: dict, prompts: list[str], settings: SamplingSettings):
    """The sampler asked for: a TF Serving server, a LiteRT export, or the run."""
    if opts["server"]:
        from textgen.export.client import RemoteSampler

        return RemoteSampler(opts["server"])
    if opts["litert"]:
        from textgen.export.litert_sampler import LiteRTSampler

        return LiteRTSampler(opts["litert"])
    from textgen.runs.folder import RunFolder
    from textgen.runs.open import open_run

    folder = RunFolder.find(opts["run_dir"], opts["root"])
    return open_run(
        folder, prompts, settings, opts["backend"], opts["weights"], opts["xla"],
        before_tensorflow=quiet_tensorflow,
    )  # fmt: skip


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


def _write(lines: list[str], output: str | None, samples: int) -> None:
    """Print `lines`, or write them to `output` atomically."""
    if not output:
        for line in lines:
            click.echo(line)
        return
    from textgen.core.fileio import atomic_write_text

    try:
        atomic_write_text(output, "".join(line + "\n" for line in lines))
    except OSError as err:
        raise click.BadParameter(str(err), param_hint="--output") from None
    click.echo(f"Wrote {samples} samples to {output}", err=True)
