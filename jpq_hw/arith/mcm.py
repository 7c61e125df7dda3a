"""Multiple constant multiplication (MCM): one input times many constants, sharing fundamentals.

:func:`mcm_graph` builds every odd constant of a set from ``x`` with shift-add steps, each new
*fundamental* ``f = |(u << a) ± (v << b)|`` made of two earlier ones (``1`` is the input). It is an
Hcub-class heuristic (Voronenko & Püschel, "Multiplierless multiple constant multiplication", ACM
TALG 2007), simplified where the full algorithm costs too much in Python:

1. *Optimal part*: while some target is one adder away from the ready set ``R`` (it lies in the
   successor set ``S = A*(R, R)``), build it.
2. *Heuristic part*: otherwise build the successor ``s`` that brings the most targets to distance 1
   (``t ∈ A*(s, R ∪ {s})``); ties go to the ``s`` that leaves the smallest CSD-estimated distance
   summed over the other targets, then to the smaller constant.
3. If no successor helps any target (every target is three or more adders away), the closest target
   is split: ``t = (x << b) ± q`` with ``x ∈ R`` and the remainder ``q`` of fewest CSD digits, and
   ``q`` joins the targets as a stepping stone.

4. Sets of up to :data:`EXACT_TARGETS` constants then get a bounded exact search
   (:func:`_exact`, depth-first over the extra fundamentals) for a graph with fewer adders.

Successor sets are Python-int bit masks, cached per pair of fundamentals; constants wider than
:data:`MAX_BITS` are built by their CSD digits instead (partial sums shared). Each fundamental's
recipe prefers an addition, then the largest shift: the low ``l`` bits of ``(u << l) ± v`` pass
through, which saves one-bit cells on iCE40. Results are odd by construction (``u << a ± v`` with
``a >= 1`` for odd ``u, v``), so no right shift is ever needed (the adder graph has none). Widths and
signs are settled later by the builder; here everything is a positive odd integer.

:func:`mcm_plan` applies it per input column of a weight matrix: ``W[o, i] = ±(f << s)`` for a
fundamental ``f`` of column ``i``, and each output row is then a sum of such terms (a
:class:`~jpq_hw.arith.plan.Plan`, to which cross-row CSE can still be applied).
:func:`mcm_residual` does the same for whatever several terms of one variable still form in a row
after CSE.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Iterable, NamedTuple

import numpy as np

from .csd import csd_digits
from .plan import Plan, PlanTerm, ShiftAdd, new_tuple


class Fundamental(NamedTuple):
    """An odd constant built by one adder: ``value = (a << sa) + sign * (b << sb)`` (``recipe``),
    ``a`` and ``b`` earlier fundamentals (or ``1``, the input itself)."""

    value: int
    recipe: ShiftAdd


def odd_part(c: int) -> tuple[int, int]:
    """``(odd, shift)`` with ``|c| == odd << shift`` (``(0, 0)`` for zero)."""
    c = abs(int(c))
    if c == 0:
        return 0, 0
    s = (c & -c).bit_length() - 1
    return c >> s, s


@lru_cache(maxsize=1 << 16)
def _csd_len(c: int) -> int:
    return len(csd_digits(c))


@lru_cache(maxsize=1 << 18)
def _succ_mask(u: int, v: int, cmax: int) -> int:
    """Bit mask (bit ``c`` set) of the odd values ``1 < c <= cmax`` one adder from odd ``u, v``:
    ``(u << l) ± v`` and ``u ± (v << l)`` for ``l >= 1`` (odd by construction; no right shift)."""
    m = 0
    for p, q in ((u, v), (v, u)):
        l = 1
        while (p << l) <= cmax + q:
            pl = p << l
            for c in (pl + q, abs(pl - q)):
                if 1 < c <= cmax:
                    m |= 1 << c
            l += 1
    return m


def _recipe_rank(r: ShiftAdd) -> tuple[bool, int]:
    """Recipes of smaller rank are preferred: an addition, then the larger shift."""
    return r[4] < 0, -max(r[1], r[3])  # (sign < 0, -max(sa, sb)), by index: a hot path


def _pair_recipe(t: int, u: int, v: int, cmax: int) -> ShiftAdd | None:
    """The recipe ``t = (a << sa) + sign * (b << sb)`` from odd ``u`` and ``v``
    (one of them shifted by ``l >= 1``), preferring an addition, then the largest shift (the low
    ``l`` bits of the sum pass through: fewer carry cells on iCE40)."""
    best = None
    for p, q in ((u, v), (v, u)):
        l = 1
        while (p << l) <= cmax + q:
            pl = p << l
            if pl + q == t:
                rec = (p, l, q, 0, 1)
            elif pl - q == t:
                rec = (p, l, q, 0, -1)
            elif q - pl == t:
                rec = (q, 0, p, l, -1)
            else:
                l += 1
                continue
            key = (rec[4] < 0, -l)  # _recipe_rank: one shift is l, the other 0 (inlined: a hot loop)
            if best is None or key < best[0]:
                best = (key, rec)
            l += 1
    return None if best is None else new_tuple(ShiftAdd, best[1])


def _better(new: ShiftAdd | None, old: ShiftAdd | None) -> bool:
    """Whether recipe ``new`` is cheaper than ``old`` (an addition; then the larger shift)."""
    if new is None:
        return False
    if old is None:
        return True
    return (new[4] < 0, -max(new[1], new[3])) < (old[4] < 0, -max(old[1], old[3]))  # _recipe_rank, inlined


def _recipe(t: int, ready: list[int], rset: set[int], cmax: int) -> ShiftAdd | None:
    """How to build ``t`` with one adder from the ready set (``None`` if it cannot be)."""
    best = None
    for r in ready:
        for q in _partners(t, r, cmax):
            if q in rset:
                rec = _pair_recipe(t, r, q, cmax)
                if rec is not None and (best is None or _recipe_rank(rec) < _recipe_rank(best)):
                    best = rec
    return best


def _partners(t: int, r: int, cmax: int):
    """The values ``q`` that make ``t`` with ``r`` in one adder: ``t = ±(r << l) ± q`` for ``l >= 1``,
    then the odd parts of ``t ± r`` and ``r - t`` (``t = ±r ± (q << l)``)."""
    l = 1
    while (r << l) <= cmax + t:
        rl = r << l
        for q in (t - rl, rl - t, t + rl):
            if q > 0:
                yield q
        l += 1
    for num in (t - r, r - t, t + r):
        if num > 0:
            yield num >> ((num & -num).bit_length() - 1)


MAX_BITS = 20  # odd constants wider than this are built by CSD chains (no search)


def _csd_chains(targets: list[int]) -> list[Fundamental]:
    """Each constant by its CSD digits from the most significant one: ``P_k = (P_{k-1} << l) ± 1``,
    every partial sum odd and positive; shared partial sums are built once."""
    out: list[Fundamental] = []
    have = {1}
    for t in targets:
        digits = sorted(csd_digits(t), reverse=True)  # (position, sign), most significant first
        value, pos = 1, digits[0][0]
        for p, d in digits[1:]:
            new = (value << (pos - p)) + d
            if new not in have:
                have.add(new)
                out.append(Fundamental(new, ShiftAdd(value, pos - p, 1, 0, d)))
            value, pos = new, p
    return out


EXACT_TARGETS = 6  # target sets up to this size also get an exact search for a smaller graph
EXACT_BITS = 16
EXACT_NODES = 4000  # search nodes the exact search may visit per set


def mcm_graph(constants: Iterable[int], *, max_bits: int | None = None) -> list[Fundamental]:
    """Fundamentals that build every constant of ``constants`` from ``1``, in build order.

    Returns the :class:`Fundamental` list, ``a, b`` of each recipe earlier fundamentals (or ``1``).
    Every odd part ``> 1`` of a constant is among them.
    Small sets (:data:`EXACT_TARGETS`) then get a bounded exact search for a graph with fewer adders.
    """
    targets = {odd_part(c)[0] for c in constants if c} - {0, 1}
    if not targets:
        return []
    bits = max(t.bit_length() for t in targets)
    if max_bits is not None:
        bits = max(bits, max_bits)
    if bits > MAX_BITS:  # successor sets as bit masks would be huge: CSD chains instead
        return _csd_chains(sorted(targets))
    out = _hcub(targets, bits)
    if len(out) > len(targets) and len(targets) <= EXACT_TARGETS and bits <= EXACT_BITS:
        better = _exact(sorted(targets), bits, len(out) - 1)
        if better is not None:
            out = better
    return out


def _exact(targets: list[int], bits: int, limit: int) -> list[Fundamental] | None:
    """A graph of at most ``limit`` adders, found by depth-first search, or ``None``.

    Targets one adder away from the ready set are always taken at once (that never hurts); the
    search branches only over the extra, non-target fundamentals, cheapest-first, and stops after
    :data:`EXACT_NODES` nodes.
    """
    cmax = 1 << (bits + 1)
    best: list = [None]
    state = {"nodes": 0, "bound": limit}

    def reach(ready: list[int]) -> int:
        m = 0
        for i, u in enumerate(ready):
            for v in ready[: i + 1]:
                m |= _succ_mask(u, v, cmax)
        return m

    def dfs(ready: list[int], todo: set[int]) -> bool:
        """Search below ``ready``; True once a graph of only the targets (optimal) is found."""
        state["nodes"] += 1
        ready, todo = list(ready), set(todo)
        while True:
            m = reach(ready)
            hit = sorted(t for t in todo if (m >> t) & 1)
            if not hit:
                break
            ready += hit
            todo.difference_update(hit)
        if not todo:
            if len(ready) - 1 <= state["bound"]:
                best[0] = ready
                state["bound"] = len(ready) - 2  # from now on, only strictly better graphs
            return len(ready) - 1 == len(targets)
        if len(ready) + len(todo) > state["bound"] or state["nodes"] > EXACT_NODES:
            return False  # an extra fundamental plus the targets left would not beat the bound
        rset = set(ready)
        cands = []
        while m:
            low = m & -m
            c = low.bit_length() - 1
            m ^= low
            if c not in rset:
                cands.append(c)
        cands.sort(key=lambda c: (sum(min(_estimate(t, c, cmax), _csd_len(t) - 1) for t in todo), c))
        for c in cands:
            if dfs(ready + [c], todo) or state["nodes"] > EXACT_NODES:
                return True if best[0] is not None and len(best[0]) - 1 == len(targets) else False
            if len(ready) + len(todo) > state["bound"]:
                return False
        return False

    dfs([1], set(targets))
    if best[0] is None:
        return None
    order = best[0][1:]
    out = []
    ready = [1]
    rset = {1}
    for f in order:
        recipe = _recipe(f, ready, rset, cmax)
        assert recipe is not None
        out.append(Fundamental(f, recipe))
        ready.append(f)
        rset.add(f)
    return out


def _hcub(targets: set[int], bits: int) -> list[Fundamental]:
    """The Hcub-class heuristic of the module docstring."""
    cmax = 1 << (bits + 1)
    ready: list[int] = [1]
    rset = {1}
    smask = _succ_mask(1, 1, cmax)  # successor set S as a bit mask
    out: list[Fundamental] = []
    todo = set(targets)
    tmask = 0
    for t in todo:
        tmask |= 1 << t

    rmask = 1 << 1
    how: dict[int, ShiftAdd] = {}  # recipes of targets one adder away
    for t in todo:
        if (smask >> t) & 1:
            how[t] = _pair_recipe(t, 1, 1, cmax)

    def note_successors(u: int, v: int) -> int:
        """Record the recipes of the targets one adder from ``u`` and ``v``; return their successor mask."""
        m = _succ_mask(u, v, cmax)
        hits = m & tmask
        while hits:
            low = hits & -hits
            t = low.bit_length() - 1
            hits ^= low
            rec = _pair_recipe(t, u, v, cmax)
            if _better(rec, how.get(t)):
                how[t] = rec
        return m

    def add(f: int) -> None:
        nonlocal smask, tmask, rmask
        recipe = how.pop(f, None) or _recipe(f, ready, rset, cmax)
        assert recipe is not None, f"internal error: {f} is not one adder from {ready}"
        out.append(Fundamental(f, recipe))
        rset.add(f)
        ready.append(f)
        rmask |= 1 << f
        todo.discard(f)
        tmask &= ~(1 << f)
        if not (tmask & ~smask):
            return  # every remaining target is one adder away already (its recipe is known)
        for r in ready:
            smask |= note_successors(f, r)
        smask &= ~rmask

    while todo:
        hit = smask & tmask
        if hit:
            for t in sorted(todo):
                if (hit >> t) & 1:
                    add(t)
            continue
        # successors that bring targets to distance one
        gain: dict[int, int] = {}
        for t in todo:
            cands = {q for q in _split_parts(t, ready, cmax) if (smask >> q) & 1}
            for k in range(1, bits + 2):  # t = s * (2^k ± 1)
                for m in ((1 << k) - 1, (1 << k) + 1):
                    if m > 1 and t % m == 0 and (smask >> (t // m)) & 1:
                        cands.add(t // m)
            for s in cands:
                gain[s] = gain.get(s, 0) + 1
        if gain:
            best = max(gain.values())
            tied = sorted(s for s, g in gain.items() if g == best)
            if len(tied) > 1:
                base = {t: min(_estimate(t, r, cmax) for r in ready) for t in todo}
                tied.sort(key=lambda s: (_estimate_after(s, base, cmax), s))
            add(tied[0])
            continue
        # every target is >= 3 adders away: split the closest one
        best_key = None
        for t in sorted(todo):
            for qo in _split_parts(t, ready, cmax):
                if qo > 1:
                    key = (_csd_len(qo), qo, t)
                    if best_key is None or key < best_key:
                        best_key = key
        todo.add(best_key[1])
        tmask |= 1 << best_key[1]
        for i, u in enumerate(ready):  # the successor set may lag behind (see add): rebuild it
            for v in ready[: i + 1]:
                smask |= note_successors(u, v)
        smask &= ~rmask
    return out


def _split_parts(t: int, ready: list[int], cmax: int):
    """The odd parts of ``t ± (r << l)`` (nonzero ones) for every ready ``r`` and shift ``l >= 0``
    with ``r << l <= cmax + t``: what is left to build once ``t`` is split against the ready set."""
    for r in ready:
        l = 0
        while (r << l) <= cmax + t:
            rl = r << l
            for q in (t + rl, abs(t - rl)):
                if q:
                    yield odd_part(q)[0]
            l += 1


@lru_cache(maxsize=1 << 18)
def _estimate(t: int, r: int, cmax: int) -> int:
    """CSD estimate of the adders ``t`` needs once ``r`` is ready: ``t = (r << l) ± q`` costs the
    adders of ``q`` (CSD digits less one) plus one; no more than ``t``'s own CSD cost."""
    best = _csd_len(t) - 1
    l = 0
    while (r << l) <= cmax + t and best > 1:
        rl = r << l
        for q in (t + rl, abs(t - rl)):
            if q:
                est = _csd_len(q >> ((q & -q).bit_length() - 1))
                if est < best:
                    best = est
        l += 1
    return best


def _estimate_after(s: int, base: dict[int, int], cmax: int) -> int:
    """CSD-based distance estimate summed over the targets once ``s`` is ready (tie-break only);
    ``base`` holds each target's estimate from the ready set alone."""
    return sum(min(e, _estimate(t, s, cmax)) for t, e in base.items())


def odd_parts(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Element-wise :func:`odd_part` of an integer array: ``(odd, shift)`` (zeros stay ``(0, 0)``)."""
    a = np.abs(np.asarray(weight, dtype=np.int64))
    shift = np.zeros(a.shape, dtype=np.int64)
    odd = a.copy()
    nz = odd != 0
    while True:
        even = nz & ((odd & 1) == 0)
        if not even.any():
            return odd, shift
        odd[even] >>= 1
        shift[even] += 1


def prefer_subtractions(graph: list[Fundamental], negative: set[int]) -> list[Fundamental]:
    """``graph`` with every fundamental of ``negative`` (wanted only negated) rebuilt, where the
    fundamentals before it allow, by a subtraction: ``f = (a << sa) - (b << sb)`` is built as
    ``(b << sb) - (a << sa)`` at the same cost and read negated
    (:func:`~jpq_hw.arith.plan.build_plan` flips it), where an addition would leave an output
    stage to negate it at the full width."""
    if not negative or not graph:
        return graph
    cmax = 1 << (max(f.value for f in graph).bit_length() + 1)
    ready, out = [1], []
    for f in graph:
        if f.value in negative and f.recipe.sign > 0:
            rset = set(ready)
            for r in ready:
                sub = next((rec for q in _partners(f.value, r, cmax) if q in rset
                            for rec in [_subtraction(f.value, r, q, cmax)] if rec is not None), None)
                if sub is not None:
                    f = Fundamental(f.value, sub)
                    break
        out.append(f)
        ready.append(f.value)
    return out


def _subtraction(t: int, u: int, v: int, cmax: int) -> ShiftAdd | None:
    """A recipe ``t = (a << sa) - (b << sb)`` from ``u`` and ``v``, the largest shift first."""
    best = None
    for p, q in ((u, v), (v, u)):
        l = 1
        while (p << l) <= cmax + q:
            pl = p << l
            rec = (p, l, q, 0, -1) if pl - q == t else (q, 0, p, l, -1) if q - pl == t else None
            if rec is not None and (best is None or l > best[0]):
                best = (l, rec)
            l += 1
    return None if best is None else new_tuple(ShiftAdd, best[1])


def mcm_plan(weight: np.ndarray) -> Plan:
    """Per input column: build the column's odd constants with :func:`mcm_graph`; each row is the
    sum of its weights' ``±(fundamental << shift)`` terms. A constant that only single-term rows
    read, all negated, is built by a subtraction where one is as cheap (:func:`prefer_subtractions`)."""
    weight = np.asarray(weight, dtype=np.int64)
    n_out, n_in = weight.shape
    plan = Plan(n_in, [], [[] for _ in range(n_out)])
    odd, shift = odd_parts(weight)
    cache: dict[tuple, list] = {}
    cols = np.flatnonzero(np.any(weight != 0, axis=0))
    single = np.count_nonzero(weight, axis=1) == 1  # rows that are one term: its sign is the output's
    for i in cols.tolist():
        nz = np.flatnonzero(weight[:, i])
        f_col = odd[nz, i].tolist()
        consts = tuple(sorted(set(f_col)))
        wanted_positive = {f for f, o in zip(f_col, nz.tolist()) if weight[o, i] > 0 or not single[o]}
        negative = frozenset(set(f_col) - wanted_positive)
        graph = cache.get((consts, negative))
        if graph is None:
            graph = cache[consts, negative] = prefer_subtractions(mcm_graph(consts), negative)
        var = {1: i}
        base = plan.n_inputs + len(plan.defs)
        for k, (f, (a, la, b, lb, sg)) in enumerate(graph):
            var[f] = base + k
            plan.defs.append(new_tuple(ShiftAdd, (var[a], la, var[b], lb, sg)))
        rows = plan.rows
        for o, f, s, w in zip(nz.tolist(), f_col, shift[nz, i].tolist(), weight[nz, i].tolist()):
            rows[o].append(new_tuple(PlanTerm, (var[f], s, 1 if w > 0 else -1)))
    return plan


def mcm_adders(constants: Iterable[int]) -> int:
    """Adders :func:`mcm_graph` needs for ``constants`` (one input, no output sums)."""
    return len(mcm_graph(constants))


def mcm_residual(plan: Plan) -> Plan:
    """Re-share what CSE left: per variable, the constants its remaining terms form in each row.

    After CSE a row may still hold several terms of one variable ``v`` (``v << 3`` and ``-v``, i.e.
    ``7 v``). Per variable, the odd parts of these row constants form an MCM problem; where
    :func:`mcm_graph` builds them in fewer adders than the terms cost (``k - 1`` for ``k`` terms), the
    fundamentals become new definitions and each such row keeps one term ``±(f << s)`` of ``v``.
    """
    rows = [list(r) for r in plan.rows]
    defs = list(plan.defs)
    n_in = plan.n_inputs
    per_var: dict[int, list[tuple[int, int]]] = {}  # var -> [(row, constant)]
    for r, terms in enumerate(rows):
        const: dict[int, int] = {}
        cnt: dict[int, int] = {}
        for v, s, g in terms:
            const[v] = const.get(v, 0) + g * (1 << s)
            cnt[v] = cnt.get(v, 0) + 1
        for v, k in cnt.items():
            if k > 1 and const[v] != 0:
                per_var.setdefault(v, []).append((r, const[v]))
    changed = False
    for v in sorted(per_var):
        items = per_var[v]
        current = sum(sum(1 for t in rows[r] if t.var == v) - 1 for r, _ in items)
        graph = mcm_graph(odd_part(c)[0] for _, c in items)
        if len(graph) >= current:
            continue
        changed = True
        var = {1: v}
        for f, (a, la, b, lb, sg) in graph:
            var[f] = n_in + len(defs)
            defs.append(ShiftAdd(var[a], la, var[b], lb, sg))
        for r, c in items:
            f, s = odd_part(c)
            rows[r] = [t for t in rows[r] if t.var != v] + [PlanTerm(var[f], s, 1 if c > 0 else -1)]
    if not changed:
        return plan
    return Plan(n_in, defs, [sorted(r) for r in rows])
