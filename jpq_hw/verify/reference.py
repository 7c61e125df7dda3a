"""What a flat network must compute, as the proof states it: per layer and neuron, the accumulator
as an exact :class:`~jpq_hw.verify.forms.Form` and the output stage as a function of it.

Built from the checkpoint alone (contract.md section 1), not from anything the lowering made.
Layer ``k``'s output ``o`` is ``g_k(acc)`` with ``g_k`` the rounding, ReLU and saturation of the
contract; the proof names it by a variable ``("y", k, o)`` whose range is ``g_k`` of the
accumulator's range, except where that is a single value (a constant) or where ``g_k`` is the
identity over the whole range (then the output *is* the accumulator's form, and the next layer's
accumulators are forms over the layer before). Neurons of a layer with the same weights and bias
compute the same function and share one variable.
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
    by_shape: dict = field(default_factory=dict)       # Form.shape_key() -> [Neuron]

    def stage(self, k: int):
        """``g_k`` as a numpy function of the accumulator."""
        layer = self.qnet.layers[k]
        return lambda acc: requantize(acc, layer.shift, layer.relu, layer.out)

    def outputs(self) -> list[Neuron]:
        return self.layers[-1]


def _identity_over(layer: QLayer, lo: int, hi: int) -> bool:
    return layer.shift == 0 and (not layer.relu or lo >= 0) and layer.out.lo <= lo and hi <= layer.out.hi


def build_reference(qnet: QNet) -> FlatReference:
    """The reference of a flat network (every layer ``linear``)."""
    ref = FlatReference(qnet)
    fmt: IntFormat = qnet.input
    n_in = int(np.prod(qnet.input_shape))
    prev = []
    for i in range(n_in):
        ref.ranges[("x", i)] = (fmt.lo, fmt.hi)
        prev.append(Form.var(("x", i)))
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
            elif _identity_over(layer, lo, hi):
                out = acc
            else:
                key = (acc.shape_key(), acc.const)
                if key not in shared:
                    var = ("y", k, o)
                    ref.ranges[var] = (glo, ghi)
                    shared[key] = Form.var(var)
                out = shared[key]
            n = Neuron(k, o, acc, out)
            neurons.append(n)
            if not acc.is_constant():
                ref.by_shape.setdefault(acc.shape_key(), []).append(n)
        ref.layers.append(neurons)
        prev = [n.out for n in neurons]
    return ref
