"""The per-pixel functions of the stages without weights -- a ``hamming_cost``'s costs and an
``argmin``'s winner -- and the column sums of a ``box_sum``'s window, proven by SAT equal to the
contract's formulas, for every input.

Each such stage computes its function between named wires, as a graph's kernel does: the Verilog
backend instantiates ``{top}_hamming_cost`` / ``{top}_argmin_tree`` as ``u<i>_kernel`` (ports
``x``, ``y`` and, for the tree, ``clk`` and ``en``), the Amaranth backend names the wires
``s<i>_kernel_x`` / ``_y`` / ``_en`` (:func:`~jpq_hw.hdl.amaranth_stream.kernel_wire`). The function
is cut out of yosys's flat netlist there (:func:`~.netlist.cut_module`: the cells between those
wires and nothing else); it may read nothing else.

A pipelined argmin tree (``--pipeline N``): every register must load only where ``en`` is high
(its ``D`` a ``$mux`` between its own ``Q`` and the new value, selected by ``en``) and every path
from ``x`` to ``y`` must cross the same number of registers, the stage's ``kernel_latency``. Such a
pipeline computes, counted in cycles where ``en`` is high, the function its registers read as
wires compute; that function is what is proven (the plumbing proof, :mod:`.plumbing`, checks
that the stage takes each result ``kernel_latency`` enables after its pixel).

The function, registers read as wires, is written as a yosys JSON module and compared in a miter
with the contract's formula, written out in Verilog here from contract.md (not from the
generated RTL); ``sat -prove ok 1`` proves them equal for every ``x``, or shows an ``x`` where they
differ:

- ``hamming_cost`` (``F`` features, ``D`` disparities, ``OB`` output bits): ``x`` holds the left
  features of the pixel (bits ``0..F-1``), the right features of columns ``c, c-1, ..., c-D+1``
  (``F`` bits each, from bit ``F``) and which of those columns lie in the row (``D`` bits, from bit
  ``F + D*F``); output channel ``d`` is ``min(popcount(left XOR right_d), 2**OB - 1)`` where column
  ``c - d`` lies in the row, else ``min(F, 2**OB - 1)``. Which columns ``x`` holds is the plumbing's
  part.
- ``argmin`` (``D`` channels of ``B`` bits): ``y`` is the first ``d`` where ``x_d`` is the least
  (two's complement where the input is signed).
- ``box_sum`` (a ``k x k`` box over ``C`` channels): its window's column sums, cut at
  ``u<i>_window.g_sum.terms`` / ``.entering`` (Verilog backend) or ``s<i>_colsum_x`` / ``_y``
  (Amaranth): channel ``i`` of ``y`` is the sum, modulo ``2**SB``, of the ``k`` terms ``x`` holds for
  it (``SB`` bits each); and ``SB`` bits hold every sum of ``k`` values of the input's format, so the
  sums are exact. Which rows the terms are (the entering column's, extended, 0 outside the frame)
  is the plumbing's part.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ..hdl.stream_verilog import column_sum_bits_of
from ..ir.qnet import IntFormat
from ..synth.yosys import find_yosys
from .netlist import NetlistError, _quote, cut_module, read_netlist_json

SAT_TIMEOUT = 600  # seconds yosys's solver may spend on one stage's function
KINDS = ("hamming_cost", "argmin", "box_sum")  # a box_sum's function: its window's column sums


class FunctionFailure(Exception):
    """A stage's function differs from the contract's formula (``x``: an input that shows it, as
    an integer, where SAT gave one)."""

    def __init__(self, msg: str, x: int | None = None):
        super().__init__(msg)
        self.x = x


@dataclass
class FunctionProof:
    """A stage's per-pixel function, proven equal to the contract's formula for every input."""

    kind: str
    formula: str       # the formula, in words
    input_bits: int
    output_bits: int
    latency: int       # register stages (counted in enables) on every path from x to y
    seconds: float


def boundary_wire(report: dict, index: int, port: str) -> str:
    """The wire at stage ``index``'s function (or graph kernel) boundary: ``port`` "x", "y", "en"."""
    if report.get("backend") == "amaranth":
        from ..hdl.amaranth_stream import kernel_wire
        return kernel_wire(index, port)
    inst = "dense" if report["layers"][index]["kind"] == "dense" else "kernel"
    return f"u{index}_{inst}.{port}"


def column_sum_wire(report: dict, index: int, port: str) -> str:
    """The wire at box_sum stage ``index``'s column-sum boundary: ``port`` "x" (the terms of the
    entering column) or "y" (their sums)."""
    if report.get("backend") == "amaranth":
        from ..hdl.amaranth_stream import column_sum_wire as named
        return named(index, port)
    return f"u{index}_window.g_sum.{'terms' if port == 'x' else 'entering'}"


def function_wires(report: dict, index: int) -> dict[str, str]:
    """Port ("x", "y" and, for a pipelined argmin tree, "en") -> wire of stage ``index``'s function."""
    stage = report["layers"][index]
    if stage["kind"] == "box_sum":
        return {p: column_sum_wire(report, index, p) for p in ("x", "y")}
    ports = ("x", "y", "en") if stage.get("kernel_latency", 0) else ("x", "y")
    return {p: boundary_wire(report, index, p) for p in ports}


def function_module(files, report: dict) -> dict:
    """yosys's flat netlist of the design (``proc; flatten``), the function boundaries kept."""
    names = [w for i, st in enumerate(report["layers"]) if st["kind"] in KINDS
             for w in function_wires(report, i).values()]
    keep = " ".join(_quote(f"w:{name}") for name in names)
    with tempfile.TemporaryDirectory(prefix="jpq-verify-", dir=os.path.dirname(os.path.abspath(files[0]))) as tmp:
        return read_netlist_json(files, report["top"], Path(tmp), passes=f"setattr -set keep 1 {keep}" if keep else "")


def _stage_params(stage: dict) -> dict:
    inp, out = stage["input"], stage["output"]
    if stage["kind"] == "hamming_cost":
        return dict(f=inp["channels"] // 2, d=out["channels"], ob=out["bits"])
    if stage["kind"] == "box_sum":
        fmt = IntFormat(int(inp["bits"]), bool(inp["signed"]))
        k = int(stage["kernel"])
        return dict(k=k, c=int(inp["channels"]), fmt=fmt, sb=column_sum_bits_of(k, fmt))
    return dict(d=inp["channels"], b=inp["bits"], signed=bool(inp["signed"]), ob=out["bits"])


def formula(stage: dict) -> str:
    p = _stage_params(stage)
    if stage["kind"] == "box_sum":
        return (f"each of {p['c']} column sums the sum of {p['k']} terms of {p['sb']} bits, exact for any "
                f"{p['k']} values of the {p['fmt'].bits}-bit {'signed' if p['fmt'].signed else 'unsigned'} input")
    if stage["kind"] == "hamming_cost":
        return (f"min(popcount(left XOR right_d), {2 ** p['ob'] - 1}) for {p['d']} disparities of {p['f']} features, "
                f"min({p['f']}, {2 ** p['ob'] - 1}) outside the row")
    return f"the first of {p['d']} {'signed' if p['signed'] else 'unsigned'} {p['b']}-bit channels holding the least"


def reference_verilog(stage: dict) -> tuple[str, int, int]:
    """The contract's formula of ``stage`` as Verilog module ``jpq_ref`` (ports ``x``, ``y``), with
    the widths of ``x`` and ``y``."""
    p = _stage_params(stage)
    if stage["kind"] == "box_sum":
        k, c, sb, fmt = p["k"], p["c"], p["sb"], p["fmt"]
        lo, hi = k * min(fmt.lo, 0), k * max(fmt.hi, 0)  # any sum of k values of the format (or zeros)
        if not (-(1 << sb - 1) <= lo and hi < 1 << sb - 1 if fmt.signed else hi < 1 << sb):
            raise FunctionFailure(f"its column sums of {sb} bits cannot hold every sum of {k} values, [{lo}, {hi}]")
        lines = [f"module jpq_ref (input wire [{c * k * sb - 1}:0] x, output wire [{c * sb - 1}:0] y);"]
        for i in range(c):
            terms = " + ".join(f"x[{(i * k + j) * sb + sb - 1}:{(i * k + j) * sb}]" for j in range(k))
            lines.append(f"    assign y[{i * sb + sb - 1}:{i * sb}] = {terms};")
        return "\n".join(lines + ["endmodule", ""]), c * k * sb, c * sb
    ob = p["ob"]
    if stage["kind"] == "hamming_cost":
        f, d = p["f"], p["d"]
        xw, yw = f + d * f + d, d * ob
        cw = max(f.bit_length(), ob) + 1
        top = (1 << ob) - 1
        lines = [f"module jpq_ref (input wire [{xw - 1}:0] x, output wire [{yw - 1}:0] y);"]
        for k in range(d):
            terms = " + ".join(f"{{{cw - 1}'d0, x[{j}] ^ x[{f + k * f + j}]}}" for j in range(f))
            lines += [f"    wire [{cw - 1}:0] count{k} = {terms};",
                      f"    wire [{cw - 1}:0] cost{k} = x[{f + d * f + k}] ? count{k} : {cw}'d{f};",
                      f"    assign y[{k * ob + ob - 1}:{k * ob}] = cost{k} > {cw}'d{top} ? {ob}'d{top} : cost{k}[{ob - 1}:0];"]
        return "\n".join(lines + ["endmodule", ""]), xw, yw
    d, b = p["d"], p["b"]
    s = "signed " if p["signed"] else ""
    lines = [f"module jpq_ref (input wire [{d * b - 1}:0] x, output reg [{ob - 1}:0] y);",
             f"    reg {s}[{b - 1}:0] best, v;",
             "    integer k;",
             "    always @(*) begin",
             f"        best = x[{b - 1}:0];",
             f"        y = {ob}'d0;",
             f"        for (k = 1; k < {d}; k = k + 1) begin",
             f"            v = x[k*{b} +: {b}];",
             "            if (v < best) begin",
             "                best = v;",
             "                y = k;",
             "            end",
             "        end",
             "    end",
             "endmodule", ""]
    return "\n".join(lines), d * b, ob


def cut_function(module: dict, report: dict, index: int) -> dict:
    """Stage ``index``'s function cut out of the flat ``module``, its registers (a pipelined
    tree) read as wires after checking the pipeline's rules (see the module notes)."""
    wires = function_wires(report, index)
    latency = int(report["layers"][index].get("kernel_latency", 0)) if "en" in wires else 0
    inputs = {"x": wires["x"]}
    if latency:
        inputs.update(clk="clk", en=wires["en"])
    cut = cut_module(module, inputs, {"y": wires["y"]})
    if "outside" in cut["ports"]:
        raise FunctionFailure(f"its function reads wires besides its x{' and en' if latency else ''}")
    cells = dict(cut["cells"])
    en = cut["ports"]["en"]["bits"][0] if latency else None
    driver = {b: (name, port) for name, c in cells.items() for port, d in c["port_directions"].items()
              if d == "output" for b in c["connections"][port] if isinstance(b, int)}
    for name, cell in list(cells.items()):
        if cell["type"] != "$dff":
            if cell["type"] not in _COMBINATIONAL:
                raise FunctionFailure(f"its function holds a {cell['type']} cell ({name}), which is not read here")
            continue
        if en is None:
            raise FunctionFailure(f"its function holds register {name}, but report.json gives it no register stage")
        q, new = cell["connections"]["Q"], []
        for i, dbit in enumerate(cell["connections"]["D"]):
            mux = cells.get(driver.get(dbit, (None,))[0]) if isinstance(dbit, int) else None
            if mux is None or mux["type"] != "$mux" or mux["connections"]["S"] != [en]:
                raise FunctionFailure(f"register {name} of its function loads whether en is high or not")
            k = mux["connections"]["Y"].index(dbit)
            if mux["connections"]["A"][k] != q[i]:
                raise FunctionFailure(f"register {name} of its function does not hold its value while en is low")
            new.append(mux["connections"]["B"][k])
        cells[name] = {"type": "$pos", "parameters": {"A_SIGNED": 0, "A_WIDTH": len(q), "Y_WIDTH": len(q)},
                       "port_directions": {"A": "input", "Y": "output"}, "connections": {"A": new, "Y": list(q)}}
    cells = _live(cells, cut["ports"]["y"]["bits"])  # the enable multiplexers are read no more
    depth = _register_depths(cut, cells)
    got = {depth.get(b, latency) for b in cut["ports"]["y"]["bits"] if isinstance(b, int)}
    if got - {latency}:
        raise FunctionFailure(f"its paths from x to y cross {sorted(got)} register stages, report.json says {latency}")
    ports = {p: v for p, v in cut["ports"].items() if p in ("x", "y")}
    return {"attributes": {}, "ports": ports, "cells": cells, "netnames": {}}


_COMBINATIONAL = {"$and", "$or", "$xor", "$xnor", "$not", "$pos", "$neg", "$mux", "$pmux", "$add", "$sub",
                  "$lt", "$le", "$gt", "$ge", "$eq", "$ne", "$logic_and", "$logic_or", "$logic_not",
                  "$reduce_and", "$reduce_or", "$reduce_xor", "$reduce_xnor", "$reduce_bool", "$shl", "$shr",
                  "$sshl", "$sshr", "$shift", "$shiftx", "$bmux", "$demux"}


def _live(cells: dict, outputs: list) -> dict:
    """The cells of ``cells`` that ``outputs`` read, directly or through other cells."""
    driver = {b: name for name, c in cells.items() for port, d in c["port_directions"].items()
              if d == "output" for b in c["connections"][port] if isinstance(b, int)}
    live, stack = set(), [b for b in outputs if isinstance(b, int)]
    while stack:
        name = driver.get(stack.pop())
        if name is None or name in live:
            continue
        live.add(name)
        cell = cells[name]
        stack += [b for port, d in cell["port_directions"].items() if d == "input"
                  for b in cell["connections"][port] if isinstance(b, int)]
    return {name: c for name, c in cells.items() if name in live}


def _register_depths(cut: dict, cells: dict) -> dict[int, int]:
    """Net -> the register stages on the paths from ``x`` to it (``cells``: the function's, each
    register read as a wire; ``cut``: the same with the registers as they are); a cell whose inputs
    come through different numbers of registers raises :class:`FunctionFailure`."""
    depth = {b: 0 for b in cut["ports"]["x"]["bits"] if isinstance(b, int)}
    regs = {name for name, c in cut["cells"].items() if c["type"] == "$dff"}
    pending = dict(cells)
    while pending:
        progress = False
        for name, cell in list(pending.items()):
            ins = [b for port, d in cell["port_directions"].items() if d == "input"
                   for b in cell["connections"][port] if isinstance(b, int)]
            if any(b not in depth for b in ins):
                continue
            levels = {depth[b] for b in ins}
            if len(levels) > 1:
                raise FunctionFailure(f"cell {name} of its function combines values that crossed {sorted(levels)} "
                                      "register stages")
            level = (levels.pop() if levels else 0) + (name in regs)
            for port, d in cell["port_directions"].items():
                if d == "output":
                    depth.update((b, level) for b in cell["connections"][port] if isinstance(b, int))
            del pending[name]
            progress = True
        if not progress:
            raise FunctionFailure("its function has a loop, or reads a wire nothing drives")
    return depth


def prove_functions(files, report: dict, module: dict | None = None,
                    timeout: int = SAT_TIMEOUT) -> list[tuple[int, FunctionProof]]:
    """Prove the function of every ``hamming_cost`` and ``argmin`` stage and the column sums of
    every ``box_sum`` stage of the stream design ``files`` (module notes): [(stage index, proof)].
    Raises :class:`FunctionFailure` (the stage named) on the first that differs,
    :class:`~.netlist.NetlistError` where yosys cannot read it or has no such wires."""
    which = [i for i, st in enumerate(report["layers"]) if st["kind"] in KINDS]
    if not which:
        return []
    if module is None:
        module = function_module(files, report)
    out = []
    for i in which:
        stage = report["layers"][i]
        t0 = time.perf_counter()
        try:
            fn = cut_function(module, report, i)
            ref, xw, yw = reference_verilog(stage)
            if (len(fn["ports"]["x"]["bits"]), len(fn["ports"]["y"]["bits"])) != (xw, yw):
                raise FunctionFailure(f"its function has {len(fn['ports']['x']['bits'])} input and "
                                      f"{len(fn['ports']['y']['bits'])} output bits, the contract's {xw} and {yw}")
            _sat(fn, ref, xw, yw, timeout)
        except FunctionFailure as e:
            raise FunctionFailure(f"stage {stage['name']} ({stage['kind']}): {e}", e.x) from None
        except NetlistError as e:  # no such wire (a design lowered before these were named), a solver error
            raise NetlistError(f"stage {stage['name']} ({stage['kind']}): {e}") from None
        latency = int(stage.get("kernel_latency", 0)) if stage["kind"] != "box_sum" else 0
        out.append((i, FunctionProof(stage["kind"], formula(stage), xw, yw, latency, round(time.perf_counter() - t0, 3))))
    return out


def _sat(fn: dict, ref: str, xw: int, yw: int, timeout: int) -> None:
    miter = (f"module jpq_miter (input wire [{xw - 1}:0] x, output wire [{yw - 1}:0] got, "
             f"output wire [{yw - 1}:0] want, output wire ok);\n"
             "    jpq_fn fn (.x(x), .y(got));\n    jpq_ref ref (.x(x), .y(want));\n"
             "    assign ok = got == want;\nendmodule\n")
    script = ("read_json fn.json; read_verilog -sv ref.v; hierarchy -top jpq_miter; proc; flatten; opt_clean; "
              f"sat -prove ok 1 -show-ports -timeout {timeout} jpq_miter")
    with tempfile.TemporaryDirectory(prefix="jpq-fn-") as tmp:
        # relative paths, cwd in the folder: YoWASP's yosys maps /tmp to a private scratch folder
        Path(tmp, "fn.json").write_text(json.dumps({"modules": {"jpq_fn": fn}}))
        Path(tmp, "ref.v").write_text(ref + miter)
        try:
            run = subprocess.run([*find_yosys(), "-p", script], cwd=tmp, capture_output=True, text=True,
                                 timeout=timeout + 120)
        except subprocess.TimeoutExpired:
            raise NetlistError("yosys sat ran out of time on a stage's function") from None
    if run.returncode != 0:
        err = [line for line in (run.stderr + run.stdout).splitlines() if line.startswith("ERROR")]
        raise NetlistError(err[0] if err else f"yosys exited with {run.returncode}")
    text = run.stdout
    if "SUCCESS!" in text or "QED" in text:
        return
    if "TIMEOUT" in text:
        raise NetlistError(f"yosys sat found no answer on a stage's function in {timeout} s")
    values = {m.group(1): int(m.group(2), 2)
              for m in re.finditer(r"^\s*\\(x|got|want)\s+\S+\s+\S+\s+([01]+)\s*$", text, re.M)}
    if "x" not in values:
        raise NetlistError("yosys sat neither proved a stage's function nor showed where it fails")
    raise FunctionFailure(f"for x = {values['x']:#x} its function gives {values.get('got', 0):#x}, the contract "
                          f"{values.get('want', 0):#x}", values["x"])
