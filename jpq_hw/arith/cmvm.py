"""Constant matrix-vector multiplication by common-subexpression elimination (CSE) over a :class:`Plan`.

:func:`cse` is a Hartley-style greedy over the terms of every row of a plan (at first the CSD digits
of the weights, :func:`~jpq_hw.arith.plan.csd_plan`): a *pattern* is what a pair of terms of one
row forms, ``±(a << s) ± (b << s + d)``, the same for any ``s`` and any common sign. The most
frequent pattern becomes a new variable ``t = a ± (b << d)``, every row holding it is rewritten with
one term of ``t``, and the search goes on (``t`` pairs with other terms in turn, so shared sums of
any length grow) while some pattern occurs twice. Each extraction of a pattern found ``n`` times
saves ``n - 1`` adders.

One round has three steps, each a function of its own: :func:`_occurrences` counts where a pattern
occurs (without overlaps), :func:`_extract` defines its variable, :func:`_rewrite` puts that
variable into the rows and returns the patterns its new terms form. The pair counts are taken once
with numpy (:func:`_count_pairs`); after that the greedy is *lazy*: a count is exact when its
pattern is first counted and an upper bound later (the terms of a variable are only ever
consumed), so the top of a max-heap is recounted and taken only if its count still stands.

Ties among equal counts (most patterns near the end have count two) decide a lot;
:class:`TieBreak` lists the orders, and :mod:`jpq_hw.arith.optimize` tries several.
"""

from __future__ import annotations

import enum
import heapq
from typing import Sequence

import numpy as np

from .graph import range_width
from .plan import Plan, PlanTerm, ShiftAdd, new_tuple

MIN_COUNT = 2  # a pattern found once saves nothing


# -- packed integer codes -------------------------------------------------------------------------
# A term ``var << shift`` of a row is ``var << _SB | shift``; a pattern ``(a, b, d, neg)`` is one
# int ``a | b | d + _DBIAS | neg`` (high to low), so numpy can sort and count them. Both helpers
# below work on Python ints and on int64 arrays alike.

_SB = 7  # bits of a term's shift inside its code
_SM = (1 << _SB) - 1
_VB = 26  # bits of a variable id inside a pattern key
_VM = (1 << _VB) - 1
_DB = 8  # bits of a pattern's relative shift (biased)
_DM = (1 << _DB) - 1
_DBIAS = 1 << (_DB - 1)


def _pattern_key(a, b, d, neg):
    """The key of ``±((a << s) + (-1)**neg (b << s + d))``."""
    return ((a << _VB | b) << _DB | (d + _DBIAS)) << 1 | neg


def _pattern(k) -> tuple:
    """``(a, b, d, neg)`` of a key (the inverse of :func:`_pattern_key`)."""
    return k >> (1 + _DB + _VB), (k >> (1 + _DB)) & _VM, ((k >> 1) & _DM) - _DBIAS, k & 1


# -- tie-breaks -----------------------------------------------------------------------------------

class TieBreak(enum.Enum):
    """The order among patterns of equal (weighted) count; the pattern of smaller rank is taken first.

    ``neg``: a subtraction; ``depth``: adder depth of the deeper operand; ``|d|``: the relative
    shift; ``one variable``: both terms of one variable (an MCM-like pattern).
    """

    ADD_SHALLOW_WIDE = "additions, then shallower, then the larger |d|"
    ADD_SHALLOW_NARROW = "additions, then shallower, then the smaller |d|"
    TWO_VARIABLES_FIRST = "patterns of two variables, then as ADD_SHALLOW_NARROW"
    DEEP_FIRST = "deeper first (shared chains grow long), then additions, then the smaller |d|"
    KEY_ORDER = "the order of the pattern keys alone"
    RANDOM = "pseudo-random, from a seed"

    def rank(self, neg, depth, dabs, one_var, key, seed: int = 0):
        """The rank of a pattern (ints or int64 arrays alike)."""
        if self is TieBreak.ADD_SHALLOW_WIDE:
            return (neg << 16) | (depth << 8) | (_DBIAS - dabs)
        if self is TieBreak.ADD_SHALLOW_NARROW:
            return (neg << 16) | (depth << 8) | dabs
        if self is TieBreak.TWO_VARIABLES_FIRST:
            return (one_var << 24) | (neg << 16) | (depth << 8) | dabs
        if self is TieBreak.DEEP_FIRST:
            return ((255 - depth) << 16) | (neg << 8) | dabs
        if self is TieBreak.KEY_ORDER:
            return neg * 0
        if isinstance(key, np.ndarray):
            return np.array([_random_rank(k, seed) for k in key.tolist()], dtype=np.int64)
        return _random_rank(key, seed)


def _random_rank(key: int, seed: int) -> int:
    return (((key ^ (seed * 0x5851F42D4C957F2D)) * 0x9E3779B97F4A7C15) >> 40) & 0xFFFFFF


# -- the search -----------------------------------------------------------------------------------

Row = dict[int, dict[int, int]]  # a row during CSE: var -> {shift: sign}


class _Variables:
    """Per variable of the plan being rewritten: adder depth, value range and pricing width."""

    def __init__(self, plan: Plan, ranges: Sequence[tuple[int, int]] | None, weighted: bool):
        self.n = plan.n_inputs
        self.defs = list(plan.defs)
        self.weighted = weighted
        self.depth = [0] * self.n
        self.lo = [r[0] for r in ranges] if ranges is not None else [-128] * self.n
        self.hi = [r[1] for r in ranges] if ranges is not None else [127] * self.n
        self.width: list[int] = [self._width(v) for v in range(self.n)]
        for d in self.defs:
            self._add(d)

    def _width(self, v: int) -> int:
        return range_width(self.lo[v], self.hi[v])[0] if self.weighted else 1

    def _add(self, d: ShiftAdd) -> int:
        a, sa, b, sb, sg = d
        self.depth.append(max(self.depth[a], self.depth[b]) + 1)
        blo, bhi = (self.lo[b] << sb, self.hi[b] << sb) if sg > 0 else (-(self.hi[b] << sb), -(self.lo[b] << sb))
        self.lo.append((self.lo[a] << sa) + blo)
        self.hi.append((self.hi[a] << sa) + bhi)
        self.width.append(self._width(self.n))
        self.n += 1
        return self.n - 1

    def define(self, d: ShiftAdd) -> int:
        """A new variable ``d``; returns its id."""
        self.defs.append(d)
        return self._add(d)

    def weight(self, k: int) -> int:
        """How much one occurrence of pattern ``k`` counts: 1, or with ``weighted`` the width of the
        narrower operand (da4ml's "weighted most common": a shared sum of wide operands saves more
        one-bit cells)."""
        if not self.weighted:
            return 1
        a, b, _, _ = _pattern(k)
        return min(self.width[a], self.width[b])


def _count_pairs(rows: list[Row]) -> tuple[np.ndarray, np.ndarray]:
    """Every pattern of every row and how often it occurs (vectorised over each row's term pairs)."""
    chunks = []
    for row in rows:
        if len(row) > 1 or any(len(m) > 1 for m in row.values()):
            items = sorted(((v << _SB) | s, g) for v, m in row.items() for s, g in m.items())
            terms = np.fromiter((t for t, _ in items), np.int64, len(items))
            signs = np.fromiter((g for _, g in items), np.int8, len(items))
            i, j = _triu(len(items))
            t1, t2 = terms[i], terms[j]
            chunks.append(_pattern_key(t1 >> _SB, t2 >> _SB, (t2 & _SM) - (t1 & _SM), signs[i] != signs[j]))
    if not chunks:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.unique(np.concatenate(chunks), return_counts=True)


def _occurrences(rows: list[Row], rows_of: dict[int, set[int]], k: int) -> list[tuple[int, int, int]]:
    """The non-overlapping occurrences of pattern ``k``: ``(row, shift of the a-term, its sign)``."""
    a, b, d, neg = _pattern(k)
    ra, rb = rows_of.get(a), rows_of.get(b)
    occ = []
    if not (ra and rb):
        return occ
    if a != b:
        for r in (ra & rb if len(ra) <= len(rb) else rb & ra):
            row = rows[r]
            ma, mb = row[a], row[b]
            for s, g in ma.items():
                g2 = mb.get(s + d)
                if g2 is not None and (g != g2) == neg:
                    occ.append((r, s, g))
        return occ
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
    return occ


def _extract(variables: _Variables, k: int) -> tuple[int, int]:
    """Define ``t = a ± (b << d)`` for pattern ``k`` (normalised to non-negative shifts); returns ``t``
    and the offset of its terms' shifts against the a-terms they replace."""
    a, b, d, neg = _pattern(k)
    sign = -1 if neg else 1
    if d >= 0:
        return variables.define(ShiftAdd(a, 0, b, d, sign)), 0
    return variables.define(ShiftAdd(a, -d, b, 0, sign)), d


def _rewrite(rows: list[Row], rows_of: dict[int, set[int]], k: int, occ: list[tuple[int, int, int]], t: int,
             offset: int) -> np.ndarray | None:
    """Replace each occurrence of pattern ``k`` by one term of ``t``; returns the keys of the
    patterns the new terms form with the rest of their rows (``None`` if none)."""
    a, b, d, _ = _pattern(k)
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
        st = s + offset
        if row:
            # t is the newest variable, so its term sorts last in every pair it forms
            other = np.array([(v << _SB) | x for v, m in row.items() for x in m], dtype=np.int64)
            gs = np.array([y for m in row.values() for y in m.values()], dtype=np.int64)
            new_keys.append(_pattern_key(other >> _SB, t, st - (other & _SM), gs != g))
        mt = row.get(t)
        if mt is None:
            row[t] = {st: g}
            rows_t.add(r)
        else:
            mt[st] = g
    return np.concatenate(new_keys) if new_keys else None


def _within_depth(occ: list[tuple[int, int, int]], k: int, load: list[int], depth: list[int],
                  capacity: int) -> tuple[list[tuple[int, int, int]], dict[int, int]]:
    """The occurrences of pattern ``k`` that keep their row's depth bound within ``capacity``
    (``2**max_depth``), or do not raise it, and the rows' loads after taking them."""
    a, b, _, _ = _pattern(k)
    da, db = depth[a], depth[b]
    change = (1 << (max(da, db) + 1)) - (1 << da) - (1 << db)  # >= 0; 0 when da == db
    kept, new_load = [], {}
    for o in occ:
        r = o[0]
        after = new_load.get(r, load[r]) + change
        if change == 0 or after <= capacity:
            kept.append(o)
            new_load[r] = after
    return kept, new_load


def cse(plan: Plan, *, tie_break: TieBreak = TieBreak.ADD_SHALLOW_WIDE, seed: int = 0, same_var: bool = True,
        ranges: Sequence[tuple[int, int]] | None = None, weighted: bool = False, max_depth: int | None = None) -> Plan:
    """Extract shared two-term patterns from ``plan``'s rows greedily (most frequent first).

    A pattern is ``(a, b, d, neg)``: terms ``±(a << s)`` and ``±(b << s + d)`` of one row, with the
    same sign (``neg`` false) or opposite signs. Extracting it defines ``t = a ± (b << d)`` and
    replaces every non-overlapping occurrence by one term of ``t``. ``tie_break`` (and ``seed``, for
    :attr:`TieBreak.RANDOM`) orders patterns of equal count. ``same_var=False`` leaves patterns of
    one variable alone.

    ``weighted`` ranks patterns by count times the bit width of the narrower operand
    (:meth:`_Variables.weight`), the widths following from the inputs' ``ranges`` (default 8-bit
    signed) by interval arithmetic.

    ``max_depth`` bounds the adder depth of every row's sum: a row whose terms have depths ``d_i``
    can be summed in ``ceil(log2(sum 2**d_i))`` levels at best (a Huffman tree by depth), and an
    occurrence is extracted only where that bound stays within ``max_depth`` (or does not grow).
    """
    variables = _Variables(plan, ranges, weighted)
    if variables.n + sum(len(r) for r in plan.rows) >= 1 << _VB:
        raise ValueError("plan too large for CSE")
    if max((s for r in plan.rows for _, s, _ in r), default=0) >= _DBIAS // 2:
        return plan.copy()  # shifts this large never occur for integer weights of sane width

    rows: list[Row] = []
    rows_of: dict[int, set[int]] = {}
    load: list[int] = []  # per row: sum of 2**depth over its terms (see max_depth)
    for r, terms in enumerate(plan.rows):
        row: Row = {}
        for v, s, sg in terms:
            row.setdefault(v, {})[s] = sg
            rows_of.setdefault(v, set()).add(r)
        rows.append(row)
        load.append(sum(1 << variables.depth[v] for v, _, _ in terms))
    capacity = None if max_depth is None else 1 << max_depth

    def wanted(keys: np.ndarray, counts: np.ndarray) -> np.ndarray:
        keep = counts >= MIN_COUNT
        if not same_var:
            a, b, _, _ = _pattern(keys)
            keep &= a != b
        return keep

    def rank(k: int) -> int:
        a, b, d, neg = _pattern(k)
        return tie_break.rank(neg, max(variables.depth[a], variables.depth[b]), abs(d), int(a == b), k, seed)

    count: dict[int, int] = {}
    heap: list[tuple[int, int, int]] = []  # (-count * weight, rank, key)
    keys, counts = _count_pairs(rows)
    keep = wanted(keys, counts)
    keys, counts = keys[keep], counts[keep]
    if len(keys):
        a, b, d, neg = _pattern(keys)
        depth = np.asarray(variables.depth, dtype=np.int64)
        width = np.asarray(variables.width, dtype=np.int64)
        ranks = tie_break.rank(neg, np.maximum(depth[a], depth[b]), np.abs(d), (a == b).astype(np.int64), keys, seed)
        prio = counts * np.minimum(width[a], width[b])
        perm = np.lexsort((keys, ranks, -prio))
        keys, counts = keys[perm].tolist(), counts[perm].tolist()
        ranks, prio = ranks[perm].tolist(), prio[perm].tolist()
        count = dict(zip(keys, counts))
        heap = list(zip([-p for p in prio], ranks, keys))  # sorted, hence a valid heap

    heappush, heappop = heapq.heappush, heapq.heappop
    while heap:
        neg_prio, _, k = heappop(heap)
        prio = -neg_prio
        wk = variables.weight(k)
        if count.get(k, 0) * wk != prio:
            continue  # superseded entry
        occ = _occurrences(rows, rows_of, k)
        if capacity is not None:
            occ, new_load = _within_depth(occ, k, load, variables.depth, capacity)
        if len(occ) * wk < prio:  # fewer than counted: back with its true count, or gone
            if len(occ) >= MIN_COUNT:
                count[k] = len(occ)
                heappush(heap, (-len(occ) * wk, rank(k), k))
            else:
                del count[k]
            continue
        del count[k]
        t, offset = _extract(variables, k)
        new_keys = _rewrite(rows, rows_of, k, occ, t, offset)
        if capacity is not None:
            for r, v in new_load.items():
                load[r] = v
        if new_keys is not None and len(new_keys) >= MIN_COUNT:
            keys, counts = np.unique(new_keys, return_counts=True)
            keep = wanted(keys, counts)
            for kk, cc in zip(keys[keep].tolist(), counts[keep].tolist()):
                count[kk] = cc
                heappush(heap, (-cc * variables.weight(kk), rank(kk), kk))

    out_rows = [sorted(new_tuple(PlanTerm, (v, s, g)) for v, m in row.items() for s, g in m.items()) for row in rows]
    return Plan(plan.n_inputs, variables.defs, out_rows)


_TRIU: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _triu(n: int) -> tuple[np.ndarray, np.ndarray]:
    r = _TRIU.get(n)
    if r is None:
        r = np.triu_indices(n, 1)
        if n <= 512:
            _TRIU[n] = r
    return r
