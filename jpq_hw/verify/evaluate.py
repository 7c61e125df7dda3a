"""Bit-exact evaluation of yosys's word-level cells, vectorised over numpy arrays.

The proof uses it to run an output stage (a one-word function such as rounding, ReLU and
saturation) over *every* value its accumulator can take, which is a complete proof of that stage;
and to run a whole netlist on concrete input vectors, which confirms a counterexample.

A value of a ``w``-bit signal is its unsigned reading, an int64 array in ``[0, 2**w)`` when
``w <= 62`` and a numpy array of Python ints (``dtype=object``, slower) above. Cell semantics follow
yosys's ``simlib.v``: operands are extended to the operation's width by their own ``*_SIGNED``
parameter, results are taken modulo ``2**Y_WIDTH``; comparisons are signed only where both operands
are; ``$pmux`` with more than one select bit set is undefined and reported as such.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .netlist import Bit, NetlistError, Word, run_end

WIDE = 62  # widths above this use Python ints


def _dtype(width: int):
    return np.int64 if width <= WIDE else object


def _mask(width: int) -> int:
    return (1 << width) - 1


def as_width(v: np.ndarray, width: int) -> np.ndarray:
    """``v mod 2**width``, as the array type for that width."""
    if width <= WIDE and v.dtype != object:
        return v & _mask(width)
    out = np.asarray(v, dtype=object) & _mask(width)
    return out.astype(np.int64) if width <= WIDE else out


def signed_value(v: np.ndarray, width: int, signed: bool) -> np.ndarray:
    """The integer a ``width``-bit unsigned reading ``v`` stands for."""
    if not signed or width == 0:
        return v
    if width <= WIDE and v.dtype != object:
        return v - ((v >> (width - 1)) & 1) * (1 << width)
    v = np.asarray(v, dtype=object)
    return v - ((v >> (width - 1)) & 1) * (1 << width)


def assemble(bits: Sequence[Bit], value_of: Callable[[int, int], np.ndarray], n: int) -> np.ndarray:
    """The unsigned value of a bit list, ``value_of(word, delay)`` giving each word's array as it
    was ``delay`` cycles before."""
    width = len(bits)
    out = np.zeros(n, dtype=_dtype(width))
    const = 0
    i = 0
    while i < width:
        b = bits[i]
        if isinstance(b, str):
            if b == "x":
                raise NetlistError("an undefined (x) bit reaches a value the proof evaluates")
            if b == "1":
                const |= 1 << i
            i += 1
            continue
        j = run_end(bits, i)  # a run of consecutive bits of one word
        v = value_of(b.word, b.delay)
        if v.dtype == object or width > WIDE:
            v = np.asarray(v, dtype=object)
            out = np.asarray(out, dtype=object)
        out = out + (((v >> b.bit) & _mask(j - i)) << i)
        i = j
    if const:
        out = out + const
    return as_width(out, width)


def _ext(v: np.ndarray, width: int, signed: bool, to: int) -> np.ndarray:
    return as_width(signed_value(v, width, signed), to)


def evaluate_cell(word: Word, value_of: Callable[[int, int], np.ndarray], n: int) -> np.ndarray:
    """The unsigned value of ``word`` (a value cell) given its inputs' values."""
    kind, y = word.type, word.width
    ports = {p: assemble(bits, value_of, n) for p, bits in word.ports.items()}
    widths = {p: len(bits) for p, bits in word.ports.items()}
    params = word.cell["parameters"]

    def signed(p):
        key = f"{p}_SIGNED"
        return key in params and word.param(key) == 1

    def ext(p, to=y):
        return _ext(ports[p], widths[p], signed(p), to)

    def val(p):
        return signed_value(ports[p], widths[p], signed(p))

    def boolean(v):
        return as_width(np.asarray(v).astype(np.int64), y)

    if kind == "$jpq_slice":  # a part-select (see netlist._split_slices)
        return ports["A"]
    if kind in ("$add", "$sub", "$mul", "$and", "$or", "$xor", "$xnor"):
        both = signed("A") and signed("B")  # simlib.v: signed only where both operands are
        a = _ext(ports["A"], widths["A"], both, y)
        b = _ext(ports["B"], widths["B"], both, y)
        if a.dtype != b.dtype:
            a, b = np.asarray(a, dtype=object), np.asarray(b, dtype=object)
        r = {"$add": lambda: a + b, "$sub": lambda: a - b, "$mul": lambda: np.asarray(a, dtype=object) * b,
             "$and": lambda: a & b, "$or": lambda: a | b, "$xor": lambda: a ^ b, "$xnor": lambda: ~(a ^ b)}[kind]()
        return as_width(r, y)
    if kind == "$neg":
        return as_width(-ext("A"), y)
    if kind == "$not":
        return as_width(~ext("A"), y)
    if kind in ("$lt", "$le", "$gt", "$ge", "$eq", "$ne", "$eqx", "$nex"):
        both = signed("A") and signed("B")
        a = signed_value(ports["A"], widths["A"], both)
        b = signed_value(ports["B"], widths["B"], both)
        if a.dtype != b.dtype:
            a, b = np.asarray(a, dtype=object), np.asarray(b, dtype=object)
        r = {"$lt": a < b, "$le": a <= b, "$gt": a > b, "$ge": a >= b, "$eq": a == b, "$ne": a != b,
             "$eqx": a == b, "$nex": a != b}[kind]
        return boolean(r)
    if kind in ("$reduce_or", "$reduce_bool"):
        return boolean(ports["A"] != 0)
    if kind == "$reduce_and":
        return boolean(ports["A"] == _mask(widths["A"]))
    if kind in ("$reduce_xor", "$reduce_xnor"):
        a, parity = ports["A"], np.zeros(n, dtype=np.int64)
        for i in range(widths["A"]):
            parity ^= np.asarray((a >> i) & 1, dtype=np.int64)
        return boolean(parity if kind == "$reduce_xor" else 1 - parity)
    if kind == "$logic_not":
        return boolean(ports["A"] == 0)
    if kind == "$logic_and":
        return boolean((ports["A"] != 0) & (ports["B"] != 0))
    if kind == "$logic_or":
        return boolean((ports["A"] != 0) | (ports["B"] != 0))
    if kind == "$mux":
        s = ports["S"] != 0
        return np.where(s, ports["B"], ports["A"])
    if kind == "$pmux":
        s, sw = ports["S"], widths["S"]
        out = ports["A"].copy()
        chosen = np.zeros(n, dtype=bool)
        for i in range(sw):
            hit = ((s >> i) & 1) != 0
            if np.any(hit & chosen):
                raise NetlistError(f"$pmux {word.name}: two select bits at once (undefined)")
            out = np.where(hit, (ports["B"] >> (i * y)) & _mask(y), out)
            chosen |= hit
        return as_width(out, y)
    if kind in ("$shl", "$sshl", "$shr", "$sshr"):
        a_w = max(widths["A"], y)
        a = ext("A", a_w)
        k = np.asarray(ports["B"], dtype=object)
        out = np.empty(n, dtype=object)
        sa = signed_value(a, a_w, signed("A"))
        for i in range(n):
            sh = int(k[i])
            if kind in ("$shl", "$sshl"):
                out[i] = int(a[i]) << sh
            elif kind == "$sshr" and signed("A"):
                out[i] = int(sa[i]) >> min(sh, a_w)
            else:
                out[i] = int(a[i]) >> sh
        return as_width(out, y)
    raise NetlistError(f"cell {word.name} is a {kind}, which the proof does not model")
