"""A generated design as yosys reads it: the word-level netlist the proof works on.

yosys reads the Verilog files (``read_verilog -sv``, the front end that the simulators' reading of
the language is assumed to agree with), and only the passes that give its word-level cells a
netlist form run: ``hierarchy; proc; flatten; opt_clean; write_json``. No optimisation or
technology mapping touches the arithmetic, so the cells the proof sees are the ``+``, ``-``,
comparisons and multiplexers of the source.

:class:`Netlist` is that JSON, with every wire bit traced through the cells that only move bits
(``$pos``, shifts by a constant amount, a ``$mux`` whose select is constant, and ``$dff``
registers) to where its value is made: a :class:`BitRef` into a *word* (a module input field or the
output of a value cell: arithmetic, comparison, logic, a multiplexer), seen through ``delay``
registers, or a constant bit. A register counts as a delay of one clock cycle; which registers
are allowed (clock, enable, initial values) is checked by :meth:`Netlist.registers_check`.
"""

from __future__ import annotations

import os
import tempfile
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from ..errors import JpqError
from ..synth.yosys import initial_bits, json_module


class BitRef(NamedTuple):
    """Bit ``bit`` of word ``word``, as it was ``delay`` clock cycles ago."""

    word: int
    bit: int
    delay: int = 0


class _Need(NamedTuple):
    """What :meth:`Netlist._step` returns when wire bit ``net`` must be resolved first."""

    net: int


Bit = BitRef | str  # a BitRef, or a constant "0" / "1" / "x"


def run_end(bits: Sequence[Bit], i: int) -> int:
    """The end of the run that starts at ``bits[i]`` (a BitRef): the bits that follow it are the
    next bits of the same word, seen through the same registers."""
    b, j = bits[i], i + 1
    while j < len(bits) and isinstance(bits[j], BitRef) and bits[j].word == b.word and \
            bits[j].delay == b.delay and bits[j].bit == b.bit + (j - i):
        j += 1
    return j


@dataclass
class Word:
    """A value the netlist makes: an input field (``cell`` None) or a value cell's output ``Y``."""

    name: str
    width: int
    cell: dict | None = None
    ports: dict[str, list[Bit]] = field(default_factory=dict)  # the value cell's inputs, resolved

    @property
    def type(self) -> str:
        return self.cell["type"] if self.cell else "input"

    def param(self, name: str) -> int:
        v = self.cell["parameters"][name]
        return int(v, 2) if isinstance(v, str) else int(v)


# cells that only move bits (resolved away) and cells the proof never needs to look into
_SHIFTS = {"$shl", "$sshl", "$shr", "$sshr"}
_COMBINATIONAL = {"$add", "$sub", "$mul", "$neg", "$pos", "$not", "$and", "$or", "$xor", "$xnor", "$lt", "$le",
                  "$gt", "$ge", "$eq", "$ne", "$eqx", "$nex", "$reduce_and", "$reduce_or", "$reduce_xor",
                  "$reduce_xnor", "$reduce_bool", "$logic_not", "$logic_and", "$logic_or", "$mux", "$pmux",
                  *_SHIFTS}
_IGNORED = {"$scopeinfo"}
_REGISTERS = {"$dff"}


class NetlistError(JpqError):
    """The netlist holds something the proof cannot reason about."""


def read_netlist_json(files: Sequence[Path], top: str, workdir: Path, passes: str = "") -> dict:
    """Run yosys on ``files`` and return the flattened top module of its ``write_json``
    (``passes``: yosys commands to run after ``flatten``)."""
    rel = [os.path.relpath(f, workdir) for f in files]
    script = (" ".join(["read_verilog -sv", *[_quote(r) for r in rel]]) +
              f"; hierarchy -check -top {top}; proc; flatten; {passes + '; ' if passes else ''}opt_clean; "
              "write_json netlist.json")
    return json_module(script, top, workdir, what="the design", error=NetlistError)


def _quote(path: str) -> str:
    return '"' + path.replace('"', '\\"') + '"' if any(c in path for c in ' ;"') else path


def load_netlist(files: Sequence[Path], top: str, inputs: dict[str, list[int]], enable: str | None = None
                 ) -> "Netlist":
    """yosys's netlist of ``files`` with the input ports cut into the fields ``inputs`` names
    (port name -> field widths, least significant field first); ``enable``: see :class:`Netlist`."""
    with tempfile.TemporaryDirectory(prefix="jpq-verify-", dir=os.path.dirname(os.path.abspath(files[0]))) as tmp:
        module = read_netlist_json(files, top, Path(tmp))
    return Netlist(module, inputs, enable)


def cut_module(module: dict, inputs: dict[str, str | list], outputs: dict[str, str]) -> dict:
    """The part of the flat ``module`` that computes the wires ``outputs`` from the wires ``inputs``,
    as a module of its own (port name -> wire name, both ways): the cells found walking back from the
    outputs, stopping at the inputs' bits. A bit the walk reaches that no cell drives and that is not
    an input (another port of the design) becomes a bit of the input ``outside``, which a proof
    treats as a control input: a value that depends on it is not proven. A port may be given as a
    list of bits (yosys's numbers) instead of a wire's name."""
    nets = module["netnames"]

    def bits_of(wire) -> list:
        if isinstance(wire, list):
            return list(wire)
        if wire not in nets:
            raise NetlistError(f"the design has no wire {wire}")
        return list(nets[wire]["bits"])

    ports: dict[str, dict] = {}
    cut: set[int] = set()
    for port, wire in inputs.items():
        bits = bits_of(wire)
        ports[port] = {"direction": "input", "bits": bits}
        cut.update(b for b in bits if isinstance(b, int))
    driver: dict[int, str] = {}
    for name, cell in module["cells"].items():
        for port, direction in cell["port_directions"].items():
            if direction == "output":
                driver.update((b, name) for b in cell["connections"][port] if isinstance(b, int))
    stack: list[int] = []
    for port, wire in outputs.items():
        bits = bits_of(wire)
        ports[port] = {"direction": "output", "bits": bits}
        stack += [b for b in bits if isinstance(b, int)]
    taken: set[str] = set()
    seen: set[int] = set()
    outside: list[int] = []
    while stack:
        net = stack.pop()
        if net in seen or net in cut:
            continue
        seen.add(net)
        name = driver.get(net)
        if name is None:
            outside.append(net)
        elif name not in taken:
            taken.add(name)
            cell = module["cells"][name]
            for port, direction in cell["port_directions"].items():
                if direction == "input":
                    stack += [b for b in cell["connections"][port] if isinstance(b, int)]
    if outside:
        ports["outside"] = {"direction": "input", "bits": sorted(outside)}
    cells = {name: cell for name, cell in module["cells"].items() if name in taken}
    return {"ports": ports, "cells": cells, "netnames": nets}


class Netlist:
    """The top module of a yosys JSON netlist, its bits traced to words (see the module notes).

    With ``enable`` (the name of a 1-bit input port, a stream kernel's ``en``), every register must
    load only where that input is high: its ``D`` is a ``$mux`` selecting, on ``en``, between the
    register's own ``Q`` and the new value. Such a pipeline computes the same function, counted in
    cycles where ``en`` is high, as with ``en`` always high, which is how it is read here (the
    multiplexer becomes a wire from its new value); :meth:`unenabled_registers` lists those that break
    the rule."""

    def __init__(self, module: dict, inputs: dict[str, list[int]], enable: str | None = None):
        self.module = module
        self.enable_muxes = self._enable_muxes(module, enable) if enable else set()
        self.words: list[Word] = []
        self.word_of_cell: dict[str, int] = {}
        self.input_fields: dict[str, list[int]] = {}      # port -> word index of each field
        self._driver: dict[int, tuple[str, str, int]] = {}  # net -> (cell, port, index)
        self._input_bit: dict[int, Bit] = {}
        self._resolved: dict[int, Bit] = {}
        self.registers: list[str] = []
        self.init: dict[int, str] = {}
        ports = module["ports"]
        for name, port in ports.items():
            if port["direction"] != "input":
                continue
            bits = port["bits"]
            widths = inputs.get(name, [1] * len(bits))
            if sum(widths) != len(bits):
                raise NetlistError(f"input port {name} has {len(bits)} bits, the interface says {sum(widths)}")
            fields, pos = [], 0
            for i, w in enumerate(widths):
                idx = len(self.words)
                self.words.append(Word(f"{name}[{i}]" if len(widths) > 1 else name, w))
                fields.append(idx)
                for b in range(w):
                    net = bits[pos + b]
                    if isinstance(net, int):
                        self._input_bit[net] = BitRef(idx, b)
                pos += w
            self.input_fields[name] = fields
        for name, cell in module["cells"].items():
            kind = cell["type"]
            if kind in _IGNORED:
                continue
            if kind not in _COMBINATIONAL and kind not in _REGISTERS:
                what = "an instance of" if not kind.startswith("$") else "a"
                raise NetlistError(f"cell {name} is {what} {kind}, which the proof does not model (it takes "
                                   "combinational word-level cells and $dff registers)")
            for port, direction in cell["port_directions"].items():
                if direction == "output":
                    for i, net in enumerate(cell["connections"][port]):
                        if isinstance(net, int):
                            if net in self._driver or net in self._input_bit:
                                raise NetlistError(f"wire bit {net} has two drivers (cell {name})")
                            self._driver[net] = (name, port, i)
            if kind in _REGISTERS:
                self.registers.append(name)
            elif name not in self.enable_muxes and not self._is_wiring(cell):
                idx = len(self.words)
                self.words.append(Word(name, len(cell["connections"]["Y"]), cell))
                self.word_of_cell[name] = idx
        self.init.update(initial_bits(module))
        self._slices: dict[tuple, int] = {}
        for w in list(self.words):
            if w.cell is not None:
                w.ports = {p: self._split_slices(self.resolve_bits(w.cell["connections"][p]))
                           for p, d in w.cell["port_directions"].items() if d == "input"}
        self._outputs = {name: self._split_slices(self.resolve_bits(port["bits"]))
                         for name, port in module["ports"].items() if port["direction"] == "output"}

    # ------------------------------------------------------------------ wiring

    def _enable_muxes(self, module: dict, enable: str) -> set[str]:
        """The ``$mux`` cells that give a register its own value unless ``enable`` is high."""
        en = module["ports"][enable]["bits"][0]
        d_of: dict = {}  # net -> (register, index) where the net is the register's D input
        for name, cell in module["cells"].items():
            if cell["type"] in _REGISTERS:
                for i, net in enumerate(cell["connections"]["D"]):
                    d_of[net] = (name, i)
        out, enabled = set(), set()
        for name, cell in module["cells"].items():
            if cell["type"] != "$mux" or cell["connections"]["S"] != [en]:
                continue
            conn, ok, regs = cell["connections"], True, set()
            for i, y in enumerate(conn["Y"]):
                reg = d_of.get(y)
                if reg is None or module["cells"][reg[0]]["connections"]["Q"][reg[1]] != conn["A"][i]:
                    ok = False
                    break
                regs.add(reg[0])
            if ok:
                out.add(name)
                enabled |= regs
        self._enabled_registers = enabled
        return out

    def unenabled_registers(self) -> list[str]:
        """With ``enable``: the registers that load whatever ``enable`` is."""
        return [n for n in self.registers if n not in getattr(self, "_enabled_registers", set())]

    @staticmethod
    def _is_wiring(cell: dict) -> bool:
        kind = cell["type"]
        if kind == "$pos":
            return True
        if kind in _SHIFTS:
            return all(b in ("0", "1") for b in cell["connections"]["B"])
        if kind == "$mux":
            return all(b in ("0", "1") for b in cell["connections"]["S"])
        return False

    def output_bits(self, port: str) -> list[Bit]:
        return self._outputs[port]

    def _split_slices(self, bits: list[Bit]) -> list[Bit]:
        """``bits`` with each run of a word's bits that does not start at bit 0 (a part-select or a
        right shift: ``floor(v / 2**b)``, not a linear function of ``v``) replaced by the bits of a
        *slice word*, a value cell of type ``$jpq_slice`` that copies the run."""
        out, i = list(bits), 0
        while i < len(bits):
            b = bits[i]
            if not isinstance(b, BitRef):
                i += 1
                continue
            j = run_end(bits, i)
            k = j  # copies of the run's top bit (a sign extension) belong to it
            while k < len(bits) and bits[k] == bits[j - 1]:
                k += 1
            if b.bit == 0:
                i = k
                continue
            key = (b.word, b.bit, j - i, b.delay)
            if key not in self._slices:
                self._slices[key] = len(self.words)
                src = self.words[b.word]
                cell = {"type": "$jpq_slice", "parameters": {},
                        "port_directions": {"A": "input", "Y": "output"}}
                self.words.append(Word(f"{src.name}[{b.bit + j - i - 1}:{b.bit}]", j - i, cell,
                                       {"A": list(bits[i:j])}))
            word = self._slices[key]
            out[i:k] = [BitRef(word, n) for n in range(j - i)] + [BitRef(word, j - i - 1)] * (k - j)
            i = k
        return out

    def resolve_bits(self, nets: Sequence) -> list[Bit]:
        return [self.resolve(n) for n in nets]

    def resolve(self, net) -> Bit:
        """Where the value of wire bit ``net`` is made (see the module notes)."""
        if isinstance(net, str):
            return net if net in ("0", "1") else "x"
        got = self._resolved.get(net)
        if got is not None:
            return got
        stack = [net]
        while stack:  # iterative: register and wiring chains can be long
            top = stack[-1]
            if top in self._resolved:
                stack.pop()
                continue
            got = self._step(top)
            if isinstance(got, _Need):  # needs another bit first
                dep = got.net
                if dep in stack:
                    raise NetlistError(f"a combinational loop through wire bit {dep}")
                stack.append(dep)
                continue
            self._resolved[top] = got
            stack.pop()
        return self._resolved[net]

    def _step(self, net: int):
        """The resolved value of ``net``, or ``_Need(other)`` when wire bit ``other`` must be resolved first."""
        if net in self._input_bit:
            return self._input_bit[net]
        if net not in self._driver:
            raise NetlistError(f"wire bit {net} ({self.net_name(net)}) has no driver")
        name, port, i = self._driver[net]
        if name in self.word_of_cell:
            return BitRef(self.word_of_cell[name], i)
        cell = self.module["cells"][name]
        if cell["type"] == "$mux" and name not in self.enable_muxes and not self._is_wiring(cell):
            raise NetlistError(f"cell {name} has no word")  # pragma: no cover
        src, delay = self._wiring_source(cell, i)
        if isinstance(src, str):
            return src
        if src not in self._resolved:
            return _Need(src)
        got = self._resolved[src]
        if isinstance(got, BitRef) and delay:
            return BitRef(got.word, got.bit, got.delay + delay)
        return got

    def _wiring_source(self, cell: dict, i: int):
        """(net or constant, registers crossed) that output bit ``i`` of a wiring cell copies."""
        kind, conn = cell["type"], cell["connections"]
        if kind == "$dff":
            return conn["D"][i], 1
        if kind == "$mux":
            enabled = conn["S"][0] not in ("0", "1")  # an enable multiplexer: read with enable high
            return (conn["B"] if enabled or conn["S"][0] == "1" else conn["A"])[i], 0
        p = cell["parameters"]
        a, signed = conn["A"], bool(int(str(p["A_SIGNED"]), 2) if isinstance(p["A_SIGNED"], str) else p["A_SIGNED"])
        y_width = len(conn["Y"])
        width = max(len(a), y_width)
        ext = list(a) + [a[-1] if signed else "0"] * (width - len(a))
        if kind == "$pos":
            return ext[i], 0
        k = int("".join(reversed(["1" if b == "1" else "0" for b in conn["B"]])) or "0", 2)
        if kind in ("$shl", "$sshl"):
            return (ext[i - k] if i >= k else "0"), 0
        j = i + k
        if j < width:
            return ext[j], 0
        return (ext[-1] if kind == "$sshr" and signed else "0"), 0

    def topological(self) -> list[int]:
        """The words in an order where each comes after every word it reads (registers included:
        a feed-forward design has no loop even through registers)."""
        words = self.words
        users: list[list[int]] = [[] for _ in words]
        pending = [0] * len(words)
        for u, w in enumerate(words):
            deps = {b.word for bits in w.ports.values() for b in bits if isinstance(b, BitRef)}
            pending[u] = len(deps)
            for d in deps:
                users[d].append(u)
        queue = deque(u for u in range(len(words)) if pending[u] == 0)
        order = []
        while queue:
            u = queue.popleft()
            order.append(u)
            for v in users[u]:
                pending[v] -= 1
                if pending[v] == 0:
                    queue.append(v)
        if len(order) != len(words):
            stuck = next(words[u].name for u in range(len(words)) if pending[u])
            raise NetlistError(f"a feedback loop through registers (cell {stuck}): a feed-forward design has none")
        return order

    def net_name(self, net: int) -> str:
        for name, n in self.module["netnames"].items():
            if net in n["bits"]:
                return f"{name}[{n['bits'].index(net)}]"
        return f"net {net}"

    def register_cells(self) -> list[dict]:
        return [self.module["cells"][n] for n in self.registers]
