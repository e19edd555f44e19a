"""The levels' graph forms that are TensorFlow modules (tracked by the generator, so an
export carries what reads its prompts): imported only when a graph is built."""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
from collections.abc import Callable

import tensorflow as tf

from textgen.core.errors import ConfigError

NEWLINE = "\n"


def graph_plain_lines(text: tf.Tensor) -> tf.Tensor:
    """Line ends as "\\n" in the graph (invalid UTF-8 is replaced by the ops that split it)."""
    return tf.strings.regex_replace(text, "\r\n?", NEWLINE)


class TokenTable(tf.Module):
    """A graph reader that splits text into token strings (`split`) and looks each up
    in the vocabulary: id 0 (`[UNK]`) for a token it lacks."""

    def __init__(self, tokens: list[str], split: Callable[[tf.Tensor], tf.Tensor]):
        super().__init__(name="token_table")
        # (a table cannot be empty: an empty vocabulary maps "[UNK]" to its own id)
        keys, values = (tokens, list(range(1, len(tokens) + 1))) if tokens else (["[UNK]"], [0])
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(keys, tf.string), tf.constant(values, tf.int32)
            ),
            default_value=0,
        )
        self._split = split

    def ids(self, text: tf.Tensor) -> tf.Tensor:
        tokens = self._split(text)
        if isinstance(tokens, tf.RaggedTensor):
            return tokens.with_flat_values(self.table.lookup(tokens.flat_values))
        return self.table.lookup(tokens)


class SentencePieceReader(tf.Module):
    """The graph form: TensorFlow Text's SentencePiece tokenizer over the same model.

    Its model is a resource shared by name (the model's sha256), not TF Text's default
    resource private to the op's kernel: that one is deleted with the kernel, and
    `keras.backend.clear_session()` (which `--minutes` sizing calls, as users do) clears
    eager kernels, so every reader loaded before it failed ("Resource ... does not exist").
    """

    def __init__(self, model: bytes, lowercase: bool):
        super().__init__(name="sentencepiece_reader")
        ops = text_ops()
        with _native_stderr_muted():  # its one line, "precompiled_charsmap is empty. use
            # identity normalization." (LOG(INFO), which no setting of TF Text turns off)
            self.pieces = ops.SentencepieceTokenizer(model=model, out_type=tf.int32)
            self.pieces._model_resource = _SharedModel(model)
        self.lowercase = lowercase

    def ids(self, text: tf.Tensor) -> tf.Tensor:
        text = graph_plain_lines(text)
        if self.lowercase:
            text = tf.strings.lower(text, encoding="utf-8")
        return self.pieces.tokenize(text)


class _SharedModel(tf.saved_model.experimental.TrackableResource):
    """A SentencePiece model resource named by the model's sha256 (see `SentencePieceReader`)."""

    def __init__(self, model: bytes):
        super().__init__()
        self._model = model
        self._name = "textgen_sentencepiece_" + hashlib.sha256(model).hexdigest()
        _ = self.resource_handle  # created now

    def _create_resource(self):
        from tensorflow_text.python.ops import sentencepiece_tokenizer

        create = sentencepiece_tokenizer.gen_sentencepiece_tokenizer.sentencepiece_op
        return create(model=self._model, shared_name=self._name)


@contextlib.contextmanager
def _native_stderr_muted():
    """Native code's writes to stderr (file descriptor 2) dropped while in the block."""
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def text_ops():
    """`tensorflow_text`, or one line saying how to install the version that matches."""
    try:
        import tensorflow_text
    except ImportError:
        raise ConfigError(
            "subword runs need TensorFlow Text in the graph: pip install "
            f'"tensorflow-text=={_minor(tf.__version__)}.*"'
        ) from None
    if _minor(tensorflow_text.__version__) != _minor(tf.__version__):
        raise ConfigError(
            f"tensorflow-text {tensorflow_text.__version__} does not match TensorFlow "
            f'{tf.__version__}: pip install "tensorflow-text=={_minor(tf.__version__)}.*"'
        )
    return tensorflow_text


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])
