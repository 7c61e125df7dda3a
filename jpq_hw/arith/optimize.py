"""Adder sharing for a layer's constant matrix: the ``--optimize`` choices, chosen per layer by cost.

This module is the one registry of the choices (:data:`OPTIMIZE`, default :data:`DEFAULT_OPTIMIZE`);
:func:`lower_matrix` builds a matrix with one of them, and :func:`check_optimize` turns a bad name
into a :class:`~jpq_hw.errors.JpqError`. The choices:

``none``
    Per-weight CSD (:func:`~jpq_hw.arith.plan.csd_plan`): every nonzero digit one term, no sharing.
``mcm``
    Per input: the odd parts of the input's weights are built once as shared fundamentals
    (:func:`~jpq_hw.arith.mcm.mcm_plan`, an Hcub-class heuristic); rows sum ``±(f << s)`` terms.
``cmvm``
    Common-subexpression elimination over the CSD digits of the whole matrix
    (:func:`~jpq_hw.arith.cmvm.cse`: shared sums across rows and inputs), then the constants a
    variable still forms in a row are shared by MCM (:func:`~jpq_hw.arith.mcm.mcm_residual`).
``best`` (the default)
    Candidate plans (:func:`candidate_plans`: the three above, CSE with other tie-breaks, CSE of
    two-variable patterns followed by MCM, MCM followed by CSE, CSE over binary digits), each built
    into a scratch :class:`~jpq_hw.arith.graph.GraphBuilder` whose inputs have the real inputs'
    ranges and priced by the target's cost model, the cheapest few as they will be built: with their differences
    oriented for the whole circuit where the layer is small (:func:`orient_plan`: which side of each
    subtraction is negated decides where negations end up, in an output stage or an adder). The
    cheapest, a level of adders less counting as :data:`DEPTH_RATE` of the cells, is built for real
    (:func:`choose_plan`). Deterministic.

Every pass but ``none`` first merges rows that are equal up to sign and a power of two (a row is
computed once, the copies read it shifted and/or negated) and leaves unused inputs out.

Cost: the optimiser knows no target. It receives a :class:`~jpq_hw.cost.model.CostModel` (the
flow passes the ``--target``'s, e.g. :data:`jpq_hw.cost.ice40.ICE40`), whose ``price`` counts the
cells of a scratch build the way the design's estimate will (for iCE40: truth tables of
one-variable nodes, inverters, the output stages that negate), and whose ``adder`` / ``negation``
prices orient each difference as it is built (:func:`~jpq_hw.arith.plan.build_plan`).

Depth: rows are summed in Huffman trees by level (:meth:`~jpq_hw.arith.graph.GraphBuilder.sum_terms`),
so sharing costs little depth; a plan one level shallower wins for up to :data:`DEPTH_RATE` (2 %)
more cells, and ``max_depth`` (``jpq-hw lower --max-depth``) bounds the adder levels of every
layer: only plans within it compete (CSE bounded to it joins them), the shallowest where none is.

Work limits keep big layers fast in Python. CSE counts about ``n^2 / 2`` digit pairs per row of
``n`` digits (:func:`pair_work`): ``best`` runs as many CSE variants as :data:`VARIANT_BUDGET`
pays for (one at least), none above :data:`CSE_PAIRS` (rows of hundreds of digits, as in a
100,000-weight network of dense rows, take MCM), and on layers above :data:`PRICE_ALL` prices only
candidates within :data:`PREFILTER` of the fewest adders (the per-weight CSD plan is counted, not
built, when it cannot win). On smaller ones every candidate is priced: the fewest adders are often
not the fewest cells (a single input's constants, FIR taps: Hcub's few deep adders are wide, CSE's
more adders, summing shifted copies of the input, narrow).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from ..errors import JpqError
from .cmvm import TieBreak, cse
from .csd import adding_digits, binary_digits, csd_digits
from .graph import GraphBuilder, Term
from .mcm import mcm_plan, mcm_residual
from .plan import Plan, build_plan, csd_plan

if TYPE_CHECKING:
    from ..cost.model import CostModel

OPTIMIZE: dict[str, str] = {  # every --optimize choice, with its one-line description
    "best": "the cheapest of the others per layer by the target's cost model",
    "mcm": "shared multiples of each input",
    "cmvm": "common subexpressions across inputs",
    "none": "per-weight CSD, no sharing",
}
DEFAULT_OPTIMIZE = "best"

VARIANT_BUDGET = 120_000  # pair work ``best`` spends on CSE variants (one at least, up to CSE_PAIRS)
CSE_PAIRS = 3_000_000  # pair work up to which CSE runs at all
PREFILTER = 1.25  # above PRICE_ALL, ``best`` prices only candidates within this factor of the fewest adders
PRICE_ALL = VARIANT_BUDGET // 3  # pair work up to which ``best`` prices every candidate
DEPTH_RATE = 0.02  # ``best`` takes a plan one adder level shallower for up to 2 % more cells
ORIENT_WORK = 12_000  # node builds :func:`orient_plan` may spend on a layer (a fraction of a second)
ORIENT_RANKED = 6  # ``best`` orients this many of the cheapest distinct plans before it ranks them


# -- row merging ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class RowMap:
    """Unique rows of a matrix: ``weight[r] == (-1 if neg[r] else 1) * 2**shift[r] * unique[rep[r]]``
    (``rep[r] == -1``: a zero row)."""

    unique: np.ndarray
    rep: tuple[int, ...]
    shift: tuple[int, ...]
    neg: tuple[bool, ...]


def merge_rows(weight: np.ndarray) -> RowMap:
    """Rows equal up to sign and a power of two, merged: each is kept once, as it first appears
    without its common factor of two (so a row whose copies are all negated is built negated, and
    an output stage need not negate it), in order of first appearance."""
    weight = np.asarray(weight, dtype=np.int64)
    index: dict[bytes, int] = {}
    reps: list[np.ndarray] = []
    first_sign: list[int] = []
    rep, shift, neg = [], [], []
    for row in weight:
        nz = row[row != 0]
        if not len(nz):
            rep.append(-1)
            shift.append(0)
            neg.append(False)
            continue
        tz = int(min(((int(v) & -int(v)).bit_length() - 1) for v in nz))
        sign = -1 if nz[0] < 0 else 1
        canon = (row // (sign * (1 << tz))) if tz else row * sign
        key = canon.tobytes()
        k = index.get(key)
        if k is None:
            k = index[key] = len(reps)
            reps.append(canon * sign)
            first_sign.append(sign)
        rep.append(k)
        shift.append(tz)
        neg.append(sign != first_sign[k])
    unique = np.array(reps, dtype=np.int64).reshape(len(reps), weight.shape[1])
    return RowMap(unique, tuple(rep), tuple(shift), tuple(neg))


def expand_terms(rows: RowMap, terms: Sequence[Term | None]) -> list[Term | None]:
    """One term per original row from one term per unique row (shifted and negated as needed)."""
    out: list[Term | None] = []
    for k, s, n in zip(rows.rep, rows.shift, rows.neg):
        if k < 0 or terms[k] is None:
            out.append(None)
        else:
            t = terms[k]
            out.append(Term(t.node, t.shift + s, t.neg != n))
    return out


# -- candidates -----------------------------------------------------------------------------------

def csd_lengths(weight: np.ndarray) -> np.ndarray:
    """Nonzero CSD digits of every element (vectorised: they are the set bits of ``(3c) xor c``
    above bit 0, the classic non-adjacent-form identity; ``|c| < 2**61``)."""
    a = np.abs(np.asarray(weight, dtype=np.int64))
    x = (3 * a) ^ a
    x >>= 1
    n = np.zeros(a.shape, dtype=np.int64)
    while x.any():
        n += x & 1
        x >>= 1
    return n


def pair_work(weight: np.ndarray) -> int:
    """Digit pairs CSE would count: the sum over rows of ``n (n - 1) / 2`` for ``n`` CSD digits."""
    n = csd_lengths(weight).sum(axis=1)
    return int((n * (n - 1) // 2).sum())


def csd_adders(weight: np.ndarray) -> int:
    """Adders of the per-weight CSD plan: digits less one per nonzero row."""
    n = csd_lengths(weight).sum(axis=1)
    return int((n - (n > 0)).sum())


Ranges = Sequence[tuple[int, int]]


def _cse(weight: np.ndarray, ranges: Ranges, tie_break: TieBreak, *, seed: int = 0, weighted: bool = False,
         digits: Callable[[int], list[tuple[int, int]]] = csd_digits) -> Plan:
    """CSE over the weights written in ``digits`` (CSD unless told), then MCM of what a variable
    still forms in a row."""
    plan = csd_plan(weight, digits)
    return mcm_residual(cse(plan, tie_break=tie_break, seed=seed, ranges=ranges, weighted=weighted))


def _cse_then_mcm(weight: np.ndarray, ranges: Ranges) -> Plan:
    """Patterns of two different variables first; the constants one variable then still forms in
    a row are shared by MCM (Hcub does those better than digit pairs); then the usual CSE."""
    plan = mcm_residual(cse(csd_plan(weight), tie_break=TieBreak.DEEP_FIRST, same_var=False))
    return mcm_residual(cse(plan, tie_break=TieBreak.DEEP_FIRST))


def _mcm_then_cse(weight: np.ndarray) -> Plan:
    return mcm_residual(cse(mcm_plan(weight), tie_break=TieBreak.DEEP_FIRST))


CSE_VARIANTS: tuple[tuple[str, Callable[[np.ndarray, Ranges], Plan]], ...] = (  # most useful first
    ("cse", lambda w, r: _cse(w, r, TieBreak.DEEP_FIRST, weighted=True)),
    ("cse+mcm", _cse_then_mcm),
    ("cse-narrow", lambda w, r: _cse(w, r, TieBreak.ADD_SHALLOW_NARROW)),
    ("cse-cross", lambda w, r: _cse(w, r, TieBreak.TWO_VARIABLES_FIRST)),
    ("cse-wide", lambda w, r: _cse(w, r, TieBreak.ADD_SHALLOW_WIDE)),
    ("cse-keyorder", lambda w, r: _cse(w, r, TieBreak.KEY_ORDER)),
    ("cse-r1", lambda w, r: _cse(w, r, TieBreak.RANDOM, seed=101)),  # small layers only (the budget)
    ("cse-r2", lambda w, r: _cse(w, r, TieBreak.RANDOM, seed=102)),
)


# Small layers only (pair work up to PRICE_ALL): CSE over digits that add. On iCE40 a subtractor
# bit takes two LUTs, an adder bit one, so a weight written in more digits but without negative
# ones (plain binary, or binary wherever it has no more digits than CSD) can be the cheaper circuit.
DIGIT_VARIANTS: tuple[tuple[str, Callable[[np.ndarray, Ranges], Plan]], ...] = tuple(
    (f"cse-{name}{suffix}", functools.partial(_cse, tie_break=tie_break, weighted=tie_break is TieBreak.DEEP_FIRST,
                                              digits=digits))
    for name, digits in (("binary", binary_digits), ("adding", adding_digits))
    for suffix, tie_break in (("", TieBreak.DEEP_FIRST), ("-narrow", TieBreak.ADD_SHALLOW_NARROW),
                              ("-keyorder", TieBreak.KEY_ORDER)))


def check_optimize(optimize: str) -> str:
    """``optimize`` if it names a choice of :data:`OPTIMIZE`, else a :class:`JpqError`."""
    if optimize not in OPTIMIZE:
        raise JpqError(f"unknown --optimize choice {optimize!r} (known: {', '.join(OPTIMIZE)})")
    return optimize


def candidate_plans(weight: np.ndarray, optimize: str,
                    ranges: Ranges | None = None) -> list[tuple[str, Callable[[], Plan]]]:
    """The plans an ``optimize`` choice considers for ``weight`` (unique rows; ``ranges``: the
    inputs' value ranges).

    ``best``: per-weight CSD, MCM per input, as many :data:`CSE_VARIANTS` as fit
    :data:`VARIANT_BUDGET` pair counts (at least one, up to :data:`CSE_PAIRS`), and on small layers
    (up to :data:`PRICE_ALL`) MCM followed by CSE and CSE over digits that add
    (:data:`DIGIT_VARIANTS`).
    """
    if ranges is None:
        ranges = [(-128, 127)] * weight.shape[1]
    check_optimize(optimize)
    if optimize == "none":
        return [("csd", lambda: csd_plan(weight))]
    if optimize == "mcm":
        return [("mcm", lambda: mcm_plan(weight))]
    work = pair_work(weight)
    first = CSE_VARIANTS[0]
    if optimize == "cmvm":
        if work <= CSE_PAIRS:
            return [(first[0], lambda: first[1](weight, ranges))]
        return [("mcm", lambda: mcm_plan(weight))]
    cands = [("csd", lambda: csd_plan(weight)), ("mcm", lambda: mcm_plan(weight))]
    if work <= CSE_PAIRS:
        n = max(1, min(len(CSE_VARIANTS), VARIANT_BUDGET // max(work, 1)))
        cands += [(name, (lambda f: lambda: f(weight, ranges))(f)) for name, f in CSE_VARIANTS[:n]]
        if work <= PRICE_ALL:
            cands.append(("mcm+cse", lambda: _mcm_then_cse(weight)))
            cands += [(name, (lambda f: lambda: f(weight, ranges))(f)) for name, f in DIGIT_VARIANTS]
    return cands


# -- cost -----------------------------------------------------------------------------------------

@dataclass
class Priced:
    name: str
    adders: int
    plan: Plan | None = None  # None: never made (the per-weight CSD plan is counted without it)
    cost: int | None = None  # None: not priced (pre-filtered, or the only contender)
    depth: int | None = None  # adder levels, where priced
    flips: dict[int, bool] | None = None  # orient_plan's orientation, where ranked with it (``best``)


def _depth(builder: GraphBuilder, terms: Sequence[Term | None]) -> int:
    """Adder levels of the plan's outputs (its inputs at level 0)."""
    return max((builder.nodes[t.node].level for t in terms if t is not None), default=0)


def _scratch_price(plan: Plan, ranges: Ranges, cost_model: "CostModel", flips: dict[int, bool] | None = None,
                   chosen: dict[int, bool] | None = None, copies: RowMap | None = None) -> tuple[int, int, int]:
    """``plan`` built into a scratch builder over inputs of ``ranges`` (``flips`` and ``chosen`` as
    :func:`~jpq_hw.arith.plan.build_plan` takes them): its price, its adder levels, its nodes. With
    ``copies`` (the plan's rows being ``copies.unique``) every original row is priced, so the output
    stages that negate a row's negated copies count."""
    scratch = GraphBuilder()
    inputs = [scratch.input(lo, hi) for lo, hi in ranges]
    terms = build_plan(scratch, plan, inputs, cost_model, flips, chosen)
    if copies is not None:
        terms = expand_terms(copies, terms)
    return cost_model.price(scratch, terms), _depth(scratch, terms), len(scratch.nodes)


def choose_plan(weight: np.ndarray, ranges: Sequence[tuple[int, int]], optimize: str,
                cost_model: "CostModel", max_depth: int | None = None,
                copies: RowMap | None = None) -> tuple[Priced, list[Priced]]:
    """Candidate plans of ``weight`` for ``optimize``, priced by ``cost_model`` on scratch builders;
    returns (winner, all): the plan of least ``cost * (1 + DEPTH_RATE) ** depth``, a level of adders
    less worth :data:`DEPTH_RATE` more cells (each level lengthens the critical path by a carry chain
    and its routing: sharing that halves the depth for a few percent of the cells is worth it). With
    ``max_depth`` (adder levels) only plans within it count, depth-bounded CSE joins the
    candidates, and where none is within the bound the shallowest wins.

    Above :data:`PRICE_ALL` pair work, candidates with more than :data:`PREFILTER` times the fewest
    adders are not priced. ``best`` ranks the :data:`ORIENT_RANKED` cheapest distinct plans as
    :func:`orient_plan` orients them (the winner is built so: its ``flips``), the others as
    :func:`~jpq_hw.arith.plan.build_plan` does. ``copies``: the rows of the whole matrix, priced
    with their negated and shifted copies (:func:`_scratch_price`).
    """
    cands: list[Priced] = []
    makers = dict(candidate_plans(weight, optimize, ranges))
    if max_depth is not None and optimize in ("best", "cmvm") and pair_work(weight) <= CSE_PAIRS:
        # one level of the bound is left for the subtraction that joins a row's positive and negative sums
        makers["cse-depth"] = lambda: cse(csd_plan(weight), max_depth=max_depth - 1, ranges=ranges)
    for name, make in makers.items():
        if name == "csd" and len(makers) > 1:
            cands.append(Priced(name, csd_adders(weight)))
        else:
            plan = make()
            cands.append(Priced(name, plan.adders, plan))
    fewest = min(c.adders for c in cands)
    price_all = pair_work(weight) <= PRICE_ALL
    contenders = [c for c in cands if price_all or c.adders <= PREFILTER * fewest + 2 or c.name == "cse-depth"]
    for c in contenders:
        if c.plan is None:
            c.plan = makers[c.name]()
    if len(contenders) == 1 and max_depth is None:
        return contenders[0], cands

    # variants often find the same plan: each distinct plan is priced once, on its first contender
    keys = [(tuple(c.plan.defs), tuple(map(tuple, c.plan.rows))) for c in contenders]
    first = {k: c for k, c in zip(reversed(keys), reversed(contenders))}
    distinct = list(first.values())
    for c in distinct:
        c.cost, c.depth, _ = _scratch_price(c.plan, ranges, cost_model, copies=copies)
    if optimize == "best":
        # the winner is built oriented for the whole circuit, which can change the order (up to
        # 15 % of the cells on small layers): the cheapest distinct plans are ranked so oriented
        for c in sorted(distinct, key=lambda c: (c.cost, c.depth))[:ORIENT_RANKED]:
            c.flips = orient_plan(c.plan, ranges, cost_model, copies=copies)
            if c.flips:
                c.cost, c.depth, _ = _scratch_price(c.plan, ranges, cost_model, c.flips, copies=copies)
    for k, c in zip(keys, contenders):
        f = first[k]
        c.flips, c.cost, c.depth = f.flips, f.cost, f.depth
    within = [c for c in contenders if max_depth is None or c.depth <= max_depth]
    if not within:  # nothing is that shallow: the shallowest
        return min(contenders, key=lambda c: (c.depth, c.cost, c.adders)), cands
    return min(within, key=lambda c: (c.cost * (1 + DEPTH_RATE) ** c.depth, c.depth, c.adders)), cands


def orient_plan(plan: Plan, ranges: Ranges, cost_model: "CostModel", work: int | None = None,
                copies: RowMap | None = None) -> dict[int, bool]:
    """Orientations of the plan's differences (``flips`` of :func:`~jpq_hw.arith.plan.build_plan`)
    chosen for the whole circuit, by greedy passes priced by ``cost_model`` on scratch builds.

    :func:`~jpq_hw.arith.plan.build_plan` orients each difference by its own adder and the output
    stages that read it alone. A negation it pushes into the variables built from that difference
    can reach an output stage further on, which must then negate the row (a full-width
    subtractor), or turn an adder that reads it into a subtractor. Here each difference in turn is
    built the other way round, in two trials: every other node keeping its sign (the readers absorb
    the negation: an adder that reads it may become a subtractor, or the reverse), and the nodes
    built after it oriented by ``build_plan``'s local rule. The cheapest build is kept where it beats
    the current one and is no deeper than the local rule's (the signs decide how rows are summed).
    The search runs where one pass fits ``work`` node builds (trials times nodes: small layers,
    where it saves up to 15 % of the cells; on big ones it saves a fraction of a percent for
    seconds), and stops after two passes, a pass that changes nothing, or ``work`` (default
    :data:`ORIENT_WORK`)."""
    def build(flips: dict[int, bool]) -> tuple[tuple[int, int], dict[int, bool], int]:  # (cells, depth), signs, nodes
        signs: dict[int, bool] = {}
        cost, depth, size = _scratch_price(plan, ranges, cost_model, flips, signs, copies)
        return (cost, depth), signs, size

    def is_difference(k: int, signs: dict[int, bool]) -> bool:
        a, _, b, _, sg = plan.defs[k]
        return (signs.get(a - plan.n_inputs, False) != signs.get(b - plan.n_inputs, False)) == (sg > 0)

    work = ORIENT_WORK if work is None else work
    if 3 * (plan.n_inputs + len(plan.defs)) > work:
        # a build has a node per input and per definition, and a pass at least one difference
        # (two builds): not even one pass fits, known before the first (costly) build
        return {}
    (best, depth), signs, size = build({})
    flips: dict[int, bool] = {}
    spent = size
    if spent + 2 * size * sum(is_difference(k, signs) for k in range(len(plan.defs))) > work:
        return flips  # not even one pass: leave the local rule's orientations
    for _ in range(2):
        changed = False
        for k in range(len(plan.defs)):
            if not is_difference(k, signs):  # a sum: nothing to orient
                continue
            if spent + 2 * size > work:
                return flips
            for trial in ({**signs, k: not signs[k]}, {**flips, k: not signs[k]}):
                (cost, trial_depth), trial_signs, size = build(trial)
                spent += size
                if cost < best and trial_depth <= depth:
                    best, flips, signs, changed = cost, trial, trial_signs, True
        if not changed:
            break
    return flips


def lower_matrix(builder: GraphBuilder, weight: np.ndarray, inputs: Sequence[int], optimize: str,
                 cost_model: "CostModel", max_depth: int | None = None) -> tuple[list[Term | None], Priced | None]:
    """Build ``weight @ inputs`` into ``builder`` with the ``optimize`` choice, plans priced by
    ``cost_model`` (and, with ``max_depth``, bounded to that many adder levels, as
    :func:`choose_plan` says); returns one term per row (``None`` for a zero row) and the plan used
    (``None`` for ``none``, and where no input is used)."""
    check_optimize(optimize)
    if optimize == "none":  # the per-weight baseline: rows exactly as written, not merged
        return build_plan(builder, csd_plan(weight), inputs, cost_model), None
    rows = merge_rows(weight)
    used = np.flatnonzero(np.any(rows.unique != 0, axis=0))
    if not len(used):
        return [None] * len(rows.rep), None
    ranges = [(builder.nodes[inputs[i]].lo, builder.nodes[inputs[i]].hi) for i in used.tolist()]
    # only the columns in use enter the plan, so scratch builds stay small
    winner, _ = choose_plan(rows.unique[:, used], ranges, optimize, cost_model, max_depth, rows)
    flips = winner.flips
    if flips is None and optimize == "best":  # not ranked with its orientation (or the only contender)
        flips = orient_plan(winner.plan, ranges, cost_model, copies=rows)
    terms = build_plan(builder, winner.plan, [inputs[i] for i in used.tolist()], cost_model, flips)
    return expand_terms(rows, terms), winner
