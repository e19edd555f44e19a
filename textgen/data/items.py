"""Corpora of items (names, titles, tweets, poems), with optional labels.

Each item becomes text the model reads like any other:

    ITEM_START [LABEL] text ITEM_END "\\n"

The markers are single characters from a Private Use Area (never in real text, stripped
from input), so they are one token each at char and word level, and the model, trainer,
generator and export handle them without knowing what they mean. A label is one token per
label name (`label_token`); one item in `UNLABELLED_EVERY` is written without its label,
so the model also learns items of no given kind (a prompt without `--label`). Generation
starts an item by feeding ITEM_START (and the label) before the prompt, stops at ITEM_END
(a stop string), and never prints a marker (`MARKER_PATTERN`).
"""

from __future__ import annotations

import csv
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

from textgen.core.errors import ConfigError, CorpusError

ITEM_START = "\U000f0000"
ITEM_END = "\U000f0001"
LABEL_BASE = 0xF0100
MAX_LABELS = 4096
_MARKER_FIRST, _MARKER_LAST = 0xF0000, LABEL_BASE + MAX_LABELS - 1
MARKER_PATTERN = rf"[\x{{{_MARKER_FIRST:x}}}-\x{{{_MARKER_LAST:x}}}]"  # RE2 (the graph)
_MARKERS = re.compile(f"[{chr(_MARKER_FIRST)}-{chr(_MARKER_LAST)}]")
RECORD_SUFFIXES = (".jsonl", ".csv")  # one item per record
UNLABELLED_EVERY = 5


def is_marker(token: str) -> bool:
    return len(token) == 1 and _MARKER_FIRST <= ord(token) <= _MARKER_LAST


def strip_markers(text: str) -> str:
    return _MARKERS.sub("", text)


@dataclass
class Item:
    text: str
    label: str | None = None


def label_token(labels: list[str], label: str) -> str:
    """The token of `label` among a run's `labels` (sorted names); ConfigError if unknown."""
    if not labels:
        raise ConfigError("this run was trained without labels; leave out --label")
    if label not in labels:
        raise ConfigError(f"unknown label {label!r}; this run knows: {', '.join(labels)}")
    return chr(LABEL_BASE + labels.index(label))


def item_prefix(labels: list[str], label: str | None) -> str:
    """What generation feeds before a prompt to start an item (of `label`'s kind)."""
    return ITEM_START + (label_token(labels, label) if label else "")


def token_roles(tokens: list[str]) -> list[int]:
    """What each id does to the label a model with a label memory keeps in mind
    (`textgen.model.network.LabelMemory`), for a vocabulary's `tokens` (id 0, [UNK],
    implicit): 0 keeps it, -1 (an item's start or end marker) clears it, k >= 1 (the k-th
    label's token) sets it to label k."""
    roles = [0]
    for token in tokens:
        code = ord(token) if len(token) == 1 else -1
        if token in (ITEM_START, ITEM_END):
            roles.append(-1)
        elif LABEL_BASE <= code < LABEL_BASE + MAX_LABELS:
            roles.append(code - LABEL_BASE + 1)
        else:
            roles.append(0)
    return roles


def parse_source(source: str) -> tuple[str | None, str]:
    """(label, path) of a source given as LABEL=PATH, else (None, source)."""
    name, sep, path = source.partition("=")
    if sep and name and re.fullmatch(r"[\w.-]+", name) and path:
        return name, path
    return None, source


def read_items(
    path: Path, mode: str | None, text_field: str, label_field: str | None, label: str | None
) -> list[Item]:
    """The items of one file: JSONL/CSV records, else lines or paragraphs (`mode`).
    Errors name the file and line."""
    try:
        content = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise CorpusError(f"{path} is not UTF-8 text; convert it to UTF-8") from None
    except OSError as err:
        raise CorpusError(f"cannot read {path}: {err.strerror}") from None
    content = strip_markers(content.replace("\r\n", "\n").replace("\r", "\n"))
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        items = _jsonl_items(path, content, text_field, label_field)
    elif suffix == ".csv":
        items = _csv_items(path, content, text_field, label_field)
    elif mode == "paragraphs":
        items = [Item(p.strip("\n")) for p in re.split(r"\n\s*\n", content) if p.strip()]
    else:
        items = [Item(line) for line in content.split("\n") if line.strip()]
    if not items:
        raise CorpusError(f"{path}: no items (the file is empty)")
    if label is not None:
        items = [Item(item.text, label) for item in items]
    return items


def _jsonl_items(path, content, text_field, label_field) -> list[Item]:
    items = []
    for number, line in enumerate(content.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as err:
            raise CorpusError(f"{path}:{number}: not valid JSON ({err.msg})") from None
        if not isinstance(record, dict):
            raise CorpusError(f"{path}:{number}: not a JSON object")
        items.append(_record_item(record, f"{path}:{number}", "field", text_field, label_field))
    return items


def _csv_items(path, content, text_column, label_column) -> list[Item]:
    reader = csv.DictReader(content.splitlines())
    columns = reader.fieldnames or []
    for name in (text_column, label_column):
        if name is not None and name not in columns:
            raise CorpusError(
                f"{path}:1: no column {name!r} (columns: {', '.join(columns) or 'none'}); "
                "name one with --text-column / --label-column"
            )
    return [
        _record_item(row, f"{path}:{reader.line_num}", "column", text_column, label_column)
        for row in reader
    ]


def _record_item(record: dict, where: str, kind: str, text_name, label_name) -> Item:
    for name in (text_name, label_name):
        if name is not None and (name not in record or record[name] is None):
            raise CorpusError(f"{where}: no {kind} {name!r} (name it with --text-{kind})")
    text = str(record[text_name])
    label = None if label_name is None else str(record[label_name]).strip()
    if label == "":
        raise CorpusError(f"{where}: the label {kind} {label_name!r} is empty")
    return Item(text, label)


def split_items(items: list[Item], fraction: float) -> tuple[list[Item], list[Item]]:
    """Whole items held out: a seeded shuffle, then the last `fraction` (at least one
    item when there are two or more) is validation."""
    order = items[:]
    random.Random(0).shuffle(order)
    held = int(round(len(order) * fraction))
    if fraction > 0 and len(order) >= 2:
        held = max(held, 1)
    cut = len(order) - held
    return order[:cut], order[cut:]


def items_text(items: list[Item], labels: list[str]) -> str:
    """The items as the model reads them (see the module doc)."""
    parts = []
    for index, item in enumerate(items):
        keep_label = item.label is not None and index % UNLABELLED_EVERY != UNLABELLED_EVERY - 1
        prefix = item_prefix(labels, item.label if keep_label else None)
        parts.append(f"{prefix}{item.text}{ITEM_END}\n")
    return "".join(parts)


def parse_items(text: str, labels: list[str]) -> list[Item]:
    """The items of text written by `items_text` (the inverse; labels by their tokens)."""
    items = []
    for piece in text.split(ITEM_END):
        start = piece.find(ITEM_START)
        if start < 0:
            continue
        body = piece[start + 1 :]
        label = None
        if body and is_marker(body[0]) and ord(body[0]) >= LABEL_BASE:
            index = ord(body[0]) - LABEL_BASE
            label = labels[index] if index < len(labels) else None
            body = body[1:]
        items.append(Item(body, label))
    return items


def check_labels(labels: list[str]) -> None:
    if len(labels) > MAX_LABELS:
        raise CorpusError(f"{len(labels)} labels; at most {MAX_LABELS}")
