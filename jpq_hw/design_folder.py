"""The design folder that ``jpq-hw lower`` writes, and what its readers may rely on.

The one description of the folder for both sides: the writer (:mod:`jpq_hw.flow`,
:mod:`jpq_hw.report`) and every reader (the cocotb bench, the simulation runner, ``run_tb.py``,
outside tools). Layout (contract.md section 2)::

    OUT/rtl/TOP.v             the design: every Verilog file it needs, and nothing else
    OUT/report.json           machine-readable figures; the interface fields are :class:`Interface`
    OUT/report.md             the same for a person
    OUT/tb/vectors.json       {"x": [[int, ...], ...], "y": [[int, ...], ...]}: inputs, reference outputs
    OUT/tb/cocotb_bench.py    the cocotb test, and run_tb.py, which builds and runs it
    OUT/tb/stream_tb.v        a stream design's Verilog test bench (source, sink, checks), which
                              the cocotb test clocks (:func:`simulation`)
    OUT/tb/design_folder.py   a copy of this module, which both of them import
    OUT/synth/synth_ice40.ys  a yosys script (synth_ecp5.ys for --target ecp5)
    OUT/build/NAME/           what jpq-hw synth built (bitstream, logs, synth_report.json)

Buses are packed as contract.md section 2 says: element ``i`` at bits ``[i*B +: B]``, element 0 at
the least significant end, two's complement where signed (:func:`pack`, :func:`unpack`).

This module needs the standard library alone: it is copied next to the test bench so that a design
folder can be simulated without jpq-hw.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

RTL_DIR = "rtl"
REPORT_JSON = "report.json"
REPORT_MD = "report.md"
TB_DIR = "tb"
VECTORS_JSON = "tb/vectors.json"
SYNTH_DIR = "synth"
DESIGN_DIR_ENV = "JPQ_DESIGN_DIR"  # names the design folder to the cocotb bench (else: the folder above it)
TB_FILES = {"cocotb_bench.py": "jpq_hw.sim", "run_tb.py": "jpq_hw.sim",  # copied into OUT/tb/ from these packages
            "stream_tb.v": "jpq_hw.sim", "design_folder.py": "jpq_hw"}
STREAM_TB = "tb/stream_tb.v"  # the Verilog test bench of a stream design (module jpq_stream_tb)


@dataclass(frozen=True)
class Port:
    """One bus: ``count`` elements of ``bits`` bits, two's complement where ``signed``."""

    count: int
    bits: int
    signed: bool

    @property
    def width(self) -> int:
        return self.count * self.bits

    def to_json(self) -> dict:
        return {"count": self.count, "bits": self.bits, "signed": self.signed}

    @classmethod
    def from_json(cls, d: dict) -> "Port":
        return cls(int(d["count"]), int(d["bits"]), bool(d["signed"]))


@dataclass(frozen=True)
class Interface:
    """The hardware interface of a flat-vector design (contract.md section 2), as ``report.json``
    states it: module ``top`` with ``x`` (``inputs``) and ``y`` (``outputs``); when ``pipelined``,
    also ``clk``, ``in_valid`` and ``out_valid``, results ``latency_cycles`` cycles after their input."""

    top: str
    inputs: Port
    outputs: Port
    pipelined: bool = False
    latency_cycles: int = 0

    KIND = "flat"  # report.json's "interface" (contract.md section 3 adds "stream")

    def to_report(self) -> dict:
        """The fields of ``report.json`` that state the interface."""
        return {"top": self.top, "interface": self.KIND, "inputs": self.inputs.to_json(),
                "outputs": self.outputs.to_json(), "pipelined": self.pipelined, "latency_cycles": self.latency_cycles}

    @classmethod
    def from_report(cls, report: dict) -> "Interface":
        """The interface a ``report.json`` states; a ValueError names what is missing or wrong."""
        kind = report.get("interface", cls.KIND)
        if kind != cls.KIND:
            raise ValueError(f"report.json: interface {kind!r}, not {cls.KIND!r}")
        try:
            iface = cls(str(report["top"]), Port.from_json(report["inputs"]), Port.from_json(report["outputs"]),
                        bool(report.get("pipelined", False)), int(report.get("latency_cycles", 0)))
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"report.json: missing or malformed interface field "
                             f"({e.__class__.__name__}: {e})") from None
        if iface.pipelined and iface.latency_cycles < 1:
            raise ValueError("report.json: a pipelined design needs latency_cycles >= 1")
        return iface


@dataclass(frozen=True)
class FramePort:
    """One side of a stream: frames of ``channels x height x width`` elements of ``bits`` bits,
    one pixel (all channels) per beat (contract.md section 3)."""

    channels: int
    height: int
    width: int
    bits: int
    signed: bool

    @property
    def beat(self) -> Port:
        """The elements of one beat."""
        return Port(self.channels, self.bits, self.signed)

    @property
    def beats(self) -> int:
        """Beats per frame."""
        return self.height * self.width

    def to_json(self) -> dict:
        return {"channels": self.channels, "height": self.height, "width": self.width, "bits": self.bits,
                "signed": self.signed}

    @classmethod
    def from_json(cls, d: dict) -> "FramePort":
        return cls(int(d["channels"]), int(d["height"]), int(d["width"]), int(d["bits"]), bool(d["signed"]))

    def frame_beats(self, frame: Sequence[int]) -> list[list[int]]:
        """The beats of one frame given in [C, H, W] order: a list of pixels in raster order."""
        n = self.beats
        return [[int(frame[ch * n + k]) for ch in range(self.channels)] for k in range(n)]


@dataclass(frozen=True)
class StreamInterface:
    """The hardware interface of an image design (contract.md section 3), as ``report.json`` states
    it: module ``top`` with ``clk``, ``rst``, ``s_valid`` / ``s_ready`` / ``s_data`` and
    ``m_valid`` / ``m_ready`` / ``m_data``."""

    top: str
    input: FramePort
    output: FramePort
    latency_cycles: int
    cycles_per_frame: int

    KIND = "stream"

    def to_report(self) -> dict:
        return {"top": self.top, "interface": self.KIND, "input": self.input.to_json(),
                "output": self.output.to_json(), "latency_cycles": self.latency_cycles,
                "cycles_per_frame": self.cycles_per_frame}

    @classmethod
    def from_report(cls, report: dict) -> "StreamInterface":
        if report.get("interface") != cls.KIND:
            raise ValueError(f"report.json: interface {report.get('interface')!r}, not {cls.KIND!r}")
        try:
            return cls(str(report["top"]), FramePort.from_json(report["input"]), FramePort.from_json(report["output"]),
                       int(report["latency_cycles"]), int(report["cycles_per_frame"]))
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"report.json: missing or malformed interface field "
                             f"({e.__class__.__name__}: {e})") from None


def interface_from_report(report: dict) -> "Interface | StreamInterface":
    """The interface ``report.json`` states, flat or stream."""
    return StreamInterface.from_report(report) if report.get("interface") == StreamInterface.KIND \
        else Interface.from_report(report)


@dataclass
class Design:
    """What a test bench reads from a design folder: its interface and its test vectors (for a
    stream, one vector per frame: the input frame and the output frame, each in [C, H, W] order)."""

    interface: "Interface | StreamInterface"
    x: list[list[int]]
    y: list[list[int]]


def rtl_files(root: str | Path) -> list[Path]:
    """The design's Verilog files, sorted."""
    return sorted((Path(root) / RTL_DIR).glob("*.v"))


def write_vectors(root: str | Path, x: Sequence[Sequence[int]], y: Sequence[Sequence[int]]) -> None:
    """``tb/vectors.json``: lists of Python ints (``x`` and ``y`` may be integer numpy arrays)."""
    data = {"x": [[int(v) for v in row] for row in x], "y": [[int(v) for v in row] for row in y]}
    (Path(root) / VECTORS_JSON).write_text(json.dumps(data, separators=(",", ":")) + "\n")


def read_design(root: str | Path) -> Design:
    """Read and cross-check ``report.json`` and ``tb/vectors.json`` under ``root``."""
    root = Path(root)
    iface = interface_from_report(json.loads((root / REPORT_JSON).read_text()))
    vec = json.loads((root / VECTORS_JSON).read_text())
    x, y = vec["x"], vec["y"]
    if not x:
        raise ValueError("vectors.json holds no vectors")
    if len(x) != len(y):
        raise ValueError(f"vectors.json: {len(x)} inputs but {len(y)} outputs")
    if isinstance(iface, StreamInterface):
        n_in = iface.input.channels * iface.input.beats
        n_out = iface.output.channels * iface.output.beats
    else:
        n_in, n_out = iface.inputs.count, iface.outputs.count
    for i, (xv, yv) in enumerate(zip(x, y)):
        if len(xv) != n_in or len(yv) != n_out:
            raise ValueError(f"vectors.json: vector {i} has {len(xv)} inputs / {len(yv)} outputs, "
                             f"report.json says {n_in} / {n_out}")
    return Design(iface, x, y)


def _fields(count: int, bits: int | Sequence[int], signed: bool | Sequence[bool]) -> list[tuple[int, bool]]:
    widths = [bits] * count if isinstance(bits, int) else list(bits)
    signs = [signed] * count if isinstance(signed, bool) else list(signed)
    if len(widths) != count or len(signs) != count:
        raise ValueError(f"{count} elements but {len(widths)} widths and {len(signs)} signs")
    return list(zip(widths, signs))


def pack(values: Sequence[int], bits: int | Sequence[int], signed: bool | Sequence[bool]) -> int:
    """Pack ``values`` into one unsigned word, element 0 at the least significant end.

    ``bits`` and ``signed`` are one for every element or one per element (a 0-bit element must be 0
    and takes no bits). Raises ValueError for a value that does not fit (no silent wrap-around).
    """
    word, pos = 0, 0
    for i, (v, (b, s)) in enumerate(zip(values, _fields(len(values), bits, signed))):
        lo, hi = (-(1 << (b - 1)), (1 << (b - 1)) - 1) if s and b else (0, (1 << b) - 1)
        if not lo <= v <= hi:
            raise ValueError(f"element {i} = {v} does not fit {b}-bit {'signed' if s else 'unsigned'}")
        word |= (v & ((1 << b) - 1)) << pos
        pos += b
    return word


def unpack(word: int, count: int, bits: int | Sequence[int], signed: bool | Sequence[bool]) -> list[int]:
    """Inverse of :func:`pack`: ``count`` elements of ``word``."""
    out = []
    for b, s in _fields(count, bits, signed):
        v = word & ((1 << b) - 1)
        out.append(v - (1 << b) if s and b and v >> (b - 1) else v)
        word >>= b
    return out


@dataclass
class Simulation:
    """What a simulator builds and runs for a design folder (:func:`simulation`)."""

    sources: list[Path]
    toplevel: str
    parameters: dict
    defines: dict
    plusargs: list[str]
    long_run: bool = False  # enough cycles that an optimised simulator build pays for itself


STREAM_DRAIN = 20  # idle cycles a stream test bench waits after its last beat, beyond a frame's worth
LONG_RUN_PIXELS = 100_000  # pixels streamed (both passes) from which a simulation is a long run


def simulation(root: str | Path, build_dir: str | Path) -> Simulation:
    """The sources, toplevel, parameters and plusargs that simulate the design in ``root``.

    A flat design is its own toplevel. A stream design runs inside ``tb/stream_tb.v``, which reads
    its frames and expected beats from hex files that this writes into ``build_dir`` from
    ``tb/vectors.json``."""
    root, build_dir = Path(root).resolve(), Path(build_dir).resolve()
    d = read_design(root)
    iface = d.interface
    if not isinstance(iface, StreamInterface):
        return Simulation(rtl_files(root), iface.top, {}, {}, [])
    build_dir.mkdir(parents=True, exist_ok=True)
    fin, fout = iface.input, iface.output
    beats_in = [pack(b, fin.bits, fin.signed) for f in d.x for b in fin.frame_beats(f)]
    beats_out = [pack(b, fout.bits, fout.signed) for f in d.y for b in fout.frame_beats(f)]
    frames, want = build_dir / "frames.hex", build_dir / "want.hex"
    frames.write_text("".join(f"{w:x}\n" for w in beats_in))
    want.write_text("".join(f"{w:x}\n" for w in beats_out))
    params = {"IN_W": fin.beat.width, "OUT_W": fout.beat.width, "N_IN": len(beats_in), "N_OUT": len(beats_out),
              "BEATS_IN": fin.beats, "DRAIN": iface.latency_cycles + 2 * iface.cycles_per_frame + STREAM_DRAIN}
    return Simulation(rtl_files(root) + [root / STREAM_TB], "jpq_stream_tb", params, {"JPQ_TOP": iface.top},
                      [f"+jpq_frames={frames}", f"+jpq_expect={want}"], 2 * len(beats_in) >= LONG_RUN_PIXELS)
