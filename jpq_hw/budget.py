"""What ``jpq-hw lower`` is about to spend, estimated before any adder is built, and the limits
beyond which it refuses.

:func:`estimate_lowering` reads only the weights (vectorised numpy: about 1.5 s for a 3000 x
3000 dense layer of 16-bit weights) and predicts, for each weight matrix the lowering turns into adders
(every linear layer of a flat network; every conv2d kernel unrolled over its window, every box_sum
and the dense tail of an image stream, as :func:`jpq_hw.stream.lower.lower_stream` cuts them):

adders
    Two plans bound what ``--optimize`` builds, and both are counted from the weights without
    building anything: per-weight CSD (nonzero digits less one per row, as
    :func:`jpq_hw.arith.optimize.csd_adders` counts) and MCM per input (one adder per distinct odd
    constant above 1 of each column, then ``terms - 1`` per row). ``none`` is the first, ``mcm``
    the second; ``best`` and ``cmvm`` take the smaller, times :data:`CSE_SHARE` where the layer is
    small enough for CSE to run (pair work up to :data:`~jpq_hw.arith.optimize.CSE_PAIRS`).
SB_LUT4
    ``adders x (input bits + mean weight bits) + outputs x output bits`` per matrix (an adder is
    about as wide as a product; the low bits that pass through roughly pay for the growth of the
    sums), plus rough prices for what a stream adds around its kernels (window masks, cost volume,
    argmin). :mod:`jpq_hw.cost.ice40` prices the finished graph exactly; this only has to tell
    5,000 cells from 5 million.
memory
    Dominated by the check before the files are written:
    :meth:`~jpq_hw.arith.graph.AdderGraph.evaluate` keeps every node's values, 8 bytes per node and
    test vector (a stream: per output pixel of every frame, plus the windows it cuts, 8 bytes per
    window element); then :data:`NODE_BYTES` per node of graph, plan and text, :data:`BASE_BYTES`
    for the interpreter, numpy and torch, and Hcub's successor cache where weights are wide
    (:func:`jpq_hw.arith.mcm.mcm_graph`: a mask of ``2**(bits + 1)`` bits per pair of fundamentals,
    up to 2**18 of them: 2 GB at 15-bit odd constants).
seconds
    Per matrix: :data:`ORIENT_S` where ``best`` orients the plans of a small layer, CSE at
    :data:`PAIR_S` per digit pair and run (as many runs as :func:`~jpq_hw.arith.optimize.candidate_plans`
    makes), Hcub at :data:`MCM_S` ``x B x 2**B x targets**0.4`` per column (``B``: one more than the
    bits of its widest odd constant, the span of Hcub's successor masks; weights of up to
    :data:`~jpq_hw.arith.mcm.MAX_BITS` bits), :data:`GRAPH_S` per adder; per node then the HDL
    (:data:`EMIT_S`, per backend), the cost estimate (:data:`COST_S`) and the check and files
    (:data:`CHECK_S` plus :data:`CHECK_ROW_S` per test vector); a stream adds its windows and
    reference (:data:`WINDOW_S` per window element) and its handshake simulation
    (:data:`HANDSHAKE_S` per pixel, stage and cycle); :data:`STARTUP_S` for the start (imports,
    torch, the checkpoint).

Calibration. Every coefficient was measured on the 2-core machine this project is developed on
(Python 3.11, numpy 2): it assumes that machine's speed, and a machine twice as fast halves the real
seconds, not the estimate. ``python -m bench.lower_guards`` lowers the three shipped examples and
eleven seeded random networks (350 to 320,000 nonzero weights, 6- to 16-bit, flat and image, default
flags) and prints estimate and measurement side by side (``bench/results/lower_guards.md``). There,
estimate / measured: adders 0.80 to 1.21 (exact to 1 % on every layer too large for CSE; on
examples/digits-mlp.pt 337 for 367, on examples/digits-cnn.pt 236 for 245), SB_LUT4 0.88 to 1.15
(digits-mlp 3,319 for the cost model's 3,778, digits-cnn 2,297 for 2,186), peak memory 0.85 to 1.28
(within 7 % above 1 GB), whole-command seconds 0.68 to 1.42 (digits-mlp 6.5 s for 9.7 s, digits-cnn
11 s for 12.6 s, the 100,000-weight network 16.5 s for 16.8 s, 16-bit dense layers, where Hcub
dominates, 41 s for 41 s and 106 s for 96 s; the wall times themselves vary by up to 20 % from run
to run on this machine). The limits are meant to catch networks 10 or 1,000 times too big, not to
predict a minute to the second.

:func:`check_limits` turns an estimate beyond :class:`Limits` into one :class:`JpqError` line
(``jpq-hw lower`` exits with status 2 before it has built anything; ``--no-limit`` lowers anyway).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple, Sequence

import numpy as np

from .arith.mcm import MAX_BITS as MCM_MAX_BITS
from .arith.optimize import (CSE_PAIRS, CSE_VARIANTS, DIGIT_VARIANTS, ORIENT_WORK, PRICE_ALL, VARIANT_BUDGET,
                             check_optimize, csd_lengths)
from .errors import JpqError
from .ir.qnet import QLayer, QNet

if TYPE_CHECKING:
    from .cost.model import CostModel

# -- the model's coefficients (module docstring; measured by bench/lower_guards.py) ---------------
CSE_SHARE = 0.8  # CSE's adders where it runs, as a fraction of the smaller of the CSD and MCM counts
STARTUP_S = 3.0  # interpreter, numpy, torch and the checkpoint
ORIENT_S = (2.5, 0.7)  # best's orientation and pricing of a small layer: inputs of <= 6 bits, wider ones
PAIR_S = 5.5e-6  # CSE, per digit pair and run
MCM_S = 3.75e-8  # Hcub, per column: x B x 2**B x (distinct odd constants)**0.4, B = their bits + 1
GRAPH_S = 15e-6  # building the graph, per adder
EMIT_S = {"verilog": 8e-6, "amaranth": 3.2e-3}  # HDL text, per node
COST_S = 25e-6  # the target's cost estimate, per node
CHECK_S = 25e-6  # the check, report and files, per node
CHECK_ROW_S = 12e-9  # the check, per node and test vector (or output pixel of a stream's frames)
WINDOW_S = 60e-9  # a stream's windows and reference, per window element of the checked frames
HANDSHAKE_S = 5e-6  # a stream's handshake simulation, per pixel, stage and cycle (frames + 2 of them)
BASE_BYTES = 300 * 2**20
NODE_BYTES = 500  # graph node, plan and text, per node
MCM_CACHE = 1 << 18  # jpq_hw.arith.mcm._succ_mask's cache (entries)
MCM_ENTRIES = 30  # cache entries per target constant (measured 12 to 60)
NOTICE_SECONDS = 30.0  # ``jpq-hw lower`` says what it is about to spend above this estimate

GiB = 2**30


@dataclass(frozen=True)
class Limits:
    """What ``jpq-hw lower`` lowers without ``--no-limit``.

    - ``seconds``: 10 minutes. A lowering is meant to be an interactive step (seconds for the
      examples, 20 s for a 100,000-weight network); ten minutes of Python is a network that is
      too large, or a limit the user raises on purpose.
    - ``memory_bytes``: 8 GiB, half of a common 16 GB laptop: past it the machine swaps or the
      kernel kills the process, both worse than a refusal.
    - ``device_factor``: 50 times the target's largest common device in LUT4 (iCE40: the UP5K's
      5,280, so 264,000 SB_LUT4), over 30 times the largest iCE40 made (HX8K, 7,680): past it a
      design is no iCE40 design however it is shared or pipelined. Below it, designs larger than
      the device are still lowered (``jpq-hw lower`` warns), to compare or to see how far to
      sparsify.
    """

    seconds: float = 600.0
    memory_bytes: int = 8 * GiB
    device_factor: int = 50


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class MatrixEstimate:
    """One weight matrix that becomes adders (a layer, or a stream stage's kernel)."""

    name: str
    layer: int  # index in the network of the layer it comes from
    rows: int
    cols: int
    nonzero: int
    digits: int  # nonzero CSD digits
    adders: int
    lut4: int
    seconds: float  # building its adders (the plans, their pricing, the graph)


@dataclass
class LoweringEstimate:
    """What a whole ``jpq-hw lower`` is estimated to spend."""

    matrices: list[MatrixEstimate]
    adders: int
    lut4: int
    memory_bytes: int
    seconds: float  # the whole command, start-up included
    phases: dict[str, float] = field(default_factory=dict)  # seconds after the graphs: emit, cost, check, ...

    @property
    def layers(self) -> int:
        return len(self.matrices)

    def summary(self) -> str:
        """``~1,200 adders, ~15,000 SB_LUT4, ~310 MB of memory, ~12 s``."""
        return (f"~{_count(self.adders)} adders, ~{_count(self.lut4)} SB_LUT4, ~{_size(self.memory_bytes)} of memory, "
                f"~{_duration(self.seconds)}")


class WeightMatrix(NamedTuple):
    """A matrix the lowering turns into adders (:func:`weight_matrices`)."""

    layer: int  # index of the layer in the network
    name: str
    matrix: np.ndarray  # [out, in]
    in_bits: int  # width of its inputs
    graph: int  # the adder graph it is part of (a flat network: one; a stream: one per stage)
    pixels: int  # rows the check evaluates the graph on per frame (a conv stage: its output pixels); 1 if flat
    window: int  # elements of one output pixel's window (0: no window)


def weight_matrices(qnet: QNet) -> list[WeightMatrix]:
    """Each matrix the lowering turns into adders, as :func:`jpq_hw.arith.lower.lower_qnet` and
    :func:`jpq_hw.stream.lower.lower_stream` build them: a conv2d kernel unrolled over its window
    (``[O, k*k*C]``), a box_sum's column sums (``[C, k*C]`` of ones), the linear layers (a
    stream's dense tail is one graph)."""
    out = []
    shape = qnet.input_shape
    fmt = qnet.input
    image = len(shape) == 3
    graph = 0
    for i, layer in enumerate(qnet.layers):
        next_shape = layer.output_shape(shape)
        pixels = int(np.prod(next_shape[1:])) if image else 1
        if isinstance(layer, QLayer) and layer.kind == "conv2d":
            o, c, kh, kw = layer.weight.shape
            matrix = layer.weight.transpose(0, 2, 3, 1).reshape(o, kh * kw * c)
            out.append(WeightMatrix(i, layer.name, matrix, fmt.bits, graph, pixels, kh * kw * c))
            graph += 1
        elif isinstance(layer, QLayer):  # a flat network's layers, or a stream's dense tail: one graph
            out.append(WeightMatrix(i, layer.name, layer.weight.reshape(layer.n_out, -1), fmt.bits, graph, 1, 0))
        elif layer.kind == "box_sum":
            c, k = shape[0], layer.size
            ones = np.zeros((c, k * c), dtype=np.int64)
            for v in range(k):
                ones[np.arange(c), v * c + np.arange(c)] = 1
            out.append(WeightMatrix(i, layer.name, ones, fmt.bits + k.bit_length(), graph, pixels, k * k * c))
            graph += 1
        elif image:
            graph += 1
        shape, fmt = next_shape, layer.out
    return out


def _matrix_features(w: np.ndarray) -> dict:
    """Counts of ``w`` [out, in] that need no plan: CSD digits, the two adder bounds, CSE's pair
    work, and per column the distinct odd constants and their width."""
    a = np.abs(np.asarray(w, dtype=np.int64))
    if a.size and a.max() < 1 << 29:
        a = a.astype(np.int32)  # half the memory traffic; 3 * a still fits
    digits_row = _csd_lengths(a).sum(axis=1, dtype=np.int64)
    terms_row = np.count_nonzero(a, axis=1)
    low = np.maximum(a & -a, 1)
    if hasattr(np, "bitwise_count"):
        odd = a >> np.bitwise_count(low - 1).astype(a.dtype)  # odd parts (0 stays 0)
    else:
        odd = a // low
    s = np.sort(odd, axis=0)
    first = np.ones(s.shape, dtype=bool)
    first[1:] = s[1:] != s[:-1]
    targets = np.count_nonzero(first & (s > 1), axis=0)  # per column
    top = s[-1] if len(s) else np.zeros(a.shape[1], np.int64)
    col_bits = np.frexp(top.astype(np.float64))[1]  # bit lengths (0 for 0)
    nonzero = int(terms_row.sum())
    return {
        "rows": int(np.count_nonzero(terms_row)), "cols": int(a.shape[1]), "nonzero": nonzero,
        "digits": int(digits_row.sum()),
        "csd": int((digits_row - (digits_row > 0)).sum()),
        "mcm": int((terms_row - (terms_row > 0)).sum() + targets.sum()),
        "pairs": int((digits_row * (digits_row - 1) // 2).sum()),
        "targets": targets, "col_bits": col_bits, "widest": int(col_bits.max(initial=0)),
        "weight_bits": float(np.frexp(a.astype(np.float64))[1].sum(dtype=np.int64)) / nonzero if nonzero else 0.0,
    }


def _csd_lengths(a: np.ndarray) -> np.ndarray:
    """Nonzero CSD digits of each of the magnitudes ``a`` (:func:`~jpq_hw.arith.optimize.csd_lengths`),
    by one popcount where numpy has it (2.0 and later: 0.1 s instead of 1.5 s for 9 million weights)."""
    if not hasattr(np, "bitwise_count"):
        return csd_lengths(a)
    return np.bitwise_count(((3 * a) ^ a) >> 1)


def _cse_runs(pairs: int, optimize: str) -> int:
    """CSE passes :func:`~jpq_hw.arith.optimize.candidate_plans` makes for this pair work."""
    if optimize in ("none", "mcm") or pairs > CSE_PAIRS:
        return 0
    if optimize == "cmvm":
        return 1
    runs = max(1, min(len(CSE_VARIANTS), VARIANT_BUDGET // max(pairs, 1)))
    return runs + (1 + len(DIGIT_VARIANTS) if pairs <= PRICE_ALL else 0)


def _estimate_matrix(layer: int, name: str, w: np.ndarray, in_bits: int, out_bits: int,
                     optimize: str) -> tuple[MatrixEstimate, int, int]:
    """The matrix's estimate, the entries its MCM may add to Hcub's successor cache and the widest
    constant (bits) Hcub searches."""
    f = _matrix_features(w)
    runs = _cse_runs(f["pairs"], optimize)
    if optimize == "none":
        adders = f["csd"]
    elif optimize == "mcm":
        adders = f["mcm"]
    else:
        adders = min(f["csd"], f["mcm"])
        if runs:
            adders = round(CSE_SHARE * adders)
    lut4 = round(adders * (in_bits + f["weight_bits"]) + f["rows"] * out_bits)
    seconds = GRAPH_S * adders + PAIR_S * runs * f["pairs"]
    mcm_entries = widest = 0
    if optimize != "none":
        hcub = (f["col_bits"] <= MCM_MAX_BITS) & (f["targets"] > 0)
        bits = f["col_bits"][hcub].astype(np.float64) + 1  # Hcub's masks span 2**(bits + 1) values
        seconds += MCM_S * float((bits * np.exp2(bits) * f["targets"][hcub] ** 0.4).sum())
        mcm_entries = int(f["targets"][hcub].sum()) * MCM_ENTRIES
        widest = int(f["col_bits"][hcub].max(initial=0))
    if optimize == "best" and 3 * (f["cols"] + adders) <= ORIENT_WORK:
        seconds += ORIENT_S[0] if 2 * in_bits <= 12 else ORIENT_S[1]
    m = MatrixEstimate(name, layer, f["rows"], f["cols"], f["nonzero"], f["digits"], adders, lut4, seconds)
    return m, mcm_entries, widest


def estimate_lowering(qnet: QNet, *, optimize: str = "best", backend: str = "verilog", vectors: int = 1000,
                      frames: int = 16) -> LoweringEstimate:
    """The estimate of ``jpq-hw lower`` for ``qnet`` (module docstring): a flat network checked on
    ``vectors`` test vectors, an image network on ``frames`` frames."""
    check_optimize(optimize)
    image = len(qnet.input_shape) == 3
    if image:  # what cannot stream is refused with its own reason first
        from .stream.lower import check_streamable

        check_streamable(qnet)
    rows_per = frames if image else vectors
    matrices: list[MatrixEstimate] = []
    nodes_of: dict[int, int] = {}  # graph -> nodes
    rows_of: dict[int, int] = {}  # graph -> rows of its check (vectors, or output pixels of the frames)
    window_of: dict[int, int] = {}  # graph -> window elements of its check
    cache_entries = widest = 0
    layers = qnet.layers
    for wm in weight_matrices(qnet):
        m, entries, bits = _estimate_matrix(wm.layer, wm.name, wm.matrix, wm.in_bits, layers[wm.layer].out.bits,
                                            optimize)
        matrices.append(m)
        cache_entries += entries
        widest = max(widest, bits)
        new = wm.graph not in nodes_of
        nodes_of[wm.graph] = nodes_of.get(wm.graph, 0) + m.adders + m.rows + (m.cols if new else 0)
        rows_of[wm.graph] = rows_per * wm.pixels
        window_of[wm.graph] = rows_per * wm.pixels * wm.window
    nodes = sum(nodes_of.values())
    lut4 = sum(m.lut4 for m in matrices) + _stream_lut4(qnet)
    # the steps after the graphs, in the order the flow takes them (jpq_hw.progress.phase names them)
    phases = {"HDL": nodes * EMIT_S.get(backend, EMIT_S["verilog"])}
    if image:
        _, h, w = qnet.input_shape
        phases["timing"] = HANDSHAKE_S * (4 + 2) * h * w * len(layers)  # simulate_handshakes: 4 frames
    phases["cost"] = nodes * COST_S
    phases["check"] = (sum(n * (CHECK_S + CHECK_ROW_S * rows_of[g]) for g, n in nodes_of.items())
                       + WINDOW_S * sum(window_of.values()))
    seconds = STARTUP_S + sum(m.seconds for m in matrices) + sum(phases.values())
    check_bytes = max([8 * n * rows_of[g] + 8 * window_of.get(g, 0) for g, n in nodes_of.items()], default=0)
    if image:  # the frames themselves, and the reference's outputs of each layer
        check_bytes += 8 * frames * sum(int(np.prod(s)) for s in qnet.shapes)
    # Hcub's successor cache (one process-wide LRU cache): bit masks of 2**(bits + 1) bits
    mcm_cache = min(cache_entries, MCM_CACHE) * ((1 << (widest + 1)) // 8 + 100) if cache_entries else 0
    memory = BASE_BYTES + NODE_BYTES * nodes + check_bytes + mcm_cache
    return LoweringEstimate(matrices, sum(m.adders for m in matrices), lut4, int(memory), seconds, phases)


def _stream_lut4(qnet: QNet) -> int:
    """Rough SB_LUT4 of what a stream builds around its kernels (:mod:`jpq_hw.cost.stream` prices
    it exactly once the stages exist): window masks (a LUT per window bit), a Hamming cost volume
    (about 2.4 per disparity and feature) and an argmin (1.5 per channel and bit)."""
    if len(qnet.input_shape) != 3:
        return 0
    lut = 0
    shape, fmt = qnet.input_shape, qnet.input
    for layer in qnet.layers:
        c = shape[0]
        if isinstance(layer, QLayer) and layer.kind == "conv2d":
            kh, kw = layer.weight.shape[2:]
            lut += kh * kw * c * fmt.bits
        elif layer.kind == "box_sum":
            lut += layer.size * c * (fmt.bits + layer.size.bit_length())
        elif layer.kind == "hamming_cost":
            lut += round(1.2 * layer.disparities * c)  # 2.4 per disparity and feature (c = 2 F)
        elif layer.kind == "argmin":
            lut += round(1.5 * c * fmt.bits)
        shape, fmt = layer.output_shape(shape), layer.out
    return lut


def check_limits(estimate: LoweringEstimate, limits: Limits, cost_model: "CostModel", *, source: str = "") -> None:
    """Raise one :class:`JpqError` line naming the estimate and the limits it exceeds, if any."""
    device, capacity = cost_model.largest_device
    max_lut = limits.device_factor * capacity
    over = []
    if estimate.lut4 > max_lut:
        over.append(f"{max_lut:,} SB_LUT4 ({limits.device_factor}x the {device})")
    if estimate.memory_bytes > limits.memory_bytes:
        over.append(f"{_size(limits.memory_bytes)} of memory")
    if estimate.seconds > limits.seconds:
        over.append(f"{_duration(limits.seconds)} of lowering")
    if not over:
        return
    limit = over[0] if len(over) == 1 else ", ".join(over[:-1]) + " and " + over[-1]
    raise JpqError(
        f"{source + ' is' if source else 'the network is'} too big to lower: estimated ~{_count(estimate.adders)} "
        f"adders, ~{_count(estimate.lut4)} SB_LUT4 ({_count(estimate.lut4 / capacity)}x the {device}), "
        f"~{_size(estimate.memory_bytes)} of memory and ~{_duration(estimate.seconds)}, over the limit of {limit}; "
        "sparsify or quantize it further, or pass --no-limit to lower it anyway")


def _count(n: float) -> str:
    """Two significant digits with thousands separators: 1,234,567 -> ``1,200,000``."""
    n = int(round(n))
    if abs(n) < 100:
        return str(n)
    return f"{round(n, 2 - len(str(abs(n)))):,}"


def _size(b: float) -> str:
    if b < GiB:
        return f"{b / 2**20:,.0f} MB"
    text = f"{b / GiB:.1f}" if b < 10 * GiB else f"{b / GiB:,.0f}"
    return f"{text.removesuffix('.0')} GB"


def _duration(s: float) -> str:
    if s < 90:
        return f"{s:.0f} s"
    if s < 90 * 60:
        return f"{s / 60:.0f} min"
    if s < 48 * 3600:
        return f"{s / 3600:.1f} h".replace(".0 h", " h")
    return f"{s / 86400:,.0f} days"


def describe(estimate: LoweringEstimate) -> str:
    """The notice ``jpq-hw lower`` prints before a long lowering."""
    n = estimate.layers
    return (f"lowering {n} layer{'s' if n != 1 else ''} to adders: ~{_count(estimate.adders)} adders, "
            f"~{_count(estimate.lut4)} SB_LUT4, estimated ~{_duration(estimate.seconds)} and "
            f"~{_size(estimate.memory_bytes)} of memory")


__all__: Sequence[str] = ["DEFAULT_LIMITS", "Limits", "LoweringEstimate", "MatrixEstimate", "check_limits",
                          "describe", "estimate_lowering", "WeightMatrix", "weight_matrices"]
