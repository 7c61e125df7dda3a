"""Plans: how ``y = W x`` is computed with shift-adds, before any width is known.

The sharing passes (:mod:`~jpq_hw.arith.mcm`, :mod:`~jpq_hw.arith.cmvm`) produce and rewrite plans;
:func:`build_plan` turns one into :class:`~jpq_hw.arith.graph.GraphBuilder` nodes, where ranges and
widths are computed. A :class:`Plan` has

- ``defs``: new *variables*, each one :class:`ShiftAdd` ``v = (a << sa) + sign * (b << sb)`` over
  the inputs (variables ``0 .. n_inputs-1``) and earlier definitions (variable ``n_inputs + k`` is
  ``defs[k]``); one adder each;
- ``rows``: per output, the :class:`PlanTerm` list ``sign * (var << shift)`` whose sum is the
  output; a row of ``k`` terms costs ``k - 1`` more adders.

:class:`ShiftAdd` is also the recipe of an MCM fundamental (:func:`~jpq_hw.arith.mcm.mcm_graph`),
there over constants instead of variables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, NamedTuple, Sequence

import numpy as np

from .csd import csd_digits
from .graph import GraphBuilder, Term, range_width

if TYPE_CHECKING:
    from ..cost.model import CostModel


new_tuple = tuple.__new__
"""``new_tuple(PlanTerm, (var, shift, sign))``: a named tuple made at the cost of a plain one (the
generated ``__new__`` costs twice as much again), for the loops that make one per weight digit."""


class ShiftAdd(NamedTuple):
    """``(a << sa) + sign * (b << sb)``: one adder over two earlier values (``sign`` is 1 or -1)."""

    a: int
    sa: int
    b: int
    sb: int
    sign: int


class PlanTerm(NamedTuple):
    """``sign * (var << shift)``: one term of an output row (``sign`` is 1 or -1)."""

    var: int
    shift: int
    sign: int


@dataclass
class Plan:
    """Shift-add program for ``y = W x``: definitions of shared variables and one term list per row."""

    n_inputs: int
    defs: list[ShiftAdd] = field(default_factory=list)
    rows: list[list[PlanTerm]] = field(default_factory=list)

    @property
    def adders(self) -> int:
        return len(self.defs) + sum(max(len(r) - 1, 0) for r in self.rows)

    def copy(self) -> "Plan":
        return Plan(self.n_inputs, list(self.defs), [list(r) for r in self.rows])

    def values(self) -> list[dict[int, int]]:
        """Each variable's value as ``{input: coefficient}`` (for checks; slow for big plans)."""
        vals: list[dict[int, int]] = [{i: 1} for i in range(self.n_inputs)]
        for a, sa, b, sb, sg in self.defs:
            v = {k: c << sa for k, c in vals[a].items()}
            for k, c in vals[b].items():
                v[k] = v.get(k, 0) + sg * (c << sb)
            vals.append({k: c for k, c in v.items() if c})
        return vals

    def matrix(self) -> np.ndarray:
        """The ``[rows, n_inputs]`` integer matrix the plan computes (object dtype, exact)."""
        vals = self.values()
        out = np.zeros((len(self.rows), self.n_inputs), dtype=object)
        for r, terms in enumerate(self.rows):
            for v, s, g in terms:
                for k, c in vals[v].items():
                    out[r, k] += g * (c << s)
        return out


def csd_plan(weight: np.ndarray, digits: Callable[[int], list[tuple[int, int]]] = csd_digits) -> Plan:
    """Every nonzero weight written as its CSD digits (or as ``digits`` writes it: ``(position,
    sign)`` pairs); no definitions (the per-weight baseline)."""
    weight = np.asarray(weight)
    cache: dict[int, list[tuple[int, int]]] = {}
    rows = []
    for row in weight:
        terms = []
        for i in np.flatnonzero(row):
            w = int(row[i])
            ds = cache.get(w)
            if ds is None:
                ds = cache[w] = digits(w)
            i = int(i)
            terms.extend(new_tuple(PlanTerm, (i, p, d)) for p, d in ds)
        rows.append(terms)
    return Plan(weight.shape[1], [], rows)


def build_plan(builder: GraphBuilder, plan: Plan, inputs: Sequence[int], cost_model: "CostModel",
               flips: dict[int, bool] | None = None, chosen: dict[int, bool] | None = None) -> list[Term | None]:
    """Write ``plan`` into ``builder`` over the input nodes ``inputs``; one term per row.

    Every variable becomes a node and a sign (``value = ±node``). A difference ``p - n`` can be
    built as ``p - n`` or as ``-(n - p)``; the low bits of the subtracted operand's shift pass
    through, so the cheaper adder subtracts the operand with the larger shift, but a negated node
    that is a row's only term makes the output stage negate it instead (as wide as the term). The
    orientation that ``cost_model`` prices lower wins (the shift rule where they tie). A negation is
    otherwise pushed into the terms that read the variable, where it costs nothing.

    ``flips`` overrides that local choice: ``flips[k]`` is whether the node of ``defs[k]`` holds
    the variable negated; a difference is built as ``-(n - p)`` where it is True and as ``p - n``
    where it is False (see :func:`~jpq_hw.arith.optimize.orient_plan`, which chooses them for the
    whole circuit). A sum has no choice: its node is negated where both operands are, whatever
    ``flips`` says. ``chosen``, where given, receives whether each definition's node was built
    negated.
    """
    single: dict[int, list[tuple[int, int]]] = {}  # var -> (shift, sign) of rows that are only it
    for terms in plan.rows:
        if len(terms) == 1:
            v, s, g = terms[0]
            single.setdefault(v, []).append((s, g))
    nodes = builder.nodes
    # var -> (node, negated)
    var: list[tuple[int, bool]] = [(n, False) for n in inputs]
    for k, (a, sa, b, sb, sg) in enumerate(plan.defs):
        na, neg_a = var[a]
        nb, neg_b = var[b]
        if sg < 0:
            neg_b = not neg_b
        # value = (-1)^neg_a (na << sa) + (-1)^neg_b (nb << sb)
        if neg_a == neg_b:
            var.append((builder.add(na, nb, sa, sb, False), neg_a))
            if chosen is not None:
                chosen[k] = neg_a
            continue
        # p - n: positive operand p, negative operand n
        (np_, sp), (nn, sn) = ((na, sa), (nb, sb)) if neg_b else ((nb, sb), (na, sa))
        uses = single.get(len(var))
        flip = sp > sn  # subtract the operand with the larger shift
        if uses:
            ap, an = nodes[np_], nodes[nn]
            lo = (ap.lo << sp) - (an.hi << sn)
            hi = (ap.hi << sp) - (an.lo << sn)
            w = range_width(lo, hi)[0]
            # node p - n (outputs that read it negated negate it), or node n - p read negated
            cost_keep = cost_model.adder(w - sn, True) + sum(cost_model.negation(w + s) for s, g in uses if g < 0)
            cost_flip = cost_model.adder(w - sp, True) + sum(cost_model.negation(w + s) for s, g in uses if g > 0)
            if cost_keep != cost_flip:
                flip = cost_flip < cost_keep
        if flips is not None:
            flip = flips.get(k, flip)
        if chosen is not None:
            chosen[k] = flip
        if flip:
            var.append((builder.add(nn, np_, sn, sp, True), True))
        else:
            var.append((builder.add(np_, nn, sp, sn, True), False))
    out: list[Term | None] = []
    for terms in plan.rows:
        ts = []
        for v, s, g in terms:
            n, ng = var[v]
            ts.append(Term(n, s, (g < 0) != ng))
        out.append(builder.sum_terms(ts))
    return out
