"""cocotb test module: checks a lowered design bit for bit against its stored test vectors.

The design folder (contract.md section 2) is named by the environment variable ``JPQ_DESIGN_DIR``;
without it, the folder above this file is used (so a copy at ``OUT/tb/cocotb_bench.py`` finds
``OUT``). It reads ``report.json`` (top, input/output count, bits, signedness, latency, pipelined)
and ``tb/vectors.json`` (``x`` and ``y``, lists of Python ints).

- Combinational designs: every vector is applied to ``x``; after 1 ns ``y`` is compared exactly.
- Pipelined designs (``clk``, ``in_valid``, ``out_valid``): a 10 ns clock runs; inputs are driven
  and outputs sampled at each falling edge. After ``latency_cycles`` priming cycles with
  ``in_valid`` low, every vector is streamed back to back, then a prefix of them again with bubbles
  (``in_valid`` low for 1..3 cycles, and one gap longer than the pipeline), then the pipeline
  drains. ``out_valid`` must equal ``in_valid`` of exactly ``latency_cycles`` cycles earlier on every
  sampled cycle after priming, and ``y`` must match whenever it is high. During bubbles ``x`` carries
  random bits, which must not leak into valid results.

Outputs are compared as packed words; only a mismatching word is unpacked, so thousands of vectors
on buses thousands of bits wide stay fast. All mismatches are counted; the failure message lists
the first few as ``vector I, y[J]: expected E, got G``.

This file needs only the standard library and cocotb, so it can be copied next to a design.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, Timer

ENV_VAR = "JPQ_DESIGN_DIR"
MAX_REPORTED = 10  # mismatches spelled out in a failure message


@dataclass
class Design:
    """What the bench needs from ``report.json`` and ``tb/vectors.json``."""

    top: str
    n_in: int
    b_in: int
    s_in: bool
    n_out: int
    b_out: int
    s_out: bool
    latency: int
    pipelined: bool
    x: list[list[int]]
    y: list[list[int]]


def design_dir() -> Path:
    """The design folder: ``$JPQ_DESIGN_DIR``, else the folder above this file."""
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else Path(__file__).resolve().parents[1]


def load_design(root: Path) -> Design:
    """Read and cross-check ``report.json`` and ``tb/vectors.json`` under ``root``."""
    rep = json.loads((root / "report.json").read_text())
    vec = json.loads((root / "tb" / "vectors.json").read_text())
    ins, outs = rep["inputs"], rep["outputs"]
    d = Design(top=rep["top"], n_in=int(ins["count"]), b_in=int(ins["bits"]), s_in=bool(ins["signed"]),
               n_out=int(outs["count"]), b_out=int(outs["bits"]), s_out=bool(outs["signed"]),
               latency=int(rep.get("latency_cycles", 0)), pipelined=bool(rep.get("pipelined", False)),
               x=vec["x"], y=vec["y"])
    if not d.x:
        raise ValueError("vectors.json holds no vectors")
    if len(d.x) != len(d.y):
        raise ValueError(f"vectors.json: {len(d.x)} inputs but {len(d.y)} outputs")
    for i, (xv, yv) in enumerate(zip(d.x, d.y)):
        if len(xv) != d.n_in or len(yv) != d.n_out:
            raise ValueError(f"vectors.json: vector {i} has {len(xv)} inputs / {len(yv)} outputs, "
                             f"report.json says {d.n_in} / {d.n_out}")
    if d.pipelined and d.latency < 1:
        raise ValueError("report.json: a pipelined design needs latency_cycles >= 1")
    return d


def pack(values: list[int], bits: int, signed: bool) -> int:
    """Pack ``values`` into one unsigned word, element ``i`` at bits ``[i*bits +: bits]``.

    Raises ValueError for a value that does not fit (no silent wrap-around).
    """
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    mask, word = (1 << bits) - 1, 0
    for i in range(len(values) - 1, -1, -1):
        v = values[i]
        if not lo <= v <= hi:
            raise ValueError(f"element {i} = {v} does not fit {bits}-bit {'signed' if signed else 'unsigned'}")
        word = (word << bits) | (v & mask)
    return word


def unpack(word: int, count: int, bits: int, signed: bool) -> list[int]:
    """Inverse of :func:`pack`."""
    mask, half = (1 << bits) - 1, 1 << (bits - 1)
    out = []
    for _ in range(count):
        v = word & mask
        out.append(v - (1 << bits) if signed and v & half else v)
        word >>= bits
    return out


def _elements_of(binstr: str, count: int, bits: int, signed: bool) -> list[int | str]:
    """Split an MSB-first bit string into elements; elements holding X/Z stay strings."""
    width = count * bits
    out: list[int | str] = []
    for i in range(count):
        s = binstr[width - (i + 1) * bits: width - i * bits]
        out.append(unpack(int(s, 2), 1, bits, signed)[0] if set(s) <= {"0", "1"} else s)
    return out


class _Checker:
    """Compares sampled ``y`` words with expected vectors and collects mismatch messages."""

    def __init__(self, d: Design):
        self.d = d
        self.want = [pack(v, d.b_out, d.s_out) for v in d.y]
        self.errors: list[str] = []
        self.n_bad = 0

    def error(self, msg: str) -> None:
        self.n_bad += 1
        if len(self.errors) < MAX_REPORTED:
            self.errors.append(msg)

    def check_y(self, idx: int, value, when: str = "") -> None:
        """``value`` is ``dut.y.value`` (a LogicArray) sampled for vector ``idx``."""
        try:
            got = value.to_unsigned()
        except ValueError:  # X or Z somewhere
            got = None
        if got == self.want[idx]:
            return
        d = self.d
        got_el = _elements_of(str(value), d.n_out, d.b_out, d.s_out) if got is None \
            else unpack(got, d.n_out, d.b_out, d.s_out)
        for j, (e, g) in enumerate(zip(d.y[idx], got_el)):
            if e != g:
                self.error(f"vector {idx}, y[{j}]: expected {e}, got {g}{when}")
                return  # one message per vector; the count is per vector

    def finish(self, n_checked: int) -> None:
        if self.n_bad:
            more = f"\n  ... and {self.n_bad - len(self.errors)} more" if self.n_bad > len(self.errors) else ""
            raise AssertionError(f"{self.n_bad} of {n_checked} checks failed:\n  "
                                 + "\n  ".join(self.errors) + more)


def _check_widths(dut, d: Design) -> None:
    for name, n, b in (("x", d.n_in, d.b_in), ("y", d.n_out, d.b_out)):
        width = len(getattr(dut, name))
        assert width == n * b, f"{d.top}.{name} is {width} bits wide, report.json says {n} x {b}"


def _load(dut) -> Design:
    d = load_design(design_dir())
    _check_widths(dut, d)
    dut._log.info("%s: %d vectors, %d x %d-bit in, %d x %d-bit out, %s", d.top, len(d.x), d.n_in,
                  d.b_in, d.n_out, d.b_out,
                  f"pipelined, latency {d.latency}" if d.pipelined else "combinational")
    return d


@cocotb.test()
async def test_vectors(dut) -> None:
    """Every stored vector, bit for bit (combinational or pipelined, as report.json says)."""
    d = _load(dut)
    if d.pipelined:
        await _run_pipelined(dut, d)
    else:
        await _run_combinational(dut, d)


def _packed_inputs(dut, d: Design) -> list[int]:
    """Packed ``x`` words, as negative ints where the port is declared signed (cocotb checks the
    range of an int against the port's signedness)."""
    xs = [pack(v, d.b_in, d.s_in) for v in d.x]
    if dut.x.is_signed:
        width = d.n_in * d.b_in
        xs = [w - (1 << width) if w >> (width - 1) else w for w in xs]
    return xs


async def _run_combinational(dut, d: Design) -> None:
    chk = _Checker(d)
    xs = _packed_inputs(dut, d)
    for i, xw in enumerate(xs):
        dut.x.value = xw
        await Timer(1, "ns")
        chk.check_y(i, dut.y.value)
    chk.finish(len(xs))


def _schedule(n: int, latency: int) -> list[int | None]:
    """Per cycle, the vector index driven with ``in_valid`` high, or None for a bubble.

    Priming (``latency`` bubbles), all vectors back to back, then the first few again with bubbles
    of 1..3 cycles and one gap of ``latency + 2`` cycles, then ``latency + 1`` drain bubbles.
    """
    sched: list[int | None] = [None] * latency + list(range(n))
    replay = min(n, 24)
    for k in range(replay):
        sched.append(k)
        sched += [None] * (latency + 2 if k == replay // 2 else k % 4)
    return sched + [None] * (latency + 1)


async def _run_pipelined(dut, d: Design) -> None:
    chk = _Checker(d)
    xs = _packed_inputs(dut, d)
    sched = _schedule(len(xs), d.latency)
    rng = random.Random(1)
    width_in = d.n_in * d.b_in
    dut.in_valid.value = 0
    dut.x.value = 0
    Clock(dut.clk, 10, "ns").start(start_high=False)
    n_checked = 0
    for t, idx in enumerate(sched):
        await FallingEdge(dut.clk)
        # Sample what the rising edge before this one produced: the result of cycle t - latency.
        if t >= d.latency:  # before that, the pipeline still holds state from before cycle 0
            expect = sched[t - d.latency]
            ov = dut.out_valid.value
            n_checked += 1
            if not ov.is_resolvable:
                chk.error(f"cycle {t}: out_valid is {ov}")
            elif expect is None and int(ov):
                chk.error(f"cycle {t}: out_valid high, but in_valid was low {d.latency} cycles earlier")
            elif expect is not None and not int(ov):
                chk.error(f"vector {expect}: out_valid low {d.latency} cycles after its input (cycle {t})")
            elif expect is not None:
                chk.check_y(expect, dut.y.value, f" (cycle {t})")
        # Drive the input for this cycle; the next rising edge captures it.
        if idx is None:
            dut.in_valid.value = 0
            dut.x.value = rng.getrandbits(width_in - 1)  # fits a signed port too
        else:
            dut.in_valid.value = 1
            dut.x.value = xs[idx]
    chk.finish(n_checked)
