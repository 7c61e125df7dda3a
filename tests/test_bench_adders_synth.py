"""The checking logic of bench/adders_synth.py, without da4ml or a simulator: its rebuild of a da4ml
solution as an AdderGraph and the jpq-hw reference design (bus packing: tests/test_design_folder.py)."""

from __future__ import annotations

from types import SimpleNamespace as NS

import numpy as np
import pytest

from bench import adders_synth


@pytest.fixture(scope="module")
def synth():
    return adders_synth


def op(id0, id1, opcode, data=0):
    return NS(id0=id0, id1=id1, opcode=opcode, data=data)


def test_da4ml_solution_rebuilt_exactly(synth):
    """Two stages with a fractional intermediate, an input shift, output shifts, signs and a permutation:
    stage 0: a = x0 + 2*x1, b = a - x1/2 = x0 + 1.5*x1, c = x2*2 - x0 (x2 enters shifted by 1);
    outputs -(2*b), c; stage 1 swaps them and negates the first again."""
    s0 = NS(inp_shifts=[0, 0, 1],
            ops=[op(0, -1, -1), op(1, -1, -1), op(2, -1, -1), op(0, 1, 0, 1), op(3, 1, 1, -1), op(2, 0, 1, 0)],
            out_idxs=[4, 5], out_shifts=[1, 0], out_negs=[True, False])
    s1 = NS(inp_shifts=[0, 0], ops=[op(0, -1, -1), op(1, -1, -1)], out_idxs=[1, 0], out_shifts=[0, 0],
            out_negs=[False, True])
    w = np.array([[-1, 0, 2], [2, 3, 0]])  # rows: c, 2*x0 + 3*x1
    graph = synth.da4ml_graph(w, NS(solutions=[s0, s1]))
    x = synth.random_inputs(3, 200)
    assert np.array_equal(graph.evaluate(x), x @ w.T)
    assert graph.stats()["adders"] == 3


def test_zero_outputs_and_unused_inputs(synth):
    s0 = NS(inp_shifts=[0, 0], ops=[op(1, -1, -1), op(0, 0, 0, 2)], out_idxs=[1, -1], out_shifts=[0, 0],
            out_negs=[False, False])
    w = np.array([[0, 5], [0, 0]])
    graph = synth.da4ml_graph(w, NS(solutions=[s0]))
    x = synth.random_inputs(2, 50)
    assert np.array_equal(graph.evaluate(x), x @ w.T)


def test_jpq_graph_is_exact(synth):
    rng = np.random.default_rng(3)
    w = np.where(rng.random((9, 12)) < 0.3, rng.integers(-127, 128, (9, 12)), 0)
    graph = synth.jpq_graph(w)
    x = synth.random_inputs(12, 300)
    assert np.array_equal(graph.evaluate(x), x @ w.T)
    assert synth.out_bits(graph) >= max(graph.width(o)[0] for o in graph.outputs)
