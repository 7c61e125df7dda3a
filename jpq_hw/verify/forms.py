"""Exact linear forms over a network's variables, and how a netlist port reads one.

A :class:`Form` is ``const + sum(coef[v] * v)`` over variables ``v`` (a network input, or one
layer output that the proof has already established), each with an integer range. Variables are
independent or over-approximated as such, so :meth:`Form.range` is exact or wider: never narrower.

A word of the netlist *holds* a form ``F`` when its ``w`` bits equal ``F mod 2**w`` for every
input. :func:`read_port` reads a cell's input port (a list of bits, extended to the operation's
width as yosys does) as ``F mod 2**m`` from the forms its words hold, and checks that every
extension and every concatenation on the way is exact: a ``j``-bit run read with sign extension
needs ``F`` in the signed ``j``-bit range, one followed by zeros or other bits needs ``F`` in
``[0, 2**j)``. Where a check fails, the read is refused (:class:`WrapError`): a value that could
wrap around never passes as exact.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Sequence

from .netlist import Bit, run_end

Var = tuple  # ("x", i) or ("y", layer, neuron)


class Form:
    """``const + sum(coef * var)`` with integer coefficients (no zero coefficient is stored)."""

    __slots__ = ("coef", "const", "_range")

    def __init__(self, coef: dict | None = None, const: int = 0):
        self.coef = coef or {}
        self.const = int(const)
        self._range = None

    @staticmethod
    def var(v: Var) -> "Form":
        return Form({v: 1})

    @staticmethod
    def constant(c: int) -> "Form":
        return Form({}, c)

    def is_constant(self) -> bool:
        return not self.coef

    def scaled(self, k: int) -> "Form":
        return Form({v: c * k for v, c in self.coef.items()} if k else {}, self.const * k)

    def plus(self, other: "Form", k: int = 1) -> "Form":
        """``self + k * other``."""
        if len(other.coef) > len(self.coef) and k == 1:
            return other.plus(self)
        coef = dict(self.coef)
        for v, c in other.coef.items():
            s = coef.get(v, 0) + k * c
            if s:
                coef[v] = s
            else:
                coef.pop(v, None)
        return Form(coef, self.const + k * other.const)

    def shape_key(self) -> frozenset:
        """The non-constant part, hashable: forms that differ by a constant share it."""
        return frozenset(self.coef.items())

    def normalized(self) -> tuple[frozenset, int]:
        """``(key, scale)`` with ``self - const == scale * N`` for the form ``N`` that ``key`` holds:
        its coefficients divided by their gcd, the first variable's made positive. Forms that are
        multiples of one another up to a constant share the key."""
        if not self.coef:
            return frozenset(), 0
        g = 0
        for c in self.coef.values():
            g = math.gcd(g, c)
        if self.coef[min(self.coef)] < 0:
            g = -g
        return frozenset((v, c // g) for v, c in self.coef.items()), g

    def range(self, ranges: dict) -> tuple[int, int]:
        if self._range is None:
            lo = hi = self.const
            for v, c in self.coef.items():
                a, b = ranges[v]
                if c > 0:
                    lo, hi = lo + c * a, hi + c * b
                else:
                    lo, hi = lo + c * b, hi + c * a
            self._range = (lo, hi)
        return self._range

    def substitute(self, value_of: Callable[[Var], "Form | None"]) -> "Form":
        """Replace each variable ``v`` for which ``value_of(v)`` is a form by that form."""
        out = Form({}, self.const)
        for v, c in self.coef.items():
            f = value_of(v)
            out = out.plus(f if f is not None else Form.var(v), c)
        return out

    def __eq__(self, other) -> bool:
        return isinstance(other, Form) and self.const == other.const and self.coef == other.coef

    def __hash__(self):
        return hash((self.shape_key(), self.const))

    def __repr__(self) -> str:
        terms = [f"{c}*{_name(v)}" for v, c in sorted(self.coef.items())[:6]]
        more = f" + ... ({len(self.coef)} terms)" if len(self.coef) > 6 else ""
        return " + ".join(terms + [str(self.const)]) + more


def _name(v: Var) -> str:
    return f"x{v[1]}" if v[0] == "x" else f"{v[1]}.y{v[2]}"


def sum_forms(terms: Iterable[tuple[int, Form]], const: int = 0) -> Form:
    coef: dict = {}
    for k, f in terms:
        const += k * f.const
        for v, c in f.coef.items():
            coef[v] = coef.get(v, 0) + k * c
    return Form({v: c for v, c in coef.items() if c}, const)


class NotLinear(Exception):
    """The port reads a word in a way that is not a linear function of it (a slice not starting at
    bit 0, bits out of order), or reads a word that holds no form yet (``opaque`` lists them)."""

    def __init__(self, msg: str, opaque: Sequence[int] = ()):
        super().__init__(msg)
        self.opaque = list(opaque)


class WrapError(Exception):
    """A read that would be exact only if a word's value could not wrap around, and it can."""

    def __init__(self, msg: str, form: "Form | None" = None):
        super().__init__(msg)
        self.form = form


def extend(bits: Sequence[Bit], signed: bool, width: int) -> list[Bit]:
    """A port's bits extended (by its sign where signed) or truncated to ``width``, as yosys does."""
    bits = list(bits[:width])
    if len(bits) < width:
        fill = bits[-1] if signed and bits else "0"
        bits += [fill] * (width - len(bits))
    return bits


def read_port(bits: Sequence[Bit], form_of: Callable[[int], "Form | None"], ranges: dict,
              name_of: Callable[[int], str]) -> Form:
    """The form ``F`` with ``bits == F mod 2**len(bits)`` for every input (see the module notes)."""
    m = len(bits)
    const, terms, opaque = 0, [], []
    i = 0
    while i < m:
        b = bits[i]
        if isinstance(b, str):
            if b == "x":
                raise NotLinear("an undefined (x) bit")
            if b == "1":
                const += 1 << i
            i += 1
            continue
        if b.bit != 0:
            raise NotLinear(f"bits {b.bit}.. of {name_of(b.word)} (a slice)")
        j = run_end(bits, i)
        run, top = j - i, bits[j - 1]
        e = 0
        while j + e < m and bits[j + e] == top:
            e += 1
        f = form_of(b.word)
        if f is None:
            opaque.append(b.word)
        else:
            reaches_top = j + e == m
            if not (reaches_top and e == 0):  # an extension, or more bits above: the run must be exact
                signed = reaches_top
                f = _representative(f, ranges, run if signed else run - (1 if e else 0), signed, run)
                if f is None:
                    lo, hi = form_of(b.word).range(ranges)
                    kind = "signed" if signed else "unsigned"
                    raise WrapError(f"{name_of(b.word)} in [{lo}, {hi}] is read as a {run}-bit {kind} value",
                                    form_of(b.word))
            terms.append((1 << i, f))
        i = j + e
    if opaque:
        raise NotLinear("reads words that hold no form yet", opaque)
    return sum_forms(terms, const)


def _representative(f: Form, ranges: dict, bits: int, signed: bool, modulus_bits: int) -> "Form | None":
    """A form with the same bits as ``f`` modulo ``2**modulus_bits`` (its constant and coefficients
    changed by multiples of it) whose range lies in the ``bits``-bit signed or unsigned range, or
    None if none is found. First the constant alone; then, as a lowering may compute ``3 x`` as
    ``-x`` on two bits, each coefficient's two nearest representatives (every combination up to
    ten coefficients, else all-positive, all-negative and the smallest)."""
    t0, t1 = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    step = 1 << modulus_bits

    def shifted(g: Form) -> "Form | None":
        lo, hi = g.range(ranges)
        k = -((lo - t0) // step)  # the smallest k with lo + k * step >= t0
        if hi + k * step > t1:
            return None
        return g if k == 0 else Form(g.coef, g.const + k * step)

    got = shifted(f)
    if got is not None or not f.coef:
        return got
    names = list(f.coef)
    pos = [f.coef[v] % step for v in names]
    neg = [p - step for p in pos]
    if len(names) <= 10:
        choices = itertools.product(*[(p, n) for p, n in zip(pos, neg)])
    else:
        small = [p if p <= -n else n for p, n in zip(pos, neg)]
        choices = [pos, neg, small]
    for coefs in choices:
        g = Form({v: c for v, c in zip(names, coefs) if c}, f.const)
        got = shifted(g)
        if got is not None:
            return got
    return None


def reduce_mod(f: Form, width: int) -> Form:
    """``f`` with its constant and coefficients reduced into ``(-2**width, 2**width)`` where that
    changes nothing modulo ``2**width`` -- used only to compare forms modulo a width."""
    mod = 1 << width
    return Form({v: c % mod for v, c in f.coef.items() if c % mod}, f.const % mod)
