"""Simulate a netlist that ``synth_ice40`` mapped, on many input words at once.

yosys can map a design wrongly (``bench/yosys_keep_pitfall.py``), so a cell count is only worth
reporting for a mapped netlist that still computes what its source does. Event-driven simulators
are slow on mapped arithmetic (Icarus Verilog with yosys's ``cells_sim.v`` takes minutes for a few
thousand SB_LUT4 and SB_CARRY on 300 words: every carry chain ripples for every change), so this
module evaluates the netlist cell by cell in topological order, each net a numpy array over
*lanes*: independent input sequences run side by side. An undefined net (undriven, or tied to
``x``, as yosys leaves a bit it lost) taints what reads it: such output bits are shown as ``x``.

The netlist is yosys's JSON (``synthesize(..., netlist=True)``). Cells: ``SB_LUT4`` (``O`` is bit
``I3 I2 I1 I0`` of ``LUT_INIT``), ``SB_CARRY`` (``CO = I0 I1 + CI (I0 + I1)``), and the flip-flops
``SB_DFF[E][S|R|SS|SR]`` on the rising edge, powered up at 0 (yosys's ``cells_sim.v``:
``initial Q = 0``), with enable, set and reset (synchronous and asynchronous alike: they are tied
here, so they act at a clock edge either way). ``$scopeinfo`` cells (names of flattened
submodules) hold no logic; any other cell (block RAM, DSP, I/O) is refused.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ..errors import JpqError

_DFF = re.compile(r"SB_DFF(N?)(E?)(SR|SS|R|S)?$")


class MappedNetlist:
    """The module ``top`` of a yosys JSON netlist of iCE40 cells, levelized for evaluation."""

    def __init__(self, path: Path | str, top: str):
        data = json.loads(Path(path).read_text())
        try:
            mod = data["modules"][top]
        except KeyError:
            raise JpqError(f"module {top!r} is not in the netlist {path}") from None
        self.ports = {name: (p["direction"], p["bits"]) for name, p in mod["ports"].items()}
        self.luts: list[tuple[int, list, int]] = []       # (LUT_INIT, [I0..I3], O)
        self.carries: list[tuple[list, int]] = []         # ([I0, I1, CI], CO)
        self.flops: list[tuple[dict, int]] = []           # (ports, Q)
        for name, c in mod["cells"].items():
            t, conn = c["type"], c["connections"]
            if t == "SB_LUT4":
                init = int(str(c["parameters"]["LUT_INIT"]), 2)
                self.luts.append((init, [conn.get(p, ["0"])[0] for p in ("I0", "I1", "I2", "I3")], conn["O"][0]))
            elif t == "SB_CARRY":
                self.carries.append(([conn[p][0] for p in ("I0", "I1", "CI")], conn["CO"][0]))
            elif (m := _DFF.match(t)) and not m.group(1):
                self.flops.append(({p: conn[p][0] for p in conn}, conn["Q"][0]))
            elif t == "$scopeinfo":  # where a flattened submodule was (Amaranth's): no logic
                continue
            else:
                raise JpqError(f"cannot simulate cell {name} of type {t}")
        self.order = self._levelize()
        # nets something drives: a cell output or an input port bit
        self.driven = {o for _, _, o in self.luts} | {co for _, co in self.carries} | {q for _, q in self.flops}
        self.driven |= {b for d, bits in self.ports.values() if d == "input" for b in bits}

    def _levelize(self) -> list[tuple[str, int]]:
        """Combinational cells (``("lut", i)`` / ``("carry", i)``) in an order where every input is
        computed first (ports, constants and flip-flop outputs are sources)."""
        driver: dict[int, tuple[str, int]] = {}
        for i, (_, _, o) in enumerate(self.luts):
            driver[o] = ("lut", i)
        for i, (_, co) in enumerate(self.carries):
            driver[co] = ("carry", i)
        ins = {("lut", i): l[1] for i, l in enumerate(self.luts)} | {("carry", i): c[0] for i, c in enumerate(self.carries)}
        order, state = [], {}
        for cell in ins:
            stack = [(cell, iter(ins[cell]))]
            if cell in state:
                continue
            state[cell] = 1
            while stack:
                cur, it = stack[-1]
                for bit in it:
                    nxt = driver.get(bit) if isinstance(bit, int) else None
                    if nxt is None or state.get(nxt) == 2:
                        continue
                    if state.get(nxt) == 1:
                        raise JpqError("the netlist has a combinational loop")
                    state[nxt] = 1
                    stack.append((nxt, iter(ins[nxt])))
                    break
                else:
                    stack.pop()
                    state[cur] = 2
                    order.append(cur)
        return order

    def unknown_nets(self) -> set[int]:
        """Nets whose value is not defined: driven by nothing, tied to ``x`` (yosys writes a bit it
        lost so), or computed from such a net by a cell whose output depends on it (a LUT pin its
        LUT_INIT reads, any carry pin, a flip-flop's D or enable). The simulation reads such a net as
        0; its output bits are shown as ``x``."""
        driven = self.driven
        unknown: set[int] = set()

        def bad(bit) -> bool:
            return bit in ("x", "z") or (isinstance(bit, int) and (bit not in driven or bit in unknown))

        def reads(init: int, k: int) -> bool:
            return any(((init >> i) ^ (init >> (i ^ (1 << k)))) & 1 for i in range(16))

        changed = True
        while changed:  # flip-flops feed their outputs back: to a fixed point
            changed = False
            for kind, i in self.order:
                if kind == "lut":
                    init, pins, o = self.luts[i]
                    hit = any(bad(b) and reads(init, k) for k, b in enumerate(pins))
                else:
                    pins, o = self.carries[i]
                    hit = any(bad(b) for b in pins)
                if hit and o not in unknown:
                    unknown.add(o)
                    changed = True
            for ports, q in self.flops:
                if q not in unknown and any(bad(ports[k]) for k in ("D", "E", "R", "S") if k in ports):
                    unknown.add(q)
                    changed = True
        return unknown

    def run(self, inputs: Mapping[str, np.ndarray], cycles: int, out_port: str) -> np.ndarray:
        """``out_port`` after each of ``cycles`` rising clock edges (once, with ``cycles == 0``, for
        combinational logic): ``inputs[port]`` is a ``[cycles or 1, lanes, bits]`` bool array (bit 0
        the port's least significant), the value a port holds across that edge. Returns ``[cycles or
        1, lanes, bits]``."""
        steps = max(cycles, 1)
        lanes = next(iter(inputs.values())).shape[1]
        zero, one = np.zeros(lanes, dtype=bool), np.ones(lanes, dtype=bool)
        q = {qbit: zero for _, qbit in self.flops}
        out_bits = self.ports[out_port][1]
        result = np.zeros((steps, lanes, len(out_bits)), dtype=bool)

        def settle(step: int) -> dict:
            val: dict = {"0": zero, "1": one, "x": zero, "z": zero, **q}
            for name, arr in inputs.items():
                for k, bit in enumerate(self.ports[name][1]):
                    if isinstance(bit, int):
                        val[bit] = arr[step, :, k]
            self._settle(val)
            return val

        for step in range(steps):
            val = settle(step)
            if cycles:  # the rising edge, then the logic settles on the new state
                q = {qbit: self._next_q(p, val) for p, qbit in self.flops}
                val = settle(step)
            for k, bit in enumerate(out_bits):
                result[step, :, k] = val.get(bit, zero)
        return result

    def _settle(self, val: dict) -> None:
        for kind, i in self.order:
            if kind == "lut":
                init, pins, o = self.luts[i]
                idx = (val[pins[0]].astype(np.uint8) | (val[pins[1]].astype(np.uint8) << 1)
                       | (val[pins[2]].astype(np.uint8) << 2) | (val[pins[3]].astype(np.uint8) << 3))
                val[o] = ((init >> idx.astype(np.uint32)) & 1).astype(bool)
            else:
                (a, b, ci), co = self.carries[i]
                va, vb, vc = val[a], val[b], val[ci]
                val[co] = (va & vb) | (vc & (va | vb))

    @staticmethod
    def _next_q(ports: dict, val: dict) -> np.ndarray:
        d = val[ports["D"]]
        q = val[ports["Q"]]
        if "E" in ports:
            d = np.where(val[ports["E"]], d, q)
        if "R" in ports:
            d = d & ~val[ports["R"]]
        if "S" in ports:
            d = d | val[ports["S"]]
        return d


def simulate_mapped(netlist: Path | str, top: str, in_port: str, out_port: str, words: Sequence[int], *,
                    clock: str | None = None, latency: int = 0, tie: Mapping[str, str] | None = None,
                    lanes: int = 10) -> list[str]:
    """``out_port`` of the mapped module for each input word, as :func:`jpq_hw.sim.words.simulate_words`
    returns it (a binary string, most significant bit first).

    Combinational: every word at once. Clocked (``clock``, ``latency`` registers from input to
    output): the words stream in ``lanes`` interleaved sequences, one word per lane on every rising
    edge, each word's result read ``latency`` edges after it entered, so registers that mix words
    of different ages show. ``tie``: other input ports and the Verilog constants they are tied to
    (``{"in_valid": "1'b1"}``; an empty value leaves an output port open).
    """
    nl = MappedNetlist(netlist, top)
    n = len(words)
    width = len(nl.ports[in_port][1])
    consts = {}
    for name, text in (tie or {}).items():
        if not text or name not in nl.ports or nl.ports[name][0] != "input":
            continue
        m = re.fullmatch(r"(\d+)'([bdh])([0-9a-fA-F_]+)", text)
        if not m:
            raise JpqError(f"cannot tie {name} to {text!r}")
        consts[name] = int(m.group(3).replace("_", ""), {"b": 2, "d": 10, "h": 16}[m.group(2)])
    for name, (direction, _) in nl.ports.items():
        if direction == "input" and name not in (in_port, clock, *consts):
            raise JpqError(f"input port {name} is neither driven nor tied")

    def bits_of(ws: Sequence[int], w: int) -> np.ndarray:
        return np.array([[(x >> k) & 1 for k in range(w)] for x in ws], dtype=bool)

    def tied(cycles: int, lanes: int) -> dict:
        return {name: np.broadcast_to(bits_of([v], len(nl.ports[name][1]))[0], (cycles, lanes, len(nl.ports[name][1])))
                for name, v in consts.items()}

    if not clock:
        got = nl.run({in_port: bits_of(words, width)[None], **tied(1, n)}, 0, out_port)[0]
    else:
        lanes = max(1, min(lanes, n))
        delay = max(latency, 1) - 1
        cycles = -(-n // lanes) + delay
        x = np.zeros((cycles, lanes, width), dtype=bool)
        for i, w in enumerate(words):  # word i: lane i % lanes, entering at edge i // lanes
            x[i // lanes, i % lanes] = bits_of([w], width)[0]
        ys = nl.run({in_port: x, **tied(cycles, lanes)}, cycles, out_port)
        got = np.array([ys[i // lanes + delay, i % lanes] for i in range(n)])
    # as a simulator shows them: an output bit that nothing drives reads z, an undefined one x
    unknown = nl.unknown_nets()
    shown = ["z" if b == "z" or (isinstance(b, int) and b not in nl.driven) else "x" if b == "x" or b in unknown
             else None for b in nl.ports[out_port][1]][::-1]
    return ["".join(c or ("1" if v else "0") for v, c in zip(row[::-1], shown)) for row in got]


def wrong_mapped_vectors(root: Path | str, netlist: Path | str) -> list[int]:
    """Indices of the test vectors of the flat design folder ``root`` (``tb/vectors.json``) whose
    outputs the mapped ``netlist`` of its top module (yosys JSON) gets wrong: every output bit is
    compared with the reference, as the cocotb bench compares the source's."""
    from ..design_folder import Interface, pack, read_design

    d = read_design(root)
    iface = d.interface
    if not isinstance(iface, Interface):
        raise JpqError("only flat designs are simulated as mapped (a stream design needs its test bench)")
    i, o = iface.inputs, iface.outputs
    words = [pack(x, i.bits, i.signed) for x in d.x]
    want = [pack(y, o.bits, o.signed) for y in d.y]
    got = simulate_mapped(netlist, iface.top, "x", "y", words, clock="clk" if iface.pipelined else None,
                          latency=iface.latency_cycles, tie={"in_valid": "1'b1"} if iface.pipelined else None)
    return [k for k, (g, w) in enumerate(zip(got, want)) if g != f"{w:0{o.width}b}"]
