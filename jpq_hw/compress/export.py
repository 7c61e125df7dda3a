"""Export: a :class:`~jpq_hw.compress.quant.QuantNet` becomes a :class:`~jpq_hw.ir.QNet`.

The fake-quantized forward pass already *is* the integer semantics of contract.md section 1
(see :mod:`jpq_hw.compress.quant`), so export only reads off, per layer, the integer weights
``q``, the bias in accumulator units, the ``shift`` and the output format that
:meth:`QuantNet.plan` uses. :func:`check_exact` proves the result on given inputs:
``run_reference(qnet, x) == quant_net.forward_int(x)`` bit for bit, for every layer.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch

from ..errors import JpqError
from ..ir.qnet import QLayer, QNet
from ..reference import run_reference
from .quant import QuantNet


def plain(value: Any) -> Any:
    """``value`` with numpy / torch scalars turned into Python ones, so a weights-only load accepts it."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


@torch.no_grad()
def to_qnet(net: QuantNet, input_shape: tuple[int, ...] | list[int], meta: Mapping[str, Any] | None = None) -> QNet:
    """The integer network of ``net``; ``meta`` (plain values) is stored with the scale exponents added."""
    plans = net.plan(exact=True)
    layers = []
    for i, (layer, p) in enumerate(zip(net.layers, plans)):
        q = net.int_weight(i)
        b = net.int_bias(i, p.e_acc)
        weight = q.round().long().numpy().astype(np.int64)
        bias = (b.round().long().numpy().astype(np.int64) if b is not None
                else np.zeros(weight.shape[0], dtype=np.int64))
        assert p.out is not None
        layers.append(QLayer(name=layer.name, kind=layer.kind, weight=weight, bias=bias, shift=int(p.shift),
                             relu=bool(layer.relu), out=p.out, stride=int(layer.stride), padding=int(layer.padding)))
    exps = net.exponents()
    full_meta = dict(plain(dict(meta or {})))
    full_meta.setdefault("scale_exponents", exps)
    full_meta.setdefault("scales", {k: 2.0 ** e for k, e in exps.items()})
    n = len(net.layers)
    w_bits = [int(net.spec.w_bits(i)) for i in range(n)]
    a_bits = [int(net.spec.a_bits(i)) for i in range(n - 1)]
    full_meta.setdefault("weight_bits", w_bits[0] if len(set(w_bits)) == 1 else w_bits)
    full_meta.setdefault("act_bits", a_bits[0] if len(set(a_bits)) == 1 else (a_bits or int(net.spec.act_bits)))
    full_meta.setdefault("csd_digits", net.spec.csd_digits)
    return QNet(input_shape=tuple(int(s) for s in input_shape), input=net.spec.input_format,
                layers=tuple(layers), meta=full_meta)


def check_exact(net: QuantNet, qnet: QNet, x_int: np.ndarray | torch.Tensor) -> None:
    """Raise unless every layer of ``qnet`` (by :func:`run_reference`) equals ``net.forward_int`` on ``x_int``."""
    x = np.asarray(x_int.numpy() if isinstance(x_int, torch.Tensor) else x_int).astype(np.int64)
    ref = run_reference(qnet, x, all_layers=True)
    fq = net.forward_int(torch.from_numpy(x), all_layers=True)
    for layer, r, f in zip(qnet.layers, ref, fq):
        f = f.numpy()
        if r.shape != f.shape or not np.array_equal(r, f):
            bad = int(np.sum(r != f)) if r.shape == f.shape else -1
            raise JpqError(f"internal error: layer {layer.name!r} of the export differs from the fake-quantized "
                           f"model on {bad} values (please report this)")
