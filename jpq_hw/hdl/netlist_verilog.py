"""Verilog written from yosys's word-level netlist, every width explicit: how the Amaranth backends
turn their components into lint-clean Verilog.

``amaranth.back.verilog`` hands its RTLIL to yosys's ``write_verilog``, whose output leans on
Verilog's context-determined widths (``assign y = a + b;`` with ``a`` narrower than ``y``): correct,
but ``verilator --lint-only -Wall`` flags every such line (WIDTHEXPAND),
and its hierarchy has module names that are not identifiers of the file's name. Here yosys only
brings the RTLIL to a flat word-level netlist (``read_rtlil; hierarchy; proc; flatten;
memory_collect; opt_clean -purge; write_json``, no optimisation), and :func:`netlist_to_verilog`
writes that netlist as one module in which

- every cell output is one wire (``reg`` for a flip-flop or a memory read port) named after the
  Amaranth signal it is, where it is one, with the signal's ``keep`` attribute carried over;
- every operand is assembled from bits at exactly the width its operation works in, as yosys's
  ``simlib.v`` defines the cell (extended by its sign only where both operands are signed,
  otherwise with zeros; truncated to the result's width for ``+``, ``-``, ``*`` and bitwise
  operations, whose low bits depend only on the operands' low bits), so nothing is left to
  Verilog's width rules and no expression has a width other than its target's;
- flip-flops keep their initial values, memories their contents.

What it takes is what Amaranth produces for the backends (and ``sim/test_netlist_verilog.py``
checks against Amaranth's simulator): arithmetic, comparisons, bitwise logic and reductions,
multiplexers (``$mux``, ``$pmux``), floor division and modulo by constants, ``$dff`` flip-flops and
``$mem_v2`` memories with synchronous read ports and one write port. Anything else is refused with
:class:`NetlistVerilogError` naming the cell.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ..errors import JpqError
from ..synth.yosys import initial_bits

Bit = int | str  # a net number, or a constant "0" / "1" / "x" / "z"

_BINARY = {"$add": "+", "$sub": "-", "$mul": "*", "$and": "&", "$or": "|", "$xor": "^"}
_UNARY = {"$neg": "-", "$not": "~", "$pos": ""}
_COMPARE = {"$lt": "<", "$le": "<=", "$gt": ">", "$ge": ">=", "$eq": "==", "$ne": "!="}
_REDUCE = {"$reduce_or": "|", "$reduce_bool": "|", "$reduce_and": "&", "$reduce_xor": "^",
           "$logic_not": "~|"}
_DIVIDE = {"$modfloor", "$divfloor"}
_SKIPPED = {"$scopeinfo"}
# cells whose low output bits depend only on their operands' low bits
_LOW_BITS = {"$add", "$sub", "$mul", "$and", "$or", "$xor", "$neg", "$not", "$pos", "$mux"}
_KEYWORDS = set("""always and assign automatic begin buf bufif0 bufif1 case casex casez cell cmos config deassign
default defparam design disable edge else end endcase endconfig endfunction endgenerate endmodule endprimitive
endspecify endtable endtask event for force forever fork function generate genvar highz0 highz1 if ifnone incdir
include initial inout input instance integer join large liblist library localparam macromodule medium module nand
negedge nmos nor noshowcancelled not notif0 notif1 or output parameter pmos posedge primitive pull0 pull1 pulldown
pullup pulsestyle_onevent pulsestyle_ondetect rcmos real realtime reg release repeat rnmos rpmos rtran rtranif0
rtranif1 scalared showcancelled signed small specify specparam strong0 strong1 supply0 supply1 table task time tran
tranif0 tranif1 tri tri0 tri1 triand trior trireg unsigned use uwire vectored wait wand weak0 weak1 while wire wor
xnor xor bit logic byte int shortint longint""".split())

#: the header that every written file starts with; unused bits are expected (see the module notes)
LINT_HEADER = ("/* verilator lint_off UNUSEDSIGNAL */  // pruned inputs, rounding's dropped low bits and the unread "
               "bits of Amaranth's intermediate values are unused by design")


class NetlistVerilogError(JpqError):
    """The netlist holds a cell this writer does not write."""


def _int(v) -> int:
    return int(v, 2) if isinstance(v, str) else int(v)


def rtlil_to_netlist(rtlil_text: str, top: str, names: Sequence[str] = ()) -> dict:
    """yosys's flat word-level netlist (the JSON module ``top``) of an RTLIL design; the wires
    ``names`` (full names) are kept through its clean-up with what drives them."""
    from ..synth.yosys import json_module

    with tempfile.TemporaryDirectory(prefix="jpq-rtlil-") as tmp:
        # relative paths, cwd in the folder: YoWASP's yosys maps /tmp to a private scratch folder
        Path(tmp, "design.il").write_text(rtlil_text)
        keep = "".join(f"setattr -set keep 1 w:{n}; " for n in names)
        script = (f"read_rtlil design.il; hierarchy -check -top {top}; proc; flatten; memory_collect; {keep}"
                  "opt_clean -purge; write_json netlist.json")
        return json_module(script, top, tmp, what="Amaranth's RTLIL", error=NetlistVerilogError)


def amaranth_to_verilog(elaboratable, *, top: str, header: Sequence[str] = (), prefix: str = "",
                        names: Sequence[str] = ()) -> str:
    """Lint-clean Verilog of an Amaranth component (``amaranth.back.rtlil``, then :func:`netlist_to_verilog`);
    ``prefix`` (such as ``"net."``, the submodule holding the network) is dropped from signal names;
    ``names``: signals (after ``prefix``) written as wires of their own, as kept signals are, but not
    kept (with what drives them, all of their bits)."""
    from amaranth.back import rtlil

    text = rtlil.convert(elaboratable, name=top, emit_src=False)
    module = rtlil_to_netlist(text, top, [prefix + n for n in names])
    return netlist_to_verilog(module, top=top, header=header, prefix=prefix, names=names)


def _constant(bits: Sequence[str]) -> str:
    """Constant bits (least significant first): hexadecimal from four bits on, binary below or with x."""
    text = "".join(reversed(bits))
    if len(bits) >= 4 and set(text) <= {"0", "1"}:
        return f"{len(bits)}'h{int(text, 2):x}"
    return f"{len(bits)}'b{text}"


def _value_range(bits: Sequence[Bit], signed: bool) -> tuple[int, int]:
    """The values an operand can take: exact for constant bits, its width's whole range otherwise."""
    if all(isinstance(b, str) and b in "01" for b in bits):
        v = int("".join(reversed(bits)), 2)
        if signed and bits[-1] == "1":
            v -= 1 << len(bits)
        return v, v
    return (-(1 << (len(bits) - 1)), (1 << (len(bits) - 1)) - 1) if signed else (0, (1 << len(bits)) - 1)


_ORDER = {"$lt": lambda a, b: a < b, "$le": lambda a, b: a <= b, "$gt": lambda a, b: a > b, "$ge": lambda a, b: a >= b}


def _constant_comparison(kind: str, a: Sequence[Bit], b: Sequence[Bit], signed: bool) -> str | None:
    """"0" or "1" where an ordering comparison has the same result for every value of its operands
    (one of them a constant), else None."""
    if kind not in _ORDER:
        return None
    (alo, ahi), (blo, bhi) = _value_range(a, signed), _value_range(b, signed)
    if alo != ahi and blo != bhi:
        return None
    corners = {_ORDER[kind](x, y) for x in (alo, ahi) for y in (blo, bhi)}
    return ("1" if corners.pop() else "0") if len(corners) == 1 else None


def _range(width: int) -> str:
    return "" if width == 1 else f"[{width - 1}:0] "


def _identifier(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_]", "_", name.lstrip("\\"))
    if not s or s[0].isdigit():
        s = "_" + s
    return s + "_" if s in _KEYWORDS else s


class _Writer:
    def __init__(self, module: dict, top: str, prefix: str = "", names: Sequence[str] = ()):
        self.module, self.top, self.prefix = module, top, prefix
        self.initial = initial_bits(module)  # register power-up values, by wire bit
        self.cells = {n: c for n, c in module["cells"].items() if c["type"] not in _SKIPPED}
        self.names: set[str] = set()
        self.driver: dict[int, tuple[str, int]] = {}  # net -> (word name, bit)
        self.width: dict[str, int] = {}
        self.ports: list[tuple[str, str, int]] = []  # (direction, name, width)
        for name, port in module["ports"].items():
            if port["direction"] not in ("input", "output"):
                raise NetlistVerilogError(f"port {name} is an {port['direction']}; only inputs and outputs are written")
            ident = self._claim(name)
            if ident != name:
                raise NetlistVerilogError(f"port name {name!r} is not a plain Verilog identifier")
            self.ports.append((port["direction"], name, len(port["bits"])))
            if port["direction"] == "input":
                for i, b in enumerate(port["bits"]):
                    if isinstance(b, int):
                        self.driver[b] = (name, i)
        # names of Amaranth's signals (public netnames): for each set of bits the best one (kept first,
        # then a name Amaranth did not have to make unique with "$", then the shallowest); the kept
        # ones (one per set of bits) and those asked for by name are written as wires of their own
        self.public: dict[tuple, tuple[str, bool]] = {}
        self.kept_netnames: list[tuple[str, tuple, bool]] = []
        wanted = set(names)
        ranked = []
        for name, net in module["netnames"].items():
            if net.get("hide_name"):
                continue
            keep = bool(_int(net.get("attributes", {}).get("keep", 0) or 0)) and self._public_name(name) not in wanted
            ranked.append(((not keep, "$" in name, name.count("."), name), name, tuple(net["bits"]), keep))
        kept_bits: set[tuple] = set()
        for _, name, key, keep in sorted(ranked):
            self.public.setdefault(key, (name, keep))
            if (keep and key not in kept_bits) or self._public_name(name) in wanted:
                self.kept_netnames.append((name, key, keep))
                kept_bits.add(key)
        self.kept: set[str] = set()
        self.word_of_cell: dict[tuple[str, str], str] = {}
        self._trim_unread_high_bits()
        for cname, cell in self.cells.items():
            for port, direction in cell["port_directions"].items():
                if direction != "output":
                    continue
                bits = cell["connections"][port]
                if not bits:
                    continue
                pub = self.public.get(tuple(bits))
                word = self._claim(self._public_name(pub[0]) if pub else
                                   f"_{cell['type'].lstrip('$')}_{len(self.word_of_cell)}")
                if pub and pub[1]:
                    self.kept.add(word)
                self.word_of_cell[cname, port] = word
                self.width[word] = len(bits)
                for i, b in enumerate(bits):
                    if isinstance(b, int):
                        if b in self.driver:
                            raise NetlistVerilogError(f"wire bit {b} has two drivers (cell {cname})")
                        self.driver[b] = (word, i)
        for _, name, w in self.ports:
            self.width.setdefault(name, w)
        self.temp = 0
        # a kept Amaranth signal (or one asked for by name) that no word is named after becomes a
        # wire of its own, kept where the signal is; where it is not a whole word (a part of one, a
        # concatenation), the bits are read through it
        self.aliases: list[tuple[str, list[Bit]]] = []
        named = {self.public[tuple(c["connections"][p])][0] for (cname, p) in self.word_of_cell
                 for c in [self.cells[cname]] if tuple(c["connections"][p]) in self.public}
        routed: list[tuple[str, list[Bit]]] = []
        seen: set[tuple] = set()
        for name, bits, keep in self.kept_netnames:
            if name in named or any(isinstance(b, int) and b not in self.driver for b in bits):
                continue
            alias = self._claim(self._public_name(name))
            self.aliases.append((alias, list(bits)))
            if keep:
                self.kept.add(alias)
            self.width[alias] = len(bits)
            ints = [b for b in bits if isinstance(b, int)]
            if bits not in seen and not (len(ints) == len(bits) and self._is_whole(bits)):
                routed.append((alias, list(bits)))
            seen.add(bits)
        self.alias_source = {alias: self.bits(bits) for alias, bits in self.aliases}
        for alias, bits in routed:
            for i, b in enumerate(bits):
                if isinstance(b, int):
                    self.driver[b] = (alias, i)

    def _is_whole(self, bits: Sequence[int]) -> bool:
        word, lo = self.driver[bits[0]]
        return lo == 0 and len(bits) == self.width[word] and \
            all(self.driver[b] == (word, i) for i, b in enumerate(bits))

    def _public_name(self, name: str) -> str:
        return name[len(self.prefix):] if self.prefix and name.startswith(self.prefix) else name

    def _trim_unread_high_bits(self) -> None:
        """Drop the high output bits that nothing reads (no cell, output or kept signal) from cells
        whose low bits depend only on their operands' low bits (Amaranth widens every sum by a bit
        that the signal it feeds drops)."""
        changed = True
        while changed:  # trimming a multiplexer trims what it reads: again until nothing changes
            changed = False
            read: set[int] = set()
            for cell in self.cells.values():
                for port, direction in cell["port_directions"].items():
                    if direction == "input":
                        read.update(b for b in cell["connections"][port] if isinstance(b, int))
            for port in self.module["ports"].values():
                if port["direction"] == "output":
                    read.update(b for b in port["bits"] if isinstance(b, int))
            for _, bits, _ in self.kept_netnames:  # a kept signal is written whole
                read.update(b for b in bits if isinstance(b, int))
            for name, cell in self.cells.items():
                if cell["type"] not in _LOW_BITS:
                    continue
                y = cell["connections"]["Y"]
                n = len(y)
                while n > 1 and isinstance(y[n - 1], int) and y[n - 1] not in read:
                    n -= 1
                if n == len(y):
                    continue
                changed = True
                cell = self.cells[name] = {**cell, "connections": {**cell["connections"], "Y": y[:n]},
                                           "parameters": {**cell["parameters"], "Y_WIDTH": n}}
                if cell["type"] == "$mux":
                    cell["connections"]["A"] = cell["connections"]["A"][:n]
                    cell["connections"]["B"] = cell["connections"]["B"][:n]

    def _claim(self, name: str) -> str:
        base = _identifier(name)
        ident, k = base, 1
        while ident in self.names:
            ident, k = f"{base}_{k}", k + 1
        self.names.add(ident)
        return ident

    # ------------------------------------------------------------------ expressions of bit lists

    def bits(self, bits: Sequence[Bit]) -> str:
        """``bits`` (least significant first) as one Verilog expression of exactly ``len(bits)`` bits."""
        if not bits:
            raise NetlistVerilogError("an empty operand")
        segs: list[str] = []  # least significant first
        i, n = 0, len(bits)
        while i < n:
            b = bits[i]
            if isinstance(b, str):
                j = i
                while j < n and isinstance(bits[j], str):
                    j += 1
                segs.append(_constant([bits[k] for k in range(i, j)]))
                i = j
                continue
            if b not in self.driver:
                raise NetlistVerilogError(f"wire bit {b} has no driver")
            word, lo = self.driver[b]
            j = i + 1
            while j < n and isinstance(bits[j], int) and self.driver.get(bits[j]) == (word, lo + j - i):
                j += 1
            if j == i + 1:  # a repeated bit (a sign extension) is written {k{w[i]}}
                r = i + 1
                while r < n and bits[r] == b:
                    r += 1
                if r - i > 1:
                    segs.append(f"{{{r - i}{{{self._slice(word, lo, lo)}}}}}")
                    i = r
                    continue
            segs.append(self._slice(word, lo, lo + j - i - 1))
            i = j
        return segs[0] if len(segs) == 1 else "{" + ", ".join(reversed(segs)) + "}"

    def _slice(self, word: str, lo: int, hi: int) -> str:
        if lo == 0 and hi == self.width[word] - 1:
            return word
        return f"{word}[{lo}]" if lo == hi else f"{word}[{hi}:{lo}]"

    @staticmethod
    def extend(bits: Sequence[Bit], signed: bool, width: int) -> list[Bit]:
        """``bits`` extended (by the sign bit where ``signed``, else with zeros) or truncated to ``width``."""
        bits = list(bits)
        if len(bits) >= width:
            return bits[:width]
        fill = bits[-1] if signed and bits else "0"
        return bits + [fill] * (width - len(bits))

    # ------------------------------------------------------------------ cells

    def write(self, header: Sequence[str]) -> str:
        decls: list[str] = []
        assigns: list[str] = []
        seq: dict[str, list[str]] = {}  # clock expression -> statements
        inits: list[str] = []
        for cname, cell in self.cells.items():
            kind = cell["type"]
            p = {k: _int(v) if isinstance(v, int) or (k not in ("INIT", "MEMID") and v and set(v) <= {"0", "1"}) else v
                 for k, v in cell["parameters"].items()}
            c = cell["connections"]
            if kind == "$mem_v2":
                self._memory(cname, cell, p, decls, seq, inits)
                continue
            if kind == "$dff":
                q = self.word_of_cell[cname, "Q"]
                clk = self._clock(c["CLK"], p["CLK_POLARITY"], cname)
                init = self._init(c["Q"])
                decls.append(f"reg {_range(len(c['Q']))}{q};")
                if init:
                    inits.append(f"{q} = {init};  // the power-up value")
                seq.setdefault(clk, []).append(f"{q} <= {self.bits(c['D'])};")
                continue
            if kind not in _BINARY and kind not in _UNARY and kind not in _COMPARE and kind not in _REDUCE and \
                    kind not in _DIVIDE and kind not in ("$mux", "$pmux"):
                raise NetlistVerilogError(f"cell {cname} is a {kind}, which the Verilog writer does not write")
            y = self.word_of_cell[cname, "Y"]
            yw = len(c["Y"])
            keep = "(* keep *) " if y in self.kept else ""
            decls.append(f"{keep}wire {_range(yw)}{y};")
            assigns.append(f"assign {y} = {self._expression(cname, kind, p, c, yw, decls, assigns)};")
        lines = [*header, LINT_HEADER, "`default_nettype none", "", f"module {self.top} ("]
        lines.append(",\n".join(f"    {d} wire {_range(w)}{n}" for d, n, w in self.ports))
        lines += [");", ""]
        lines += [f"    {d}" for d in decls]
        if inits:
            lines += ["", "    initial begin", *[f"        {s}" for s in inits], "    end"]
        lines.append("")
        for alias, _ in self.aliases:
            keep = "(* keep *) " if alias in self.kept else ""
            lines.append(f"    {keep}wire {_range(self.width[alias])}{alias} = {self.alias_source[alias]};")
        lines += [f"    {a}" for a in assigns]
        for name, port in self.module["ports"].items():
            if port["direction"] == "output":
                lines.append(f"    assign {name} = {self.bits(port['bits'])};")
        for clk, stmts in seq.items():
            lines += ["", f"    always @({clk}) begin", *[f"        {s}" for s in stmts], "    end"]
        lines += ["", "endmodule", "", "`default_nettype wire", ""]
        return "\n".join(lines)

    def _expression(self, cname, kind, p, c, yw, decls, assigns) -> str:
        if kind in _BINARY:
            s = bool(p["A_SIGNED"] and p["B_SIGNED"])  # simlib.v: signed only where both operands are
            a, b = self.bits(self.extend(c["A"], s, yw)), self.bits(self.extend(c["B"], s, yw))
            return f"{a} {_BINARY[kind]} {b}"
        if kind in _UNARY:
            a = self.bits(self.extend(c["A"], bool(p["A_SIGNED"]), yw))
            return f"{_UNARY[kind]}{a}"
        if kind in _COMPARE:
            s = bool(p["A_SIGNED"] and p["B_SIGNED"])
            w = max(len(c["A"]), len(c["B"]))
            ea, eb = self.extend(c["A"], s, w), self.extend(c["B"], s, w)
            known = _constant_comparison(kind, ea, eb, s)
            if known is not None:  # such as an unsigned value < 0 (lint: UNSIGNED, CMPCONST)
                return self.bits(self.extend([known], False, yw))
            a, b = self.bits(ea), self.bits(eb)
            if s:
                a, b = f"$signed({a})", f"$signed({b})"
            return self._boolean(f"{a} {_COMPARE[kind]} {b}", yw)
        if kind in _REDUCE:
            return self._boolean(f"{_REDUCE[kind]}{self.bits(c['A'])}", yw)
        if kind == "$mux":
            return f"{self.bits(c['S'])} ? {self.bits(c['B'])} : {self.bits(c['A'])}"
        if kind == "$pmux":  # a one-hot select: at most one case is taken (what proc writes)
            w, expr = len(c["A"]), self.bits(c["A"])
            for i in reversed(range(len(c["S"]))):
                expr = f"{self.bits([c['S'][i]])} ? {self.bits(c['B'][i * w:(i + 1) * w])} : ({expr})"
            return expr
        return self._divide(cname, kind, p, c, yw, decls, assigns)

    @staticmethod
    def _boolean(expr: str, yw: int) -> str:
        return f"({expr})" if yw == 1 else f"{{{yw - 1}'b0, ({expr})}}"

    def _divide(self, cname, kind, p, c, yw, decls, assigns) -> str:
        b = c["B"]
        if any(not isinstance(x, str) or x not in "01" for x in b):
            raise NetlistVerilogError(f"cell {cname} divides by a variable, which the Verilog writer does not write")
        value = int("".join(reversed(b)), 2)
        if p["B_SIGNED"] and b[-1] == "1":
            value -= 1 << len(b)
        if value <= 0:
            raise NetlistVerilogError(f"cell {cname} divides by {value}; only positive constants are written")
        s = bool(p["A_SIGNED"] and p["B_SIGNED"])
        w = max(len(c["A"]), value.bit_length() + 1, yw)
        a_bits = self.extend(c["A"], s, w)
        a, d = self.bits(a_bits), f"{w}'d{value}"
        modulo = kind == "$modfloor"
        # Verilog's / and % truncate toward zero; floor division and modulo differ from them where
        # the dividend is negative and the remainder is not zero
        t = self._temp(f"_{kind.lstrip('$')}", w, (f"$signed({a}) {'%' if modulo else '/'} $signed({d})" if s
                                                   else f"{a} {'%' if modulo else '/'} {d}"), decls, assigns)
        if s:
            r = t if modulo else self._temp("_rem", w, f"$signed({a}) % $signed({d})", decls, assigns)
            negative = f"{self.bits([a_bits[-1]])} && (|{r})"
            t = self._temp("_floor", w, f"({negative}) ? {t} + {d} : {t}" if modulo
                           else f"({negative}) ? {t} - {w}'d1 : {t}", decls, assigns)
        return self._slice(t, 0, yw - 1)

    def _temp(self, stem: str, w: int, expr: str, decls, assigns) -> str:
        t = self._claim(f"{stem}_{self.temp}")
        self.temp += 1
        self.width[t] = w
        decls.append(f"wire {_range(w)}{t};")
        assigns.append(f"assign {t} = {expr};")
        return t

    def _clock(self, bits: Sequence[Bit], polarity: int, cname: str) -> str:
        if len(bits) != 1 or not isinstance(bits[0], int):
            raise NetlistVerilogError(f"cell {cname} has no clock wire")
        return f"{'posedge' if polarity else 'negedge'} {self.bits(bits)}"

    def _init(self, bits: Sequence[Bit]) -> str | None:
        """The initial value of the register whose outputs are ``bits`` (the netnames' ``init``)."""
        got = [self.initial.get(b, "x") for b in bits]
        if all(g == "x" for g in got):
            return None
        return f"{len(bits)}'b" + "".join(reversed(got))

    def _memory(self, cname, cell, p, decls, seq, inits) -> None:
        c = cell["connections"]
        width, size, abits = p["WIDTH"], p["SIZE"], p["ABITS"]
        if p["OFFSET"] != 0:
            raise NetlistVerilogError(f"memory {cname} has an address offset")
        name = self._claim(_identifier(cell["parameters"].get("MEMID", cname).rsplit(".", 1)[-1]))
        decls.append(f"reg [{width - 1}:0] {name} [0:{size - 1}];")
        init = cell["parameters"].get("INIT", "")
        init = init if isinstance(init, str) else ""
        for k in range(size):
            word = init[len(init) - (k + 1) * width:len(init) - k * width] if len(init) >= (k + 1) * width else ""
            if word and set(word) != {"x"}:
                value = f"{width}'h{int(word, 2):x}" if set(word) <= {"0", "1"} else f"{width}'b{word}"
                inits.append(f"{name}[{self._address(k, abits)}] = {value};")
        for r in range(p["RD_PORTS"]):
            addr = self.bits(c["RD_ADDR"][r * abits:(r + 1) * abits])
            q = self.word_of_cell[cname, "RD_DATA"]
            clocked = (p["RD_CLK_ENABLE"] >> r) & 1
            for port in ("RD_ARST", "RD_SRST"):
                if c[port][r] != "0":
                    raise NetlistVerilogError(f"memory {cname} has a read port with a reset")
            if p["RD_TRANSPARENCY_MASK"] >> (r * p["WR_PORTS"]) & ((1 << p["WR_PORTS"]) - 1):
                raise NetlistVerilogError(f"memory {cname} has a transparent read port")
            sel = self._slice(q, r * width, (r + 1) * width - 1)
            if clocked:
                clk = self._clock(c["RD_CLK"][r:r + 1], (p["RD_CLK_POLARITY"] >> r) & 1, cname)
                en = c["RD_EN"][r]
                stmt = f"{sel} <= {name}[{addr}];"
                seq.setdefault(clk, []).append(stmt if en == "1" else f"if ({self.bits([en])}) {stmt}")
            else:
                raise NetlistVerilogError(f"memory {cname} has an asynchronous read port")
        q = self.word_of_cell.get((cname, "RD_DATA"))
        if q:
            decls.append(f"reg {_range(self.width[q])}{q};")
        if p["WR_PORTS"] > 1:
            raise NetlistVerilogError(f"memory {cname} has {p['WR_PORTS']} write ports; one is written")
        for wp in range(p["WR_PORTS"]):
            en = c["WR_EN"][wp * width:(wp + 1) * width]
            if len(set(en)) != 1:
                raise NetlistVerilogError(f"memory {cname} has a write port with per-bit enables")
            clk = self._clock(c["WR_CLK"][wp:wp + 1], (p["WR_CLK_POLARITY"] >> wp) & 1, cname)
            addr = self.bits(c["WR_ADDR"][wp * abits:(wp + 1) * abits])
            data = self.bits(c["WR_DATA"][wp * width:(wp + 1) * width])
            stmt = f"{name}[{addr}] <= {data};"
            seq.setdefault(clk, []).append(stmt if en[0] == "1" else f"if ({self.bits([en[0]])}) {stmt}")

    @staticmethod
    def _address(k: int, abits: int) -> str:
        return f"{abits}'d{k}"


def netlist_to_verilog(module: dict, *, top: str, header: Sequence[str] = (), prefix: str = "",
                       names: Sequence[str] = ()) -> str:
    """One Verilog module ``top`` computing what the yosys JSON ``module`` (flat, word-level) does,
    with every operand at its operation's width (see the module notes)."""
    return _Writer(module, top, prefix, names).write(header)
