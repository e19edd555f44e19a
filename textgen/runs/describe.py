"""What `textgen info` shows of a run, read from its files (no TensorFlow), and what
`textgen train` prints at its end."""

from __future__ import annotations

import os

from textgen.runs.folder import RunFolder


def describe_run(folder: RunFolder) -> list[tuple[str, str]]:
    """What `textgen info` shows of a run: (name, value) lines, read from its files."""
    from textgen.model.sizes import parameter_count

    config, vocab = folder.load_config(), folder.load_vocab()
    m, d, t, corpus = config.model, config.data, config.train, config.corpus
    extras = [("skip connections", m.skip_connections), ("the label at every step", m.label_memory)]
    model = f"{m.layers} x {m.cell.upper()}({m.units}), embedding {m.embedding_dim}, "
    model += ", ".join([f"dropout {m.dropout}"] + [name for name, on in extras if on])
    rows = [
        ("run", str(folder.path)),
        ("textgen", config.textgen_version),
        ("preset", config.preset or "-"),
        ("model", model),
        ("parameters", f"{parameter_count(vocab.size, m):,}"),
        ("level", f"{d.level}{' (lowercased)' if d.lowercase else ''}, vocabulary {vocab.size}"),
        ("corpus", ", ".join(corpus.get("sources", []))),
        (
            "corpus size",
            f"{corpus.get('train_chars', 0):,} train + "
            f"{corpus.get('validation_chars', 0):,} validation characters",
        ),
        ("corpus sha256", corpus.get("sha256", "")),
    ]
    if d.items is not None:
        sizes = corpus.get("items", {})
        labels = corpus.get("labels", {})
        rows += [
            (
                "items",
                f"{sizes.get('train', 0):,} train + {sizes.get('validation', 0):,} validation",
            ),
            ("labels", ", ".join(f"{k} ({v:,})" for k, v in labels.items()) or "none"),
        ]
    rows += [
        (
            "training",
            f"seq_len {d.seq_len}, batch {t.batch_size}, lr {t.learning_rate} "
            f"({t.lr_schedule}), epochs {t.epochs}"
            + (f", label contrast {t.label_contrast:g}" if config.contrasts_labels else ""),
        ),
    ]
    if config.plan:
        rows.append(("time budget", _budget(config.plan)))
    if config.parent:
        from textgen.runs.describe import describe_lineage

        rows.append(("fine-tuned from", describe_lineage(config.parent)))
    log = folder.read_log()
    if not log:
        return [*rows, ("progress", "no epoch finished yet")]
    last = log[-1]
    losses = [row["val_loss"] for row in log if row["val_loss"] is not None]
    best = f"{min(losses):.4f}" if losses else "n/a"
    return [
        *rows,
        ("progress", f"epoch {last['epoch']}, step {last['step']}"),
        ("loss", f"train {last['loss']:.4f}, best validation {best}"),
        ("speed", f"{last['tokens_per_sec']:.0f} tokens/s in the last epoch"),
    ]


def _budget(plan: dict) -> str:
    """A time budget's plan (textgen.training.plan) in a line."""
    again = plan.get("replans")
    replanned = f", re-planned to {again[-1]['steps']:,} at epoch ends" if again else ""
    return (
        f"{plan['minutes']:g} minutes: {plan['steps']:,} steps planned "
        f"({plan['seconds_per_step'] * 1000:.0f} ms a step as timed){replanned}"
    )


def describe_lineage(parent: dict) -> str:
    """One line for `textgen info`: where a fine-tune came from."""
    added = parent.get("tokens_added", 0)
    return (
        f"{parent['path']} ({parent['weights']} weights {parent['checkpoint']}, sha256 "
        f"{parent['weights_sha256'][:12]}); vocabulary {parent['vocab']}, "
        f"{parent['parent_vocab_size']} + {added} tokens"
    )


def closing_lines(run_path, samples: int = 3, summary: bool = False) -> list[str]:
    """What `textgen train` prints at its end: with `summary`, a line of where the run
    stands; `samples` samples of the run; how to sample it (`run_path` None: a worker
    other than the chief, which has the run)."""
    if run_path is None:
        return ["Worker done; the chief wrote the run folder."]
    lines = [_summary(RunFolder(run_path))] if summary else []
    items = RunFolder(run_path).load_config().data.items is not None
    if samples:
        from textgen.runs.run import load_run

        run = load_run(run_path)
        lines.append(f"\nSamples from {run_path} (weights: {os.path.basename(run.weights_path)}):")
        for text in run.generate([""] * samples, max_new_tokens=200, seed=0):
            lines.append(f"---\n{text.strip(chr(10))}")
        lines.append("---")
    how = "--num-samples 10" if items else "--prompt 'ROMEO:'"
    return [*lines, f"Sample with: textgen sample --run-dir {run_path} {how}"]


def _summary(folder: RunFolder) -> str:
    """One line: the run, its last epoch and its best validation loss."""
    rows = dict(describe_run(folder))
    return f"Trained {folder.path}: {rows['progress']}; loss {rows.get('loss', 'n/a')}"


def table(rows: list[tuple[str, str]]) -> str:
    """(name, value) rows as lines with the values aligned."""
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)
