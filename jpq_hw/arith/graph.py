"""AdderGraph: the shift-add IR every lowering pass produces and every backend renders.

An :class:`AdderGraph` is a flat list of nodes in SSA order (every operand is an earlier node):

``Input(index)``
    Input element ``index`` of the network, an integer in ``[lo, hi]``.
``Add(a, b, shift_a, shift_b, subtract)``
    ``(a << shift_a) + (b << shift_b)``, or ``-`` when ``subtract``. One adder.
``Requant(term, offset, shift, relu, out)``
    A layer's output stage (contract.md section 1): with ``acc = term + offset`` (``offset`` is
    the bias plus the rounding constant ``2**(shift-1)``), the value is
    ``clamp(relu(floor(acc / 2**shift)), out.lo, out.hi)``. ``term`` is a :class:`Term`
    (``±(node << shift)``) or ``None`` for a row with no nonzero weight (the value is then constant).

Each node carries its exact value range ``[lo, hi]``: an Add node's range is computed from its
linear form over the nearest Input / Requant nodes (which are treated as independent variables),
so ``x*8 - x`` gets ``[7*lo, 7*hi]``, not the looser interval-arithmetic bound. The width of the
signal that holds a node follows from its range (:func:`range_width`): it can never overflow.

``graph.evaluate(x)`` is the interpreter: exact integer values for a batch of inputs, the reference
every pass is checked against without a simulator. Graphs are built with :class:`GraphBuilder`.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Iterable, Sequence

import numpy as np

from ..ir.qnet import IntFormat


def range_width(lo: int, hi: int) -> tuple[int, bool]:
    """``(bits, signed)`` of the narrowest two's complement or binary signal holding ``[lo, hi]``."""
    if lo >= 0:
        return max(int(hi).bit_length(), 1), False
    return max(max(int(hi), 0).bit_length(), int(-lo - 1).bit_length()) + 1, True


@dataclass(frozen=True, slots=True)
class Term:
    """``-(node << shift)`` if ``neg`` else ``node << shift``: how a sum leaves the adder graph."""

    node: int
    shift: int = 0
    neg: bool = False


@dataclass(frozen=True, slots=True)
class Input:
    index: int
    lo: int
    hi: int
    level: int = 0


@dataclass(frozen=True, slots=True)
class Add:
    a: int
    b: int
    shift_a: int
    shift_b: int
    subtract: bool
    lo: int
    hi: int
    level: int
    layer: int = 0  # index of the QNet layer this adder belongs to


@dataclass(frozen=True, slots=True)
class Requant:
    term: Term | None
    offset: int
    shift: int
    relu: bool
    out: IntFormat
    acc_lo: int  # exact range of term + offset
    acc_hi: int
    lo: int
    hi: int
    level: int
    layer: int  # index of the QNet layer this output belongs to


Node = Input | Add | Requant


def threshold(n: Requant) -> tuple[str, int] | None:
    """A 1-bit unsigned output stage is a comparison of its term's node with a constant:
    ``(">=", c)`` (y = node >= c) or ``("<=", c)`` (a negated term: y = node <= c); None for any
    other output stage (or a constant one). With ``acc = +-(node << term.shift) + offset``,
    ``y = 1`` exactly where ``floor(acc / 2**shift) >= 1``, i.e. ``acc >= 2**shift`` (ReLU or not)."""
    if n.out != IntFormat(1, False) or n.lo == n.hi or n.term is None:
        return None
    k = (1 << n.shift) - n.offset  # y = 1 where +-(node << term.shift) >= k
    if n.term.neg:
        return "<=", (-k) >> n.term.shift  # node << s <= -k
    return ">=", -((-k) >> n.term.shift)  # node >= ceil(k / 2**s)


def bare_negation(n: Requant) -> bool:
    """Whether output stage ``n`` negates its term and nothing clamps it: no threshold, and no ReLU
    or saturation can act. The emitters write it ``~(term - (offset + 1))`` without ``keep``
    (see ``bench/yosys_keep_pitfall.py``)."""
    if n.term is None or not n.term.neg or n.lo == n.hi or threshold(n) is not None:
        return False
    t_lo, t_hi = n.acc_lo >> n.shift, n.acc_hi >> n.shift
    return not (n.relu and t_lo < 0) and n.out.lo <= t_lo and t_hi <= n.out.hi


def requant_value(acc: int, shift: int, relu: bool, out: IntFormat) -> int:
    """The scalar requantisation of contract.md applied to ``acc`` (which already includes the offset)."""
    t = acc >> shift
    if relu:
        t = max(t, 0)
    return min(max(t, out.lo), out.hi)


@dataclass(frozen=True, eq=False)
class AdderGraph:
    """A finished, immutable graph: ``nodes`` in SSA order, ``outputs`` naming nodes in output order."""

    nodes: tuple[Node, ...]
    inputs: tuple[int, ...]  # node id of input element i
    outputs: tuple[int, ...]  # node id of output element j
    layer_names: tuple[str, ...] = ()

    def width(self, node_id: int) -> tuple[int, bool]:
        """``(bits, signed)`` of the signal that holds the node (from its range)."""
        return self.widths[node_id]

    @cached_property
    def widths(self) -> tuple[tuple[int, bool], ...]:
        return tuple(range_width(n.lo, n.hi) for n in self.nodes)

    @property
    def depth(self) -> int:
        return max((self.nodes[o].level for o in self.outputs), default=0)

    @property
    def adders(self) -> list[int]:
        return [i for i, n in enumerate(self.nodes) if isinstance(n, Add)]

    def evaluate(self, x: np.ndarray, *, check_ranges: bool = True) -> np.ndarray:
        """Exact outputs for a batch ``x`` [batch, n_inputs] of integers (int64).

        With ``check_ranges`` every node's values are checked against its range: a pass that
        computes a range wrongly fails here, long before a simulator sees its Verilog.
        """
        x = np.asarray(x, dtype=np.int64)
        if x.ndim == 1:
            x = x[None]
        if x.shape[1] != len(self.inputs):
            raise ValueError(f"graph takes {len(self.inputs)} inputs, got {x.shape[1]}")
        values: list[np.ndarray | None] = [None] * len(self.nodes)
        for i, nid in enumerate(self.inputs):
            values[nid] = x[:, i]
        for nid, n in enumerate(self.nodes):
            if isinstance(n, Input):
                v = values[nid]
            elif isinstance(n, Add):
                a = values[n.a] << n.shift_a
                b = values[n.b] << n.shift_b
                v = a - b if n.subtract else a + b
            else:
                if n.term is None:
                    acc = np.full(x.shape[0], n.offset, dtype=np.int64)
                else:
                    t = values[n.term.node] << n.term.shift
                    acc = (-t if n.term.neg else t) + n.offset
                v = acc >> n.shift
                if n.relu:
                    v = np.maximum(v, 0)
                v = np.clip(v, n.out.lo, n.out.hi)
            if check_ranges and v.size and (v.min() < n.lo or v.max() > n.hi):
                raise AssertionError(f"node {nid} ({type(n).__name__}) left its range [{n.lo}, {n.hi}]: "
                                     f"[{v.min()}, {v.max()}]")
            values[nid] = v
        return np.stack([values[o] for o in self.outputs], axis=1)

    def without_dead_nodes(self) -> "AdderGraph":
        """The same graph less every node no output depends on (inputs are always kept)."""
        live = [False] * len(self.nodes)
        for o in self.outputs:
            live[o] = True
        for nid in range(len(self.nodes) - 1, -1, -1):
            if not live[nid]:
                continue
            n = self.nodes[nid]
            if isinstance(n, Add):
                live[n.a] = live[n.b] = True
            elif isinstance(n, Requant) and n.term is not None:
                live[n.term.node] = True
        for i in self.inputs:
            live[i] = True
        if all(live):
            return self
        remap: dict[int, int] = {}
        nodes: list[Node] = []
        for nid, n in enumerate(self.nodes):
            if not live[nid]:
                continue
            if isinstance(n, Add):
                n = replace(n, a=remap[n.a], b=remap[n.b])
            elif isinstance(n, Requant) and n.term is not None:
                n = replace(n, term=replace(n.term, node=remap[n.term.node]))
            remap[nid] = len(nodes)
            nodes.append(n)
        return AdderGraph(tuple(nodes), tuple(remap[i] for i in self.inputs),
                          tuple(remap[o] for o in self.outputs), self.layer_names)

    def consumers(self) -> list[list[int]]:
        """For every node, the ids of the nodes that read it."""
        users: list[list[int]] = [[] for _ in self.nodes]
        for nid, n in enumerate(self.nodes):
            if isinstance(n, Add):
                users[n.a].append(nid)
                if n.b != n.a:
                    users[n.b].append(nid)
            elif isinstance(n, Requant) and n.term is not None:
                users[n.term.node].append(nid)
        return users

    def stats(self) -> dict[str, int]:
        """Adders, subtractors, one-bit adder cells and depth of the whole graph."""
        adds = subs = add_bits = sub_bits = 0
        for n in self.nodes:
            if isinstance(n, Add):
                bits = adder_bits(n)
                if n.subtract:
                    subs += 1
                    sub_bits += bits
                else:
                    adds += 1
                    add_bits += bits
        return {"adders": adds + subs, "subtractors": subs, "adder_bits": add_bits + sub_bits,
                "subtractor_bits": sub_bits, "depth": self.depth}


def adder_bits(n: Add) -> int:
    """One-bit adder cells an :class:`Add` needs: its width less the low bits that need no carry logic.

    ``(a << sa) + (b << sb)``: the low ``max(sa, sb)`` result bits are zeros or one operand's own
    bits. ``(a << sa) - (b << sb)``: only the low ``sb`` bits are (above them ``-b`` needs the chain).
    """
    w, _ = range_width(n.lo, n.hi)
    free = n.shift_b if n.subtract else max(n.shift_a, n.shift_b)
    return max(w - free, 0)


class GraphBuilder:
    """Builds an :class:`AdderGraph` node by node, computing exact ranges from linear forms.

    ``forms[nid]`` maps a variable (an Input or Requant node id) to its integer coefficient in the
    node's value; an Input / Requant node's form is ``{itself: 1}``.
    """

    def __init__(self):
        self.nodes: list[Node] = []
        self.forms: list[dict[int, int] | None] = []
        self.inputs: list[int] = []
        self.layer = 0  # the QNet layer that new adders are attributed to

    # -- variables -------------------------------------------------------------------------------
    def input(self, lo: int, hi: int) -> int:
        nid = len(self.nodes)
        self.nodes.append(Input(len(self.inputs), int(lo), int(hi)))
        self.forms.append({nid: 1})
        self.inputs.append(nid)
        return nid

    def requant(self, term: Term | None, offset: int, shift: int, relu: bool, out: IntFormat, layer: int) -> int:
        if term is None:
            acc_lo = acc_hi = int(offset)
            level = 1
        else:
            tlo, thi = self._term_range(term)
            acc_lo, acc_hi = tlo + offset, thi + offset
            level = self.nodes[term.node].level + 1
        lo = requant_value(acc_lo, shift, relu, out)
        hi = requant_value(acc_hi, shift, relu, out)
        if lo == hi:  # the output cannot change (e.g. a ReLU that never fires): it reads nothing
            term, offset, acc_hi, level = None, acc_lo, acc_lo, 1
        nid = len(self.nodes)
        self.nodes.append(Requant(term, int(offset), int(shift), bool(relu), out, int(acc_lo), int(acc_hi),
                                  int(lo), int(hi), level, layer))
        self.forms.append({nid: 1})
        return nid

    # -- adders ----------------------------------------------------------------------------------
    def add(self, a: int, b: int, shift_a: int = 0, shift_b: int = 0, subtract: bool = False) -> int:
        """Append ``(a << shift_a) ± (b << shift_b)``; returns its node id."""
        form = {k: c << shift_a for k, c in self.forms[a].items()}
        sign = -1 if subtract else 1
        for k, c in self.forms[b].items():
            c = form.get(k, 0) + sign * (c << shift_b)
            if c:
                form[k] = c
            else:
                form.pop(k, None)
        lo, hi = self._form_range(form)
        level = max(self.nodes[a].level, self.nodes[b].level) + 1
        nid = len(self.nodes)
        self.nodes.append(Add(a, b, int(shift_a), int(shift_b), bool(subtract), lo, hi, level, self.layer))
        self.forms.append(form)
        return nid

    def combine(self, t1: Term, t2: Term) -> Term:
        """A new Add for ``t1 + t2``; the common shift is factored out, a subtraction kept positive."""
        m = min(t1.shift, t2.shift)
        s1, s2 = t1.shift - m, t2.shift - m
        if t1.neg == t2.neg:
            return Term(self.add(t1.node, t2.node, s1, s2, False), m, t1.neg)
        if t2.neg:  # t1 - t2
            return Term(self.add(t1.node, t2.node, s1, s2, True), m, False)
        return Term(self.add(t2.node, t1.node, s2, s1, True), m, False)

    def sum_terms(self, terms: Sequence[Term]) -> Term | None:
        """Sum signed terms with the fewest subtractors: a balanced tree over the positive terms,
        another over the negative ones, one subtraction at the end (iCE40: a subtractor bit costs
        about two LUTs, an adder bit one)."""
        pos = self._balanced([t for t in terms if not t.neg])
        neg = self._balanced([t for t in terms if t.neg])
        if pos is None:
            return neg
        if neg is None:
            return pos
        return self.combine(pos, neg)

    def _balanced(self, terms: Sequence[Term]) -> Term | None:
        if not terms:
            return None
        nodes = self.nodes
        heap = [(nodes[t.node].level, t.shift, i, t) for i, t in enumerate(terms)]
        heapq.heapify(heap)
        seq = len(heap)
        while len(heap) > 1:
            _, _, _, t1 = heapq.heappop(heap)
            _, _, _, t2 = heapq.heappop(heap)
            t = self.combine(t1, t2)
            heapq.heappush(heap, (nodes[t.node].level, t.shift, seq, t))
            seq += 1
        return heap[0][3]

    # -- ranges ----------------------------------------------------------------------------------
    def _form_range(self, form: dict[int, int]) -> tuple[int, int]:
        lo = hi = 0
        nodes = self.nodes
        for k, c in form.items():
            v = nodes[k]
            if c > 0:
                lo += c * v.lo
                hi += c * v.hi
            else:
                lo += c * v.hi
                hi += c * v.lo
        return lo, hi

    def _term_range(self, term: Term) -> tuple[int, int]:
        n = self.nodes[term.node]
        lo, hi = n.lo << term.shift, n.hi << term.shift
        return (-hi, -lo) if term.neg else (lo, hi)

    def build(self, outputs: Iterable[int], layer_names: Sequence[str] = ()) -> AdderGraph:
        return AdderGraph(tuple(self.nodes), tuple(self.inputs), tuple(outputs), tuple(layer_names))
