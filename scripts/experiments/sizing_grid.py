"""Sizes and regularisation against corpora and budgets (issue #47), one part per call:

    python scripts/experiments/sizing_grid.py CORPUS --minutes 2 \
        --configs 128,192:light,256:reg,default,auto --out docs/data/sizing.jsonl \
        [--root /tmp/sizing-runs]

Each config is trained as a user would (a cold `textgen train ... --minutes M --seed 1`
process, the last 10% of CORPUS held out), alone on the machine; a JSON line per run is
appended to `--out`: the config, the plan as printed (steps, passes, estimated time and
memory), the best held-out loss the run kept (nats per token), the minutes it trained,
the whole command's seconds and the process's peak resident memory, and (`held_out`) the
kept weights' loss on the whole held-out text (`textgen evaluate`): since a budget's
validations take at most 5% of it (`val_rule` "budget"), a run may validate on the
first 200k tokens of a large corpus's held-out tenth, not all of it.

A config is `UNITS[:REG][:eEMB][:lrRATE][:bBATCH][:wWINDOW]` (2 x GRU(UNITS), the quick
preset's recipe otherwise: batch 32, windows of 100, cosine learning rate, skip
connections; the learning rate by size as the sizing rule sets it) with
REG none (default), light (dropout 0.1, weight decay 0.1) or reg (variational dropout
0.3, weight decay 0.2) or reg2 (the same, the last 2 epochs averaged), and the
embedding's width, learning rate, batch and window given by `e`, `lr`, `b` and `w`
(`auto` and `sized` configs take them too: `auto:w200`); `default` and `auto` are both
`textgen train --minutes M` with no other setting: before #47 that trained the default
2 x GRU(256) (the grid's `default` rows), after it the rule's choice (`auto`);
`olddefault` trains the default size through the library, which does not size (as
`textgen train --minutes M` did before #47); `sizedUNITS` (`sized384`, `sized384:none`)
is `textgen train --minutes M --units UNITS`: the rule's run of that size (its
regularisation, or none), cut short where the text limits it.

CORPUS: a path, or `pydoc100k` (the first 100 KB of Python's pydoc topics: technical
prose), `pydoc` (all of them, 465 KB) or `code10m` (10 MB of Python's standard library
source, files in path order).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

from textgen.training.sizing import embedding_dim, learning_rate

REGS = {
    "none": ["--dropout", "0"],
    "light": ["--dropout", "0.1", "--weight-decay", "0.1"],
    "reg": ["--dropout", "0.3", "--variational-dropout", "--weight-decay", "0.2"],
}
REGS["reg2"] = [*REGS["reg"], "--average-last", "2"]  # as the rule has it from 6 epochs
SIZED_NONE = [
    "--dropout", "0", "--no-variational-dropout", "--weight-decay", "0", "--average-last", "0",
]  # fmt: skip


OLD_DEFAULT = """import textgen
config = textgen.RunConfig().with_overrides(
    data={{"sources": [{0!r}], "level": {3!r}}}, train={{"minutes": {1!r}, "seed": 1}})
textgen.train(config, run_dir={2!r}, log=print, verbose=0)"""


def corpus_path(name: str, root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    if name in ("pydoc100k", "pydoc"):
        from pydoc_data.topics import topics

        text = "\n\n".join(topics[key] for key in sorted(topics))
        path = root / f"{name}.txt"
        cut = text.rfind("\n\n", 0, 100_000) if name == "pydoc100k" else len(text)
        path.write_text(text[:cut], encoding="utf-8")
        return path
    if name == "code10m":
        path, parts, size = root / "code10m.txt", [], 0
        stdlib = Path(sysconfig.get_paths()["stdlib"])
        for source in sorted(stdlib.rglob("*.py")):
            if "site-packages" in source.parts or "test" in source.parts:
                continue
            try:
                text = source.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            parts.append(text)
            size += len(text.encode("utf-8"))
            if size >= 10_000_000:
                break
        path.write_text("\n".join(parts), encoding="utf-8")
        return path
    return Path(name)


EXTRAS = {"e": "--embedding-dim", "lr": "--learning-rate", "b": "--batch-size", "w": "--seq-len"}


def flags(config: str, level: str = "char") -> list[str]:
    name, *extras = config.split(":")
    given, reg = {}, None
    for extra in extras:  # e128, lr1e-2, b64, w200, or a REG
        key = "lr" if extra.startswith("lr") else extra[:1]
        if key in EXTRAS and (key == "lr" or extra[1:].isdigit()):
            given[EXTRAS[key]] = extra[len(key):]
        else:
            reg = extra
    if name in ("default", "auto", "olddefault"):
        return [item for pair in given.items() for item in pair]
    if name.startswith("sized"):  # the rule's run of these units (regularisation: given)
        units = name.removeprefix("sized")
        given = {"--units": units, **given}
        return [*(SIZED_NONE if reg == "none" else []), *(i for p in given.items() for i in p)]
    units = int(name)
    given = {
        "--units": name, "--embedding-dim": str(embedding_dim(units)),
        "--learning-rate": str(learning_rate(units, level)), **given,
    }  # fmt: skip
    return ["--preset", "quick", *(i for p in given.items() for i in p), *REGS[reg or "none"]]


def run(corpus: Path, config: str, minutes: float, root: Path, level: str = "char") -> dict:
    """One cold `textgen train`; its figures."""
    name = f"{corpus.stem}-{level}-{config.replace(':', '-')}-{minutes:g}min"
    run_dir = root / "runs" / name
    if run_dir.exists():
        import shutil

        shutil.rmtree(run_dir)
    command = [
        sys.executable, "-m", "textgen.cli", "train", "--corpus", str(corpus), "--minutes",
        str(minutes), "--seed", "1", "--run-dir", str(run_dir), "--samples", "1",
        "--level", level, *flags(config, level),
    ]  # fmt: skip
    if config == "olddefault":  # the library, not sized: `textgen train --minutes` before #47
        code = OLD_DEFAULT.format(str(corpus), minutes, str(run_dir), level)
        command = [sys.executable, "-c", code]
    started = time.perf_counter()
    output = open(root / "out.txt", "w+", encoding="utf-8")
    child = subprocess.Popen(command, stdout=output, text=True)
    polled = 0  # the largest resident size seen (a process may reset its own peak count)
    while child.poll() is None:
        polled = max(polled, _resident_kib(child.pid))
        time.sleep(0.1)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    status = child.returncode
    output.seek(0)
    out = output.read()
    seconds = time.perf_counter() - started
    if status:
        raise SystemExit(f"{config} failed:\n{out}")
    saved = json.loads((run_dir / "config.json").read_text())
    plan = saved.get("plan") or {}
    rows = (run_dir / "logs" / "training.csv").read_text().splitlines()
    header = rows[0].split(",")
    losses = [float(row.split(",")[header.index("val_loss")]) for row in rows[1:]]
    trained = sum(float(row.split(",")[header.index("seconds")]) for row in rows[1:]) / 60
    scored = subprocess.run(  # the kept weights on the whole held-out text
        [sys.executable, "-m", "textgen.cli", "evaluate", "--run-dir", str(run_dir),
         "--samples", "0", "--json"], capture_output=True, text=True, check=True,
    )  # fmt: skip
    evaluation = json.loads(scored.stdout.strip().splitlines()[-1])
    held_out = evaluation["loss"]
    kept = ("Plan", "Memory", "Size", "Weighed", "Expected", "The text", "Trained for")
    plan_lines = [line for line in out.splitlines() if line.startswith(kept)]
    return {
        "corpus": corpus.stem, "minutes": minutes, "config": config, "level": level,
        "model": {k: saved["model"][k] for k in ("cell", "layers", "units", "embedding_dim",
                                                  "dropout", "variational_dropout")},
        "train": {k: saved["train"][k] for k in ("batch_size", "learning_rate",
                                                  "weight_decay", "average_last")},
        "seq_len": saved["data"]["seq_len"], "steps": plan.get("steps"),
        "corpus_tokens": saved["corpus"]["train_tokens"],
        "vocab_size": len(json.loads((run_dir / "vocab.json").read_text())["tokens"]),
        "sizing": saved.get("sizing", {}),
        "passes": plan.get("passes"), "seconds_per_step": plan.get("seconds_per_step"),
        "val_losses": losses, "best": min(losses), "trained_minutes": round(trained, 3),
        "held_out": round(held_out, 5), "held_out_bpc": round(evaluation["bpc"], 5),
        "val_tokens": saved["train"]["val_tokens"],
        "val_rule": "budget",
        "command_seconds": round(seconds, 1), "peak_rss_mb": round(polled / 1024),
        "children_maxrss_mb": round(usage.ru_maxrss / 1024),
        "plan_lines": plan_lines, "sample": out.strip().splitlines()[-3:],
    }  # fmt: skip


def _resident_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            return next((int(line.split()[1]) for line in f if line.startswith("VmRSS")), 0)
    except OSError:
        return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus")
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--configs", default="128,192,256")
    parser.add_argument("--out", default="docs/data/sizing.jsonl")
    parser.add_argument("--root", default="/tmp/sizing-runs", type=Path)
    parser.add_argument("--level", default="char", choices=("char", "word", "subword"))
    args = parser.parse_args()
    corpus = corpus_path(args.corpus, args.root)
    for config in args.configs.split(","):
        result = run(corpus, config, args.minutes, args.root, args.level)
        with open(args.out, "a", encoding="utf-8") as f:
            f.write(json.dumps(result) + "\n")
        print(f"{corpus.stem} {args.level} {config} {args.minutes:g} min: "
              f"{result['held_out']:.4f} "
              f"({result['passes']:.1f} passes, {result['command_seconds']:.0f} s, "
              f"{result['peak_rss_mb']} MB)", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
