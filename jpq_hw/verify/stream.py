"""The proof of a stream design (contract.md section 3), stage by stage.

Every stage with weights or sums -- a conv2d, a ``box_sum`` and a flatten into linear layers --
has its arithmetic in one kernel module (``TOP_s<i>``: window values in ``x``, the output pixel's
channels in ``y``, with ``clk`` and ``en`` when pipelined). Each kernel is proven by the flat proof
(:mod:`.prove`) against the layer it was lowered from, rewritten as a linear layer over the window:

- conv2d: element ``(u*k + v)*C + i`` of the window is ``xpad[i, r*stride + u, c*stride + v]``
  (contract.md section 3's raster order), so the kernel's weights are ``weight[o, i, u, v]`` there;
- box_sum: element ``v*C + i`` is the sum of column ``v`` of channel ``i`` over the window's ``k``
  rows, a value in ``[k*min(lo, 0), k*max(hi, 0)]``; the kernel adds the ``k`` columns of each
  channel and saturates;
- dense: the collected frame in ``[C, H, W]`` order (``torch.flatten``), through the linear layers.

What is *not* proven, and is checked by simulation only (``pytest sim/`` runs every stream design
through Verilator with random stalls on both sides, bit for bit against the reference): the line
buffers, windows and padding that feed a kernel the right elements, the handshakes, and the
``hamming_cost`` and ``argmin`` stages (library modules, no generated arithmetic). The proof lists
these as assumed. The Amaranth stream backend's kernels are not separate modules with these ports,
so its stream designs are not proven (the flat designs of both backends are).
"""

from __future__ import annotations

import time

import numpy as np

from ..errors import JpqError
from ..hdl.stream_verilog import column_sum_bits, kernel_module
from ..ir.qnet import IntFormat, QLayer, QNet
from .netlist import load_netlist
from .prove import FlatProver, ProofFailure
from .reference import build_reference


def _fmt(d: dict) -> IntFormat:
    return IntFormat(int(d["bits"]), bool(d["signed"]))


def kernel_qnet(stage: dict, qnet: QNet) -> tuple[QNet, tuple[int, int] | None]:
    """The flat network a stage's kernel computes, and the range of its inputs where that is not
    the input format's (column sums)."""
    layers = {layer.name: layer for layer in qnet.layers}
    fin = _fmt(stage["input"])
    covered = [layers[n] for n in stage["layers"]]
    kind = stage["kind"]
    if kind == "conv2d":
        (layer,) = covered
        out_ch, c, k, _ = layer.weight.shape
        w = np.transpose(np.asarray(layer.weight), (0, 2, 3, 1)).reshape(out_ch, k * k * c)  # [o, u, v, i]
        flat = QLayer(layer.name, "linear", w, layer.bias, layer.shift, layer.relu, layer.out)
        return QNet((k * k * c,), fin, (flat,)), None
    if kind == "box_sum":
        (layer,) = covered
        k, c = layer.size, int(stage["input"]["channels"])
        w = np.zeros((c, k * c), dtype=np.int64)
        for v in range(k):
            w[np.arange(c), v * c + np.arange(c)] = 1
        sums = IntFormat(column_sum_bits_of(k, fin), fin.signed)
        flat = QLayer(layer.name, "linear", w, np.zeros(c, dtype=np.int64), 0, False, layer.out)
        return QNet((k * c,), sums, (flat,)), (k * min(fin.lo, 0), k * max(fin.hi, 0))
    if kind == "dense":
        n = int(stage["input"]["channels"]) * int(stage["input"]["height"]) * int(stage["input"]["width"])
        return QNet((n,), fin, tuple(covered)), None
    raise JpqError(f"no kernel for a {kind} stage")


def column_sum_bits_of(k: int, fmt: IntFormat) -> int:
    class _Stage:  # column_sum_bits reads only these
        kernel = k
        inp = type("I", (), {"fmt": fmt})
    return column_sum_bits(_Stage)


def prove_stream(proof, root, report: dict, qnet: QNet, files, **kw) -> None:
    """Prove every kernel of a stream design; record the stages and parts taken on trust."""
    if report.get("backend") == "amaranth":
        raise JpqError("the proof of stream designs reads the verilog backend's kernel modules; lower with "
                       "--backend verilog to prove this network (flat designs: both backends)")
    top = report["top"]
    for i, stage in enumerate(report["layers"]):
        kind = stage["kind"]
        if kind in ("hamming_cost", "argmin"):
            proof.assumed.append(f"stage {stage['name']} ({kind}): a library module, checked by simulation only")
            continue
        kq, input_range = kernel_qnet(stage, qnet)
        module = kernel_module(top, i)
        t0 = time.perf_counter()
        netlist = load_netlist(files, module, {"x": [kq.input.bits] * kq.input_shape[0]},
                               enable="en" if stage.get("kernel_latency") else None)
        ref = build_reference(kq, input_range)
        latency = int(stage.get("kernel_latency", 0))
        control = {"clk": "clk", "en": "en"} if latency else {}
        prover = FlatProver(netlist, ref, data_inputs={"x": "x"}, control=control, latency=latency, **kw)
        try:
            part = prover.prove("y")
        except ProofFailure as e:
            raise ProofFailure(f"stage {stage['name']} (kernel {module}): {e}", neuron=e.neuron, acc=e.acc) from None
        part.seconds["yosys+forms"] = round(time.perf_counter() - t0, 3)
        proof.parts.append((f"stage {stage['name']} ({kind}, kernel {module})", part))
    proof.assumed.append("the stream plumbing (line buffers, windows, padding, handshakes) feeds each kernel the "
                         "window the contract says: checked by simulation (pytest sim/), not proven")
    if any(s["kind"] == "box_sum" for s in report["layers"]):
        proof.assumed.append("a box_sum window's column sums lie in [k*min(lo,0), k*max(hi,0)] (simulation)")
