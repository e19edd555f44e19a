"""A generation's state as bytes, so that a stateless server can continue it exactly.

TF Serving keeps nothing between requests and cannot stream an answer; an RNN's state is
small, so the export's `continue` signature hands it to the client with each chunk of
text and takes it back with the next request. `Carried` is what the next chunk needs:
the layers' states, each row's last token, the tokens drawn so far (the step that keys
the seeded noise), the recent tokens (repetition controls), the copy guard's tail, the
text held back as a possible start of a stop string, and whether the row has ended; with
label guidance also the twin's states (the text read without its label) and the strength.

`StateCodec` writes it as bytes: `MAGIC` (the format's version; `GUIDED_MAGIC` with the
twin), the model's fingerprint,
a checksum of the rest, then the numbers (little-endian float32, int32) and the held-back
text. `decode` refuses, with a clear error and never a crash, a state that is not of this
format, of another model, or damaged.
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple

import numpy as np
import tensorflow as tf

MAGIC = b"TGS1"  # textgen generation state, format 1
GUIDED_MAGIC = b"TGG1"  # the same with label guidance's twin
_HEADER = len(MAGIC) + 8 + 8  # magic, fingerprint, checksum
_BYTES = [bytes([i]) for i in range(256)]  # each byte value as a 1-byte string


class Carried(NamedTuple):
    """Each row's generation state between two chunks (batch first)."""

    state: tuple  # per layer, (h, c) or (h,), (batch, units) float32
    prev: tf.Tensor  # (batch,) int32 the last token read or drawn
    counts: tf.Tensor  # (batch,) int32 tokens drawn: the next token's noise step
    since: tf.Tensor  # (batch,) int32 tokens drawn since text was last read
    done: tf.Tensor  # (batch,) bool: a stop string or the copy guard ended it
    history: tf.Tensor  # (batch, REPETITION_HISTORY) int32
    tail: tf.Tensor  # (batch, tail size) int32, the copy guard's
    pending: tf.Tensor  # (batch,) string held back (may start a stop string)
    twin: tuple | None = None  # label guidance: `state` of the text read without its label
    strength: tf.Tensor | None = None  # (batch,) float32 label strength (1: not guided)


def fingerprint(variables, tokens) -> bytes:
    """8 bytes naming a model: its weights and vocabulary."""
    digest = hashlib.sha256()
    for variable in variables:
        digest.update(np.ascontiguousarray(variable.numpy()).tobytes())
    digest.update("\0".join(tokens).encode("utf-8"))
    return digest.digest()[:8]


def _to_bytes(numbers: tf.Tensor) -> tf.Tensor:
    """(batch,) strings of the rows of (batch, n) float32 or int32 numbers."""
    raw = tf.reshape(tf.bitcast(numbers, tf.uint8), [tf.shape(numbers)[0], -1])
    return tf.strings.reduce_join(tf.gather(tf.constant(_BYTES), tf.cast(raw, tf.int32)), axis=1)


class StateCodec:
    """`encode(carried)` -> (batch,) strings; `decode(strings)` -> `Carried`; `guided`:
    with the twin's states and the strength."""

    def __init__(
        self, zero_state: tuple, history_size: int, tail_size: int, model: bytes, guided=False
    ):
        self.shapes = tf.nest.map_structure(lambda s: int(s.shape[1]), zero_state)
        self.guided, self.magic = guided, GUIDED_MAGIC if guided else MAGIC
        self.state_floats = sum(tf.nest.flatten(self.shapes))
        self.floats = self.state_floats * 2 + 1 if guided else self.state_floats
        self.history_size, self.tail_size = history_size, tail_size
        self.ints = 4 + history_size + tail_size
        self.model = tf.constant(model)
        self.fixed = _HEADER + 4 * (self.floats + self.ints)

    def encode(self, c: Carried) -> tf.Tensor:
        floats = tf.nest.flatten(c.state)
        if self.guided:
            floats += [*tf.nest.flatten(c.twin), c.strength[:, None]]
        floats = tf.concat(floats, axis=1)
        done = tf.cast(c.done, tf.int32)
        columns = [x[:, None] for x in (c.prev, c.counts, c.since, done)]
        ints = tf.concat([*columns, c.history, c.tail], axis=1)
        payload = tf.strings.join([_to_bytes(floats), _to_bytes(ints), c.pending])
        check = tf.strings.to_hash_bucket_fast(payload, 2**62)
        return tf.strings.join([self.magic, self.model, _to_bytes(check[:, None]), payload])

    def blank(self, batch) -> tf.Tensor:
        """(batch,) encoded states of a text not begun: zeros, no history, no tail."""
        state = tf.nest.map_structure(lambda n: tf.zeros([batch, n]), self.shapes)
        zeros = tf.zeros([batch], tf.int32)
        empty = lambda n: tf.fill([batch, n], -1)  # noqa: E731
        return self.encode(Carried(
            state, zeros, zeros, zeros, tf.zeros([batch], tf.bool), empty(self.history_size),
            empty(self.tail_size), tf.fill([batch], ""), state, tf.ones([batch]),
        ))  # fmt: skip

    def decode(self, strings: tf.Tensor) -> Carried:
        """The states in `strings` (batch,), checked first: an error names what is wrong."""
        sizes = tf.strings.length(strings)
        at = lambda n: tf.fill(tf.shape(sizes), n)  # noqa: E731 (substr: per-row positions)
        formed = (sizes >= _HEADER) & (tf.strings.substr(strings, at(0), at(4)) == self.magic)
        ours = ~formed | (tf.strings.substr(strings, at(4), at(8)) == self.model)
        checks = [
            tf.debugging.assert_equal(
                tf.reduce_all(formed), True,
                message=f"state_bytes is not a textgen generation state ({self.magic.decode()})",
            ),
            tf.debugging.assert_equal(
                tf.reduce_all(ours), True,
                message="state_bytes is the state of another model (or another export of it)",
            ),
            tf.debugging.assert_equal(
                tf.reduce_all(sizes >= self.fixed), True,
                message="state_bytes is damaged (too short)",
            ),
        ]  # fmt: skip
        with tf.control_dependencies(checks):  # nothing is read before the checks hold
            strings = tf.identity(strings)
        payload = tf.strings.substr(strings, at(_HEADER), tf.maximum(sizes - _HEADER, 0))
        check = tf.io.decode_raw(tf.strings.substr(strings, at(12), at(8)), tf.int64)[:, 0]
        intact = tf.debugging.assert_equal(
            tf.reduce_all(tf.strings.to_hash_bucket_fast(payload, 2**62) == check), True,
            message="state_bytes is damaged (its checksum does not match)",
        )  # fmt: skip
        with tf.control_dependencies([intact]):
            payload = tf.identity(payload)
        floats = tf.io.decode_raw(
            tf.strings.substr(payload, at(0), at(4 * self.floats)), tf.float32
        )
        ints = tf.io.decode_raw(
            tf.strings.substr(payload, at(4 * self.floats), at(4 * self.ints)), tf.int32
        )
        pending = tf.strings.substr(payload, at(self.fixed - _HEADER), sizes - self.fixed)
        widths = tf.nest.flatten(self.shapes)
        unpack = lambda part: tf.nest.pack_sequence_as(  # noqa: E731
            self.shapes, tf.split(part, widths, axis=1)
        )
        state = unpack(floats[:, : self.state_floats])
        twin = strength = None
        if self.guided:
            twin = unpack(floats[:, self.state_floats : 2 * self.state_floats])
            strength = floats[:, -1]
        history = ints[:, 4 : 4 + self.history_size]
        return Carried(
            state, ints[:, 0], ints[:, 1], ints[:, 2], ints[:, 3] > 0, history,
            ints[:, 4 + self.history_size :], pending, twin, strength,
        )  # fmt: skip
