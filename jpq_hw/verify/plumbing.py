"""The proof of a stream design's plumbing: for every stall pattern and every pixel value, each
kernel is given exactly the contract's windows and the output stream is the last kernel's results
in raster order (contract.md section 3).

What the kernels compute is proven apart (:mod:`.stream`): a kernel's ``y`` is its layer's function
of ``x`` (pipelined: of ``x`` as it was at the ``L``-th last cycle its ``en`` was high). This proof
takes that as given and checks what surrounds the kernels: line buffers, windows, padding, the
collectors of flatten stages, handshake registers, valid chains, reset.

What the functions of the stereo stages compute is proven apart too (:mod:`.functions`): a
``hamming_cost``'s costs from the left features, the right features of the columns before and which
of those lie in the row; a ``box_sum`` window's column sums from the terms of the entering column;
an ``argmin``'s winner from the pixel. Here they are cut out as kernels are. So is a window's line
buffer, proven apart to give back at each enable what it was given ``W`` enables before
(:mod:`.line_buffer`): in the window part its ``q`` is what the window gave on ``d`` then, kept in
the ghost state, so a state holds neither the buffer's bits nor a block RAM's pointer, and the
windows of a 125x185 frame take seconds to minutes rather than out of reach.

Method: explicit-state exploration of yosys's netlist (``proc; flatten; memory``) on symbolic bits
(:mod:`.symbolic`), one *part* at a time between two channels (valid, ready, data): a conv2d stage
as its window (input pixels to the windows its kernel is given) and its kernel part (windows to
output pixels, the kernel cut out), a dense, ``hamming_cost`` or ``argmin`` stage whole (input
pixels to its output beats, its kernel or function cut out).
Pixel ``m`` of stream ``s`` (0: the design's input, ``i + 1``: what stage ``i`` gives) is a set of
*names* ``(s, m, bit)``. Each part is run with its input valid and its output ready each 0 or 1 in
every cycle (all four from every state reached); while the input valid is high its data holds the
names of the next input beat, otherwise unknown bits. The control (valids, readies, counters, mask
registers) never depends on a name, so each cycle is computed exactly.

- The window part: while its output valid is high, the window must be the contract's next one:
  element ``(u*K + v)*C + i`` is channel ``i`` of input pixel ``(r*S + u - P, c*S + v - P)``, zero
  outside the frame (a bit the previous layer's output range fixes may be that constant). A
  ``box_sum`` window's element ``v*C + i`` must be the names of the column sum of channel ``i`` at
  output row ``r``, column ``c + v - P`` (zero outside the frame); its column-sum function gives
  those names where its terms are the contract's (input pixels ``(r - P + j, c + v - P)``, extended
  to the sum's width, zero outside the frame), in order, and unknown bits anywhere else.
- The kernel part is given the contract's windows; the kernel's ``y`` holds the names of output
  pixel ``n`` where ``x`` is window ``n`` (pipelined: was, when ``en`` was high ``L`` times back), and
  is unknown anywhere else. A dense stage's ``x`` must be the frame in ``[C, H, W]`` order.
- A ``hamming_cost`` stage's function is given, for output pixel ``n`` at column ``c``, the left
  features of pixel ``n``, the right features of pixel ``n - d`` for each disparity ``d <= c``, and
  in-row flags ``d <= c`` (the right features of a column outside the row may be anything: its
  function ignores them). An ``argmin`` stage's function is given pixel ``n``, through its tree's
  pipeline as a pipelined kernel is.
- At every output: while valid is high the data must be exactly the next output pixel's names (no
  unknown bit, nothing else), valid must stay high until the beat transfers, and valid must not
  depend on ready in the same cycle.
- Start: every register unknown (or its power-up value), then one cycle of ``rst``; the state this
  gives over-approximates the state after any reset, so a reset in mid-stream is covered.
- Progress: under any stalls that keep the contract (a source holds a beat until it is taken and
  offers one again in the end; a sink drains a valid beat in the end), the part takes input beats
  and gives output beats forever: no cycle of the explored steps lets such stalls hold it back
  (:func:`~.liveness.check_progress`, on the states and steps kept in :class:`~.liveness.StateGraph`).

The parts compose: a part assumes of its input channel (data = the next beat's names while valid)
exactly what the part before it is proven to guarantee of its output, and the design's input is
assumed to keep the contract (a source holds its data until it transfers). A state is the
registers' bits (names counted from each stream's next beat) and each stream's place in the period
after which what the part must do repeats: a frame, a row for a ``hamming_cost``, nothing for an
``argmin`` (and a ``box_sum`` window's last column sum, counted from its input pixel); names older
than two frames are forgotten (made unknown: sound). The exploration ends when no new
state appears: every reachable state has then been checked, for every sequence of handshakes of
any length. A failure gives the shortest handshake sequence that shows it.

Where every part is proven, so is the whole design's progress under any such stalls (the
argument is in :mod:`.liveness`), and the parts' graphs run side by side at full rate from reset
give its latency and frame period, which must be the report's (:func:`~.liveness.full_rate`).

Not covered here: parts with more states than the limit (a part whose frame has more positions
than its limit is not tried: by default :data:`MAX_STATES`, or what :data:`MAX_WORK` allows for its
register bits, the line buffer's not counted). Those parts are listed as not proven and left to
simulation; the others are still proven, each assuming of its input channel
what the part before it should guarantee. In a design with such a part, the whole design's
progress and its full-rate latency and frame period are checked by simulation only.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import JpqError
from ..hdl.amaranth_stream import channel_wire, kernel_wire, window_wire
from ..hdl.stream_verilog import column_sum_bits_of
from ..ir.qnet import IntFormat
from .functions import boundary_wire, column_sum_wire
from .line_buffer import LineBuffer, LineBufferFailure, line_buffer_wires
from .liveness import Lasso, StateGraph, ThroughputFailure, check_progress, full_rate
from .netlist import NetlistError, _quote, cut_module, read_netlist_json
from .symbolic import FIRST_NET, X, Box, SymbolicNetlist, slot
from ..synth.yosys import initial_bits

MAX_STATES = 400_000
# register bits x states one stage part may explore by default: the time a state takes grows with the
# part's register bits (a line buffer's not counted: bench/results/verify_plumbing.md, 2.1 to 3.2 us
# per bit and state in the stereo example's windows, more per bit in small parts), so this is ten
# minutes or so; a part with more positions in a frame than the states it allows is not tried
MAX_WORK = 250_000_000
SUPPORTED = ("conv2d", "box_sum", "dense", "hamming_cost", "argmin")


class PlumbingFailure(JpqError):
    """The plumbing does not deliver the contract's windows or output stream; ``trace`` is the
    handshake sequence (the part's input valid and output ready, per cycle after reset) that shows it."""

    def __init__(self, msg: str, trace: list[tuple[int, int]] | None = None):
        super().__init__(msg)
        self.trace = trace or []


@dataclass
class PlumbingProof:
    states: int
    depth: int  # the longest shortest path, in cycles after reset
    kernels: int  # stages whose every part is proven
    seconds: float
    stages: int = 0  # stages of the design
    parts: list[tuple[str, int, int, float]] = field(default_factory=list)  # (part, states, register bits, s)
    unproven: list[str] = field(default_factory=list)  # "stage part: why", for the parts not proven
    # the whole design, where every part is proven: at full rate from reset, the first frame's
    # latency and the most cycles between the first pixels of two frames (None: not computed, and why)
    latency: int | None = None
    period: int | None = None
    full_rate_cycles: int = 0
    full_rate_unproven: str = ""

    @property
    def complete(self) -> bool:
        """Every part of every stage proven: the whole design's plumbing."""
        return not self.unproven


def plumbing_module(files, report: dict) -> dict:
    """yosys's flat netlist of the design with memories mapped to registers, the wires the proof
    cuts it at kept (even where a mutant leaves one unread)."""
    n = len(report["layers"])
    names = [w for k in range(n + 1) for w in channel_wires(report, k).values()]
    for i, stage in enumerate(report["layers"]):
        names += [boundary_wire(report, i, p) for p in ("x", "y", "en")]
        if stage["kind"] in ("conv2d", "box_sum"):
            names += window_wires(report, i).values()
        if stage["kind"] == "box_sum":
            names += [column_sum_wire(report, i, p) for p in ("x", "y")]
        names += (line_buffer_wires(report, i) or {}).values()
    keep = " ".join(_quote(f"w:{name}") for name in sorted(set(names)))
    with tempfile.TemporaryDirectory(prefix="jpq-verify-", dir=os.path.dirname(os.path.abspath(files[0]))) as tmp:
        return read_netlist_json(files, report["top"], Path(tmp), passes=f"setattr -set keep 1 {keep}; memory")


class _Stage:
    """Stage ``i``'s geometry: which names its kernel's window holds for output pixel ``n``."""

    def __init__(self, index: int, entry: dict, channels: list[tuple[int, int]]):
        self.index = index
        self.kind = entry["kind"]
        inp, out = entry["input"], entry["output"]
        self.c, self.h, self.w, self.b = inp["channels"], inp["height"], inp["width"], inp["bits"]
        self.out_bits = out["channels"] * out["bits"]
        self.out_size = 1 if self.kind == "dense" else out["height"] * out["width"]
        self.out_w = out["width"]
        # positions after which what the stage must do repeats (frames come back to back): a frame
        # for a window, a row for a Hamming cost (its columns), a pixel for an argmin
        self.periods = {"hamming_cost": (self.w, self.w), "argmin": (1, 1)}.get(
            self.kind, (self.h * self.w, self.out_size))
        self.features, self.disparities = self.c // 2, out["channels"]  # a Hamming cost's F and D
        # a box_sum's column sums: SB bits per channel, named (stage, column sum index, SUM_BIT + bit)
        self.signed = bool(inp["signed"])
        self.sb = column_sum_bits_of(entry.get("kernel", 1), IntFormat(self.b, self.signed))
        self.sum_bit = self.c * self.b
        self.k, self.s, self.p = entry.get("kernel", 1), entry.get("stride", 1), entry.get("padding", 0)
        self.latency = int(entry.get("kernel_latency", 0))
        # input bits that the previous layer's output range fixes (a kernel may take them as constants)
        self.forced = {ch * self.b + j: bit for ch, (lo, hi) in enumerate(channels)
                       for j in range(self.b) if (bit := constant_bit(lo, hi, j, self.b)) is not None}
        self._cache: dict[int, tuple] = {}  # window n -> its names
        self._terms: dict[int, tuple] = {}  # column sum m -> its terms' names

    @property
    def in_size(self) -> int:
        return self.h * self.w

    def window(self, n: int) -> tuple:
        got = self._cache.get(n)
        if got is not None:
            return got
        s, hw = self.index, self.h * self.w
        if self.kind == "argmin":  # the pixel itself
            names = tuple((s, n, bit) for bit in range(self.c * self.b))
        elif self.kind == "hamming_cost":  # left features; the right ones of columns c - d; which lie in the row
            f, col = self.features, n % self.w
            names = tuple([(s, n, j) for j in range(f)] +
                          [(s, n - d, f + j) if d <= col else 0 for d in range(self.disparities) for j in range(f)] +
                          [int(d <= col) for d in range(self.disparities)])
        elif self.kind == "box_sum":  # column v's sums of each channel: those of output row r, column c + v - P
            f, pos = divmod(n, self.out_size)
            r, c = divmod(pos, self.out_w)
            names = []
            for v in range(self.k):
                cc = c + v - self.p
                for ch in range(self.c):
                    for bit in range(self.sb):
                        names.append((s, f * hw + r * self.w + cc, self.sum_bit + ch * self.sb + bit)
                                     if 0 <= cc < self.w else 0)
            names = tuple(names)
        elif self.kind == "dense":
            base = n * hw
            names = tuple((s, base + k, ch * self.b + bit)
                          for ch in range(self.c) for k in range(hw) for bit in range(self.b))
        else:
            f, pos = divmod(n, self.out_size)
            r, c = divmod(pos, self.out_w)
            base = f * hw
            names = []
            for u in range(self.k):
                for v in range(self.k):
                    ir, ic = r * self.s + u - self.p, c * self.s + v - self.p
                    inside = 0 <= ir < self.h and 0 <= ic < self.w
                    for ch in range(self.c):
                        for bit in range(self.b):
                            names.append((s, base + ir * self.w + ic, ch * self.b + bit) if inside else 0)
            names = tuple(names)
        names = self.fixed(names)
        if len(self._cache) > 4096:
            self._cache.clear()
        self._cache[n] = names
        return names

    def column_terms(self, m: int) -> tuple:
        """What a box_sum's column-sum function must be given for column sum ``m`` (output row
        ``r``, column ``cc`` of frame ``f``, ``m = f*H*W + r*W + cc``): channel ``i``'s row ``j``, at
        ``(i*K + j)*SB``, is input pixel ``(r - P + j, cc)`` extended to SB bits, 0 outside the frame."""
        got = self._terms.get(m)
        if got is not None:
            return got
        s, hw = self.index, self.h * self.w
        f, pos = divmod(m, hw)
        r, cc = divmod(pos, self.w)
        names = []
        for ch in range(self.c):
            for j in range(self.k):
                rr = r - self.p + j
                if not 0 <= rr < self.h:
                    names += [0] * self.sb
                    continue
                pixel = f * hw + rr * self.w + cc
                low = [(s, pixel, ch * self.b + bit) for bit in range(self.b)]
                names += low + [low[-1] if self.signed else 0] * (self.sb - self.b)
        if len(self._terms) > 4096:
            self._terms.clear()
        got = self._terms[m] = self.fixed(tuple(names))
        return got

    def normal(self, x: tuple) -> tuple:
        """A Hamming cost's function input ``x`` with the right features of each column that
        ``x`` says lies outside the row made 0 (its function ignores them: :mod:`.functions`
        proves that); any other stage's as it is."""
        if self.kind != "hamming_cost":
            return x
        f, d = self.features, self.disparities
        flags = f + d * f
        out = list(x)
        for k in range(d):
            if x[flags + k] == 0:
                out[f + k * f:f + (k + 1) * f] = (0,) * f
        return tuple(out)

    def fixed(self, values: tuple) -> tuple:
        """``values`` with each name of an input bit that :attr:`forced` fixes replaced by its constant."""
        if not self.forced:
            return values
        forced, s = self.forced, self.index
        return tuple(forced.get(v[2], v) if v.__class__ is tuple and v[0] == s else v for v in values)


def constant_bit(lo: int, hi: int, j: int, bits: int) -> int | None:
    """Bit ``j`` of every value in ``[lo, hi]`` written in ``bits``-bit two's complement, where all
    agree; else None."""
    seen = set()
    for a, b in ((lo, min(hi, -1)), (max(lo, 0), hi)):  # each part is monotone in the unsigned reading
        if a > b:
            continue
        ua, ub = a % (1 << bits), b % (1 << bits)
        if ua >> j != ub >> j:
            return None
        seen.add(ua >> j & 1)
    return seen.pop() if len(seen) == 1 else None


def _check_geometry(report: dict, qnet, index: dict) -> None:
    """The windows are built from the report's stage geometry: it must be the checkpoint's (each
    stage's input and output shape, a conv2d's kernel, stride and padding)."""
    shapes = qnet.shapes  # the input's, then each layer's output
    for stage in report["layers"]:
        first, last = index[stage["layers"][0]], index[stage["layers"][-1]]
        inp, out = shapes[first], shapes[last + 1]
        got_in = (stage["input"]["channels"], stage["input"]["height"], stage["input"]["width"])
        got_out = (stage["output"]["channels"], stage["output"]["height"], stage["output"]["width"])
        want_out = tuple(out) if len(out) == 3 else (out[0], 1, 1)
        ok = got_in == tuple(inp) and got_out == want_out
        layer = qnet.layers[first]
        if stage["kind"] == "conv2d":
            ok = ok and (stage["kernel"], stage["stride"], stage["padding"]) == \
                (layer.weight.shape[-1], layer.stride, layer.padding)
        if stage["kind"] == "box_sum":
            ok = ok and (stage["kernel"], stage["stride"], stage["padding"]) == (layer.size, 1, (layer.size - 1) // 2)
        if not ok:
            raise PlumbingFailure(f"stage {stage['name']}: report.json's shapes or window differ from the checkpoint's")


class _Ghost:
    """What the proof tracks besides the registers: the stage's input pixels taken, its kernel's
    last window and (pipelined) the windows its registers hold, the output pixel due, whether the
    output beat was stalled in the cycle before, and a box_sum window's last column sum."""

    __slots__ = ("n_in", "last", "queue", "n_out", "stalled", "column", "fifo")

    def __init__(self, latency: int):
        self.n_in, self.last, self.queue, self.n_out, self.stalled = 0, -1, (None,) * latency, 0, False
        self.column = -1  # a box_sum window: the column sum its function was last given
        self.fifo = ()  # a window: what its line buffer was given at the last W enables (LineBuffer)

    def copy(self) -> "_Ghost":
        g = _Ghost.__new__(_Ghost)
        g.n_in, g.last, g.queue, g.n_out, g.stalled = self.n_in, self.last, self.queue, self.n_out, self.stalled
        g.column, g.fifo = self.column, self.fifo
        return g


def channel_wires(report: dict, k: int) -> dict[str, str]:
    """The wires of channel ``k`` (0: the design's input, ``k``: stage ``k - 1``'s output):
    {"valid", "ready", "data"} -> wire name."""
    n = len(report["layers"])
    if k == 0:
        return {"valid": "s_valid", "ready": "s_ready", "data": "s_data"}
    if k == n:
        return {"valid": "m_valid", "ready": "m_ready", "data": "m_data"}
    if report.get("backend") == "amaranth":
        return {p: channel_wire(k, p) for p in ("valid", "ready", "data")}
    return {"valid": f"v{k}", "ready": f"r{k}", "data": f"d{k}"}


def window_wires(report: dict, index: int) -> dict[str, str]:
    """The wires between conv2d or box_sum stage ``index``'s window and its kernel: {"valid", "ready", "data"}."""
    if report.get("backend") == "amaranth":
        return {"valid": window_wire(index, "valid"), "ready": window_wire(index, "ready"),
                "data": kernel_wire(index, "x")}
    return {"valid": f"w{index}_valid", "ready": f"w{index}_ready", "data": f"w{index}_win"}


class StagePlumbing:
    """The exploration of one part of stage ``index`` of a stream design between two channels.

    ``part``: "stage", from the stage's input channel (pixels) to its output channel (the kernel's
    results), the kernel cut out; "window", from the input channel to the channel that gives the
    kernel its windows (a conv2d stage; each window must be the contract's); "kernel", from that
    channel (windows, given as the contract's) to the output channel. A conv2d stage is proven as
    its window and its kernel part, so that the positions of the frame (the window's state) and the
    kernel's pipeline (its valid bits) are explored apart rather than as a product."""

    def __init__(self, module: dict, report: dict, index: int, channels: list[tuple[int, int]], part: str = "stage"):
        self.stage = st = _Stage(index, report["layers"][index], channels)
        self.part = part
        nets = module["netnames"]

        def bits(wire):
            if wire not in nets:
                raise NetlistError(f"the design has no wire {wire}")
            return nets[wire]["bits"]

        cin = window_wires(report, index) if part == "kernel" else channel_wires(report, index)
        cout = window_wires(report, index) if part == "window" else channel_wires(report, index + 1)
        cut = cut_module(module, {"clk": "clk", "rst": "rst", "valid": cin["valid"], "data": cin["data"],
                                  "ready": cout["ready"]},
                         {"valid": cout["valid"], "data": cout["data"], "ready": cin["ready"]})
        if _reads_ports(module, cut):
            raise NetlistError(f"stage {index} ({part}) reads ports besides its input channel, its output's ready, "
                               "clk and rst")
        ch = {f"{w}_{p}": [slot(b) for b in bits(wire)] for w, c in (("in", cin), ("out", cout)) for p, wire in c.items()}
        self.data_width = len(ch["in_data"])
        self.out_width = len(ch["out_data"])
        want_in = len(st.window(0)) if part == "kernel" else st.c * st.b
        want_out = len(st.window(0)) if part == "window" else st.out_bits
        if (self.data_width, self.out_width) != (want_in, want_out) or len(ch["in_valid"]) != 1 or \
                len(ch["out_valid"]) != 1:
            raise NetlistError(f"stage {index}'s channels are not as the report says")
        self.clk = [slot(b) for b in bits("clk")]
        # a handshake input that is a constant in the netlist takes only that value
        self.valid_values = _values(ch["in_valid"][0])
        self.ready_values = _values(ch["out_ready"][0])
        inputs = [*self.clk, slot(bits("rst")[0]), *ch["in_valid"], *ch["out_ready"], *ch["in_data"]]
        observe = [*ch["in_ready"], *ch["out_valid"], *ch["out_data"]]
        self.const_bits: dict[int, int] = {}
        self.canon = list(range(self.out_width))
        boxes, removed, runs = [], set(), []
        self.pipelined = part != "window" and st.latency > 0
        if part == "window" and st.kind == "box_sum":  # the column sums, cut out as a kernel is
            cx, cy = column_sum_wire(report, index, "x"), column_sum_wire(report, index, "y")
            sums = cut_module(cut, {"x": cx}, {"y": cy})
            if "outside" in sums["ports"]:
                raise NetlistError(f"stage {index}'s column sums read wires besides their terms")
            xs, ys = [slot(b) for b in bits(cx)], [slot(b) for b in bits(cy)]
            if len(xs) != len(st.column_terms(0)) or len(ys) != st.c * st.sb or \
                    len(set(ys)) != len(ys) or min(ys) < FIRST_NET:
                raise NetlistError(f"stage {index}'s column sums are not {st.c} distinct sums of {st.k} terms "
                                   f"of {st.sb} bits")
            boxes.append(Box(f"stage {index}'s column sums", xs, ys, combinational=True))
            runs.append(self._column_run)
            removed = set(sums["cells"])
        self.line: LineBuffer | None = None  # a window's line buffer, cut out (:mod:`.line_buffer`)
        self._line_at = 0  # where its en and d are in what a cycle observes
        wires = line_buffer_wires(report, index) if part == "window" else None
        if wires:
            self.line = line = LineBuffer(module, wires, st.w)
            boxes.append(Box(f"stage {index}'s line buffer", [line.en], line.q, combinational=True))
            runs.append(self._line_run)
            removed |= set(line.cut["cells"])
            self._line_at = len(observe)
            observe += [line.en, *line.d]
        if part != "window":
            kin = {"x": boundary_wire(report, index, "x")}
            if st.latency:
                kin.update(clk="clk", en=boundary_wire(report, index, "en"))
            kernel = cut_module(cut, kin, {"y": boundary_wire(report, index, "y")})
            if _reads_ports(module, kernel):
                raise NetlistError(f"stage {index}'s kernel reads wires besides its x" +
                                   (", clk and en" if st.latency else ""))
            xs = [slot(b) for b in bits(kin["x"])]
            ys = [slot(b) for b in bits(boundary_wire(report, index, "y"))]
            if len(ys) != st.out_bits or len(xs) != len(st.window(0)):
                raise NetlistError(f"stage {index}'s kernel has {len(xs)} inputs and {len(ys)} output bits, the "
                                   f"report says {len(st.window(0))} and {st.out_bits}")
            # a kernel output bit that is a constant in the netlist is that constant in every pixel
            self.const_bits = {bit: (s if s < 2 else X) for bit, s in enumerate(ys) if s < FIRST_NET}
            first: dict[int, int] = {}  # two output bits on one wire are one value: named by the first
            self.canon = [first.setdefault(s, bit) for bit, s in enumerate(ys)]
            if st.latency:
                observe += [slot(bits(kin["en"])[0]), *xs]
            boxes.append(Box(f"stage {index}'s kernel", xs, ys, combinational=not st.latency))
            runs.append(self._kernel_run)
            removed = set(kernel["cells"])
        # the registers the exploration keeps (what a state costs); compiled when first run
        self.register_bits = sum(len(c["connections"]["Q"]) for n, c in cut["cells"].items()
                                 if c["type"] == "$dff" and n not in removed)
        self._compile = (cut, boxes, removed, inputs, observe)
        self._net: SymbolicNetlist | None = None
        self.sizes = (st.in_size, st.out_size)
        self.periods = st.periods
        self.s_in, self.s_out = index, index + 1
        self._run = tuple(make() for make in runs)  # the boxes' run functions, in their order
        self._ghost: _Ghost | None = None  # of the cycle being run (the kernel's box reads it)
        self.graph: StateGraph | None = None  # the states and steps :meth:`prove` explored

    @property
    def net(self) -> SymbolicNetlist:
        """The part's netlist compiled to one Python function (:class:`~.symbolic.SymbolicNetlist`)."""
        if self._net is None:
            cut, boxes, removed, inputs, observe = self._compile
            self._net = SymbolicNetlist(cut, boxes, removed, inputs=inputs, observe=observe)
            if any(s not in self.clk for s in self._net.clocks):
                raise NetlistError(f"a register of stage {self.stage.index} is clocked by something other than clk")
        return self._net

    def _kernel_run(self):
        st = self.stage
        s_out, canon = self.s_out, self.canon
        unknown = (X,) * st.out_bits

        def run(x):
            g = self._ghost
            # y: the window its registers took L enables ago, or the one x holds now
            n = g.queue[-1] if st.latency else self._match(x, g, again=True)
            return unknown if n is None else tuple((s_out, n, b) for b in canon)
        return run

    def _column_run(self):
        st = self.stage
        unknown = (X,) * (st.c * st.sb)
        bits = range(st.sum_bit, st.sum_bit + st.c * st.sb)

        def run(x):
            # the sums of column sum m where x holds its terms: the last one again, or the next
            g = self._ghost
            x = st.fixed(x)
            m = g.column
            if not (m >= 0 and x == st.column_terms(m)):
                if x != st.column_terms(m + 1):
                    return unknown
                m = g.column = m + 1
            return tuple((st.index, m, b) for b in bits)
        return run

    def _line_run(self):
        line = self.line

        def run(args):  # q: what d was W enables before, where en is high
            return line.output(args[0], self._ghost.fifo)
        return run

    def _match(self, x: tuple, g: _Ghost, again: bool) -> int | None:
        """The output pixel whose window ``x`` holds: the kernel's next one, or (``again``) its last
        one; else None. A pipelined kernel takes a window once (what it takes again is a window
        left on its input while not valid, and is not named: unknown, which is sound)."""
        st, last = self.stage, g.last
        x = st.normal(st.fixed(x))
        if again and last >= 0 and x == st.window(last):
            return last
        if x == st.window(last + 1):
            g.last = last + 1
            return last + 1
        return None

    def _inputs(self, g: _Ghost, valid_in) -> tuple:
        if not valid_in:
            return (X,) * self.data_width
        if self.part == "kernel":
            return self.stage.window(g.n_in)
        return tuple((self.s_in, g.n_in, bit) for bit in range(self.data_width))

    def want(self, n: int) -> tuple:
        """What the output channel must hold while its valid is high with beat ``n`` due: the
        contract's window ``n`` (window part) or the names of output pixel ``n``, a bit the kernel
        makes constant being that constant."""
        if self.part == "window":
            return self.stage.window(n)
        c, s = self.const_bits, self.s_out
        return tuple(c.get(bit, (s, n, b)) for bit, b in enumerate(self.canon))

    def step(self, regs: tuple, ghost: _Ghost, valid_in, ready_out, reset: bool = False):
        """One clock cycle from ``regs``: (next registers, next ghost, valid out, ready in);
        raises on a failure."""
        g = ghost.copy()
        self._ghost = g
        clk = (0,) * len(self.clk)
        if reset:
            inputs = clk + (1, X, X) + (X,) * self.data_width
        else:
            inputs = clk + (0, valid_in, ready_out) + self._inputs(g, valid_in)
        nxt, seen = self.net.cycle(regs, inputs, self._run)
        ready, valid = seen[0], seen[1]
        if self.pipelined:  # a pipelined kernel takes x where en is high
            en, x = seen[2 + self.out_width], seen[3 + self.out_width:]
            if en == 1:
                g.queue = (self._match(x, g, again=False),) + g.queue[:-1]
            elif en != 0:
                g.queue = (None,) * self.stage.latency
        if reset:
            return nxt, _Ghost(self.stage.latency), X, X
        if self.line is not None:
            k = self._line_at
            g.fifo = self.line.push(seen[k], seen[k + 1:k + 1 + self.line.width], g.fifo, g.n_in)
        if valid_in and ready not in (0, 1):
            raise PlumbingFailure("ready is unknown (a register it depends on was never set)")
        if valid not in (0, 1):
            raise PlumbingFailure("valid is unknown (a register it depends on was never set)")
        if g.stalled and not valid:
            raise PlumbingFailure("valid fell before its beat transferred")
        if valid:
            got = seen[2:2 + self.out_width]
            if self.part == "window":
                got = self.stage.fixed(got)
            if got != self.want(g.n_out):
                raise PlumbingFailure(self._describe(got, g.n_out))
        if valid_in and ready:
            g.n_in += 1
        if valid and ready_out:
            g.n_out += 1
        g.stalled = bool(valid and not ready_out)
        return nxt, g, valid, ready

    def _describe(self, got, n: int) -> str:
        st = self.stage
        size = st.out_size
        thing = "window" if self.part == "window" else "output pixel"
        where = f"{thing} {n % size} of frame {n // size}" if size > 1 else f"the {thing} of frame {n}"
        for bit, (val, want) in enumerate(zip(got, self.want(n))):
            if val != want:
                if val is X:
                    what = "unknown" + ("" if self.part == "window" else " (not the kernel's result for that window)")
                else:
                    what = self._value(val)
                return f"valid is high with {where} due, but data bit {bit} is {what}" + \
                    (f", not {self._value(want)}" if self.part == "window" else "")
        return f"the data differs from {where}"

    def _value(self, v) -> str:
        """A known bit or a name, in words."""
        if not isinstance(v, tuple):
            return f"the constant {v}"
        s, m, b = v
        st = self.stage
        if s == self.s_in and st.kind == "box_sum" and b >= st.sum_bit:
            ch, bit = divmod(b - st.sum_bit, st.sb)
            f, pos = divmod(m, st.in_size)
            return f"bit {bit} of the column sum of channel {ch} at row {pos // st.w}, column {pos % st.w} of frame {f}"
        size = self.sizes[s - self.s_in]
        return f"bit {b} of {'input' if s == self.s_in else 'output'} pixel {m % size} of frame {m // size}"

    # --------------------------------------------------------------- states

    def _canonical(self, regs: tuple, g: _Ghost) -> tuple[tuple, bytes]:
        """Forget names older than two frames (in ``regs``) and digest the state, names counted
        from each stream's next pixel, with each stream's place in its frame (the kernel part:
        windows counted from the kernel's next one, no place in a frame)."""
        kernel_part = self.part == "kernel"
        out_base = g.last + 1 if self.part != "window" else g.n_out
        bases = (0 if kernel_part else g.n_in, out_base)
        s_in = self.s_in
        horizon = [2 * size + 8 for size in self.sizes]
        rel = []
        forgot = False
        for val in regs:
            if val.__class__ is tuple:
                s, m, b = val
                k = s - s_in
                r = m - bases[k]
                if r < -horizon[k] and not (kernel_part and k == 0):
                    forgot = True
                    rel.append(None)
                else:
                    rel.append((k, r, b))
            else:
                rel.append(val)
        if forgot:
            regs = tuple(X if r is None else v for r, v in zip(rel, regs))
        (a, b), (pa, pb) = bases, self.periods
        if kernel_part:
            place = (g.n_in - b,)
        else:
            place = (a % pa, b % pb, b // pb - a // pa)
        column = None if g.column < 0 else g.column - a  # a box_sum window's column sum, from its input pixel
        ghost = (place, g.n_out - b, g.stalled, tuple(None if n is None else n - b for n in g.queue), column,
                 LineBuffer.digest(g.fifo, a))
        return regs, hashlib.blake2b(marshal.dumps((tuple(rel), ghost)), digest_size=20).digest()

    def prove(self, max_states: int = MAX_STATES) -> tuple[int, int]:
        """Explore every state, then check progress under fair stalls on the steps explored
        (:func:`~.liveness.check_progress`); (states, the longest shortest path to one, in
        cycles). The states and steps stay in :attr:`graph`. A window's line buffer is proven
        first (:meth:`~.line_buffer.LineBuffer.prove`); its states are counted in."""
        line_states = 0
        if self.line is not None:
            try:
                line_states, _, _ = self.line.prove()  # its cut as the window part made it
            except LineBufferFailure as e:
                raise PlumbingFailure(str(e)) from None
        power_up = _power_up(self.net.module)
        init = tuple(power_up.get(s, X) for s in self.net.reg_q)
        regs, g, _, _ = self.step(init, _Ghost(self.stage.latency), 0, 0, reset=True)
        regs, key = self._canonical(regs, g)
        handshakes = [(v, r) for v in self.valid_values for r in self.ready_values]
        self.graph = graph = StateGraph(handshakes)
        ids = {key: graph.add_state(-1, -1)}
        queue = deque([(regs, g, 0, 0)])
        depth = 0
        while queue:
            regs, g, state, d = queue.popleft()
            depth = d
            valid_of = {}
            for k, (valid_in, ready_out) in enumerate(handshakes):
                try:
                    nregs, ng, valid, ready = self.step(regs, g, valid_in, ready_out)
                except PlumbingFailure as e:
                    raise PlumbingFailure(str(e), graph.trace(state) + [(valid_in, ready_out)]) from None
                if valid_of.setdefault(valid_in, valid) != valid:
                    raise PlumbingFailure("valid depends on ready in the same cycle",
                                          graph.trace(state) + [(valid_in, ready_out)])
                nregs, nkey = self._canonical(nregs, ng)
                nxt = ids.get(nkey)
                if nxt is None:
                    if len(ids) >= max_states:
                        raise TooManyStates(f"more than {max_states:,} states")
                    nxt = ids[nkey] = graph.add_state(state, k)
                    queue.append((nregs, ng, nxt, d + 1))
                graph.add_step(state, k, nxt, ng.n_in > g.n_in, ng.n_out > g.n_out, valid, ready)
        try:
            check_progress(graph)
        except Lasso as e:
            raise PlumbingFailure(str(e), e.prefix + e.loop) from None
        return len(graph) + line_states, depth


def _values(s: int) -> tuple[int, ...]:
    if s >= FIRST_NET:
        return (0, 1)
    if s == 2:
        raise NetlistError("a handshake wire between stages is undriven")
    return (s,)


def _reads_ports(module: dict, part: dict) -> bool:
    """Whether the bits ``part`` (a :func:`cut_module`) reads from outside are input ports of
    ``module``; the others are driven by nothing (unknown, as the simulation treats them)."""
    outside = set(part["ports"].get("outside", {}).get("bits", ()))
    return any(b in outside for p in module["ports"].values() if p["direction"] == "input" for b in p["bits"])


class TooManyStates(JpqError):
    """The exploration was stopped at its limit: nothing is proven or refuted."""


def _power_up(module: dict) -> dict[int, int]:
    return {slot(net): int(b) for net, b in initial_bits(module).items() if b in "01"}


def prove_plumbing(files, report: dict, qnet, max_states: int | None = None,
                   module: dict | None = None) -> PlumbingProof:
    """Prove the plumbing of the stream design ``files`` (lowered from ``qnet``) stage part by stage
    part (see the module notes). A part of a kind this proof does not model, or with more states
    than its limit, is listed in the result's ``unproven`` (a part whose frame has more positions
    than that limit is not tried: each is a state); a part that breaks the contract raises
    :class:`PlumbingFailure`. The limit: ``max_states`` where given, else :data:`MAX_STATES` or what
    :data:`MAX_WORK` allows for the part's register bits, whichever is less. ``module``: the
    design's :func:`plumbing_module`, where the caller has read it already."""
    from .stream import channel_ranges

    t0 = time.perf_counter()
    if module is None:
        module = plumbing_module(files, report)
    ranges = channel_ranges(qnet)
    index = {layer.name: k for k, layer in enumerate(qnet.layers)}
    _check_geometry(report, qnet, index)
    states, depth, whole, unproven, explored, graphs = 0, 0, 0, [], [], []
    for i, stage in enumerate(report["layers"]):
        if stage["kind"] not in SUPPORTED:
            unproven.append(f"stage {stage['name']} ({stage['kind']}): a kind this proof does not model")
            continue
        parts = ("window", "kernel") if stage["kind"] in ("conv2d", "box_sum") else ("stage",)
        proven = 0
        for part in parts:
            where = f"stage {stage['name']}" + ("" if part == "stage" else f" ({part} part)")
            try:
                plumbing = StagePlumbing(module, report, i, ranges[index[stage["layers"][0]]], part)
                bits = plumbing.register_bits
                limit = max_states or min(MAX_STATES, MAX_WORK // max(bits, 1))
                why = "" if max_states else f" (what {MAX_WORK:,} register bits x states allow for its {bits:,} bits)"
                positions = 1 if part == "kernel" else plumbing.periods[0]
                if positions > limit:
                    raise TooManyStates(f"its input has {positions:,} positions in a frame, so more than "
                                        f"{limit:,} states{why}")
                t1 = time.perf_counter()
                try:
                    n, d = plumbing.prove(limit)
                except TooManyStates as e:
                    raise TooManyStates(f"{e}{why}") from None
                explored.append((where, n, bits, round(time.perf_counter() - t1, 3)))
                graphs.append((where, plumbing.graph))
            except PlumbingFailure as e:
                raise PlumbingFailure(f"{where}: {e}", e.trace) from None
            except TooManyStates as e:
                unproven.append(f"{where}: {e} (raise --max-states)")
                continue
            except NetlistError as e:  # a cell the exploration does not model
                unproven.append(f"{where}: {e}")
                continue
            states, depth, proven = states + n, max(depth, d), proven + 1
        whole += proven == len(parts)
    proof = PlumbingProof(states, depth, whole, 0.0, stages=len(report["layers"]), parts=explored, unproven=unproven)
    if proof.complete:
        _prove_full_rate(proof, graphs, report)
    proof.seconds = round(time.perf_counter() - t0, 3)
    return proof


def _prove_full_rate(proof: PlumbingProof, graphs: list[tuple[str, StateGraph]], report: dict) -> None:
    """The whole design at full rate from reset (:func:`~.liveness.full_rate`): its latency and
    frame period must be the report's ``latency_cycles`` and ``cycles_per_frame``."""
    first, last = report["layers"][0]["input"], report["layers"][-1]
    pixels = first["height"] * first["width"]
    beats = 1 if last["kind"] == "dense" else last["output"]["height"] * last["output"]["width"]
    limit = 64 * pixels + 100_000
    try:
        latency, period, cycles = full_rate([g for _, g in graphs], pixels, beats, limit, [w for w, _ in graphs])
    except ThroughputFailure as e:
        proof.full_rate_unproven = str(e)
        return
    want = (report["latency_cycles"], report["cycles_per_frame"])
    if (latency, period) != want:
        raise PlumbingFailure(f"at full rate from reset the first frame's latency is {latency} cycles and frames "
                              f"start up to {period} cycles apart; report.json says latency_cycles {want[0]} and "
                              f"cycles_per_frame {want[1]}")
    proof.latency, proof.period, proof.full_rate_cycles = latency, period, cycles
