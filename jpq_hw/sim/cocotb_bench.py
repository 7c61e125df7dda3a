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

class _StreamBench:
    """Drives ``s_*`` and ``m_ready`` at each falling edge and reads what the next rising edge
    transfers; checks every output beat in order and the AXI4-Stream rules on the output."""

    def __init__(self, dut, d: Design, rng: random.Random):
        self.dut, self.d, self.rng = dut, d, rng
        i = d.interface
        self.fin, self.fout = i.input, i.output
        self.errors: list[str] = []
        self.n_bad = 0
        self.cycle = 0
        self.held = None  # (m_data) of a beat that was offered and not taken

    def error(self, msg: str) -> None:
        self.n_bad += 1
        if len(self.errors) < MAX_REPORTED:
            self.errors.append(msg)

    def in_words(self, frames) -> list[int]:
        return [pack(b, self.fin.bits, self.fin.signed) for f in frames for b in self.fin.frame_beats(f)]

    def out_words(self, frames) -> list[tuple[int, int, list[int]]]:
        """(frame, beat, elements) of every expected output beat, in order."""
        return [(fi, k, b) for fi, f in enumerate(frames) for k, b in enumerate(self.fout.frame_beats(f))]

    async def run(self, words: list[int], expect: list, p_valid: float, p_ready: float, tag: str,
                  drain: int) -> tuple[list[int], list[int]]:
        """Send ``words``; returns the cycles at which each input beat and each output beat moved.
        Stops ``drain`` cycles after the last expected output beat (extra beats are errors)."""
        dut = self.dut
        sent: list[int] = []
        got: list[int] = []
        offering = False
        idle_after = None
        while True:
            # this cycle's source and sink
            if not offering and len(sent) < len(words) and self.rng.random() < p_valid:
                offering = True
                dut.s_data.value = words[len(sent)]
            dut.s_valid.value = int(offering)
            if not offering:
                dut.s_data.value = self.rng.getrandbits(len(dut.s_data))
            ready = self.rng.random() < p_ready
            dut.m_ready.value = int(ready)
            await Timer(1, "ns")
            mv = dut.m_valid.value
            if not mv.is_resolvable:
                self.error(f"{tag} cycle {self.cycle}: m_valid is {mv}")
                mv = 0
            mv = int(mv)
            if self.held is not None and (not mv or dut.m_data.value != self.held):
                self.error(f"{tag} cycle {self.cycle}: m_valid or m_data changed before the beat was taken")
            self.held = dut.m_data.value if mv and not ready else None
            if mv and ready:
                n = len(got)
                got.append(self.cycle)
                if n >= len(expect):
                    self.error(f"{tag} cycle {self.cycle}: an output beat beyond the {len(expect)} expected")
                else:
                    self._check_beat(expect[n], dut.m_data.value, tag)
            if offering and int(dut.s_ready.value):
                sent.append(self.cycle)
                offering = False
            await FallingEdge(dut.clk)
            self.cycle += 1
            if len(got) >= len(expect) and len(sent) == len(words):
                idle_after = self.cycle if idle_after is None else idle_after
                if self.cycle - idle_after >= drain:
                    return sent, got
            if self.cycle > 100 * (len(words) + len(expect)) + 10000:
                self.error(f"{tag}: stalled: {len(sent)} of {len(words)} beats sent, "
                           f"{len(got)} of {len(expect)} received")
                return sent, got

    def _check_beat(self, exp, value, tag: str) -> None:
        fi, k, want = exp
        port = self.fout.beat
        try:
            word = value.to_unsigned()
        except ValueError:
            word = None
        if word is not None and word == pack(want, port.bits, port.signed):
            return
        got = unpack(word, port.count, port.bits, port.signed) if word is not None else str(value)
        self.error(f"{tag}: frame {fi}, beat {k}: expected {want}, got {got}")

    def finish(self) -> None:
        if self.n_bad:
            more = f"\n  ... and {self.n_bad - len(self.errors)} more" if self.n_bad > len(self.errors) else ""
            raise AssertionError(f"{self.n_bad} stream checks failed:\n  " + "\n  ".join(self.errors) + more)


async def _run_stream(dut, d: Design) -> None:
    """A reset in the middle of a frame; then every frame with random bubbles on the input and
    random back-pressure on the output; then every frame back to back at full rate from an idle
    design, where the first output must come ``latency_cycles`` after the first pixel and no two
    frames may start more than ``cycles_per_frame`` cycles apart (the report's figures, exactly)."""
    iface = d.interface
    for name, width in (("s_data", iface.input.beat.width), ("m_data", iface.output.beat.width)):
        assert len(getattr(dut, name)) == width, f"{iface.top}.{name} is {len(getattr(dut, name))} bits, " \
                                                 f"report.json says {width}"
    dut._log.info("%s: stream, %d frames of %dx%dx%d, %d-bit in, latency %d, %d cycles per frame", iface.top,
                  len(d.x), iface.input.channels, iface.input.height, iface.input.width, iface.input.bits,
                  iface.latency_cycles, iface.cycles_per_frame)
    rng = random.Random(1)
    bench = _StreamBench(dut, d, rng)
    dut.rst.value = 1
    dut.s_valid.value = 0
    dut.m_ready.value = 0
    dut.s_data.value = 0
    Clock(dut.clk, 10, "ns").start(start_high=False)
    for _ in range(3):
        await FallingEdge(dut.clk)
    dut.rst.value = 0
    # part of a frame, then a reset: the next beat must start a frame again
    words = bench.in_words(d.x[:1])
    for w in words[:len(words) // 2 + 1]:
        dut.s_valid.value = 1
        dut.s_data.value = w
        dut.m_ready.value = rng.getrandbits(1)
        await FallingEdge(dut.clk)
    dut.s_valid.value = 0
    dut.rst.value = 1
    await FallingEdge(dut.clk)
    dut.rst.value = 0
    drain = iface.latency_cycles + 2 * iface.cycles_per_frame + 20
    await bench.run(bench.in_words(d.x), bench.out_words(d.y), 0.7, 0.6, "random stalls", drain)
    sent, got = await bench.run(bench.in_words(d.x), bench.out_words(d.y), 1.0, 1.0, "full rate", drain)
    n = iface.input.beats
    starts = sent[::n]
    if sent and got:
        latency = got[0] - sent[0]
        if latency != iface.latency_cycles:
            bench.error(f"full rate: first output {latency} cycles after the first pixel, "
                        f"report.json says latency_cycles {iface.latency_cycles}")
        gaps = [b - a for a, b in zip(starts, starts[1:])]
        if gaps and max(gaps) > iface.cycles_per_frame:
            bench.error(f"full rate: frames started {max(gaps)} cycles apart, "
                        f"report.json says cycles_per_frame {iface.cycles_per_frame}")
        dut._log.info("full rate: latency %d cycles, frame starts %s cycles apart", latency, sorted(set(gaps)))
    bench.finish()
