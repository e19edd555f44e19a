"""The run folder: the one place that knows its layout.

RUN/
  config.json            every setting, the textgen version, the corpus fingerprint
  vocab.json             the vocabulary (tokens in id order)
  checkpoints/latest/    tf.train.CheckpointManager: weights, optimizer, data position
  checkpoints/best/      the checkpoint with the best validation loss, and weights.npz:
                         its weights for sampling without TensorFlow
  logs/training.csv      one row per epoch
  logs/tensorboard/      TensorBoard summaries
  export/NAME/VERSION/   SavedModels for TF Serving (textgen export)
"""

from __future__ import annotations

import csv
import json
import os
import re
import time
from pathlib import Path

from textgen.core.config import (
    RunConfig,
)
from textgen.core.errors import RunError
from textgen.core.fileio import atomic_write_json
from textgen.data.items import ITEM_END

DEFAULT_ROOT = Path("checkpoints")


# The columns of logs/training.csv, one row per epoch.
LOG_FIELDS = ("epoch", "step", "loss", "val_loss", "learning_rate", "seconds", "tokens_per_sec")


def latest_checkpoint(directory: Path) -> str | None:
    """`tf.train.latest_checkpoint(directory)`, read without TensorFlow: the prefix the
    `checkpoint` file names, if its index file exists."""
    try:
        state = (directory / "checkpoint").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    found = re.search(r'^model_checkpoint_path:\s*"(.*)"\s*$', state, re.MULTILINE)
    if not found:
        return None
    prefix = os.path.join(str(directory), found.group(1))  # (an absolute name stays so)
    return prefix if os.path.exists(prefix + ".index") else None


class RunFolder:
    """Paths inside one run folder, and reading/writing its small files."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    config_file = property(lambda self: self.path / "config.json")
    vocab_file = property(lambda self: self.path / "vocab.json")
    latest_dir = property(lambda self: self.path / "checkpoints" / "latest")
    best_dir = property(lambda self: self.path / "checkpoints" / "best")
    log_csv = property(lambda self: self.path / "logs" / "training.csv")
    tensorboard_dir = property(lambda self: self.path / "logs" / "tensorboard")
    export_dir = property(lambda self: self.path / "export")

    @classmethod
    def create(cls, root: str | os.PathLike, name: str) -> RunFolder:
        """A new, empty run folder `root/name` (a suffix is added if it exists)."""
        root = Path(root)
        candidate, n = root / name, 1
        while candidate.exists():
            n += 1
            candidate = root / f"{name}-{n}"
        return cls(candidate)

    @classmethod
    def newest(cls, root: str | os.PathLike = DEFAULT_ROOT) -> RunFolder:
        """The most recently started run under `root`."""
        root = Path(root)
        runs = [p.parent for p in root.glob("*/config.json")] if root.is_dir() else []
        if not runs:
            raise RunError(
                f"no runs found in {root}/; train one with 'textgen train' or pass --run-dir"
            )
        return cls(max(runs, key=lambda p: (p.joinpath("config.json").stat().st_mtime, p.name)))

    @classmethod
    def find(
        cls, run_dir: str | os.PathLike | None, root=DEFAULT_ROOT, need_weights: bool = True
    ) -> RunFolder:
        """`run_dir` if given (it must be a complete run), else the newest run.

        `need_weights=False` (resuming) also accepts a run stopped before its first
        checkpoint: it then starts from the beginning.
        """
        folder = cls.newest(root) if run_dir is None else cls(run_dir)
        folder.require_complete(need_weights)
        return folder

    def exists(self) -> bool:
        return self.config_file.is_file()

    def require_complete(self, need_weights: bool = True) -> None:
        """Raise RunError naming the first file a usable run lacks."""
        if not self.path.is_dir():
            raise RunError(f"run folder not found: {self.path}")
        for needed in (self.config_file, self.vocab_file):
            if not needed.is_file():
                raise RunError(f"run folder {self.path} is missing {needed.name}; is it a run?")
        if need_weights and self.weights_path() is None:
            raise RunError(
                f"run folder {self.path} has no checkpoint yet (checkpoints/latest is empty)"
            )

    def weights_path(self, which: str = "best") -> str | None:
        """The checkpoint prefix to load weights from: `best`, falling back to `latest`."""
        order = [self.best_dir, self.latest_dir] if which == "best" else [self.latest_dir]
        for directory in order:
            if path := latest_checkpoint(directory):
                return path
        return None

    @property
    def numpy_weights_file(self) -> Path:
        """The best weights as NumPy arrays, for sampling without TensorFlow
        (`textgen.model.numpy_step`); it names the checkpoint it was written from."""
        return self.best_dir / "weights.npz"

    def save_config(self, config: RunConfig) -> None:
        atomic_write_json(self.config_file, config.to_dict())

    def load_config(self) -> RunConfig:
        try:
            values = json.loads(self.config_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise RunError(f"cannot read {self.config_file}: {err}") from None
        return RunConfig.from_dict(values)

    def load_vocab(self):
        from textgen.data.vocabulary import Vocabulary

        return Vocabulary.load(self.vocab_file)

    def append_log(self, row: dict[str, object]) -> None:
        """Add one epoch's row to logs/training.csv, flushed to disk before returning."""
        path = self.log_csv
        path.parent.mkdir(parents=True, exist_ok=True)
        new = not path.exists()
        with open(path, "a", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=LOG_FIELDS)
            if new:
                writer.writeheader()
            writer.writerow(row)
            f.flush()
            os.fsync(f.fileno())

    def read_log(self) -> list[dict[str, float | int | None]]:
        """logs/training.csv as one dict per epoch: numbers, with None for a missing
        val_loss (a run without validation text); [] before the first epoch ends."""
        if not self.log_csv.is_file():
            return []
        with open(self.log_csv, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        ints = ("epoch", "step")
        return [
            {k: (int(v) if k in ints else float(v)) if v != "" else None for k, v in r.items()}
            for r in rows
        ]

    @staticmethod
    def default_name(config: RunConfig) -> str:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        return f"{stamp}-{config.data.level}-{config.model.cell}"


def run_labels(config: RunConfig) -> list[str]:
    """The labels a run's items carry, in token order, [] if none."""
    return list(config.corpus.get("labels", {}))


def run_item_stops(config: RunConfig) -> list[str]:
    """Where an item run's samples end besides its stop strings: the item's end marker,
    and a line break when no training item spans two lines ([] for other runs)."""
    if config.data.items is None:
        return []
    single_line = not config.corpus.get("multiline_items", True)
    return [ITEM_END, *(["\n"] if single_line else [])]
