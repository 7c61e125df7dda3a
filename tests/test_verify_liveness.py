"""Progress under fair stalls and the full-rate run (:mod:`jpq_hw.verify.liveness`) on small state
graphs built by hand, each a part whose behaviour is known."""

from __future__ import annotations

import pytest

from jpq_hw.verify.liveness import Lasso, StateGraph, ThroughputFailure, check_progress, full_rate

HANDSHAKES = [(0, 0), (0, 1), (1, 0), (1, 1)]


def graph(states: int, step) -> StateGraph:
    """A part of ``states`` states; ``step(state, valid_in, ready_out)`` gives (next, took, gave,
    valid out, ready in)."""
    g = StateGraph(HANDSHAKES)
    for _ in range(states):
        g.add_state(0 if len(g) else -1, 0)
    for s in range(states):
        for k, (v, r) in enumerate(HANDSHAKES):
            g.add_step(s, k, *step(s, v, r))
    return g


def register(s, v, r):
    """A one-beat register: state 0 empty, 1 full; ready while empty or drained."""
    ready = int(s == 0 or r)
    took = v and ready
    gave = s == 1 and r
    return int(took or (s == 1 and not gave)), took, gave, s, ready


def test_register_makes_progress():
    """Its runs that stop (idle while nothing is offered, full while the sink never drains it) are
    not fair ones."""
    check_progress(graph(2, register))


def test_ready_that_waits_for_the_sink_is_found():
    """Empty, it takes a beat only while the sink is ready: a sink that waits for valid never is."""
    def waits(s, v, r):
        ready = int(r)
        took = v and ready
        gave = s == 1 and r
        return int(took or (s == 1 and not gave)), took, gave, s, ready

    with pytest.raises(Lasso, match="it never takes an input beat nor offers an output beat again") as e:
        check_progress(graph(2, waits))
    assert e.value.loop == [(1, 0)] and e.value.prefix == []


def test_swallowing_input_is_found():
    """It takes every beat and never offers one."""
    with pytest.raises(Lasso, match="takes input beats forever and never offers an output beat"):
        check_progress(graph(1, lambda s, v, r: (0, v, 0, 0, 1)))


def test_output_without_input_is_found():
    """Offered a beat, it never takes it, yet gives beats (state 0 offers, 1 is the next beat)."""
    def babbles(s, v, r):
        gave = bool(r)
        return (1 - s if gave else s), 0, gave, 1, 0

    with pytest.raises(Lasso, match="never takes it, yet gives output beats forever") as e:
        check_progress(graph(2, babbles))
    assert len(e.value.loop) == 2 and all(v == 1 and r == 1 for v, r in e.value.loop)


def test_full_rate_of_two_registers():
    """Two registers in a row: a beat through in 2 cycles, one taken every cycle."""
    g = graph(2, register)
    latency, period, cycles = full_rate([g, g], pixels=4, beats=4, max_cycles=1000)
    assert (latency, period) == (2, 4) and cycles < 100


def test_full_rate_of_a_half_rate_register():
    def half(s, v, r):  # ready only while empty
        ready = int(s == 0)
        took = v and ready
        gave = s == 1 and r
        return int(took or (s == 1 and not gave)), took, gave, s, ready

    latency, period, _ = full_rate([graph(2, half)], pixels=4, beats=4, max_cycles=1000)
    assert (latency, period) == (1, 8)


def test_full_rate_that_stops_is_refused():
    def once(s, v, r):  # takes one beat, then never again
        return 1, int(v and s == 0), 0, 0, int(s == 0)

    with pytest.raises(ThroughputFailure, match="stops taking frames"):
        full_rate([graph(2, once)], pixels=1, beats=1, max_cycles=1000)
