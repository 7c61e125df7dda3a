"""The proof of a stream design (contract.md section 3), stage by stage.

Every stage with weights or sums -- a conv2d, a ``box_sum`` and a flatten into linear layers --
has its arithmetic in one kernel module (``TOP_s<i>``: window values in ``x``, the output pixel's
channels in ``y``, with ``clk`` and ``en`` when pipelined). Each kernel is proven by the flat proof
(:mod:`.prove`) against the layer it was lowered from, rewritten as a linear layer over the window:

- conv2d: element ``(u*k + v)*C + i`` of the window is ``xpad[i, r*stride + u, c*stride + v]``
  (contract.md section 3's raster order), so the kernel's weights are ``weight[o, i, u, v]`` there;
- box_sum: element ``v*C + i`` is the sum of column ``v`` of channel ``i`` over the window's ``k``
  rows; the kernel adds the ``k`` columns of each channel and saturates;
- dense: the collected frame in ``[C, H, W]`` order (``torch.flatten``), through the linear layers.

Each kernel input is taken to lie in the range its channel can take (:func:`channel_ranges`,
computed from the checkpoint, zero included where the window pads): the lowering sizes a
kernel's inputs by those ranges, so this is what the kernel may rely on.

The stages without weights compute a function of each pixel that is not linear: a
``hamming_cost``'s costs and an ``argmin``'s winner are proven equal to the contract's formulas by
SAT (:mod:`.functions`), cut out of the netlist at their function's boundary as kernels are; so are
the column sums of a ``box_sum``'s window (exact: their width holds any sum of ``k`` input values).

The plumbing around the kernels and functions (line buffers, windows, padding, column sums,
collectors, the right features a Hamming cost keeps, handshakes, reset) is proven next by
:mod:`.plumbing`, for every stall pattern and pixel value, stage part by stage part. Not proven,
and checked by simulation only (``pytest sim/`` runs every stream design through Verilator with
random stalls on both sides, bit for bit against the reference): the plumbing of parts with more
states than the limit (``--max-states``; a window's line buffer is proven apart and not counted,
so the windows of the 125x185 stereo example are within the default); where a part is not proven,
the progress of the whole design under stalls and its latency and frame period too. The proof lists these as
assumed. Where every part is proven, so are the whole design's progress under any stalls that keep
the contract and its full-rate latency and frame period (:mod:`.liveness`).

The Amaranth backend writes one flat module (:mod:`jpq_hw.hdl.netlist_verilog`); its kernels have
named wires at their boundary instead (:func:`~jpq_hw.hdl.amaranth_stream.kernel_wire`:
``s<i>_kernel_x``, ``s<i>_kernel_y`` and, pipelined, ``s<i>_kernel_en``), and each is cut out of the
flat netlist there (:func:`~.netlist.cut_module`: the cells between those wires and nothing else)
and proven the same way.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np

from ..errors import JpqError
from ..hdl.amaranth_stream import kernel_wire
from ..hdl.stream_verilog import column_sum_bits_of, kernel_module
from ..ir.qnet import ArgminLayer, BoxSumLayer, HammingCostLayer, IntFormat, QLayer, QNet
from ..reference import requantize
from .netlist import Netlist, NetlistError, cut_module, load_netlist, read_netlist_json
from .plumbing import PlumbingFailure, plumbing_module, prove_plumbing
from .functions import FunctionFailure, function_wires, prove_functions
from .prove import FlatProver, ProofFailure
from .reference import build_reference


def _fmt(d: dict) -> IntFormat:
    return IntFormat(int(d["bits"]), bool(d["signed"]))


def channel_ranges(qnet: QNet) -> list[list[tuple[int, int]]]:
    """Per layer, the range of each output channel (index 0: the network's input), from the
    checkpoint alone: a conv2d's accumulator over its inputs' ranges (with the padding's zeros),
    then its output stage; a box filter's sum of ``k*k`` values or zeros; a Hamming cost's
    ``[0, F]``; an argmin's ``[0, D - 1]``; all within the output format."""
    fmt = qnet.input
    shape = qnet.input_shape
    out = [[(fmt.lo, fmt.hi)] * shape[0]]
    for layer in qnet.layers:
        prev = out[-1]
        if isinstance(layer, QLayer):
            w = np.asarray(layer.weight, dtype=object)
            pad = layer.kind == "conv2d" and layer.padding > 0
            if layer.kind == "conv2d":
                lo = np.array([min(a, 0) if pad else a for a, _ in prev], dtype=object)[None, :, None, None]
                hi = np.array([max(b, 0) if pad else b for _, b in prev], dtype=object)[None, :, None, None]
                axes = (1, 2, 3)
            else:  # linear: a flat input, or an image flattened in [C, H, W] order
                per = len(w[0]) // len(prev)
                lo = np.repeat(np.array([a for a, _ in prev], dtype=object), per)[None, :]
                hi = np.repeat(np.array([b for _, b in prev], dtype=object), per)[None, :]
                axes = (1,)
            acc_lo = (np.where(w > 0, w * lo, w * hi)).sum(axis=axes) + layer.bias.astype(object)
            acc_hi = (np.where(w > 0, w * hi, w * lo)).sum(axis=axes) + layer.bias.astype(object)
            ys = [requantize(np.array([int(a), int(b)]), layer.shift, layer.relu, layer.out) for a, b in zip(acc_lo, acc_hi)]
            out.append([(int(y[0]), int(y[1])) for y in ys])
        elif isinstance(layer, BoxSumLayer):
            n = layer.size ** 2
            out.append([(max(n * min(a, 0), layer.out.lo), min(n * max(b, 0), layer.out.hi)) for a, b in prev])
        elif isinstance(layer, HammingCostLayer):
            out.append([(0, min(len(prev) // 2, layer.out.hi))] * layer.disparities)
        elif isinstance(layer, ArgminLayer):
            out.append([(0, len(prev) - 1)])
        else:  # pragma: no cover
            raise JpqError(f"no range for a {type(layer).__name__}")
    return out


def kernel_qnet(stage: dict, qnet: QNet, channels: list | None = None) -> tuple[QNet, list[tuple[int, int]]]:
    """The flat network a stage's kernel computes, and the range of each of its inputs: the
    previous layer's channel ranges (:func:`channel_ranges`) placed as the window places them, with
    the padding's zeros (an assumption on the stream plumbing, checked by simulation).
    ``channels``: :func:`channel_ranges` of ``qnet``, where the caller has it already."""
    layers = {layer.name: layer for layer in qnet.layers}
    index = {layer.name: i for i, layer in enumerate(qnet.layers)}
    fin = _fmt(stage["input"])
    covered = [layers[n] for n in stage["layers"]]
    chans = (channels or channel_ranges(qnet))[index[stage["layers"][0]]]  # the ranges of the stage's input channels
    kind = stage["kind"]
    if kind == "conv2d":
        (layer,) = covered
        out_ch, c, k, _ = layer.weight.shape
        w = np.transpose(np.asarray(layer.weight), (0, 2, 3, 1)).reshape(out_ch, k * k * c)  # [o, u, v, i]
        flat = QLayer(layer.name, "linear", w, layer.bias, layer.shift, layer.relu, layer.out)
        pad = layer.padding > 0
        ranges = [(min(a, 0), max(b, 0)) if pad else (a, b) for _ in range(k * k) for a, b in chans]
        return QNet((k * k * c,), fin, (flat,)), ranges
    if kind == "box_sum":
        (layer,) = covered
        k, c = layer.size, int(stage["input"]["channels"])
        w = np.zeros((c, k * c), dtype=np.int64)
        for v in range(k):
            w[np.arange(c), v * c + np.arange(c)] = 1
        sums = IntFormat(column_sum_bits_of(k, fin), fin.signed)
        flat = QLayer(layer.name, "linear", w, np.zeros(c, dtype=np.int64), 0, False, layer.out)
        ranges = [(k * min(a, 0), k * max(b, 0)) for _ in range(k) for a, b in chans]  # column sums, zero padded
        return QNet((k * c,), sums, (flat,)), ranges
    if kind == "dense":
        n = int(stage["input"]["height"]) * int(stage["input"]["width"])
        ranges = [r for r in chans for _ in range(n)]  # [C, H, W] order
        return QNet((len(ranges),), fin, tuple(covered)), ranges
    raise JpqError(f"no kernel for a {kind} stage")


def flat_module(files, report: dict) -> dict | None:
    """yosys's flat netlist of an Amaranth backend's stream design, which its kernels are cut out of
    (None for the Verilog backend's, whose kernels are modules)."""
    if report.get("backend") != "amaranth":
        return None
    with tempfile.TemporaryDirectory(prefix="jpq-verify-", dir=os.path.dirname(os.path.abspath(files[0]))) as tmp:
        return read_netlist_json(files, report["top"], Path(tmp))


def kernel_netlist(files, report: dict, index: int, fields: dict, flat: dict | None) -> tuple[str, Netlist]:
    """(what the kernel is called, its netlist) for stage ``index``: the module ``TOP_s<index>``
    (Verilog backend) or the cells between its boundary wires in ``flat`` (:func:`flat_module`)."""
    latency = int(report["layers"][index].get("kernel_latency", 0))
    enable = "en" if latency else None
    if flat is None:
        module = kernel_module(report["top"], index)
        return module, load_netlist(files, module, fields, enable=enable)
    inputs = {"x": kernel_wire(index, "x")}
    if latency:
        inputs.update(clk="clk", en=kernel_wire(index, "en"))
    cut = cut_module(flat, inputs, {"y": kernel_wire(index, "y")})
    return f"{kernel_wire(index, 'x')} -> {kernel_wire(index, 'y')}", Netlist(cut, fields, enable=enable)


def prove_stream(proof, root, report: dict, qnet: QNet, files, max_states: int | None = None, **kw) -> None:
    """Prove every kernel of a stream design, then its plumbing (:mod:`.plumbing`) where its stages
    are of the kinds that proof covers; record what is taken on trust."""
    flat = flat_module(files, report)
    channels = channel_ranges(qnet)
    for i, stage in enumerate(report["layers"]):
        kind = stage["kind"]
        if kind in ("hamming_cost", "argmin"):  # no kernel: its function is proven below, by SAT
            continue
        kq, input_ranges = kernel_qnet(stage, qnet, channels)
        latency = int(stage.get("kernel_latency", 0))
        t0 = time.perf_counter()
        module, netlist = kernel_netlist(files, report, i, {"x": [kq.input.bits] * kq.input_shape[0]}, flat)
        ref = build_reference(kq, input_ranges)
        control = {"clk": "clk", "en": "en"} if latency else {}
        prover = FlatProver(netlist, ref, data_inputs={"x": "x"}, control=control, latency=latency, **kw)
        try:
            part = prover.prove("y")
        except ProofFailure as e:
            raise ProofFailure(f"stage {stage['name']} (kernel {module}): {e}", neuron=e.neuron, acc=e.acc) from None
        part.seconds["yosys+forms"] = round(time.perf_counter() - t0, 3)
        proof.parts.append((f"stage {stage['name']} ({kind}, kernel {module})", part))
    try:  # one yosys read of the whole design for the functions and the plumbing
        module = plumbing_module(files, report)
    except NetlistError as e:  # the plumbing is then not proven; the functions read the design themselves
        module = None
        proof.assumed.append(f"the stream plumbing: not proven ({e}), checked by simulation (pytest sim/)")
    try:
        for i, part in prove_functions(files, report, module):
            stage, wires = report["layers"][i], function_wires(report, i)
            what = "column sums" if stage["kind"] == "box_sum" else "function"
            proof.functions.append((f"stage {stage['name']} ({stage['kind']}, {what} {wires['x']} -> {wires['y']})",
                                    part))
    except FunctionFailure as e:
        raise ProofFailure(str(e)) from None
    try:
        if module is not None:
            proof.plumbing = prove_plumbing(files, report, qnet, max_states, module=module)
    except PlumbingFailure as e:
        trace = " ".join(f"{v}{r}" for v, r in e.trace)
        shown = f"; shown after reset by the handshakes (valid in, ready out, per cycle) {trace}" if trace else ""
        raise ProofFailure(f"plumbing of {e}{shown}") from None
    except NetlistError as e:  # a netlist the plumbing proof cannot read
        proof.assumed.append(f"the stream plumbing: not proven ({e}), checked by simulation (pytest sim/)")
    if proof.plumbing is not None:
        for line in proof.plumbing.unproven:
            proof.assumed.append(f"the plumbing of {line}: checked by simulation (pytest sim/), not proven")
    if proof.plumbing is None or not proof.plumbing.complete:
        proof.assumed.append("each kernel input lies in the range the checkpoint gives its channel (a box_sum "
                             "column sum: k times it), with the padding's zeros")
    pl = proof.plumbing
    if pl is None or not pl.complete:
        proof.assumed.append("progress of the whole design under stalls (each part of a proven plumbing is proven to "
                             "take and give beats forever under any stalls that keep the contract) and the latency and "
                             "frame period the report gives: checked by simulation (pytest sim/)")
    elif pl.latency is None:
        proof.assumed.append(f"the latency and frame period the report gives: not proven ({pl.full_rate_unproven}), "
                             "checked by simulation (pytest sim/)")
