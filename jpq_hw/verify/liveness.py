"""Progress and throughput of a stream design, from the state graphs its plumbing proof explored
(:mod:`.plumbing`).

Each stage part's exploration visits every state reachable after reset with every handshake
(input valid, output ready) from each; :class:`StateGraph` keeps those steps, each with what the
part did in it (took an input beat, gave an output beat, its output valid, its input ready).

**Progress of a part** (:func:`check_progress`): under any stalls that keep the contract, the part
takes input beats and gives output beats forever. The environment is *fair*: the source, once its
valid is high, holds it until the beat transfers, and offers a beat again after any number of
cycles; the sink, while the part's output valid is high, raises ready after any number of cycles
(valid staying high until then is proven by the exploration). A run that breaks progress ends, in
the finite graph, in a cycle of steps that the environment may repeat forever, one of:

1. the input offered in every step, none taken, and the output valid low in every step (stuck);
2. the input offered in every step, none taken, and output beats given (it outputs forever
   without input);
3. the output valid low in every step and input beats taken (it swallows input forever).

Each exists exactly where a strongly connected component of the steps allowed (1: offered, not
taken, valid low; 2: offered, not taken; 3: valid low) has a cycle (1) or holds a step that gives a
beat (2) or takes one (3) inside it; Tarjan's algorithm finds them. A found one is shown as the
handshakes from reset to the cycle and the cycle's handshakes.

**The whole design** then makes progress under any fair stalls on its input and output: where
every part does, a channel that stopped moving forever would stop with its valid high and its ready
low (its receiver's progress needs only a fair source), and so would every channel after it, the
design's output included, which a fair sink does not allow (the argument goes by the first channel
that stops).

**Throughput** (:func:`full_rate`): with the design's input valid and output ready held high
from reset (contract.md section 3's measure), the parts' graphs run side by side, each part's
input valid being the valid of the part before it and its output ready the ready of the part after
it. Handshakes are computed exactly (a part's valid does not depend on its output ready; a ready
that is unknown while the input is not offered and would change a part's step stops the proof),
and the run is deterministic and eventually periodic: once a joint state repeats, every frame
after it repeats too, so the first frame's latency and the most cycles between the first pixels of
two frames in a row are exact, for the whole infinite run.
"""

from __future__ import annotations

from array import array
from collections import deque

X = None
_TOOK, _GAVE, _VALID = 1, 2, 4  # step flags; the input ready (0, 1, unknown) is flags >> 3
_READY_SHIFT = 3
_BITS = 5  # a step: next state << _BITS | flags
_FLAGS = (1 << _BITS) - 1


class Lasso(Exception):
    """A run that breaks progress: ``prefix`` the handshakes (valid in, ready out) from reset to its
    cycle, ``loop`` the cycle's handshakes."""

    def __init__(self, msg: str, prefix: list[tuple[int, int]], loop: list[tuple[int, int]]):
        super().__init__(msg)
        self.prefix, self.loop = prefix, loop


class StateGraph:
    """The states of one stage part (numbered in the order found, 0 the state after reset) and its
    steps: for each state and each handshake of :attr:`handshakes`, the next state and the step's
    flags, packed in one ``array`` (``state * len(handshakes) + handshake``)."""

    def __init__(self, handshakes: list[tuple[int, int]]):
        self.handshakes = list(handshakes)
        self.index = {h: k for k, h in enumerate(self.handshakes)}
        self.valids = {v for v, _ in self.handshakes}  # the values the input valid takes
        self.readies = {r for _, r in self.handshakes}  # the values the output ready takes
        self.parent = array("q")  # the state it was first reached from (-1: the start)
        self.via = array("b")  # by which handshake
        self.steps = array("q")

    def __len__(self) -> int:
        return len(self.parent)

    def add_state(self, parent: int, handshake: int) -> int:
        self.parent.append(parent)
        self.via.append(handshake)
        return len(self.parent) - 1

    def add_step(self, state: int, handshake: int, nxt: int, took: bool, gave: bool, valid: int, ready) -> None:
        """The step from ``state`` (steps are added state by state, in order) with handshake
        ``handshake``: ``valid`` the output valid, ``ready`` the input ready (0, 1 or None)."""
        assert len(self.steps) == state * len(self.handshakes) + handshake
        code = ready if ready in (0, 1) else 2  # unknown
        self.steps.append(nxt << _BITS | took * _TOOK | gave * _GAVE | (valid == 1) * _VALID | code << _READY_SHIFT)

    def step(self, state: int, valid_in: int, ready_out: int) -> int:
        """The packed step from ``state`` for that handshake; a handshake wire that the netlist
        makes constant has its only value."""
        if (valid_in, ready_out) not in self.index:
            valid_in = valid_in if valid_in in self.valids else min(self.valids)
            ready_out = ready_out if ready_out in self.readies else min(self.readies)
        return self.steps[state * len(self.handshakes) + self.index[(valid_in, ready_out)]]

    def trace(self, state: int) -> list[tuple[int, int]]:
        """The handshakes from the start to ``state``, along the path it was first found by."""
        out = []
        while self.parent[state] >= 0:
            out.append(self.handshakes[self.via[state]])
            state = self.parent[state]
        return out[::-1]


def ready_of(step: int):
    code = step >> _READY_SHIFT & 3
    return X if code == 2 else code


def _allowed_table(graph: StateGraph, allowed) -> list[list[bool]]:
    """``allowed(handshake, flags)`` for every handshake index and flags value: ``table[k][flags]``."""
    return [[allowed(h, f) for f in range(1 << _BITS)] for h in graph.handshakes]


def _components(graph: StateGraph, keep: list[list[bool]]) -> array:
    """Tarjan's strongly connected components of the steps ``keep`` (:func:`_allowed_table`)
    admits (iterative): the component of each state."""
    n, hs = len(graph), len(graph.handshakes)
    steps = graph.steps
    index = array("q", [-1]) * n
    low = array("q", [0]) * n
    comp = array("q", [-1]) * n
    on_stack = bytearray(n)
    stack: list[int] = []
    counter = ncomp = 0
    for root in range(n):
        if index[root] >= 0:
            continue
        work = [(root, 0)]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack[root] = 1
        while work:
            v, k = work[-1]
            pushed = False
            while k < hs:
                s = steps[v * hs + k]
                k += 1
                if not keep[k - 1][s & _FLAGS]:
                    continue
                w = s >> _BITS
                if index[w] < 0:
                    work[-1] = (v, k)
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack[w] = 1
                    work.append((w, 0))
                    pushed = True
                    break
                if on_stack[w] and index[w] < low[v]:
                    low[v] = index[w]
            if pushed:
                continue
            work.pop()
            if work:
                u = work[-1][0]
                if low[v] < low[u]:
                    low[u] = low[v]
            if low[v] == index[v]:
                while True:
                    w = stack.pop()
                    on_stack[w] = 0
                    comp[w] = ncomp
                    if w == v:
                        break
                ncomp += 1
    return comp


def _lasso(graph: StateGraph, keep: list[list[bool]], comp: array, u: int, k: int) -> tuple[list, list]:
    """The handshakes from reset to ``u``, and a cycle from ``u`` through its step ``k`` back to
    ``u`` within ``u``'s component (steps ``keep`` admits)."""
    hs = len(graph.handshakes)
    first = graph.steps[u * hs + k] >> _BITS
    back = {first: None}
    queue = deque([first])
    while u not in back:  # the component holds a path from first back to u
        v = queue.popleft()
        for j in range(hs):
            s = graph.steps[v * hs + j]
            w = s >> _BITS
            if w not in back and comp[w] == comp[u] and keep[j][s & _FLAGS]:
                back[w] = (v, j)
                queue.append(w)
    path, v = [], u
    while v != first:
        v, j = back[v]
        path.append(graph.handshakes[j])
    return graph.trace(u), [graph.handshakes[k]] + path[::-1]


# the three ways a fair run can stop making progress: (steps allowed in the cycle, the step it must
# contain (None: any step), what it means)
_STUCK = (lambda h, f: h[0] == 1 and not f & _TOOK and not f & _VALID, None,
          "its input offered and its output valid low, it never takes an input beat nor offers an output "
          "beat again")
_NO_INPUT = (lambda h, f: h[0] == 1 and not f & _TOOK, _GAVE,
             "its input offered, it never takes it, yet gives output beats forever")
_NO_OUTPUT = (lambda h, f: not f & _VALID, _TOOK, "it takes input beats forever and never offers an output beat")


def check_progress(graph: StateGraph) -> None:
    """Raise :class:`Lasso` where some run under fair stalls stops making progress (module notes)."""
    hs = len(graph.handshakes)
    for allowed, needed, what in (_STUCK, _NO_INPUT, _NO_OUTPUT):
        keep = _allowed_table(graph, allowed)
        comp = _components(graph, keep)
        for u in range(len(graph)):
            for k in range(hs):
                s = graph.steps[u * hs + k]
                f = s & _FLAGS
                if not keep[k][f] or comp[s >> _BITS] != comp[u]:
                    continue
                if needed is not None and not f & needed:
                    continue
                prefix, loop = _lasso(graph, keep, comp, u, k)
                raise Lasso(f"under stalls that keep the contract, {what}: after the handshakes shown, the cycle "
                            f"of {len(loop)} handshake(s) {_show(loop)} repeats forever", prefix, loop)


def _show(handshakes) -> str:
    return " ".join(f"{v}{r}" for v, r in handshakes)


class ThroughputFailure(Exception):
    """The full-rate run could not be computed (an unknown ready that matters), or it stops."""


def full_rate(graphs: list[StateGraph], pixels: int, beats: int, max_cycles: int,
              names: list[str] | None = None) -> tuple[int, int, int]:
    """Run the parts' graphs (in the design's order, each from its start) side by side with the
    design's input valid and output ready high in every cycle: (the first frame's latency, the most
    cycles between the first pixels of two frames in a row, the cycles run). ``pixels`` input beats
    and ``beats`` output beats make a frame; ``names``: the parts', for messages."""
    n = len(graphs)
    names = names or [f"part {k}" for k in range(n)]
    states = [0] * n
    seen: dict[tuple, int] = {}
    starts: list[int] = []  # the cycle each frame's first pixel was taken
    taken = given = 0
    latency = None
    stop_at = None
    t = 0
    while t < max_cycles:
        key = (*states, taken % pixels, given % beats, latency is None)
        if stop_at is None and key in seen:
            period = t - seen[key]
            if not any(seen[key] <= s < t for s in starts):
                raise ThroughputFailure(f"at full rate it stops taking frames (a cycle of {period} cycles without one)")
            stop_at = t + period  # one more period: every gap between frame starts of the periodic part is seen
        if stop_at is None:
            seen[key] = t
        elif t >= stop_at:
            gaps = [b - a for a, b in zip(starts, starts[1:])]
            if latency is None:
                raise ThroughputFailure("at full rate it never offers an output beat")
            if not gaps:
                raise ThroughputFailure("at full rate it takes no second frame")
            return latency, max(gaps), t
        valids = [1]  # each part's input valid; valids[n]: the design's m_valid
        for k, g in enumerate(graphs):
            valids.append(1 if g.step(states[k], valids[k], 1) & _VALID else 0)
        readies = [0] * n + [1]  # readies[k]: part k's input ready (0: the design's s_ready), n: m_ready
        for k in range(n - 1, -1, -1):
            r = ready_of(graphs[k].step(states[k], valids[k], readies[k + 1]))
            if r is X:
                if valids[k]:
                    raise ThroughputFailure(f"{names[k]}: its input ready is unknown while its input is offered")
                if k and len({graphs[k - 1].step(states[k - 1], valids[k - 1], ready) for ready in (0, 1)}) > 1:
                    raise ThroughputFailure(f"{names[k]}: its input ready is unknown while its input is not "
                                            "offered, and the step of the part before it depends on it")
                r = 0
            readies[k] = r
        steps = [g.step(states[k], valids[k], readies[k + 1]) for k, g in enumerate(graphs)]
        if steps[0] & _TOOK:
            if taken % pixels == 0:
                starts.append(t)
            taken += 1
        if valids[n] and latency is None and starts:
            latency = t - starts[0]
        given += bool(steps[-1] & _GAVE)
        states = [s >> _BITS for s in steps]
        t += 1
    raise ThroughputFailure(f"no periodic full-rate run found in {max_cycles:,} cycles")
