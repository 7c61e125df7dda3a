"""cocotb test module: checks a lowered design bit for bit against its stored test vectors.

The design folder (contract.md section 2, :mod:`jpq_hw.design_folder`) is named by the environment
variable ``JPQ_DESIGN_DIR``; without it, the folder above this file is used (so a copy at
``OUT/tb/cocotb_bench.py`` finds ``OUT``). It reads the interface from ``report.json`` (top,
input/output count, bits, signedness, latency, pipelined) and the vectors from ``tb/vectors.json``.

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

This file needs only the standard library, cocotb and ``design_folder.py`` (a copy of which lies
beside it in ``OUT/tb/``), so it can be copied next to a design.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, Timer

try:  # inside the jpq_hw package
    from ..design_folder import DESIGN_DIR_ENV, Design, pack, read_design, unpack
except ImportError:  # the copy in OUT/tb/, beside design_folder.py
    from design_folder import DESIGN_DIR_ENV, Design, pack, read_design, unpack

MAX_REPORTED = 10  # mismatches spelled out in a failure message


def design_dir() -> Path:
    """The design folder: ``$JPQ_DESIGN_DIR``, else the folder above this file."""
    env = os.environ.get(DESIGN_DIR_ENV)
    return Path(env) if env else Path(__file__).resolve().parents[1]


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
        out = d.interface.outputs
        self.want = [pack(v, out.bits, out.signed) for v in d.y]
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
        out = self.d.interface.outputs
        got_el = _elements_of(str(value), out.count, out.bits, out.signed) if got is None \
            else unpack(got, out.count, out.bits, out.signed)
        for j, (e, g) in enumerate(zip(self.d.y[idx], got_el)):
            if e != g:
                self.error(f"vector {idx}, y[{j}]: expected {e}, got {g}{when}")
                return  # one message per vector; the count is per vector

    def finish(self, n_checked: int) -> None:
        if self.n_bad:
            more = f"\n  ... and {self.n_bad - len(self.errors)} more" if self.n_bad > len(self.errors) else ""
            raise AssertionError(f"{self.n_bad} of {n_checked} checks failed:\n  "
                                 + "\n  ".join(self.errors) + more)


def _check_widths(dut, d: Design) -> None:
    iface = d.interface
    for name, port in (("x", iface.inputs), ("y", iface.outputs)):
        width = len(getattr(dut, name))
        assert width == port.width, \
            f"{iface.top}.{name} is {width} bits wide, report.json says {port.count} x {port.bits}"


def _load(dut) -> Design:
    d = read_design(design_dir())
    _check_widths(dut, d)
    i = d.interface
    dut._log.info("%s: %d vectors, %d x %d-bit in, %d x %d-bit out, %s", i.top, len(d.x), i.inputs.count,
                  i.inputs.bits, i.outputs.count, i.outputs.bits,
                  f"pipelined, latency {i.latency_cycles}" if i.pipelined else "combinational")
    return d


@cocotb.test()
async def test_vectors(dut) -> None:
    """Every stored vector, bit for bit (combinational or pipelined, as report.json says)."""
    d = _load(dut)
    if d.interface.pipelined:
        await _run_pipelined(dut, d)
    else:
        await _run_combinational(dut, d)


def _packed_inputs(dut, d: Design) -> list[int]:
    """Packed ``x`` words, as negative ints where the port is declared signed (cocotb checks the
    range of an int against the port's signedness)."""
    port = d.interface.inputs
    xs = [pack(v, port.bits, port.signed) for v in d.x]
    if dut.x.is_signed:
        width = port.width
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
    latency = d.interface.latency_cycles
    sched = _schedule(len(xs), latency)
    rng = random.Random(1)
    width_in = d.interface.inputs.width
    dut.in_valid.value = 0
    dut.x.value = 0
    Clock(dut.clk, 10, "ns").start(start_high=False)
    n_checked = 0
    for t, idx in enumerate(sched):
        await FallingEdge(dut.clk)
        # Sample what the rising edge before this one produced: the result of cycle t - latency.
        if t >= latency:  # before that, the pipeline still holds state from before cycle 0
            expect = sched[t - latency]
            ov = dut.out_valid.value
            n_checked += 1
            if not ov.is_resolvable:
                chk.error(f"cycle {t}: out_valid is {ov}")
            elif expect is None and int(ov):
                chk.error(f"cycle {t}: out_valid high, but in_valid was low {latency} cycles earlier")
            elif expect is not None and not int(ov):
                chk.error(f"vector {expect}: out_valid low {latency} cycles after its input (cycle {t})")
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
