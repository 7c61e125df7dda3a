"""Register placement: where the registers go when ``--pipeline N`` asks for a stage every N adder levels.

(Not to be confused with :mod:`jpq_hw.compress.schedules`, which places pruning events in training.)

A node's *level* is its adder depth (inputs 0, an Add or Requant one more than its deepest
operand; levels run on across layers). With ``every = N`` the latency is ``ceil(depth / N)``
cycles: the graph is cut into that many stages, each of at most N adder levels, every stage ends
in a register and the outputs are registered. Inputs enter in stage 0. A value produced in stage
``s`` and read in stage ``t > s`` passes through ``t - s`` registers; each node gets one delay line
as long as its latest reader (or, for an output, the latency) needs (``delays[node]``). Constant
nodes (``lo == hi``) need none. ``every = 0`` means combinational: latency 0, no registers.

Which stage a node goes in is free between its operands and its readers, and it decides the
flip-flops: a node computed early and read late is held in registers as wide as itself, one
computed late holds its operands instead (an output of a constant-multiplier tree is much wider
than the input it multiplies). :func:`place_registers` starts from every node as early as it can
go (its level) and moves one node at a time to the stage that holds the fewest register bits
(its own delay line and its operands'), readers before operands, until no move saves a bit: the
latency and the levels per stage stay as above, and it never holds more bits than the as-early-
as-possible placement.
"""

from __future__ import annotations

from dataclasses import dataclass

from .graph import Add, AdderGraph, Input, Requant, range_width

SWEEPS = 8  # passes of single-node moves at most (they converge in two or three)


@dataclass(frozen=True)
class RegisterSchedule:
    """The pipeline registers of one :class:`AdderGraph` (see the module docstring); built by
    :func:`place_registers`, read by the backends and the cost estimate."""

    every: int  # at most N adder levels per stage; 0 = combinational
    stage: tuple[int, ...]  # per node
    delays: tuple[int, ...]  # per node: length of its delay line
    latency: int  # cycles from in_valid to out_valid

    @property
    def pipelined(self) -> bool:
        return self.every > 0

    def register_bits(self, graph: AdderGraph) -> int:
        """Flip-flops: every delay-line bit plus the valid chain."""
        bits = sum(range_width(graph.nodes[i].lo, graph.nodes[i].hi)[0] * d for i, d in enumerate(self.delays))
        return bits + self.latency


def _operands(node) -> tuple[int, ...]:
    if isinstance(node, Add):
        return (node.a,) if node.a == node.b else (node.a, node.b)
    if isinstance(node, Requant) and node.term is not None:
        return (node.term.node,)
    return ()


def place_registers(graph: AdderGraph, every: int) -> RegisterSchedule:
    """The register placement for at most ``every`` adder levels per stage (0: combinational)."""
    nodes = graph.nodes
    n = len(nodes)
    if every <= 0:
        return RegisterSchedule(0, (0,) * n, (0,) * n, 0)
    latency = (graph.depth - 1) // every + 1 if graph.depth > 0 else 1
    slots = latency * every  # slot q >= 1 (an adder level within the pipeline) is in stage (q - 1) // every
    users = graph.consumers()
    operands = [_operands(node) for node in nodes]
    outputs = set(graph.outputs)
    width = [0 if node.lo == node.hi else range_width(node.lo, node.hi)[0] for node in nodes]
    movable = [not isinstance(node, Input) and node.lo != node.hi for node in nodes]
    slot = [node.level for node in nodes]  # as early as possible
    stage = [0 if isinstance(node, Input) else (q - 1) // every for node, q in zip(nodes, slot)]

    def held_until(v: int, skip: int = -1) -> int:
        """The stage until which node ``v`` must be held: its latest reader's (but ``skip``), or
        the latency for an output; its own stage where nothing reads it later."""
        last = latency if v in outputs else stage[v]
        for u in users[v]:
            if u != skip and stage[u] > last:
                last = stage[u]
        return last

    for _ in range(SWEEPS):
        moved = False
        for order in (range(n - 1, -1, -1), range(n)):  # readers first, then operands
            for v in order:
                if not movable[v]:
                    continue
                lo = max((slot[u] for u in operands[v]), default=0) + 1
                hi = min((slot[u] for u in users[v]), default=slots + 1) - 1
                if v in outputs:
                    hi = min(hi, slots)
                if lo > hi:
                    continue
                own_until = held_until(v) if users[v] or v in outputs else None
                others = [(u, held_until(u, skip=v)) for u in operands[v] if width[u]]

                def bits(s: int) -> int:
                    held = width[v] * ((own_until if own_until is not None else s) - s)
                    return held + sum(width[u] * (max(s, until) - stage[u]) for u, until in others)

                now = stage[v]
                best, best_bits = now, bits(now)
                for s in range((lo - 1) // every, (hi - 1) // every + 1):
                    b = bits(s)
                    if b < best_bits:
                        best, best_bits = s, b
                if best != now:
                    # the earliest slot of a later stage, the latest of an earlier one: room for both sides
                    slot[v] = max(lo, best * every + 1) if best > now else min(hi, (best + 1) * every)
                    stage[v] = best
                    moved = True
        if not moved:
            break

    delays = [0] * n
    for v in range(n):
        if width[v]:
            delays[v] = held_until(v) - stage[v]
    return RegisterSchedule(every, tuple(stage), tuple(delays), latency)
