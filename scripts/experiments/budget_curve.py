"""Held-out loss against minutes of training: the presets at their time budgets, drawn.

    python scripts/experiments/budget_curve.py --corpus ../shared/data/tinyshakespeare.txt \\
        [--budgets quick:2 shakespeare:5 shakespeare:10 shakespeare:20] [--runs DIR ...] \\
        [--root /tmp/textgen-budgets] [--svg docs/budget_curve.svg]

Each budget is trained as a user would (`textgen train --preset P --minutes M --seed 1`,
a cold process, timed whole); `--runs` adds run folders trained before (their budget read
from their plan). For each run: the best validation loss (nats per character, the last
10% of the text held out), when it was reached, and the whole command's time. The SVG
draws each run's validation loss after every epoch against the minutes it had trained
(a dot at its best: the last epochs' average where that was kept), with nanoGPT's
published points for reference (docs/experiments.md, "Presets").
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

from textgen.training.precision import resolve  # "auto" as it is on this machine

# nanoGPT on the same split: its CPU recipe on this machine (docs/experiments.md), and its
# GPU recipe's published best (10.7M parameters, an A100).
NANOGPT_CPU = (116 / 60, 1.886)
NANOGPT_GPU = 1.4697
TARGET = 1.45  # the shakespeare preset's, in 20 minutes (issue #34)
WIDTH, HEIGHT, MARGIN = 640, 400, 56
COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]


def train(preset: str, minutes: float, corpus: str, root: Path) -> tuple[Path, float]:
    """Train one budget in a new process; its run folder and the command's seconds."""
    before = set(root.glob("*")) if root.exists() else set()
    command = [
        sys.executable, "-m", "textgen.cli", "train", "--preset", preset, "--minutes",
        str(minutes), "--corpus", corpus, "--seed", "1", "--root", str(root),
    ]  # fmt: skip
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    (run,) = set(root.glob("*")) - before
    return run, seconds


def curve(run: Path) -> dict:
    """A run's budget, validation loss after each epoch and the minutes trained by then."""
    config = json.loads((run / "config.json").read_text())
    rows = list(csv.DictReader((run / "logs" / "training.csv").open()))
    minutes, points = 0.0, []
    for row in rows:
        minutes += float(row["seconds"]) / 60
        points.append((minutes, float(row["val_loss"])))
    budget = (config.get("plan") or {}).get("minutes") or config["train"].get("minutes")
    best = min(points, key=lambda p: p[1])
    kept = best_kept(run)  # the last epochs averaged, if that was better than every epoch
    best = (points[-1][0], kept) if kept < best[1] else best
    recipe = ", weight decay {:g}".format(config["train"].get("weight_decay") or 0)
    recipe = recipe if config["train"].get("weight_decay") else ""
    arithmetic = resolve(config["train"].get("precision", "float32"), config["model"]["units"])
    recipe += ", bfloat16" if arithmetic == "bfloat16" else ""
    return {"run": run, "preset": config.get("preset"), "budget": budget, "points": points,
            "best": best, "recipe": recipe}  # fmt: skip


def best_kept(run: Path) -> float:
    """The best validation loss the run kept (its checkpoint's), an average's included."""
    import tensorflow as tf

    latest = tf.train.latest_checkpoint(str(run / "checkpoints" / "latest"))
    return float(tf.train.load_variable(latest, "best_val_loss/.ATTRIBUTES/VARIABLE_VALUE"))


def svg(curves: list[dict], path: Path) -> None:
    x_max = max(max(p[0] for p in c["points"]) for c in curves) * 1.05
    y_min, y_max = 1.40, 2.0
    sx = lambda m: MARGIN + (WIDTH - 2 * MARGIN) * m / x_max  # noqa: E731
    sy = lambda v: MARGIN + (HEIGHT - 2 * MARGIN) * (y_max - min(v, y_max)) / (y_max - y_min)  # noqa: E731
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        'font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
    ]
    for tick in range(0, int(x_max) + 1, 5):
        parts.append(f'<line x1="{sx(tick)}" y1="{sy(y_max)}" x2="{sx(tick)}" y2="{sy(y_min)}" '
                     'stroke="#eee"/>')  # fmt: skip
        parts.append(f'<text x="{sx(tick)}" y="{HEIGHT - MARGIN + 18}" text-anchor="middle">'
                     f"{tick}</text>")  # fmt: skip
    for step in range(0, 7):
        value = y_min + step * 0.1
        parts.append(f'<line x1="{sx(0)}" y1="{sy(value)}" x2="{sx(x_max)}" y2="{sy(value)}" '
                     'stroke="#eee"/>')  # fmt: skip
        parts.append(f'<text x="{MARGIN - 6}" y="{sy(value) + 4}" text-anchor="end">'
                     f"{value:.1f}</text>")  # fmt: skip
    parts.append(f'<text x="{WIDTH / 2}" y="{HEIGHT - 12}" text-anchor="middle">minutes of '
                 "training (2 CPU cores)</text>")  # fmt: skip
    parts.append(f'<text x="14" y="{HEIGHT / 2}" transform="rotate(-90 14 {HEIGHT / 2})" '
                 'text-anchor="middle">held-out loss (nats/char)</text>')  # fmt: skip
    gpu = sy(NANOGPT_GPU)
    parts.append(f'<line x1="{sx(0)}" y1="{gpu}" x2="{sx(x_max)}" y2="{gpu}" stroke="#555" '
                 'stroke-dasharray="6 4"/>')  # fmt: skip
    parts.append(f'<text x="{sx(x_max)}" y="{gpu - 5}" text-anchor="end" fill="#555">nanoGPT, '
                 f"GPU recipe (A100): {NANOGPT_GPU}</text>")  # fmt: skip
    target = sy(TARGET)
    parts.append(f'<line x1="{sx(0)}" y1="{target}" x2="{sx(x_max)}" y2="{target}" '
                 'stroke="#d62728" stroke-dasharray="2 3"/>')  # fmt: skip
    parts.append(f'<text x="{sx(0) + 4}" y="{target + 14}" fill="#d62728">the 20-minute target: '
                 f"{TARGET}</text>")  # fmt: skip
    cx, cy = sx(NANOGPT_CPU[0]), sy(NANOGPT_CPU[1])
    parts.append(f'<rect x="{cx - 4}" y="{cy - 4}" width="8" height="8" fill="#555"/>')
    parts.append(f'<text x="{cx + 8}" y="{cy + 4}" fill="#555">nanoGPT, CPU recipe: '
                 f"{NANOGPT_CPU[1]}</text>")  # fmt: skip
    for index, c in enumerate(curves):
        colour = COLOURS[index % len(COLOURS)]
        line = " ".join(f"{sx(m):.1f},{sy(v):.1f}" for m, v in c["points"])
        parts.append(f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="2"/>')
        m, v = c["best"]
        parts.append(f'<circle cx="{sx(m):.1f}" cy="{sy(v):.1f}" r="4" fill="{colour}"/>')
        label = f"{c['preset']}, {c['budget']:g} min{c['recipe']}: {v:.3f}"
        parts.append(f'<text x="{WIDTH - MARGIN}" y="{MARGIN + 16 * index}" text-anchor="end" '
                     f'fill="{colour}">{label}</text>')  # fmt: skip
    parts.append("</svg>")
    path.write_text("\n".join(parts) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", required=True)
    budgets = ["quick:2", "shakespeare:5", "shakespeare:10", "shakespeare:20"]
    parser.add_argument("--budgets", nargs="*", default=budgets, help="PRESET:MINUTES ...")
    parser.add_argument("--runs", nargs="*", default=[], help="run folders trained before")
    parser.add_argument("--root", default="/tmp/textgen-budgets")
    parser.add_argument("--svg", default="docs/budget_curve.svg")
    args = parser.parse_args()
    curves, seconds = [], {}
    for budget in args.budgets:
        preset, minutes = budget.split(":")
        run, seconds[preset, float(minutes)] = train(preset, float(minutes), args.corpus,
                                                     Path(args.root))  # fmt: skip
        curves.append(curve(run))
    curves += [curve(Path(run)) for run in args.runs]
    curves.sort(key=lambda c: (c["preset"] != "quick", c["budget"]))
    print("| preset | budget | best validation loss | reached at | whole command |")
    print("|---|---:|---:|---:|---:|")
    for c in curves:
        whole = seconds.get((c["preset"], c["budget"]))
        whole = f"{whole / 60:.1f} min" if whole else "(trained before)"
        m, v = c["best"]
        print(f"| {c['preset']} | {c['budget']:g} min | {v:.4f} | {m:.1f} min | {whole} |")
    svg(curves, Path(args.svg))
    print(f"wrote {args.svg}")


if __name__ == "__main__":
    main()
