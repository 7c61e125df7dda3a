"""Mutants of generated Verilog: small, plausible bugs that the proof must reject.

Each :class:`Mutant` changes one line of a design's Verilog text (either backend's output), as a
bug in an emitter or a hand edit would:

- ``add_to_sub``: an adder subtracts (``a + b`` becomes ``a - b``);
- ``shift_by_one``: a shifted operand moves one place further (``{v, 2'b0}`` becomes ``{v, 3'b0}``);
- ``constant_by_one``: a constant in an addition, e.g. a bias, is one larger;
- ``truncate_wire``: an adder's result wire loses its top bit;
- ``saturation_bound``: a saturation constant (the value or the threshold) is one smaller;
- ``skip_register``: one use of a pipeline register reads the stage before it (pipelined only).

A mutant can be *equivalent* (truncating a wire whose values never need the top bit changes
nothing); the proof rightly accepts those. :func:`mutants` picks sites spread over the file with a
fixed seed, so the same design always gives the same mutants.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

KINDS = ("add_to_sub", "shift_by_one", "constant_by_one", "truncate_wire", "saturation_bound", "skip_register")


@dataclass
class Mutant:
    kind: str
    line: int          # 1-based
    before: str
    after: str
    text: str          # the whole mutated file

    def describe(self) -> str:
        return f"{self.kind} at line {self.line}: {self.before.strip()[:90]}  ->  {self.after.strip()[:90]}"


_COMMENT = re.compile(r"//.*$")
_ASSIGN = re.compile(r"^\s*(?:\(\* keep \*\)\s*)?(?:wire\s+\[\d+:\d+\]\s+(\S+)\s*=|assign\s+(\S+)\s*=)(.*);")
_CONST = re.compile(r"(\d+)'h([0-9a-fA-F]+)")
_SHIFT = re.compile(r"(,\s*)(\d+)'([bh])0(\s*)\}")  # the zeros that end a concatenation: a left shift
_REG_USE = re.compile(r"\b(\w+)_d(\d+)\b")


def _code(line: str) -> str:
    return _COMMENT.sub("", line)


def _sites(lines: list[str], kind: str) -> list[tuple[int, str]]:
    """(line index, mutated line) for every place ``kind`` applies."""
    out = []
    regs = {}
    for i, line in enumerate(lines):
        m = re.match(r"^\s*(\w+_d\d+)\s*<=\s*(.*?);", line)
        if m:
            regs[m.group(1)] = m.group(2)
    for i, line in enumerate(lines):
        code = _code(line)
        m = _ASSIGN.match(code)
        if not m:
            continue
        rhs = m.group(3)
        comment = line[len(code):]
        head = code[:code.index(rhs)] if rhs else code
        if kind == "add_to_sub" and " + " in rhs and "?" not in rhs:
            out.append((i, head + rhs.replace(" + ", " - ", 1) + ";" + comment))
        elif kind == "shift_by_one" and " + " in rhs or kind == "shift_by_one" and " - " in rhs \
                or kind == "shift_by_one" and re.match(r"\s*\{", rhs):
            s = _SHIFT.search(rhs)
            if s and "?" not in rhs:
                k = int(s.group(2))
                new = rhs[:s.start()] + f"{s.group(1)}{k + 1}'{s.group(3)}0{s.group(4)}}}" + rhs[s.end():]
                out.append((i, head + new + ";" + comment))
        elif kind == "constant_by_one" and (" + " in rhs or " - " in rhs) and "?" not in rhs:
            c = _CONST.search(rhs)
            if c:
                w, v = int(c.group(1)), int(c.group(2), 16)
                new = rhs[:c.start()] + f"{w}'h{(v + 1) % (1 << w):x}" + rhs[c.end():]
                out.append((i, head + new + ";" + comment))
        elif kind == "saturation_bound" and "?" in rhs:
            for c in _CONST.finditer(rhs):
                w, v = int(c.group(1)), int(c.group(2), 16)
                if v:
                    new = rhs[:c.start()] + f"{w}'h{v - 1:x}" + rhs[c.end():]
                    out.append((i, head + new + ";" + comment))
                    break
        elif kind == "skip_register":
            for r in _REG_USE.finditer(rhs):
                name, k = r.group(0), int(r.group(2))
                prev = f"{r.group(1)}_d{k - 1}" if k > 1 else regs.get(name)
                if prev and "[" in prev and rhs[r.end():].lstrip().startswith("["):
                    continue  # the source is a part-select: selecting from it is not Verilog
                if name in regs and prev:
                    new = rhs[:r.start()] + prev + rhs[r.end():]
                    out.append((i, head + new + ";" + comment))
                    break
    if kind == "truncate_wire":
        out += _truncations(lines)
    return out


_NAME = re.compile(r"\\\S+|[A-Za-z_][A-Za-z0-9_$]*")
_DECL = re.compile(r"^(\s*(?:\(\* keep \*\)\s*)?(?:wire|reg)\s+\[)(\d+)(:0\]\s+)([^\s;]+)(.*)$")
_SELECT = re.compile(r"^(\s*(?:assign\s+(\S+)\s*=|(\S+)\s*<=)\s*)(\S+)(\s*\[)(\d+)(:0\]\s*;.*)$")


def _reads(lines: list[str]) -> tuple[set, set]:
    """The names read on some right-hand side, and those read whole (not through a part-select)."""
    read, whole = set(), set()
    for line in lines:
        code = _code(line)
        if _DECL.match(code) and "=" not in code:
            continue
        m = _ASSIGN.match(code)
        rhs = m.group(3) if m else code.split("<=", 1)[1] if "<=" in code else ""
        for t in _NAME.finditer(rhs):
            read.add(t.group(0).strip())
            if not rhs[t.end():].lstrip().startswith("["):
                whole.add(t.group(0).strip())
    return read, whole


def _truncations(lines: list[str]) -> list[tuple[int, str]]:
    """Adder results that lose their top bit: the declaration of one read whole, or the part-select
    that keeps one (``assign n = sum[h:0]`` where ``n`` is read)."""
    sums = set()
    for line in lines:
        m = _ASSIGN.match(_code(line))
        if m and (" + " in m.group(3) or " - " in m.group(3)) and "?" not in m.group(3):
            sums.add((m.group(1) or m.group(2)).strip())
    read, whole = _reads(lines)
    out = []
    for i, line in enumerate(lines):
        m = _DECL.match(line)
        if m and m.group(4).strip() in sums and m.group(4).strip() in whole and int(m.group(2)) >= 1:
            out.append((i, f"{m.group(1)}{int(m.group(2)) - 1}{m.group(3)}{m.group(4)}{m.group(5)}"))
        m = _SELECT.match(line)
        if m and m.group(4).strip() in sums and (m.group(2) or m.group(3)).strip() in read and int(m.group(6)) >= 1:
            out.append((i, f"{m.group(1)}{m.group(4)}{m.group(5)}{int(m.group(6)) - 1}{m.group(7)}"))
    return out


def module_lines(text: str, prefix: str) -> list[range]:
    """The line ranges (0-based) of the modules whose name starts with ``prefix`` (a stream's
    kernels: ``TOP_s``)."""
    out, start = [], None
    for i, line in enumerate(text.split("\n")):
        if re.match(rf"^module {re.escape(prefix)}", line):
            start = i
        elif line.startswith("endmodule") and start is not None:
            out.append(range(start, i + 1))
            start = None
    return out


def mutants(text: str, kinds=KINDS, per_kind: int = 3, seed: int = 0, within: list[range] | None = None
            ) -> list[Mutant]:
    """Up to ``per_kind`` mutants of each kind, at sites spread over ``text`` (fixed ``seed``),
    only on the lines ``within`` where given."""
    lines = text.split("\n")
    rng = random.Random(seed)
    out = []
    for kind in kinds:
        sites = _sites(lines, kind)
        if within is not None:
            sites = [(i, new) for i, new in sites if any(i in r for r in within)]
        if len(sites) > per_kind:
            sites = sorted(rng.sample(sites, per_kind))
        for i, new in sites:
            mutated = lines[:i] + [new] + lines[i + 1:]
            out.append(Mutant(kind, i + 1, lines[i], new, "\n".join(mutated)))
    return out


# Wrong stream plumbing, each a change to the Verilog backend's library modules
# (rtl_templates/stream_lib.v.j2) as they appear in a generated design: (what, before, after).
PLUMBING_MUTANTS = [
    ("a window at every column, not only the stride's", "&& row_step && col_step;", "&& row_step;"),
    ("the input taken while the frame's tail runs on zeros", "assign s_ready = free && !faking;",
     "assign s_ready = free;"),
    ("an output register that overwrites a stalled beat", "assign in_ready = !out_valid || out_ready;",
     "assign in_ready = 1'b1;"),
    ("a padding mask off by one row", "pr >= R_LO_U", "pr > R_LO_U"),
    ("no bottom padding between frames", "if (last) tail <= P > 0;", "if (last) tail <= 1'b0;"),
    ("a collector that overwrites a full frame", "assign s_ready = !full || take;", "assign s_ready = 1'b1;"),
    ("a window kept valid after it was taken", "else if (win_ready) win_valid <= 1'b0;",
     "else if (1'b0) win_valid <= 1'b0;"),
    ("a line buffer that moves while the window stalls", ".en(slot), .d(column[K*PIX-1:PIX])",
     ".en(s_valid), .d(column[K*PIX-1:PIX])"),
]

# Wrong line buffers (the library's delay module, as it appears in a generated design): (what, before,
# after). The line buffer's own proof (:func:`~.line_buffer.prove_line_buffer`) rejects them, with
# the enables that show it rather than a handshake sequence.
LINE_BUFFER_MUTANTS = [
    ("a block-RAM line buffer read one address late", "q_r <= mem[en ? ptr_next : ptr];", "q_r <= mem[ptr];"),
    ("a block-RAM line buffer whose pointer wraps one early", "wire [AW-1:0] ptr_next = ptr == LAST ?",
     "wire [AW-1:0] ptr_next = ptr == LAST - 1'b1 ?"),
    ("a shift-register line buffer one entry short", "assign q = sr[WIDTH*DEPTH-1 -: WIDTH];",
     "assign q = sr[WIDTH*(DEPTH-1)-1 -: WIDTH];"),
    ("a shift-register line buffer that shifts without an enable",
     "always @(posedge clk) if (en) sr <= {sr[WIDTH*(DEPTH-1)-1:0], d};",
     "always @(posedge clk) sr <= {sr[WIDTH*(DEPTH-1)-1:0], d};"),
]


# Library modules made slow or stuck but never wrong: every beat they give is right, so only the
# progress check (a part that stops under some stalls: :mod:`.liveness`) or the full-rate run (the
# report's latency and frame period) rejects them. (what, before, after), before as in the generated design.
_HOLD = ("    assign in_ready = !out_valid || out_ready;\n    always @(posedge clk) begin\n"
         "        if (rst) out_valid <= 1'b0;\n        else if (in_ready) out_valid <= in_valid;\n")
PROGRESS_MUTANTS = [
    ("a register that takes a beat only while its output is ready (a sink may wait for valid)",
     "    assign in_ready = !out_valid || out_ready;\n", "    assign in_ready = out_ready;\n"),
    ("a register that takes a beat every other cycle", _HOLD,
     "    assign in_ready = !out_valid;\n    always @(posedge clk) begin\n"
     "        if (rst) out_valid <= 1'b0;\n        else if (in_ready) out_valid <= in_valid;\n"
     "        else if (out_ready) out_valid <= 1'b0;\n"),
]

# Wrong stereo stages, each a change to the library modules of a Hamming cost volume, an argmin or a
# box_sum's column sums as they appear in a generated design: (what, before, after). The first are wrong functions (the
# SAT proof of :mod:`.functions` rejects them), the rest wrong plumbing (:mod:`.plumbing`).
FUNCTION_MUTANTS = [
    ("a cost that counts the agreeing features", "wire [F-1:0] diff = left ^ x[F + d*F +: F];",
     "wire [F-1:0] diff = ~(left ^ x[F + d*F +: F]);"),
    ("a cost that ignores the border rule", "wire [CW-1:0] c = x[F + D*F + d] ? count : FULL;",
     "wire [CW-1:0] c = count;"),
    ("a cost that saturates one lower", "assign y[d*OB +: OB] = CW > OB && c > TOP ? TOP : c;",
     "assign y[d*OB +: OB] = CW > OB && c > TOP ? TOP - 1'b1 : c;"),
    ("a tie won by the higher channel", "wire take_b = SIGNED ? $signed(b) < $signed(a) : b < a;",
     "wire take_b = SIGNED ? $signed(b) <= $signed(a) : b <= a;"),
    ("an argmin tree register that only the index crosses", "assign val[n*B +: B] = rv;",
     "assign val[n*B +: B] = v;"),
    ("a column sum one term short", "if (j < K) begin : g_row", "if (j < K - 1) begin : g_row"),
]
STEREO_PLUMBING_MUTANTS = [
    ("right features shifted in while the input stalls", "if (accept) hist <= D > 2",
     "if (s_valid) hist <= D > 2"),
    ("a row whose end does not clear the columns seen", "seen <= col == LAST ? {(D-1){1'b0}}",
     "seen <= 1'b0 ? {(D-1){1'b0}}"),
    ("an argmin output that loads while stalled", "if (en) q <= ky;", "q <= ky;"),
    ("an argmin valid that moves while stalled", "else if (en) vs <= R > 0", "else vs <= R > 0"),
    ("a column sum that keeps the rows above the frame", "assign m[j*SB +: SB] = own_ok[j] ?",
     "assign m[j*SB +: SB] = 1'b1 ?"),
    ("column sums that shift while the window stalls",
     "always @(posedge clk) if (slot) sums[v*C*SB +: C*SB] <= entering;",
     "always @(posedge clk) sums[v*C*SB +: C*SB] <= entering;"),
    ("a tail that keeps the next frame's rows in the column sums",
     "assign own_ok[j] = !tail_row || !rows_seen[K - 1 - j];", "assign own_ok[j] = 1'b1;"),
]
