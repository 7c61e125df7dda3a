"""Constant matrix-vector multiplication by common-subexpression elimination (CSE).

A *plan* describes how ``y = W x`` is computed without saying anything about widths yet:

- ``defs``: new variables, each ``v = (a << sa) + sign * (b << sb)`` over inputs (variables
  ``0 .. n_inputs-1``) and earlier definitions (variables ``n_inputs + k``). One adder each.
- ``rows``: per output, the signed terms ``(var, shift, sign)`` whose sum is the output; a row of
  ``k`` terms costs ``k - 1`` more adders.

:func:`cse` is a Hartley-style greedy over the terms of every row (at first the CSD digits of the
weights, :func:`csd_plan`): a *pattern* is what a pair of terms of one row forms,
``±(a << s) ± (b << s + d)``, the same for any ``s`` and any common sign. The most frequent pattern
becomes a new variable ``t = a ± (b << d)``, every row holding it is rewritten with one term of
``t``, and the search goes on (``t`` pairs with other terms in turn, so shared sums of any length
grow) while some pattern occurs twice. Each extraction of a pattern found ``n`` times saves
``n - 1`` adders. The pair counts are taken once with numpy; after that the greedy is *lazy*: a
count is exact when its pattern is first counted and an upper bound later (the terms of a variable
are only ever consumed), so the top of a max-heap is recounted on the rows that hold both variables
and taken only if its count still stands. Ties among equal counts (most patterns near the end have
count two) decide a lot; :func:`_tb` lists the orders, and :mod:`jpq_hw.arith.optimize` tries
several.

:func:`build_plan` writes a plan into a :class:`~jpq_hw.arith.graph.GraphBuilder`. Every variable
becomes a node and a sign (``value = ±node``): a difference is built either way round, as
``p - (n << s)`` (the low ``s`` bits pass through, no carry cells) or negated, whichever the
target's cost model prefers, and a negation is pushed into the terms that read the variable, where
it costs nothing unless the term is a whole output.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

import numpy as np

from .csd import csd_digits
from .graph import GraphBuilder, Term, range_width

if TYPE_CHECKING:
    from ..cost.model import CostModel


@dataclass
class Plan:
    """Shift-add program for ``y = W x``: definitions of shared variables and one term list per row."""

    n_inputs: int
    defs: list[tuple[int, int, int, int, int]] = field(default_factory=list)  # (a, sa, b, sb, sign)
    rows: list[list[tuple[int, int, int]]] = field(default_factory=list)  # (var, shift, sign)

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


def csd_plan(weight: np.ndarray) -> Plan:
    """Every nonzero weight written as its CSD digits; no definitions (the per-weight baseline)."""
    weight = np.asarray(weight)
    cache: dict[int, list[tuple[int, int]]] = {}
    rows = []
    for row in weight:
        terms = []
        for i in np.flatnonzero(row):
            w = int(row[i])
            ds = cache.get(w)
            if ds is None:
                ds = cache[w] = csd_digits(w)
            terms.extend((int(i), p, d) for p, d in ds)
        rows.append(terms)
    return Plan(weight.shape[1], [], rows)


# -- common-subexpression elimination -------------------------------------------------------------

_SB = 7  # bits of a term's shift inside its integer code (term = var << _SB | shift)
_SM = (1 << _SB) - 1
_VB = 26  # bits of a variable id inside a pair key
_VM = (1 << _VB) - 1
_DB = 8  # bits of a pair's relative shift (biased)
_DM = (1 << _DB) - 1
_DBIAS = 1 << (_DB - 1)


def _pair_keys(terms: np.ndarray, signs: np.ndarray) -> np.ndarray:
    """Keys of every pair of one row's terms (``terms`` sorted ascending), vectorised."""
    n = len(terms)
    i, j = _triu(n)
    t1, t2 = terms[i], terms[j]
    return ((((t1 >> _SB) << _VB | (t2 >> _SB)) << _DB | ((t2 & _SM) - (t1 & _SM) + _DBIAS)) << 1
            | (signs[i] != signs[j]))


def _tb(neg, lv, dabs, same, key, order):
    """Tie-break among patterns of equal count (smaller first); works on ints and on arrays.

    ``neg``: a subtraction; ``lv``: depth of the deeper operand; ``dabs``: |relative shift|;
    ``same``: both terms of one variable (an MCM-like pattern). Orders: 0 additions first, then
    shallower, then the larger shift; 1 the same with the smaller shift; 2 shallower first; 3
    additions, larger shift; 4 key order; 5 one-variable patterns first; 6 two-variable patterns
    first; 7 deeper first (shared chains grow long), then additions, then the smaller shift;
    100 and up: seeded pseudo-random."""
    if order == 0:
        return (neg << 16) | (lv << 8) | (_DBIAS - dabs)
    if order == 1:
        return (neg << 16) | (lv << 8) | dabs
    if order == 2:
        return (lv << 16) | (neg << 8) | (_DBIAS - dabs)
    if order == 3:
        return (neg << 16) | (_DBIAS - dabs)
    if order == 4:
        return neg * 0
    if order == 5:
        return ((1 - same) << 24) | (neg << 16) | (lv << 8) | dabs
    if order == 6:
        return (same << 24) | (neg << 16) | (lv << 8) | dabs
    if order == 7:
        return ((255 - lv) << 16) | (neg << 8) | dabs
    if order >= 100:  # pseudo-random, seeded
        if isinstance(key, np.ndarray):
            return np.array([_tb(0, 0, 0, 0, k, order) for k in key.tolist()], dtype=np.int64)
        return (((key ^ (order * 0x5851F42D4C957F2D)) * 0x9E3779B97F4A7C15) >> 40) & 0xFFFFFF
    raise ValueError(f"unknown tie-break order {order}")


_TRIU: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _triu(n: int) -> tuple[np.ndarray, np.ndarray]:
    r = _TRIU.get(n)
    if r is None:
        r = np.triu_indices(n, 1)
        if n <= 512:
            _TRIU[n] = r
    return r


def cse(plan: Plan, *, block_of: Sequence[int] | None = None, min_count: int = 2, order: int = 0,
        same_var: bool = True, ranges: Sequence[tuple[int, int]] | None = None, weighted: bool = False) -> Plan:
    """Extract shared two-term patterns from ``plan``'s rows greedily (most frequent first).

    A pattern is ``(a, b, d, neg)``: terms ``±(a << s)`` and ``±(b << s + d)`` of one row, with the
    same sign (``neg`` false) or opposite signs. Extracting it defines ``t = a ± (b << d)`` and
    replaces every non-overlapping occurrence by one term of ``t``. With ``block_of`` (a block id per
    variable of the plan), only terms of variables in the same block are paired: each row is split
    into one pseudo-row per block, which bounds the pair count of very long rows (the blocks' partial
    sums are added at the end like any other terms). ``order`` picks the tie-break among patterns
    of equal count (see :func:`_tb`). ``same_var=False`` leaves patterns of one variable alone.

    ``weighted`` ranks patterns by count times the bit width of the narrower operand (da4ml's
    "weighted most common"), the widths following from the inputs' ``ranges`` (default 8-bit
    signed) by interval arithmetic: sharing a sum of wide operands saves more one-bit cells.
    """
    n_in = plan.n_inputs
    defs = list(plan.defs)
    n_vars = n_in + len(defs)
    if n_vars + sum(len(r) for r in plan.rows) >= 1 << _VB:
        raise ValueError("plan too large for CSE")
    level = [0] * n_in
    for a, _, b, _, _ in defs:
        level.append(max(level[a], level[b]) + 1)
    lo = [r[0] for r in ranges] if ranges is not None else [-128] * n_in
    hi = [r[1] for r in ranges] if ranges is not None else [127] * n_in

    def extend_range(a: int, sa: int, b: int, sb: int, sg: int) -> None:
        blo, bhi = (lo[b] << sb, hi[b] << sb) if sg > 0 else (-(hi[b] << sb), -(lo[b] << sb))
        lo.append((lo[a] << sa) + blo)
        hi.append((hi[a] << sa) + bhi)

    for a, sa, b, sb, sg in defs:
        extend_range(a, sa, b, sb, sg)
    width = [range_width(x, y)[0] if weighted else 1 for x, y in zip(lo, hi)]
    max_shift = max((s for r in plan.rows for _, s, _ in r), default=0)
    if max_shift >= _DBIAS // 2:
        return plan.copy()  # shifts this large never occur for integer weights of sane width

    # pseudo-rows: (row, block) -> {var: {shift: sign}}
    owner: list[int] = []
    rows: list[dict[int, dict[int, int]]] = []
    for r, terms in enumerate(plan.rows):
        if block_of is None:
            groups = {0: terms}
        else:
            groups = {}
            for t in terms:
                groups.setdefault(block_of[t[0]], []).append(t)
        for g in sorted(groups):
            owner.append(r)
            row: dict[int, dict[int, int]] = {}
            for v, s, sg in groups[g]:
                row.setdefault(v, {})[s] = sg
            rows.append(row)

    rows_of: dict[int, set[int]] = {}
    for r, row in enumerate(rows):
        for v in row:
            rows_of.setdefault(v, set()).add(r)

    def flat(row: dict[int, dict[int, int]]) -> tuple[np.ndarray, np.ndarray]:
        items = sorted(((v << _SB) | s, g) for v, m in row.items() for s, g in m.items())
        return (np.fromiter((t for t, _ in items), np.int64, len(items)),
                np.fromiter((g for _, g in items), np.int8, len(items)))

    # initial pair counts (vectorised)
    chunks = []
    for row in rows:
        if len(row) > 1 or any(len(m) > 1 for m in row.values()):
            chunks.append(_pair_keys(*flat(row)))
    count: dict[int, int] = {}
    heap: list[tuple[int, int, int]] = []
    level_np = np.asarray(level, dtype=np.int64)
    if chunks:
        keys, counts = np.unique(np.concatenate(chunks), return_counts=True)
        keep = counts >= min_count
        if not same_var:
            keep &= (keys >> (1 + _DB + _VB)) != ((keys >> (1 + _DB)) & _VM)
        keys, counts = keys[keep], counts[keep]
        if len(keys):
            dabs = np.abs(((keys >> 1) & _DM) - _DBIAS)
            lv = np.maximum(level_np[keys >> (1 + _DB + _VB)], level_np[(keys >> (1 + _DB)) & _VM])
            same = ((keys >> (1 + _DB + _VB)) == ((keys >> (1 + _DB)) & _VM)).astype(np.int64)
            tb = _tb(keys & 1, lv, dabs, same, keys, order)
            width_np = np.asarray(width, dtype=np.int64)
            prio = counts * np.minimum(width_np[keys >> (1 + _DB + _VB)], width_np[(keys >> (1 + _DB)) & _VM])
            perm = np.lexsort((keys, tb, -prio))
            keys, counts, tb, prio = keys[perm].tolist(), counts[perm].tolist(), tb[perm].tolist(), prio[perm].tolist()
            count = dict(zip(keys, counts))
            heap = list(zip([-p for p in prio], tb, keys))  # sorted, hence a valid heap

    def weight(k: int) -> int:
        return min(width[k >> (1 + _DB + _VB)], width[(k >> (1 + _DB)) & _VM])

    def tiebreak(k: int) -> int:
        a = k >> (1 + _DB + _VB)
        b = (k >> (1 + _DB)) & _VM
        return _tb(k & 1, max(level[a], level[b]), abs(((k >> 1) & _DM) - _DBIAS), int(a == b), k, order)

    heappush, heappop = heapq.heappush, heapq.heappop
    # Lazy greedy: a stored count is exact when its pattern is first counted and an upper bound
    # later (terms of a variable are only ever consumed after the extraction that created them), so
    # the popped maximum is recounted and taken only if its count still holds; otherwise it goes
    # back with its true count.
    while heap:
        negp, _, k = heappop(heap)
        prio = -negp
        wk = weight(k)
        if count.get(k, 0) * wk != prio:
            continue  # superseded entry
        neg = k & 1
        d = ((k >> 1) & _DM) - _DBIAS
        b = (k >> (1 + _DB)) & _VM
        a = k >> (1 + _DB + _VB)
        # non-overlapping occurrences (row, shift of the a-term, sign of the a-term)
        ra = rows_of.get(a)
        rb = rows_of.get(b)
        occ = []
        if ra and rb:
            if a != b:
                for r in (ra & rb if len(ra) <= len(rb) else rb & ra):
                    row = rows[r]
                    ma, mb = row[a], row[b]
                    for s, g in ma.items():
                        g2 = mb.get(s + d)
                        if g2 is not None and (g != g2) == neg:
                            occ.append((r, s, g))
            else:
                for r in ra:
                    ma = rows[r][a]
                    if len(ma) < 2:
                        continue
                    used = set()
                    for s in sorted(ma):
                        if s in used or s + d in used:
                            continue
                        g2 = ma.get(s + d)
                        g = ma[s]
                        if g2 is not None and (g != g2) == neg:
                            used.add(s)
                            used.add(s + d)
                            occ.append((r, s, g))
        n_occ = len(occ)
        if n_occ * wk < prio:
            if n_occ >= min_count:
                count[k] = n_occ
                heappush(heap, (-n_occ * wk, tiebreak(k), k))
            else:
                del count[k]
            continue
        del count[k]
        # t = a + (-1)^neg (b << d), normalised to non-negative shifts
        sign = -1 if neg else 1
        if d >= 0:
            defs.append((a, 0, b, d, sign))
            off = 0
        else:
            defs.append((a, -d, b, 0, sign))
            off = d
        t = n_vars
        n_vars += 1
        level.append(max(level[a], level[b]) + 1)
        extend_range(*defs[-1])
        width.append(range_width(lo[-1], hi[-1])[0] if weighted else 1)
        rows_t: set[int] = set()
        rows_of[t] = rows_t
        new_keys = []
        for r, s, g in occ:
            row = rows[r]
            ma = row[a]
            del ma[s]
            if not ma:
                del row[a]
                rows_of[a].discard(r)
            mb = row[b]
            del mb[s + d]
            if not mb:
                del row[b]
                rows_of[b].discard(r)
            st = s + off
            if row:
                # pairs of the new term with the rest of the row; t is the newest variable, so
                # its term sorts last in every pair
                other = np.array([(v << _SB) | x for v, m in row.items() for x in m], dtype=np.int64)
                gs = np.array([y for m in row.values() for y in m.values()], dtype=np.int64)
                new_keys.append(((((other >> _SB) << _VB | t) << _DB | (st - (other & _SM) + _DBIAS)) << 1)
                                | (gs != g))
            mt = row.get(t)
            if mt is None:
                row[t] = {st: g}
                rows_t.add(r)
            else:
                mt[st] = g
        if len(new_keys) >= 1:
            allk = np.concatenate(new_keys)
            if len(allk) >= min_count:
                keys, counts = np.unique(allk, return_counts=True)
                keep = counts >= min_count
                if not same_var:
                    keep &= (keys >> (1 + _DB + _VB)) != ((keys >> (1 + _DB)) & _VM)
                for kk, cc in zip(keys[keep].tolist(), counts[keep].tolist()):
                    count[kk] = cc
                    heappush(heap, (-cc * weight(kk), tiebreak(kk), kk))

    out_rows: list[list[tuple[int, int, int]]] = [[] for _ in plan.rows]
    for r, row in zip(owner, rows):
        out_rows[r].extend((v, s, g) for v, m in row.items() for s, g in m.items())
    for r in out_rows:
        r.sort()
    return Plan(n_in, defs, out_rows)


# -- building -------------------------------------------------------------------------------------

def build_plan(builder: GraphBuilder, plan: Plan, inputs: Sequence[int], cost_model: "CostModel") -> list[Term | None]:
    """Write ``plan`` into ``builder`` over the input nodes ``inputs``; one term per row.

    Every variable becomes a node and a sign (``value = ±node``). A difference ``p - n`` can be
    built as ``p - n`` or as ``-(n - p)``; the low bits of the subtracted operand's shift pass
    through, so the cheaper adder subtracts the operand with the larger shift, but a negated node
    that is a row's only term makes the output stage negate it instead (as wide as the term). The
    orientation that ``cost_model`` prices lower wins (the shift rule where they tie).
    """
    single: dict[int, list[tuple[int, int]]] = {}  # var -> (shift, sign) of rows that are only it
    for terms in plan.rows:
        if len(terms) == 1:
            v, s, g = terms[0]
            single.setdefault(v, []).append((s, g))
    nodes = builder.nodes
    # var -> (node, negated)
    var: list[tuple[int, bool]] = [(n, False) for n in inputs]
    for a, sa, b, sb, sg in plan.defs:
        na, neg_a = var[a]
        nb, neg_b = var[b]
        if sg < 0:
            neg_b = not neg_b
        # value = (-1)^neg_a (na << sa) + (-1)^neg_b (nb << sb)
        if neg_a == neg_b:
            var.append((builder.add(na, nb, sa, sb, False), neg_a))
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
