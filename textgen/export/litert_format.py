"""The LiteRT export folder: its file names and its metadata file, read without TensorFlow."""

from __future__ import annotations

import json
import os
from pathlib import Path

from textgen.core.errors import ExportError

MODEL_FILE = "model.tflite"


META_FILE = "textgen.json"


def read_metadata(folder: str | os.PathLike) -> dict:
    path = Path(folder) / META_FILE
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ExportError(
            f"{folder} is not a textgen LiteRT export (cannot read {path.name}: {err})"
        ) from None
    if meta.get("format") != "textgen-litert-1" or not (Path(folder) / MODEL_FILE).is_file():
        raise ExportError(f"{folder} is not a textgen LiteRT export (no {MODEL_FILE})")
    return meta
