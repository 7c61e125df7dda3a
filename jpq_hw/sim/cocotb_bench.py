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

- Stream designs (contract.md section 3) run inside ``stream_tb.v``, a Verilog test bench that
  drives frames with random bubbles and back-pressure at the simulator's speed; the test clocks it
  and checks what it measured (:func:`_run_stream`).

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
    from ..design_folder import DESIGN_DIR_ENV, Design, StreamInterface, pack, read_design, unpack
except ImportError:  # the copy in OUT/tb/, beside design_folder.py
    from design_folder import DESIGN_DIR_ENV, Design, StreamInterface, pack, read_design, unpack

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
    """Every stored vector, bit for bit (combinational, pipelined or stream, as report.json says)."""
    d = read_design(design_dir())
    if isinstance(d.interface, StreamInterface):
        await _run_stream(dut, d)
        return
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


# -- streams (contract.md section 3) -------------------------------------------------------------

STREAM_ERRORS = {1: "a wrong output beat", 2: "an output beat beyond the expected ones",
                 3: "m_valid or m_data changed while a beat waited"}
STREAM_PHASES = {2: "random stalls", 3: "full rate"}


async def _run_stream(tb, d: Design) -> None:
    """Clock ``tb/stream_tb.v`` (which drives the design; its comment says how) until it is done,
    then check what it measured: no error, every beat of both passes taken, and at full rate the
    report's ``latency_cycles`` and ``cycles_per_frame`` exactly."""
    from cocotb.triggers import First, RisingEdge

    iface = d.interface
    n_in = len(d.x) * iface.input.beats
    n_out = len(d.y) * iface.output.beats
    tb._log.info("%s: stream, %d frames of %dx%dx%d, %d-bit in, latency %d, %d cycles per frame", iface.top,
                 len(d.x), iface.input.channels, iface.input.height, iface.input.width, iface.input.bits,
                 iface.latency_cycles, iface.cycles_per_frame)
    # the simulator's own clock (no Python per edge): the bench is all Verilog
    Clock(tb.clk, 10, "ns", impl="gpi").start(start_high=False)
    limit = 10 * (2 * n_in + 2 * n_out + 4 * (iface.latency_cycles + 2 * iface.cycles_per_frame)) + 10_000
    await First(RisingEdge(tb.done), Timer(limit * 10, "ns"))
    problems = []
    if not int(tb.done.value):
        problems.append(f"the test bench did not finish in {limit} cycles (a stalled stream)")
    errors = int(tb.errors.value)
    if errors:
        kind, phase, beat = int(tb.first_error.value), int(tb.first_phase.value), int(tb.first_beat.value)
        what = f"{STREAM_PHASES.get(phase, phase)}: {STREAM_ERRORS.get(kind, kind)}"
        per = iface.output.beats
        if kind == 1:
            port = iface.output.beat
            got = unpack(int(tb.first_got.value), port.count, port.bits, port.signed)
            want = iface.output.frame_beats(d.y[beat // per])[beat % per]
            what += f", frame {beat // per}, beat {beat % per}: expected {want}, got {got}"
        problems.append(f"{errors} errors; the first: {what}")
    if int(tb.beats_out.value) < 2 * n_out and int(tb.done.value):
        problems.append(f"{int(tb.beats_out.value)} output beats of {2 * n_out}")
    latency, gap = int(tb.latency.value), int(tb.max_gap.value)
    if int(tb.done.value) and latency != iface.latency_cycles:
        problems.append(f"full rate: first output {latency} cycles after the first pixel, "
                        f"report.json says latency_cycles {iface.latency_cycles}")
    if gap > iface.cycles_per_frame:
        problems.append(f"full rate: frames started {gap} cycles apart, report.json says cycles_per_frame "
                        f"{iface.cycles_per_frame}")
    tb._log.info("%d cycles for %d pixels; full rate: latency %d cycles, frame starts at most %d cycles apart",
                 int(tb.cycles.value), 2 * n_in, latency, gap)
    if problems:
        raise AssertionError("\n  ".join(problems))
