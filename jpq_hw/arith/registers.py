"""Register placement: where the registers go when ``--pipeline N`` asks for a stage every N adder levels.

(Not to be confused with :mod:`jpq_hw.compress.schedules`, which places pruning events in training.)

A node's *level* is its adder depth (inputs 0, an Add or Requant one more than its deepest
operand; levels run on across layers). With ``every = N`` a node of level ``l >= 1`` is computed in
stage ``(l - 1) // N`` and inputs enter in stage 0. Every stage ends in a register, so the
latency is ``ceil(depth / N)`` cycles and the outputs are registered. A value produced in stage
``s`` and read in stage ``t > s`` passes through ``t - s`` registers; each node gets one delay line
as long as its latest reader needs (``delays[node]``). Constant nodes (``lo == hi``) need none.
``every = 0`` means combinational: latency 0, no registers.
"""

from __future__ import annotations

from dataclasses import dataclass

from .graph import AdderGraph, Input, range_width


@dataclass(frozen=True)
class RegisterSchedule:
    """The pipeline registers of one :class:`AdderGraph` (see the module docstring); built by
    :func:`place_registers`, read by the backends and the cost estimate."""

    every: int  # register every N levels; 0 = combinational
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


def place_registers(graph: AdderGraph, every: int) -> RegisterSchedule:
    """The register placement for a stage every ``every`` levels (0: combinational)."""
    n = len(graph.nodes)
    if every <= 0:
        return RegisterSchedule(0, (0,) * n, (0,) * n, 0)
    stage = [0 if isinstance(node, Input) else (node.level - 1) // every for node in graph.nodes]
    latency = (graph.depth - 1) // every + 1 if graph.depth > 0 else 1
    delays = [0] * n
    for v, users in enumerate(graph.consumers()):
        for u in users:
            delays[v] = max(delays[v], stage[u] - stage[v])
    for o in graph.outputs:
        delays[o] = max(delays[o], latency - stage[o])
    for v, node in enumerate(graph.nodes):
        if node.lo == node.hi:
            delays[v] = 0
    return RegisterSchedule(every, tuple(stage), tuple(delays), latency)
