"""`textgen compare`: RNN vs LSTM vs GRU (and char vs word vs subword) on the same data
and time budget, measured.

For each cell (and each level, if several are given) it trains a model with the same
settings for the same wall-clock budget (the ordinary training loop, validating every
`eval_steps` steps), then measures generation speed and trains the long-range probe
(`textgen.evaluate.probe`). The report folder:

    REPORT/compare.md    the tables, and which cell won what
    REPORT/compare.csv   one row per run (cell and level)
    REPORT/compare.png   validation loss against time and against step; probe accuracy
    REPORT/curves.csv    every validation point: cell, level, seconds, step, val_loss
    REPORT/runs/CELL/    each cell's run folder (sample from it, evaluate it, export it;
                         CELL-LEVEL with several levels)

Runs of different levels read different tokens, so the report ranks them by what they
share: bits per character (the held-out loss over the characters the tokens spell) and
characters per second.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from textgen.core.config import RunConfig
from textgen.core.errors import ConfigError
from textgen.core.fileio import atomic_write_text
from textgen.data.prepared import characters_per_token
from textgen.evaluate.probe import DEFAULT_DISTANCES, chance_accuracy, train_probe

CELL_NAMES = {"rnn": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}


@dataclass
class CellResult:
    """What one cell reached on the shared budget."""

    cell: str
    parameters: int
    train_tokens_per_sec: float
    best_val_loss: float
    seconds_to_best: float
    steps: int
    generate_tokens_per_sec: float
    characters_per_token: float = 1.0  # on the validation text: bpc = loss / ln 2 / this
    probe: dict[int, float] = field(default_factory=dict)
    curve: list[tuple[float, int, float]] = field(default_factory=list)  # seconds, step, loss
    level: str = "char"

    @property
    def best_val_bpc(self) -> float:
        return self.bits_per_character(self.best_val_loss)

    def bits_per_character(self, loss: float) -> float:
        """A validation loss (nats per token) in bits per character."""
        from textgen.model.window_loss import loss_figures

        return loss_figures(loss, self.characters_per_token)["bpc"]

    @property
    def generate_chars_per_sec(self) -> float:
        return self.generate_tokens_per_sec * self.characters_per_token

    @property
    def train_chars_per_sec(self) -> float:
        return self.train_tokens_per_sec * self.characters_per_token


def compare(
    cells: Sequence[str],
    config: RunConfig,
    report_dir: str | Path,
    budget_minutes: float = 5.0,
    eval_steps: int = 50,
    probe_steps: int = 600,
    probe_distances: Sequence[int] = DEFAULT_DISTANCES,
    log: Callable[[str], None] = print,
    verbose: int = 1,
    levels: Sequence[str] | None = None,
) -> list[CellResult]:
    """Train, time and probe each cell at each of `levels` (default: `config`'s); write
    the report; return the results."""
    from textgen.training.start import train

    levels = _checked(cells, list(levels or [config.data.level]))
    report_dir = Path(report_dir)
    if (report_dir / "runs").exists():
        raise ConfigError(f"{report_dir} already holds a comparison; choose another --report")
    results, probes = [], {}
    entries = [(cell, level) for level in levels for cell in cells]
    for n, (cell, level) in enumerate(entries, 1):
        name = entry_name(cell, level, several=len(levels) > 1)
        log(f"[{n}/{len(entries)}] {name}: training for {budget_minutes:g} minutes")
        folder = f"{cell}-{level}" if len(levels) > 1 else cell
        cell_config = config.with_overrides(
            data={"level": level},
            model={"cell": cell},
            train={
                "epochs": 10**9,
                "steps_per_epoch": eval_steps,
                "max_minutes": budget_minutes,
                "patience": 0,
                "sample_length": 0,
            },
        )
        run_dir = train(
            cell_config,
            run_dir=report_dir / "runs" / folder,
            log=lambda line, folder=folder: line.startswith("epoch") and log(f"  {folder} {line}"),
            verbose=verbose,
        )
        result = _cell_result(cell, run_dir)
        if probe_steps and cell in probes:  # the probe is the cell's, whatever the level
            result.probe = probes[cell]
        elif probe_steps:
            log(f"[{n}/{len(entries)}] {CELL_NAMES[cell]}: long-range probe, {probe_steps} steps")
            result.probe = probes[cell] = train_probe(
                cell_config.with_overrides(train={"max_minutes": None}),
                report_dir / "probe" / cell,
                steps=probe_steps,
                eval_distances=probe_distances,
                log=lambda line: None,
                verbose=verbose,
            )
        results.append(result)
        write_report(results, report_dir, config, budget_minutes, probe_steps)
    return results


def _checked(cells: Sequence[str], levels: list[str]) -> list[str]:
    """`levels`, if `cells` and `levels` name known ones (each level once); else a ConfigError."""
    from textgen.core.config import LEVELS

    unknown = [cell for cell in cells if cell not in CELL_NAMES]
    if unknown or not cells:
        raise ConfigError(
            f"cells must be some of {', '.join(CELL_NAMES)}; got {', '.join(cells) or 'none'}"
        )
    if any(level not in LEVELS for level in levels) or len(set(levels)) < len(levels):
        raise ConfigError(
            f"levels must be some of {', '.join(LEVELS)}, each once; got {', '.join(levels)}"
        )
    return levels


def entry_name(cell: str, level: str, several: bool) -> str:
    """A compared run's name in the report: its cell, and its level where levels differ."""
    return f"{CELL_NAMES[cell]}, {level}" if several else CELL_NAMES[cell]


def _several_levels(results: Sequence[CellResult]) -> bool:
    """Whether `results` hold runs of more than one level (then ranked by what they share)."""
    return len({r.level for r in results}) > 1


def _name(result: CellResult, results: Sequence[CellResult]) -> str:
    return entry_name(result.cell, result.level, _several_levels(results))


def _probed(results: Sequence[CellResult]) -> list[CellResult]:
    """A result per probed cell (the probe is the cell's, whatever the level)."""
    return list({r.cell: r for r in results if r.probe}.values())


def _cell_result(cell: str, run_dir) -> CellResult:
    """A trained cell's figures: its size, speeds and validation curve."""
    from textgen.model.sizes import parameter_count
    from textgen.runs.folder import RunFolder
    from textgen.runs.run import Run

    run = Run(RunFolder(run_dir))
    curve, tokens_per_sec = _curve(RunFolder(run_dir).read_log())
    best = min(curve, key=lambda point: point[2])
    return CellResult(
        cell=cell,
        level=run.config.data.level,
        parameters=parameter_count(run.vocab.size, run.config.model),
        train_tokens_per_sec=tokens_per_sec,
        best_val_loss=best[2],
        seconds_to_best=best[0],
        steps=curve[-1][1],
        generate_tokens_per_sec=generation_speed(run),
        characters_per_token=characters_per_token(run.config.corpus),
        curve=curve,
    )


def _curve(log: list[dict]) -> tuple[list[tuple[float, int, float]], float]:
    """Validation points (cumulative training seconds, step, val_loss), and tokens/s,
    from a run's log (`RunFolder.read_log`)."""
    curve, seconds, tokens = [], 0.0, 0.0
    for row in log:
        seconds += row["seconds"]
        tokens += row["tokens_per_sec"] * row["seconds"]
        if row["val_loss"] is not None:
            curve.append((seconds, row["step"], row["val_loss"]))
    if not curve:
        raise ConfigError("comparing cells needs validation text: raise --val-fraction")
    return curve, tokens / max(seconds, 1e-9)


def generation_speed(run, tokens: int = 400) -> float:
    """Tokens/s of the library generator at batch 1 (compiled first, then timed)."""
    run.generate([""], max_new_tokens=8, temperature=1.0, seed=0)
    started = time.perf_counter()
    run.generate([""], max_new_tokens=tokens, temperature=1.0, seed=1)
    return tokens / (time.perf_counter() - started)


# -- the report ----------------------------------------------------------------------


def write_report(results, report_dir: Path, config: RunConfig, budget: float, probe_steps: int):
    """compare.csv, curves.csv, compare.md and compare.png in `report_dir` (atomically)."""
    distances = sorted({d for r in results for d in r.probe})
    table = io.StringIO()
    writer = csv.writer(table)
    writer.writerow(
        ["cell", "level", "parameters", "train_tokens_per_sec", "best_val_loss", "best_val_bpc",
         "seconds_to_best", "steps", "generate_tokens_per_sec", "generate_chars_per_sec",
         *[f"probe_accuracy_d{d}" for d in distances]]
    )  # fmt: skip
    for r in results:
        writer.writerow(
            [r.cell, r.level, r.parameters, f"{r.train_tokens_per_sec:.0f}",
             f"{r.best_val_loss:.4f}", f"{r.best_val_bpc:.4f}", f"{r.seconds_to_best:.1f}",
             r.steps, f"{r.generate_tokens_per_sec:.0f}", f"{r.generate_chars_per_sec:.0f}",
             *[f"{r.probe.get(d, float('nan')):.3f}" for d in distances]]
        )  # fmt: skip
    atomic_write_text(report_dir / "compare.csv", table.getvalue())
    curves = io.StringIO()
    writer = csv.writer(curves)
    writer.writerow(["cell", "level", "seconds", "step", "val_loss"])
    for r in results:
        writer.writerows(
            [r.cell, r.level, f"{s:.1f}", step, f"{loss:.5f}"] for s, step, loss in r.curve
        )
    atomic_write_text(report_dir / "curves.csv", curves.getvalue())
    atomic_write_text(
        report_dir / "compare.md", markdown(results, config, budget, probe_steps, distances)
    )
    plot(results, report_dir / "compare.png")


def markdown(results, config: RunConfig, budget: float, probe_steps: int, distances) -> str:
    m, d = config.model, config.data
    levels = ", ".join(dict.fromkeys(r.level for r in results)) or d.level
    lines = [
        "# textgen compare",
        "",
        f"Corpus: {', '.join(d.sources)} ({levels} level). Model: {m.layers} x {m.units} "
        f"units, embedding {m.embedding_dim}, dropout {m.dropout}; batch "
        f"{config.train.batch_size} x {d.seq_len}, learning rate {config.train.learning_rate}. "
        f"Budget: {budget:g} minutes of training per run.",
        "",
        "| cell | parameters | train tokens/s | best val loss (bpc) | reached after "
        "| steps | generate tokens/s | generate chars/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {_name(r, results)} | {r.parameters:,} | {r.train_tokens_per_sec:,.0f} | "
            f"{r.best_val_loss:.4f} ({r.best_val_bpc:.3f}) | {r.seconds_to_best:.0f} s | "
            f"{r.steps:,} | {r.generate_tokens_per_sec:,.0f} | {r.generate_chars_per_sec:,.0f} |"
        )
    if distances:
        lines += [
            "",
            f"Long-range probe ({probe_steps} steps, word level): accuracy of a word whose only "
            f"cue is D words back (chance {chance_accuracy():.0%}).",
            "",
            "| cell | " + " | ".join(f"D={x}" for x in distances) + " |",
            "|---|" + "---:|" * len(distances),
        ]
        for r in _probed(results):
            cells = " | ".join(f"{r.probe.get(x, float('nan')):.0%}" for x in distances)
            lines.append(f"| {CELL_NAMES[r.cell]} | {cells} |")
    lines += ["", "## Who won what", ""] + [f"- {line}" for line in verdicts(results)]
    lines += ["", "![validation loss and probe accuracy](compare.png)", ""]
    return "\n".join(lines)


def verdicts(results: Sequence[CellResult]) -> list[str]:
    """One line per measure: which run did best, and by how much. Runs of one level are
    ranked by their loss and tokens/s; of several, by bits and characters (what they share)."""
    if not results:
        return []
    name = lambda r: _name(r, results)  # noqa: E731
    several = _several_levels(results)
    lines = []
    if several:
        best = min(results, key=lambda r: r.best_val_bpc)
        rest = ", ".join(f"{name(r)} {r.best_val_bpc:.3f}" for r in results if r is not best)
        lines.append(
            f"lowest validation loss: {name(best)} ({best.best_val_bpc:.3f} bits per "
            f"character; {rest})"
        )
    else:
        best = min(results, key=lambda r: r.best_val_loss)
        lines.append(f"lowest validation loss: {name(best)} ({best.best_val_loss:.4f})")
    unit = "characters/s" if several else "tokens/s"
    for label, key in (
        ("fastest training",
         lambda r: r.train_chars_per_sec if several else r.train_tokens_per_sec),
        ("fastest generation",
         lambda r: r.generate_chars_per_sec if several else r.generate_tokens_per_sec),
    ):  # fmt: skip
        top = max(results, key=key)
        rest = ", ".join(f"{name(r)} {key(top) / key(r):.2f}x" for r in results if r is not top)
        lines.append(f"{label}: {name(top)} ({key(top):,.0f} {unit}; vs {rest or 'none'})")
    smallest = min(results, key=lambda r: r.parameters)
    lines.append(f"fewest parameters: {name(smallest)} ({smallest.parameters:,})")
    probed = _probed(results)
    if probed:
        mean = lambda r: sum(r.probe.values()) / max(len(r.probe), 1)  # noqa: E731
        cell = lambda r: CELL_NAMES[r.cell]  # noqa: E731
        top = max(probed, key=mean)
        scores = lambda cells: ", ".join(f"{cell(r)} {mean(r):.0%}" for r in cells)  # noqa: E731
        others = [r for r in probed if r is not top]
        # Near chance is no memory: a winner must at least double a uniform guess.
        if mean(top) < 2 * chance_accuracy():
            line = f"no cell above chance ({chance_accuracy():.0%}): {scores(probed)}"
        else:
            line = f"{cell(top)} (mean probe accuracy {mean(top):.0%}"
            line += f"; {scores(others)})" if others else ")"
        lines.append(f"long-range memory: {line}")
    return lines


def plot(results: Sequence[CellResult], path: Path) -> None:
    """Validation loss against time and step, probe accuracy against distance (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = 3 if any(r.probe for r in results) else 2
    several = _several_levels(results)  # then in bits per character: comparable
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 4), constrained_layout=True)
    for r in results:
        seconds, steps, losses = zip(*r.curve)
        if several:
            losses = [r.bits_per_character(loss) for loss in losses]
        axes[0].plot(seconds, losses, marker=".", label=_name(r, results))
        axes[1].plot(steps, losses, marker=".", label=_name(r, results))
    for r in _probed(results) if panels == 3 else []:
        distances = sorted(r.probe)
        axes[2].plot(
            distances, [r.probe[d] for d in distances], marker="o", label=CELL_NAMES[r.cell]
        )
    unit = "bits/character" if several else "nats/token"
    axes[0].set(xlabel="training seconds", ylabel=f"validation loss ({unit})")
    axes[1].set(xlabel="step", ylabel=f"validation loss ({unit})")
    if panels == 3:
        axes[2].axhline(chance_accuracy(), color="grey", linestyle=":", label="chance")
        axes[2].set(xlabel="distance to the cue (words)", ylabel="probe accuracy", ylim=(0, 1.05))
    for axis in axes:
        axis.grid(alpha=0.3)
        axis.legend()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
