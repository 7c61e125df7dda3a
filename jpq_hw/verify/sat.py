"""An output stage proven by SAT where its accumulator takes too many values to run it on each.

An output stage is a cone of yosys cells (comparisons, multiplexers, part-selects, additions of
constants) over words that each hold ``s_f * u + c_f`` for one base sum ``u`` (:mod:`.prove`). When
``u`` ranges over more values than the prover runs a cone on, the same question goes to yosys's
SAT solver instead:

- the cone is written as a yosys JSON module ``jpq_cone`` (``read_json``), cell for cell as the
  prover evaluates it (its ports as :mod:`.netlist` resolved them; a part-select is a ``$pos``), with
  one input per frontier word and the cone's result as ``y``;
- a Verilog miter ``jpq_miter`` feeds it ``s_f * u + c_f`` (modulo the word's width, as the prover
  does), computes the contract's output stage (round half up by ``2**shift``, ReLU, saturation;
  ``jpq_hw.reference.requantize``) of the accumulator ``scale * u + const`` at a width where nothing
  wraps, and sets ``ok`` where ``u`` lies outside ``[lo, hi]`` or the two agree modulo the cone's width;
- ``sat -prove ok 1`` proves ``ok`` for every ``u`` of the input's width, or shows a ``u`` where it
  fails (:func:`sat_output_stage` returns it; the prover then runs the cone on that one value).

Additions, comparisons and multiplexers of one 30- to 60-bit word are easy for SAT (no
multiplier of two variables), so this takes a second or two per output stage.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..synth.yosys import find_yosys
from .netlist import BitRef, Netlist

SAT_TIMEOUT = 600  # seconds yosys's solver may spend on one output stage
BATCH = 200        # output stages per yosys run (its start-up is a second or so)


class SatUndecided(Exception):
    """yosys could not decide (a timeout, an error); the message says which."""


@dataclass
class SatJob:
    """One output stage to prove: the cone of word ``w`` (cells ``order``) whose frontier word ``f``
    holds ``s_f * u + c_f`` (``inputs`` lists ``(f, s_f, c_f)``), against the contract's output stage
    (``shift``, ``relu``, ``out_lo..out_hi``) of the accumulator ``scale * u + const``, for every
    ``u`` in ``[lo, hi]``."""

    w: int
    order: list[int]
    inputs: list[tuple[int, int, int]]
    scale: int
    const: int
    lo: int
    hi: int
    shift: int
    relu: bool
    out_lo: int
    out_hi: int


def _cone_module(nl: Netlist, w: int, order: list[int], frontier: list[int]) -> dict:
    """The cone of word ``w`` (cells ``order``, inputs ``frontier``) as a yosys JSON module."""
    words = nl.words
    base: dict[int, int] = {}
    nxt = 2
    for v in [*frontier, *order]:
        base[v] = nxt
        nxt += words[v].width

    def net(b):
        if isinstance(b, BitRef):
            if b.word not in base:
                raise SatUndecided(f"the cone reads {words[b.word].name}, which is outside it")
            return base[b.word] + b.bit
        if b not in ("0", "1"):
            raise SatUndecided("an undefined (x) bit reaches an output stage")
        return b

    ports = {f"f{k}": {"direction": "input", "bits": [base[f] + i for i in range(words[f].width)]}
             for k, f in enumerate(frontier)}
    ports["y"] = {"direction": "output", "bits": [base[w] + i for i in range(words[w].width)]}
    cells = {}
    for u in order:
        word = words[u]
        conns = {p: [net(b) for b in bits] for p, bits in word.ports.items()}
        y = [base[u] + i for i in range(word.width)]
        if word.type == "$jpq_slice":
            cell = {"type": "$pos", "parameters": {"A_SIGNED": 0, "A_WIDTH": len(conns["A"]), "Y_WIDTH": word.width},
                    "port_directions": {"A": "input", "Y": "output"}, "connections": {"A": conns["A"], "Y": y}}
        else:
            dirs = {p: "input" for p in conns}
            dirs["Y"] = "output"
            cell = {"type": word.type, "parameters": dict(word.cell["parameters"]), "port_directions": dirs,
                    "connections": {**conns, "Y": y}}
        cells[f"c{u}"] = cell
    return {"attributes": {}, "ports": ports, "cells": cells, "netnames": {}}


def _times(name: str, c: int, width: int) -> str:
    """``name * c`` as a sum of shifted copies (CSD digits of ``c``): SAT needs no multiplier."""
    terms, k = [], 0
    while c:
        if c & 1:
            digit = 2 - (c & 3)  # +1 or -1, the non-adjacent form
            terms.append(("- " if digit < 0 else "+ ") + (f"({name} <<< {k})" if k else name))
            c -= digit
        c >>= 1
        k += 1
    if not terms:
        return f"{width}'sd0"
    text = " ".join(terms)
    return text[2:] if text.startswith("+ ") else f"{width}'sd0 {text}"


def _signed_literal(v: int, width: int) -> str:
    return f"-{width}'sd{-v}" if v < 0 else f"{width}'sd{v}"


def _miter(k: int, widths: list[int], out_width: int, inputs: list[tuple[int, int]], scale: int, const: int,
           lo: int, hi: int, shift: int, relu: bool, out_lo: int, out_hi: int) -> tuple[str, int]:
    """The Verilog miter ``jpq_miter_<k>`` (of ``jpq_cone_<k>``) and the width of its input ``u``."""
    uw = max(abs(lo), abs(hi)).bit_length() + 2
    biggest = max([abs(s) * max(abs(lo), abs(hi)) + abs(c) for s, c in [*inputs, (scale, const)]] +
                  [abs(out_lo), abs(out_hi), 1 << max(shift, 1)])
    ww = max(uw, biggest.bit_length() + 3)
    lines = [f"module jpq_miter_{k} (input wire [{uw - 1}:0] u, output wire ok);",
             f"    wire signed [{uw - 1}:0] su = u;",
             f"    wire signed [{ww - 1}:0] wu = su;"]
    for i, (s, c) in enumerate(inputs):
        lines.append(f"    wire signed [{ww - 1}:0] t{i} = {_times('wu', s, ww)} + {_signed_literal(c, ww)};")
    lines.append(f"    wire [{out_width - 1}:0] got;")
    conns = ", ".join([f".f{i}(t{i}[{w - 1}:0])" for i, w in enumerate(widths)] + [".y(got)"])
    lines.append(f"    jpq_cone_{k} cone ({conns});")
    lines.append(f"    wire signed [{ww - 1}:0] acc = {_times('wu', scale, ww)} + {_signed_literal(const, ww)};")
    if shift > 0:
        lines.append(f"    wire signed [{ww - 1}:0] r = (acc + {_signed_literal(1 << (shift - 1), ww)}) >>> {shift};")
    else:
        lines.append(f"    wire signed [{ww - 1}:0] r = acc;")
    if relu:
        lines.append(f"    wire signed [{ww - 1}:0] q = r < {_signed_literal(0, ww)} ? {_signed_literal(0, ww)} : r;")
    else:
        lines.append(f"    wire signed [{ww - 1}:0] q = r;")
    lines.append(f"    wire signed [{ww - 1}:0] want = q < {_signed_literal(out_lo, ww)} ? {_signed_literal(out_lo, ww)} : "
                 f"q > {_signed_literal(out_hi, ww)} ? {_signed_literal(out_hi, ww)} : q;")
    lines.append(f"    assign ok = su < {_signed_literal(lo, uw)} || su > {_signed_literal(hi, uw)} || "
                 f"got == want[{out_width - 1}:0];")
    lines.append("endmodule")
    return "\n".join(lines) + "\n", uw


def sat_output_stages(nl: Netlist, jobs: list[SatJob], timeout: int = SAT_TIMEOUT) -> list[int | None]:
    """For each job, None when its cone equals the contract's output stage for every ``u`` in its
    range, else a ``u`` where they differ; yosys runs :data:`BATCH` jobs at a time. Raises
    :class:`SatUndecided` where yosys cannot tell."""
    out: list[int | None] = []
    for start in range(0, len(jobs), BATCH):
        out += _run_batch(nl, jobs[start:start + BATCH], timeout)
    return out


def _run_batch(nl: Netlist, jobs: list[SatJob], timeout: int) -> list[int | None]:
    modules, miters, widths = {}, [], []
    for k, job in enumerate(jobs):
        frontier = [f for f, _, _ in job.inputs]
        modules[f"jpq_cone_{k}"] = _cone_module(nl, job.w, job.order, frontier)
        text, uw = _miter(k, [nl.words[f].width for f in frontier], nl.words[job.w].width,
                          [(s, c) for _, s, c in job.inputs], job.scale, job.const, job.lo, job.hi, job.shift,
                          job.relu, job.out_lo, job.out_hi)
        miters.append(text)
        widths.append(uw)
    checks = "".join(f"log jpq-sat {k}; sat -prove ok 1 -show-inputs -timeout {timeout} jpq_miter_{k}; "
                     for k in range(len(jobs)))
    script = f"read_json cones.json; read_verilog -sv miters.v; proc; flatten; opt_clean; {checks}"
    with tempfile.TemporaryDirectory(prefix="jpq-sat-") as tmp:
        # relative paths, cwd in the folder: YoWASP's yosys maps /tmp to a private scratch folder
        Path(tmp, "cones.json").write_text(json.dumps({"modules": modules}))
        Path(tmp, "miters.v").write_text("".join(miters))
        try:
            run = subprocess.run([*find_yosys(), "-p", script], cwd=tmp, capture_output=True, text=True,
                                 timeout=(timeout + 10) * len(jobs) + 120)
        except subprocess.TimeoutExpired:
            raise SatUndecided("yosys sat ran out of time") from None
    if run.returncode != 0:
        err = [line for line in (run.stderr + run.stdout).splitlines() if line.startswith("ERROR")]
        raise SatUndecided(err[0] if err else f"yosys exited with {run.returncode}")
    sections = re.split(r"^jpq-sat (\d+)$", run.stdout, flags=re.M)
    found = {int(sections[i]): sections[i + 1] for i in range(1, len(sections) - 1, 2)}
    results: list[int | None] = []
    for k, uw in enumerate(widths):
        text = found.get(k, "")
        if "TIMEOUT" in text:
            raise SatUndecided(f"yosys sat found no answer in {timeout} s")
        if "QED" in text or "SUCCESS!" in text:
            results.append(None)
            continue
        m = re.search(r"\\u\s+\S+\s+\S+\s+([01]+)\s*$", text, re.M)
        if not m:
            raise SatUndecided("yosys sat neither proved an output stage nor showed a counterexample")
        v = int(m.group(1), 2)
        results.append(v - (1 << uw) if v >> (uw - 1) else v)
    return results
