"""What a flat network must compute, as the proof states it: per layer and neuron, the accumulator
as an exact :class:`~jpq_hw.verify.forms.Form` and the output stage as a function of it.

Built from the checkpoint alone (contract.md section 1), not from anything the lowering made.
Layer ``k``'s output ``o`` is ``g_k(acc)`` with ``g_k`` the rounding, ReLU and saturation of the
contract; the proof names it by a variable ``("y", k, o)`` whose range is ``g_k`` of the
accumulator's range, except where that is a single value (a constant) or where ``g_k`` is affine
over the whole range (the identity, or e.g. a threshold of a two-valued sum: then the output *is*
a linear form of the accumulator, and the next layer's accumulators are forms over the layer
before). Neurons of a layer that compute the same function (the same weights and bias, or sums
that saturate alike) share one variable.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..ir.qnet import IntFormat, QLayer, QNet
from ..reference import requantize
from .forms import Form


@dataclass
class Neuron:
    layer: int
    index: int
    acc: Form            # the exact accumulator, bias included
    out: Form            # what the neuron's output is: a variable, a constant or the accumulator


@dataclass
class FlatReference:
    qnet: QNet
    ranges: dict = field(default_factory=dict)          # variable -> (lo, hi)
    layers: list[list[Neuron]] = field(default_factory=list)
    by_shape: dict = field(default_factory=dict)       # Form.normalized() key -> [(Neuron, scale)]

    def stage(self, k: int):
        """``g_k`` as a numpy function of the accumulator."""
        layer = self.qnet.layers[k]
        return lambda acc: requantize(acc, layer.shift, layer.relu, layer.out)

    def outputs(self) -> list[Neuron]:
        return self.layers[-1]


def _identity_over(layer: QLayer, lo: int, hi: int) -> bool:
    return layer.shift == 0 and (not layer.relu or lo >= 0) and layer.out.lo <= lo and hi <= layer.out.hi


SIGNATURE_VALUES = 1 << 16  # a neuron's output stage is tabulated over its sum up to this many values


def _output(acc: Form, g, ranges: dict, identity: bool):
    """``(form, None)`` where the neuron's output is a linear form of its inputs (``g`` is affine
    over the values of its accumulator: the identity, or any ``g`` on two values, or a
    saturation that halves a doubled sum), else ``(None, key)`` with ``key`` equal for two neurons of
    a layer that compute the same function: accumulators that are multiples of one sum ``u`` (plus
    constants) where ``g`` gives the same output for every value of ``u``."""
    key, scale = acc.normalized()
    base = Form(dict(key))
    lo, hi = base.range(ranges)
    if hi - lo >= SIGNATURE_VALUES:
        return (acc, None) if identity else (None, (key, scale, acc.const))
    u = np.arange(lo, hi + 1, dtype=np.int64)
    vals = np.asarray(g(scale * u + acc.const), dtype=np.int64)
    steps = np.diff(vals)
    if len(steps) == 0 or np.all(steps == steps[0]):
        a = int(steps[0]) if len(steps) else 0
        return base.scaled(a).plus(Form.constant(int(vals[0]) - a * lo)), None
    return None, (key, vals.tobytes())


def build_reference(qnet: QNet, input_ranges: list[tuple[int, int]] | None = None) -> FlatReference:
    """The reference of a flat network (every layer ``linear``); each input lies in its format's
    range, or input ``i`` in ``input_ranges[i]`` where given (an assumption the caller states)."""
    ref = FlatReference(qnet)
    fmt: IntFormat = qnet.input
    n_in = int(np.prod(qnet.input_shape))
    prev = []
    for i in range(n_in):
        lo, hi = tuple(input_ranges[i]) if input_ranges is not None else (fmt.lo, fmt.hi)
        ref.ranges[("x", i)] = (lo, hi)
        prev.append(Form.var(("x", i)) if lo < hi else Form.constant(lo))  # an input that never varies
    for k, layer in enumerate(qnet.layers):
        w = np.asarray(layer.weight, dtype=np.int64).reshape(layer.n_out, -1)
        neurons, shared = [], {}
        g = ref.stage(k)
        for o in range(layer.n_out):
            cols = np.flatnonzero(w[o])
            acc = Form({}, int(layer.bias[o]))
            for i in cols:
                acc = acc.plus(prev[i], int(w[o, i]))
            lo, hi = acc.range(ref.ranges)
            glo, ghi = (int(v) for v in g(np.array([lo, hi])))
            if glo == ghi:
                out = Form.constant(glo)
            else:
                out, key = _output(acc, g, ref.ranges, _identity_over(layer, lo, hi))
                if out is None:
                    if key not in shared:
                        var = ("y", k, o)
                        ref.ranges[var] = (glo, ghi)
                        shared[key] = Form.var(var)
                    out = shared[key]
            n = Neuron(k, o, acc, out)
            neurons.append(n)
            if not acc.is_constant():
                key, scale = acc.normalized()
                ref.by_shape.setdefault(key, []).append((n, scale))
        ref.layers.append(neurons)
        prev = [n.out for n in neurons]
    return ref
