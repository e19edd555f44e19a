"""LSTM and GRU layers with a cuDNN-style gradient for CPUs.

Keras 3 has no fused RNN kernel on a CPU: its layers step a generic while loop, and
TensorFlow's autodiff of that loop does several small matmuls per time step, including
one per step for each weight gradient. These layers keep Keras' weights and maths
(they are `keras.layers.LSTM` / `GRU` subclasses, so checkpoints, `layer.cell` and the
cuDNN path on a GPU are unchanged) but run the sequence the way cuDNN does:

- the input projection of every time step is one large matmul before the loop;
- the loop does one small matmul per step (the recurrent one) and keeps its gates;
- the backward loop does one small matmul per step, and the weight gradients are one
  large matmul each over the whole sequence afterwards.

`lstm_sequence` / `gru_sequence` are the maths; tests hold them equal to the Keras
layers (outputs, states and every gradient).
"""

from __future__ import annotations

import keras
import tensorflow as tf


def _time_major(x: tf.Tensor) -> tf.Tensor:
    return tf.transpose(x, [1, 0, 2])


def _project(x: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
    """(time, batch, in) @ (in, out) -> (time, batch, out) as one matmul."""
    shape = tf.shape(x)
    flat = tf.matmul(tf.reshape(x, [-1, shape[2]]), kernel)
    return tf.reshape(flat, [shape[0], shape[1], tf.shape(kernel)[1]])


def _weight_grad(x: tf.Tensor, dz: tf.Tensor) -> tf.Tensor:
    """sum over time and batch of x_t^T dz_t: (time, batch, in), (time, batch, out) -> (in, out)."""
    x2 = tf.reshape(x, [-1, tf.shape(x)[2]])
    dz2 = tf.reshape(dz, [-1, tf.shape(dz)[2]])
    return tf.matmul(x2, dz2, transpose_a=True)


def _loop(body, steps: tf.Tensor, state: tuple, outputs: list, reverse: bool = False):
    """Run `body(t, *state) -> (state, per-step outputs)` over t, stacking the outputs."""
    arrays = [tf.TensorArray(o.dtype, size=steps, element_shape=o.shape) for o in outputs]

    def step(i, state, arrays):
        t = steps - 1 - i if reverse else i
        state, values = body(t, *state)
        return i + 1, state, [a.write(t, v) for a, v in zip(arrays, values)]

    _, state, arrays = tf.while_loop(
        lambda i, *_: i < steps, step, (tf.constant(0), state, arrays), parallel_iterations=1
    )
    return state, [a.stack() for a in arrays]


@tf.custom_gradient
def lstm_sequence(x, h0, c0, kernel, recurrent_kernel, bias):
    """Keras' LSTM (gates i, f, c, o; sigmoid/tanh) over x (batch, time, in).

    Returns the outputs (batch, time, units) and the final h and c (batch, units).
    """
    units = tf.shape(h0)[1]
    xs = _time_major(x)  # (time, batch, in)
    steps = tf.shape(xs)[0]
    xw = _project(xs, kernel) + bias  # (time, batch, 4 * units)
    template = tf.zeros_like(h0)

    def body(t, h, c):
        z = xw[t] + tf.matmul(h, recurrent_kernel)  # (batch, 4 * units)
        i, f, g, o = tf.split(z, 4, axis=1)
        i, f, g, o = tf.sigmoid(i), tf.sigmoid(f), tf.tanh(g), tf.sigmoid(o)
        c = f * c + i * g
        tanh_c = tf.tanh(c)
        h = o * tanh_c
        return (h, c), (h, c, tf.concat([i, f, g, o], 1))

    (h, c), (hs, cs, gates) = _loop(
        body, steps, (h0, c0), [template, template, tf.concat([template] * 4, 1)]
    )

    def grad(d_outputs, dh_last, dc_last):
        d_hs = _time_major(d_outputs)  # (time, batch, units)
        c_prev = tf.concat([c0[None], cs[:-1]], 0)

        def back(t, dh, dc):
            i, f, g, o = tf.split(gates[t], 4, axis=1)
            dh = dh + d_hs[t]
            tanh_c = tf.tanh(cs[t])
            dc = dc + dh * o * (1.0 - tanh_c * tanh_c)
            dz = tf.concat(
                [
                    dc * g * i * (1.0 - i),
                    dc * c_prev[t] * f * (1.0 - f),
                    dc * i * (1.0 - g * g),
                    dh * tanh_c * o * (1.0 - o),
                ],
                1,
            )  # (batch, 4 * units)
            return (tf.matmul(dz, recurrent_kernel, transpose_b=True), dc * f), (dz,)

        (dh0, dc0), (dzs,) = _loop(
            back, steps, (dh_last, dc_last), [tf.concat([template] * 4, 1)], reverse=True
        )
        h_prev = tf.concat([h0[None], hs[:-1]], 0)
        dx = _project(dzs, tf.transpose(kernel))
        return (
            _time_major(dx),
            dh0,
            dc0,
            _weight_grad(xs, dzs),
            _weight_grad(h_prev, dzs),
            tf.reduce_sum(dzs, [0, 1]),
        )

    del units
    return (_time_major(hs), h, c), grad


@tf.custom_gradient
def gru_sequence(x, h0, kernel, recurrent_kernel, bias):
    """Keras' GRU with reset_after=True (gates z, r, h; bias (2, 3 * units)) over x.

    Returns the outputs (batch, time, units) and the final h (batch, units).
    """
    xs = _time_major(x)
    steps = tf.shape(xs)[0]
    xw = _project(xs, kernel) + bias[0]  # (time, batch, 3 * units)
    template = tf.zeros_like(h0)

    def body(t, h):
        xz, xr, xh = tf.split(xw[t], 3, axis=1)
        hu = tf.matmul(h, recurrent_kernel) + bias[1]  # (batch, 3 * units)
        hz, hr, hh = tf.split(hu, 3, axis=1)
        z = tf.sigmoid(xz + hz)
        r = tf.sigmoid(xr + hr)
        candidate = tf.tanh(xh + r * hh)
        h = z * h + (1.0 - z) * candidate
        return (h,), (h, tf.concat([z, r, candidate, hh], 1))

    (h,), (hs, saved) = _loop(body, steps, (h0,), [template, tf.concat([template] * 4, 1)])

    def grad(d_outputs, dh_last):
        d_hs = _time_major(d_outputs)
        h_prev = tf.concat([h0[None], hs[:-1]], 0)

        def back(t, dh):
            z, r, candidate, hh = tf.split(saved[t], 4, axis=1)
            dh = dh + d_hs[t]
            da_h = dh * (1.0 - z) * (1.0 - candidate * candidate)
            da_z = dh * (h_prev[t] - candidate) * z * (1.0 - z)
            da_r = da_h * hh * r * (1.0 - r)
            d_in = tf.concat([da_z, da_r, da_h], 1)  # (batch, 3 * units)
            d_rec = tf.concat([da_z, da_r, da_h * r], 1)
            dh_prev = dh * z + tf.matmul(d_rec, recurrent_kernel, transpose_b=True)
            return (dh_prev,), (d_in, d_rec)

        wide = tf.concat([template] * 3, 1)
        (dh0,), (d_ins, d_recs) = _loop(back, steps, (dh_last,), [wide, wide], reverse=True)
        dx = _project(d_ins, tf.transpose(kernel))
        dbias = tf.stack([tf.reduce_sum(d_ins, [0, 1]), tf.reduce_sum(d_recs, [0, 1])])
        return (
            _time_major(dx),
            dh0,
            _weight_grad(xs, d_ins),
            _weight_grad(h_prev, d_recs),
            dbias,
        )

    return (_time_major(hs), h), grad


def _fused_ok(layer, mask) -> bool:
    """The fused CPU path applies: default activations, no mask, no recurrent dropout."""
    cell = layer.cell
    return (
        mask is None
        and not layer.go_backwards
        and not layer.unroll
        and not cell.recurrent_dropout
        and cell.use_bias
        and cell.activation is keras.activations.tanh
        and cell.recurrent_activation is keras.activations.sigmoid
        and not tf.config.list_logical_devices("GPU")  # there, Keras uses cuDNN
    )


def _dropped(layer, sequences, training):
    if training and layer.cell.dropout:
        mask = layer.cell.get_dropout_mask(sequences[:, 0, :])  # (batch, in)
        return sequences * mask[:, None, :]
    return sequences


def _value(variable):
    return variable.value if hasattr(variable, "value") else variable


@keras.saving.register_keras_serializable(package="textgen")
class FusedLSTM(keras.layers.LSTM):
    """`keras.layers.LSTM` whose CPU training runs `lstm_sequence` (see module doc)."""

    def inner_loop(self, sequences, initial_state, mask, training=False):
        if not _fused_ok(self, mask):
            return super().inner_loop(sequences, initial_state, mask, training)
        cell = self.cell
        outputs, h, c = lstm_sequence(
            _dropped(self, sequences, training),
            initial_state[0],
            initial_state[1],
            _value(cell.kernel),
            _value(cell.recurrent_kernel),
            _value(cell.bias),
        )
        return h, outputs, [h, c]


@keras.saving.register_keras_serializable(package="textgen")
class FusedGRU(keras.layers.GRU):
    """`keras.layers.GRU` (reset_after) whose CPU training runs `gru_sequence`."""

    def inner_loop(self, sequences, initial_state, mask, training=False):
        if isinstance(initial_state, (list, tuple)):
            initial_state = initial_state[0]
        if not (_fused_ok(self, mask) and self.cell.reset_after):
            return super().inner_loop(sequences, [initial_state], mask, training)
        cell = self.cell
        outputs, h = gru_sequence(
            _dropped(self, sequences, training),
            initial_state,
            _value(cell.kernel),
            _value(cell.recurrent_kernel),
            _value(cell.bias),
        )
        return h, outputs, [h]
