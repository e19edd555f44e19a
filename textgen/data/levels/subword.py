"""Subwords: SentencePiece pieces (unigram), learned from the run's training text.

Common words are one piece, rare ones a few, and nothing is unknown: a character the
vocabulary lacks is read as its UTF-8 bytes (byte fallback). No normalisation changes
the text (tabs, runs of spaces and line breaks round-trip); a line end is always a piece
of its own ("\\n", the start token). A piece's text is the piece with "▁" as a space; it
carries its own spacing, so pieces are joined as they are. The model (`tokenizer.model`
in the run folder) is read by the `sentencepiece` package on the NumPy path and by
TensorFlow Text's SentencePiece ops in the graph (linked by stock TF Serving builds).
"""

from __future__ import annotations

import functools
import io
import re
from collections.abc import Callable, Iterable, Iterator

from textgen.core.errors import ConfigError
from textgen.data.items import is_marker
from textgen.data.levels.base import NEWLINE, Level, plain_lines
from textgen.data.levels.char import CharLevel

SPACE = "\u2581"  # "▁": SentencePiece's space
_BYTE = re.compile(r"<0x([0-9A-F]{2})>")
_SENTENCE_CHARS = 2000  # the text is given to the trainer in pieces of about this size
_SENTENCES = 100_000  # at most this many pieces are sampled for learning (~200 MB)


class SubwordLevel(Level):
    name = "subword"
    unit = "pieces"
    default_size = 2000
    extendable = False  # a fine-tune keeps its parent's pieces
    heals = True  # a piece may end inside a word: "the kin" goes on as " king"

    @classmethod
    def learn(
        cls, chunks: Callable[[], Iterable[str]], lowercase: bool, size: int | None
    ) -> tuple[list[str], bytes | None]:
        model = learn_model(chunks, lowercase, size or cls.default_size)
        return piece_texts(_processor(model)), model

    @staticmethod
    def cut(chunks: Iterable[str]) -> Iterator[str]:
        """The same text re-cut before a space or after a line end: a piece begins with
        its space ("▁the"), so a chunk must not end in the space that leads a word."""
        carry = ""
        for chunk in chunks:
            text = carry + chunk
            cut = max(text.rfind(" "), text.rfind("\n") + 1)
            if cut > 0:
                yield text[:cut]
            carry = text[max(cut, 0) :]
        if carry:
            yield carry

    def ids(self, text: str) -> list[int] | None:
        text = plain_lines(text)
        if self.vocab.lowercase:
            if not text.isascii():
                return None
            text = text.lower()
        return self._processor().encode(text)

    def _processor(self):
        return _processor(self.vocab.model)

    def id_bytes(self) -> list[bytes]:
        """A byte piece is its byte (so the graph writes a character the vocabulary
        lacks, as SentencePiece decodes it); other pieces their text."""
        processor = self._processor()
        strings = super().id_bytes()
        for i in range(1, processor.get_piece_size()):
            byte = byte_of(processor, i)
            if byte is not None:
                strings[i] = bytes([byte])
        return strings

    def page_reader(self) -> dict:
        """The pieces, scores and types of the SentencePiece model: what the web page's
        reader (`textgen/export/web/sentencepiece.js`) segments prompts with."""
        from sentencepiece import sentencepiece_model_pb2

        proto = sentencepiece_model_pb2.ModelProto()
        proto.ParseFromString(self.vocab.model)
        return {
            "pieces": [p.piece for p in proto.pieces],
            "scores": [p.score for p in proto.pieces],
            "types": [int(p.type) for p in proto.pieces],
        }

    def graph_reader(self):
        from textgen.data.levels.readers import SentencePieceReader

        return SentencePieceReader(self.vocab.model, self.vocab.lowercase)


@functools.lru_cache(maxsize=4)
def _processor(model: bytes):
    import sentencepiece

    return sentencepiece.SentencePieceProcessor(model_proto=model)


def byte_of(processor, i: int) -> int | None:
    """The byte that id `i` stands for, if it is a byte piece ("<0xC3>"), else None."""
    if not processor.is_byte(i):
        return None
    return int(_BYTE.fullmatch(processor.id_to_piece(i)).group(1), 16)


def piece_texts(processor) -> list[str]:
    """The text of each id after [UNK] (id 0): "▁" read as a space; a byte piece is its
    character if ASCII, else "" (a part of a character: read, never written, see
    `textgen.generate.rules.unwritten`)."""
    texts = []
    for i in range(1, processor.get_piece_size()):
        byte = byte_of(processor, i)
        if byte is None:
            texts.append(processor.id_to_piece(i).replace(SPACE, " "))
        else:
            texts.append(chr(byte) if byte < 0x80 else "")
    return texts


def learn_model(chunks: Callable[[], Iterable[str]], lowercase: bool, size: int) -> bytes:
    """A SentencePiece unigram model of `size` pieces learned from the text (a sample of
    at most ~200 MB of it). Every character of the whole text is a piece (so training
    never reads a byte piece and the model learns never to write one), and so are item
    markers and labels."""
    import sentencepiece

    counts = CharLevel.count(chunks(), lowercase)
    if not counts:
        raise ConfigError("there is no text to learn subword pieces from")
    markers = sorted(c for c in counts if is_marker(c))
    required = "".join(sorted(c for c in counts if c not in (" ", NEWLINE, *markers)))
    smallest = 2 + len(markers) + 256 + len(required)  # [UNK], "\n", markers, bytes, chars
    if size < smallest:
        raise ConfigError(
            f"--vocab-size {size} is too small for subword pieces here: 256 bytes and "
            f"{len(required) + len(markers) + 2} characters need {smallest}; raise it"
        )
    model = io.BytesIO()
    try:
        sentencepiece.SentencePieceTrainer.train(
            sentence_iterator=_sentences(chunks(), lowercase),
            model_writer=model,
            vocab_size=size,
            model_type="unigram",
            byte_fallback=True,
            character_coverage=1.0,
            required_chars=required,
            user_defined_symbols=[NEWLINE, *markers],
            normalization_rule_name="identity",
            remove_extra_whitespaces=False,
            add_dummy_prefix=False,
            allow_whitespace_only_pieces=True,
            split_digits=False,
            max_sentence_length=4 * _SENTENCE_CHARS + 64,
            input_sentence_size=_SENTENCES,
            shuffle_input_sentence=True,
            hard_vocab_limit=False,
            unk_id=0,
            bos_id=-1,
            eos_id=-1,
            pad_id=-1,
            num_threads=2,
            minloglevel=2,
        )
    except RuntimeError as err:
        raise ConfigError(f"cannot learn {size} subword pieces from this text: {err}") from None
    return model.getvalue()


def _sentences(chunks: Iterable[str], lowercase: bool) -> Iterator[str]:
    """The text in pieces of about `_SENTENCE_CHARS`, cut before spaces."""
    for chunk in SubwordLevel.cut(chunks):
        text = plain_lines(chunk.lower() if lowercase else chunk)
        while len(text) > _SENTENCE_CHARS:
            cut = text.rfind(" ", 1, _SENTENCE_CHARS)
            cut = cut if cut > 0 else _SENTENCE_CHARS
            yield text[:cut]
            text = text[cut:]
        if text:
            yield text
