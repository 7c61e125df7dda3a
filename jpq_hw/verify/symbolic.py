"""One clock cycle of a yosys netlist on symbolic bits: the engine of the plumbing proof (:mod:`.plumbing`).

A bit's value is ``0``, ``1``, ``None`` (unknown: any value) or a *name* (a hashable tuple that
stands for one bit of a value the proof does not look into, such as bit ``b`` of pixel ``m`` of a
stream). Cells follow yosys's ``simlib.v``; a cell computes exactly where its inputs are known
constants and *moves* names where it only routes bits (a multiplexer with a known select, a shift
by a known amount, a concatenation, a register, ``x & 1``, ``x | 0``, ``x ^ 0``); every other
operation on a name gives ``None``. So a bit that holds a name holds exactly that value, and
``None`` over-approximates: nothing is ever claimed that some input could contradict (three-valued
simulation, each rule sound on its own).

:class:`SymbolicNetlist` compiles the cells of a flat yosys JSON module (``proc; flatten; memory``:
only ``$dff`` registers, memories mapped to them) into one generated Python function, a local
variable per wire bit (``b<slot>``), bit-moving cells inlined bit by bit and word operations called
as small functions of their bits' tuples (much faster than interpreting the cells one by one);
``boxes`` are parts cut out of the netlist (a stream kernel) whose outputs the caller computes from
their inputs (:class:`Box`). ``SymbolicNetlist.source`` is the generated code, for reading.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .netlist import NetlistError

X = None
CONST = {"0": 0, "1": 1, "x": 2, "z": 2}  # slots of the constant bits
FIRST_NET = 3

_BINARY_ARITH = {"$add", "$sub", "$mul", "$div", "$mod", "$divfloor", "$modfloor"}
_COMPARE = {"$eq", "$ne", "$eqx", "$nex", "$lt", "$le", "$gt", "$ge"}
_BITWISE = {"$and", "$or", "$xor", "$xnor"}
_SHIFT = {"$shl", "$sshl", "$shr", "$sshr", "$shift", "$shiftx"}


def slot(bit) -> int:
    return CONST[bit] if isinstance(bit, str) else bit + FIRST_NET


def _signed(value: int, width: int) -> int:
    return value - (1 << width) if width and value >> (width - 1) & 1 else value


def _ext_bits(bits: list, signed: bool, width: int) -> list:
    if len(bits) >= width:
        return bits[:width]
    fill = bits[-1] if signed and bits else 0
    return bits + [fill] * (width - len(bits))


@dataclass
class Box:
    """A part of the netlist the caller evaluates: ``inputs`` and ``outputs`` are slot lists;
    ``run`` gets the inputs' values (a tuple; empty where not ``combinational``) and returns the
    outputs' values. A ``combinational`` box runs in topological order; the others give their
    outputs at the start of the cycle (from state the caller keeps)."""

    name: str
    inputs: list[int]
    outputs: list[int]
    combinational: bool


class SymbolicNetlist:
    """The cells of a flat yosys module compiled into one Python function (:meth:`cycle`), every
    wire bit a local variable, every bit-moving cell inlined. ``removed``: names of cells replaced
    by ``boxes`` (not compiled)."""

    def __init__(self, module: dict, boxes: Sequence[Box] = (), removed: set[str] = frozenset(),
                 inputs: Sequence[int] = (), observe: Sequence[int] = ()):
        self.module = module
        self.boxes = list(boxes)
        cells = {n: c for n, c in module["cells"].items() if n not in removed and c["type"] != "$scopeinfo"}
        self.reg_q: list[int] = []
        self.reg_d: list[int] = []
        self.clocks: set[int] = set()
        steps: list[tuple[list[int], list[int], object]] = []  # (input slots, output slots, what)
        for name, cell in cells.items():
            kind = cell["type"]
            conn = {p: [slot(b) for b in bits] for p, bits in cell["connections"].items()}
            if kind == "$dff":
                if int(_param(cell, "CLK_POLARITY")) != 1:
                    raise NetlistError(f"register {name} is clocked on the falling edge")
                self.clocks.update(conn["CLK"])
                self.reg_q += conn["Q"]
                self.reg_d += conn["D"]
                continue
            outs = [s for p, d in cell["port_directions"].items() if d == "output" for s in conn[p]]
            ins = [s for p, d in cell["port_directions"].items() if d == "input" for s in conn[p]]
            steps.append((ins, outs, (name, cell, conn)))
        for box in self.boxes:
            steps.append((box.inputs if box.combinational else [], box.outputs, box))
        order = _topological(steps, set(self.reg_q) | set(inputs),
                             name_of=lambda w: w.name if isinstance(w, Box) else w[0])
        self.inputs = list(inputs)
        self.observe = list(observe)
        self.cycle = self._generate(order)

    def _generate(self, order) -> Callable:
        """``cycle(regs, inputs, boxes) -> (next regs, observed)``: one clock cycle from the
        registers' values and the inputs' (``boxes``: the boxes' run functions, in order)."""
        helpers: dict[str, object] = {"X": X}
        lines = ["def cycle(regs, inputs, boxes):"]
        emit = lines.append
        defined = {0, 1, 2}

        def ref(s: int) -> str:
            if s < FIRST_NET:
                return ("0", "1", "None")[s]
            if s not in defined:  # a bit nothing drives: unknown
                defined.add(s)
                emit(f"    b{s} = None")
            return f"b{s}"

        def tup(slots) -> str:
            return "(" + "".join(ref(s) + ", " for s in slots) + ")"

        def target(slots) -> str:
            for s in slots:
                defined.add(s)
            return "(" + "".join(f"b{s}, " for s in slots) + ")" if slots else "_"

        if self.reg_q:
            emit(f"    {target(self.reg_q)} = regs")
        if self.inputs:
            emit(f"    {target(self.inputs)} = inputs")
        box_index = {id(b): k for k, b in enumerate(self.boxes)}
        for what in order:
            if isinstance(what, Box):
                args = tup(what.inputs) if what.combinational else "()"
                outs = [f"b{s}" if s >= FIRST_NET else "_" for s in what.outputs]  # constant bits stay
                defined.update(what.outputs)
                emit(f"    ({''.join(o + ', ' for o in outs)}) = boxes[{box_index[id(what)]}]({args})")
                continue
            name, cell, conn = what
            for line in _inline(name, cell, conn, ref, helpers):
                emit("    " + line)
            defined.update(s for p, d in cell["port_directions"].items() if d == "output" for s in conn[p])
        emit(f"    return {tup(self.reg_d)}, {tup(self.observe)}")
        self.source = "\n".join(lines)
        namespace = dict(helpers)
        exec(compile("\n".join(lines), "<symbolic netlist>", "exec"), namespace)
        return namespace["cycle"]


def _param(cell: dict, name: str) -> int:
    p = cell["parameters"][name]
    return int(p, 2) if isinstance(p, str) else int(p)


def _topological(steps, sources: set[int], name_of) -> list:
    driver: dict[int, int] = {}
    for i, (_, outs, _) in enumerate(steps):
        for s in outs:
            if s >= FIRST_NET:
                driver[s] = i
    order, state = [], [0] * len(steps)  # 0 new, 1 on the stack, 2 done
    for root in range(len(steps)):
        if state[root]:
            continue
        stack = [(root, iter(steps[root][0]))]
        state[root] = 1
        while stack:
            i, it = stack[-1]
            for s in it:
                j = driver.get(s)
                if j is None or s in sources:
                    continue
                if state[j] == 1:
                    raise NetlistError(f"a combinational loop through {name_of(steps[j][2])}")
                if state[j] == 0:
                    state[j] = 1
                    stack.append((j, iter(steps[j][0])))
                    break
            else:
                stack.pop()
                state[i] = 2
                order.append(steps[i][2])
    return order


def _inline(name: str, cell: dict, conn: dict, ref, helpers: dict) -> list[str]:
    """Python lines computing one combinational cell: bit-moving cells inline, bit by bit; word
    operations through a helper function of the bits' tuples."""
    kind = cell["type"]
    y = conn.get("Y", [])
    a = conn.get("A", [])
    b = conn.get("B", [])
    asg = bool(_param(cell, "A_SIGNED")) if "A_SIGNED" in cell["parameters"] else False
    bsg = bool(_param(cell, "B_SIGNED")) if "B_SIGNED" in cell["parameters"] else False
    out = []
    if kind == "$mux":
        s = ref(conn["S"][0])
        for o, i, j in zip(y, a, b):
            p, q = ref(i), ref(j)
            if p == q:
                out.append(f"b{o} = {p}")
            else:
                out.append(f"b{o} = {p} if {s} == 0 else ({q} if {s} == 1 else ({p} if {p} == {q} else None))")
        return out
    if kind in ("$pos", "$not") or kind in _BITWISE:
        signed_ops = asg and bsg if kind in _BITWISE else asg
        ea = _ext_bits(a, signed_ops, len(y))
        if kind == "$pos":
            return [f"b{o} = {ref(i)}" for o, i in zip(y, ea)]
        if kind == "$not":
            return [f"b{o} = 1 - {ref(i)} if {ref(i)} == 0 or {ref(i)} == 1 else None" for o, i in zip(y, ea)]
        eb = _ext_bits(b, signed_ops, len(y))
        for o, i, j in zip(y, ea, eb):
            p, q = ref(i), ref(j)
            if kind == "$and" and "0" in (p, q):
                out.append(f"b{o} = 0")
            elif kind == "$and" and p == "1":
                out.append(f"b{o} = {q}")
            elif kind == "$and" and q == "1":
                out.append(f"b{o} = {p}")
            elif kind == "$or" and "1" in (p, q):
                out.append(f"b{o} = 1")
            elif kind in ("$or", "$xor") and p == "0":
                out.append(f"b{o} = {q}")
            elif kind in ("$or", "$xor") and q == "0":
                out.append(f"b{o} = {p}")
            else:
                helper = {"$and": "_and", "$or": "_or", "$xor": "_xor", "$xnor": "_xnor"}[kind]
                helpers[helper] = globals()[helper]
                out.append(f"b{o} = {helper}({p}, {q})")
        return out
    fn = _word_function(name, kind, len(a), len(b), len(y), asg, bsg, conn)
    key = f"_w{len(helpers)}"
    helpers[key] = fn
    ins = conn.get("A", []) + conn.get("B", []) + conn.get("S", [])
    args = "(" + "".join(ref(s) + ", " for s in ins) + ")"
    if not y:
        return []
    return ["(" + "".join(f"b{s}, " for s in y) + f") = {key}({args})"]


def _word_function(name: str, kind: str, aw: int, bw: int, yw: int, asg: bool, bsg: bool, conn: dict) -> Callable:
    """A function of a word cell's input bits (its input ports in order, concatenated) giving its
    output bits, three-valued (module notes)."""
    none = (X,) * yw

    def put(value: int) -> tuple:
        return tuple(value >> i & 1 for i in range(yw))

    def bit(value) -> tuple:
        return (value,) + (0,) * (yw - 1) if yw else ()

    def word(bits) -> int | None:
        r = 0
        for i, x in enumerate(bits):
            if x == 1:
                r |= 1 << i
            elif x != 0:
                return None
        return r

    if kind == "$pmux":
        nsel = len(conn["S"])
        def pmux(bits):
            av, bv, sel = bits[:yw], bits[yw:yw + nsel * yw], bits[yw + nsel * yw:]
            on = [k for k, s in enumerate(sel) if s != 0]
            if not on:
                return tuple(av)
            case = tuple(bv[on[0] * yw:(on[0] + 1) * yw])
            if len(on) == 1 and sel[on[0]] == 1:
                return case
            if len(on) == 1:
                return tuple(p if p == q else X for p, q in zip(av, case))
            return none
        return pmux

    def truth(bits):
        any_x = False
        for x in bits:
            if x == 1:
                return 1
            if x != 0:
                any_x = True
        return X if any_x else 0

    if kind in ("$reduce_or", "$reduce_bool"):
        return lambda bits: bit(truth(bits))
    if kind == "$logic_not":
        return lambda bits: bit(_inv(truth(bits)))
    if kind == "$reduce_and":
        def allset(bits):
            any_x = False
            for x in bits:
                if x == 0:
                    return bit(0)
                if x != 1:
                    any_x = True
            return bit(X if any_x else 1)
        return allset
    if kind in ("$reduce_xor", "$reduce_xnor"):
        flip = kind == "$reduce_xnor"
        def parity(bits):
            k = word(bits)
            return bit(X if k is None else (bin(k).count("1") & 1) ^ flip)
        return parity
    if kind == "$logic_and":
        return lambda bits: bit(_and(truth(bits[:aw]), truth(bits[aw:])))
    if kind == "$logic_or":
        return lambda bits: bit(_or(truth(bits[:aw]), truth(bits[aw:])))
    if kind == "$neg":
        def neg(bits):
            k = word(bits)
            return none if k is None else put(-(_signed(k, aw) if asg else k))
        return neg
    if kind in _COMPARE:
        signed = asg and bsg
        width = max(aw, bw)
        equality = kind in ("$eq", "$ne", "$eqx", "$nex")
        negate = kind in ("$ne", "$nex")
        test = {"$eq": lambda p, q: p == q, "$eqx": lambda p, q: p == q, "$ne": lambda p, q: p != q,
                "$nex": lambda p, q: p != q, "$lt": lambda p, q: p < q, "$le": lambda p, q: p <= q,
                "$gt": lambda p, q: p > q, "$ge": lambda p, q: p >= q}[kind]

        def compare(bits):
            ab, bb = bits[:aw], bits[aw:]
            ka, kb = word(ab), word(bb)
            if ka is None or kb is None:
                if equality:  # two known bits that differ settle it
                    for p, q in zip(_ext_bits(list(ab), signed, width), _ext_bits(list(bb), signed, width)):
                        if (p == 0 and q == 1) or (p == 1 and q == 0):
                            return bit(int(negate))
                return bit(X)
            if signed:
                ka, kb = _signed(ka, aw), _signed(kb, bw)
            return bit(int(test(ka, kb)))
        return compare
    if kind in _BINARY_ARITH:
        signed = asg and bsg

        def arith(bits):
            ka, kb = word(bits[:aw]), word(bits[aw:])
            if ka is None or kb is None:
                return none
            if signed:
                ka, kb = _signed(ka, aw), _signed(kb, bw)
            if kind == "$add":
                return put(ka + kb)
            if kind == "$sub":
                return put(ka - kb)
            if kind == "$mul":
                return put(ka * kb)
            if kb == 0:
                return none
            if kind in ("$div", "$mod"):
                q = abs(ka) // abs(kb) * (1 if (ka >= 0) == (kb >= 0) else -1)
                return put(q if kind == "$div" else ka - q * kb)
            return put(ka // kb if kind == "$divfloor" else ka % kb)
        return arith
    if kind in _SHIFT:
        return _shift(kind, aw, bw, yw, asg, bsg)
    raise NetlistError(f"cell {name} is a {kind}, which the plumbing proof does not model")


def _inv(x):
    return 1 - x if x == 0 or x == 1 else X


def _and(p, q):
    if p == 0 or q == 0:
        return 0
    if p == 1:
        return q
    if q == 1:
        return p
    return p if p == q and p is not X else X


def _or(p, q):
    if p == 1 or q == 1:
        return 1
    if p == 0:
        return q
    if q == 0:
        return p
    return p if p == q and p is not X else X


def _xor(p, q):
    if p == 0:
        return q
    if q == 0:
        return p
    if (p == 1 or p == 0) and (q == 1 or q == 0):
        return p ^ q
    return 0 if p == q and p is not X else X


def _xnor(p, q):
    return _inv(_xor(p, q))


def _shift(kind: str, aw: int, bw: int, yw: int, asg: bool, bsg: bool) -> Callable:
    """A shift by a known amount moves bits, names too (simlib.v): ``$shl``/``$sshl``/``$shr``/
    ``$sshr``/``$shift`` shift ``A`` extended (by ``A_SIGNED``) to the larger of its and ``Y``'s
    widths, ``$sshr`` filling with the sign where signed, the others with zeros; ``$shift`` shifts
    right by ``B`` (signed where ``B_SIGNED``: negative shifts left); ``$shiftx`` is ``A[B +: Y]``,
    x outside ``A``."""
    width = max(aw, yw)

    def shift(bits):
        a, b = list(bits[:aw]), bits[aw:]
        k = 0
        for i, x in enumerate(b):
            if x == 1:
                k |= 1 << i
            elif x != 0:
                return (X,) * yw
        if kind == "$shiftx":
            off = _signed(k, bw) if bsg else k
            return tuple(a[i + off] if 0 <= i + off < aw else X for i in range(yw))
        ext = _ext_bits(a, asg, width)
        amount = -k if kind in ("$shl", "$sshl") else (_signed(k, bw) if kind == "$shift" and bsg else k)
        fill = ext[-1] if kind == "$sshr" and asg else 0
        return tuple(ext[i + amount] if 0 <= i + amount < width else (fill if i + amount >= width else 0)
                     for i in range(yw))
    return shift
