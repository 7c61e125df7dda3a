"""The proof of a window's line buffer, and the line buffer as the window proof sees it.

A conv2d or box_sum window with a ``K x K`` kernel (``K > 1``) keeps rows ``1..K-1`` of each column in
a line buffer: the Verilog library's ``{p}_delay`` instance ``u<i>_window.g_lines.lines``, the Amaranth
backend's :class:`~jpq_hw.hdl.amaranth_stream.Delay` between the wires ``s<i>_lines_d / _q / _en``.
Its contract: where ``en`` is high and at least ``W`` (the frame width) enables have passed since the
reset, ``q`` is the ``d`` of the ``W``-th last enable, bit for bit.

:func:`prove_line_buffer` proves that contract of the netlist's cells between those wires for every
sequence of enables and every data (explicit states on symbolic bits, as :mod:`.plumbing` does):
the bits of ``d`` at the ``j``-th enable after reset hold names ``(0, j, bit)``, except those that
are bits of ``q`` (the window passes rows ``2..K-1`` of ``q`` back as rows ``1..K-2`` of ``d``),
which hold what ``q`` holds; at every enable from the ``W``-th on, ``q`` must hold exactly what ``d``
held at enable ``j - W`` (where that was known). A state is the registers and those last ``W``
values of ``d``, names counted from the next enable, and the enables so far up to ``W``: the
states fill for ``W`` enables or so, then a block-RAM buffer's contents move with its pointer (a
state per address), a shift register's do not. Start: every register unknown, one cycle of ``rst``.

The window proof then cuts the line buffer out (:class:`LineBuffer`): ``q`` is what the window gave on
``d`` ``W`` enables before (kept in the proof's ghost state as those values, named relative to the
input pixel they came with), unknown where ``en`` is not high or fewer than ``W`` enables have passed
since the reset. This is exactly the proven contract, so the window proof stays sound; it no longer
carries the buffer's ``W x width`` register bits in each state, nor a block RAM's pointer, whose
offset from the window's column counter changes from frame to frame and used to multiply the states.
"""

from __future__ import annotations

import hashlib
import marshal
import time
from collections import deque

from .netlist import NetlistError, cut_module
from .symbolic import FIRST_NET, X, SymbolicNetlist, slot


class LineBufferFailure(Exception):
    """The line buffer does not give back what it was given ``W`` enables before."""


def line_buffer_wires(report: dict, index: int) -> dict[str, str] | None:
    """The wires of conv2d or box_sum stage ``index``'s line buffer, {"d", "q", "en"}; None where its
    kernel is 1 (no line buffer)."""
    stage = report["layers"][index]
    if stage["kind"] not in ("conv2d", "box_sum") or stage.get("kernel", 1) <= 1:
        return None
    if report.get("backend") == "amaranth":
        from ..hdl.amaranth_stream import line_buffer_wire
        return {p: line_buffer_wire(index, p) for p in ("d", "q", "en")}
    return {p: f"u{index}_window.g_lines.lines.{p}" for p in ("d", "q", "en")}


def _bits(module: dict, wire: str) -> list[int]:
    nets = module["netnames"]
    if wire not in nets:
        raise NetlistError(f"the design has no wire {wire}")
    return [slot(b) for b in nets[wire]["bits"]]


def line_buffer_cut(module: dict, wires: dict[str, str]) -> dict:
    """The line buffer's cells in the design's flat ``module``: what computes ``q`` from ``d``,
    ``en``, ``clk`` and ``rst``; it must read no other port (a bit nothing drives is unknown, as
    simulators take it: a block RAM's read multiplexer has such inputs past its last word). Bits of
    ``d`` that are bits of ``q`` (a window's column passes rows 2..K-1 of ``q`` back as rows 1..K-2
    of ``d``) are outputs of the cut, not inputs; ``cut["free"]`` lists the others."""
    nets = module["netnames"]
    for w in wires.values():
        if w not in nets:
            raise NetlistError(f"the design has no wire {w}")
    q_bits = set(nets[wires["q"]]["bits"])
    free = [b for b in nets[wires["d"]]["bits"] if b not in q_bits]
    cut = cut_module(module, {"clk": "clk", "rst": "rst", "en": wires["en"], "d": free}, {"q": wires["q"]})
    outside = set(cut["ports"].get("outside", {}).get("bits", ()))  # bits nothing drives: unknown
    if any(b in outside for p in module["ports"].values() if p["direction"] == "input" for b in p["bits"]):
        raise NetlistError(f"the line buffer {wires['q']} reads ports besides d, en, clk and rst")
    d, q = _bits(module, wires["d"]), _bits(module, wires["q"])
    if len(d) != len(q) or len(_bits(module, wires["en"])) != 1 or len(set(q)) != len(q) or min(q) < FIRST_NET:
        raise NetlistError(f"the line buffer {wires['q']} is not {len(d)} distinct bits of q from as many of d")
    cut["free"] = [slot(b) for b in free]
    return cut


def prove_line_buffer(module: dict, wires: dict[str, str], depth: int,
                      max_states: int = 100_000) -> tuple[int, int, float]:
    """Prove the line buffer's contract (module notes) for ``depth`` (the frame width); (states,
    register bits, seconds). Raises :class:`LineBufferFailure` with the enables (one per cycle after
    reset) that show a failure (:meth:`LineBuffer.prove`)."""
    return LineBuffer(module, wires, depth).prove(max_states)


def _word(v, count: int) -> str:
    if v is X:
        return "unknown"
    if v.__class__ is tuple:
        return f"bit {v[2]} of the d of {count - v[1]} enables before"
    return f"the constant {v}"


class LineBuffer:
    """The line buffer cut out of a window part: the ghost's last ``depth`` values of ``d`` at an
    enable, each kept as (the input pixels taken when it was given, its names relative to that count),
    the latter interned; ``q`` is the oldest where ``en`` is high and ``depth`` values are kept, else
    unknown (module notes)."""

    def __init__(self, module: dict, wires: dict[str, str], depth: int):
        self.module, self.wires, self.depth = module, wires, depth
        self.cut = line_buffer_cut(module, wires)
        self.d, self.q = _bits(module, wires["d"]), _bits(module, wires["q"])
        self.en = _bits(module, wires["en"])[0]
        self.width = len(self.d)
        self._ids: dict[tuple, int] = {}
        self._values: list[tuple] = []

    def _intern(self, rel: tuple) -> int:
        got = self._ids.get(rel)
        if got is None:
            got = self._ids[rel] = len(self._values)
            self._values.append(rel)
        return got

    def output(self, en, fifo: tuple) -> tuple:
        """``q`` in a cycle where ``en`` has that value and ``fifo`` holds the values kept."""
        if en != 1 or len(fifo) < self.depth:
            return (X,) * self.width
        base, rid = fifo[0]
        return tuple((v[0], v[1] + base, v[2]) if v.__class__ is tuple else v for v in self._values[rid])

    def push(self, en, d: tuple, fifo: tuple, base: int) -> tuple:
        """The values kept after a cycle where ``en`` had that value and ``d`` was given, ``base``
        input pixels taken before it."""
        if en == 0:
            return fifo
        if en != 1:  # an unknown enable: what the buffer holds is unknown
            return ()
        rel = tuple((v[0], v[1] - base, v[2]) if v.__class__ is tuple else v for v in d)
        entry = (base, self._intern(rel))
        return (fifo + (entry,))[-self.depth:]

    def prove(self, max_states: int = 100_000) -> tuple[int, int, float]:
        """Prove the contract (module notes) of these cells for ``depth``; (states, register bits,
        seconds); :class:`LineBufferFailure` with the enables that show a failure.

        The bits of ``d`` that no bit of ``q`` drives are named ``(0, j, bit)`` at enable ``j``; the
        others hold what ``q`` holds. What ``d`` held at each of the last ``depth`` enables is kept as
        the window proof keeps it (:meth:`push`), and at every enable ``q`` must be the oldest, bit for
        bit, wherever that bit was not unknown (an unknown bit is unknown to the window proof too)."""
        t0 = time.perf_counter()
        line, module, wires, depth = self, self.module, self.wires, self.depth
        cut = line.cut
        free, d, q = cut["free"], line.d, line.q
        at = [d.index(b) for b in free]
        clk, rst = _bits(module, "clk"), _bits(module, "rst")[0]
        net = SymbolicNetlist(cut, inputs=[*clk, rst, line.en, *free], observe=[*q, *d])
        if any(s not in clk for s in net.clocks):
            raise NetlistError(f"a register of the line buffer {wires['q']} is clocked by something other "
                               "than clk")
        low = (0,) * len(clk)
        width = line.width
        unknown = (X,) * len(free)

        def canonical(regs: tuple, count: int, fifo: tuple) -> bytes:
            # names counted from the next enable (a name lives at most K - 1 rows of depth enables:
            # the states are finite without forgetting any)
            rel = tuple((v[1] - count, v[2]) if v.__class__ is tuple else v for v in regs)
            key = (rel, min(count, depth), LineBuffer.digest(fifo, count))
            return hashlib.blake2b(marshal.dumps(key), digest_size=20).digest()

        regs = tuple(X for _ in net.reg_q)
        regs, _ = net.cycle(regs, low + (1, X) + unknown, ())
        seen = {canonical(regs, 0, ())}
        queue = deque([(regs, 0, (), ())])
        while queue:
            regs, count, fifo, trace = queue.popleft()
            for e in (0, 1):
                data = tuple((0, count, b) for b in at) if e else unknown
                nxt, out = net.cycle(regs, low + (0, e) + data, ())
                if e:
                    want = line.output(1, fifo)
                    for b in range(width):
                        if want[b] is not X and out[b] != want[b]:
                            raise LineBufferFailure(
                                f"the line buffer {wires['q']} gives bit {b} as {_word(out[b], count)} at "
                                f"enable {count}, not {_word(want[b], count)} (en per cycle after reset: "
                                f"{''.join(map(str, trace + (e,)))})")
                nfifo = line.push(e, out[width:], fifo, count)
                ncount = count + e
                key = canonical(nxt, ncount, nfifo)
                if key not in seen:
                    if len(seen) >= max_states:
                        raise LineBufferFailure(f"the line buffer {wires['q']} has more than {max_states:,} "
                                                "states")
                    seen.add(key)
                    queue.append((nxt, ncount, nfifo, trace + (e,)))
        return len(seen), len(net.reg_q), round(time.perf_counter() - t0, 3)

    @staticmethod
    def digest(fifo: tuple, base: int) -> tuple:
        """The values kept, counted from the input pixel ``base`` due next (the same at every
        position where the frame looks alike)."""
        return tuple((base - b, rid) for b, rid in fifo)
