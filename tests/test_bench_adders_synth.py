"""The checking logic of bench/adders_synth.py, without da4ml or a simulator: its rebuild of a da4ml
solution as an AdderGraph and the jpq-hw reference design (bus packing: tests/test_design_folder.py)."""

from __future__ import annotations

import json
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


def _row(name, kind, jpq_lut, d4_lut, fmax=None, wrong=0):
    design = {"adders": 10, "depth": 4, "est_lut4": jpq_lut, "est_carry": 50, "lut4": jpq_lut, "carry": 50, "ff": 0,
              "wrong_outputs": wrong}
    row = {"name": name, "kind": kind, "nnz": 20, "jpq": dict(design),
           "da4ml": {"adders": 11, "depth": 3.0, "stages": 0, "lut4": d4_lut, "carry": 60, "ff": 0, "wrong_outputs": 0},
           "da4ml_graph": dict(design, lut4=d4_lut),
           "pipelined": {"cutoff": 2,
                         "da4ml": {"stages": 2, "latency": 3, "lut4": d4_lut, "ff": 100, "carry": 60, "wrong_outputs": 0,
                                   "fmax": {"fmax_mhz": 100.0, "lc": 1}},
                         "jpq": {"every": 2, "latency": 3, "lut4": jpq_lut, "ff": 80, "carry": 50, "wrong_outputs": 0,
                                 "fmax": {"fmax_mhz": 110.0, "lc": 1}}}}
    if fmax:
        row["fmax"] = {"jpq": {"fmax_mhz": fmax[0], "lc": 1}, "da4ml": {"fmax_mhz": fmax[1], "lc": 1}}
    return row


def test_summary_and_report_of_finished_rows(synth):
    rows = [_row("m", "matrix", 80, 100, (90.0, 100.0)), _row("f", "fir", 50, 100, (120.0, 100.0)),
            _row("bad", "matrix", 10, 100, wrong=3)]
    s = synth.summarize(rows)
    assert s["count"] == 3 and s["exact"] == 2 and s["wrong"] == ["bad"]  # a wrong design counts in no ratio
    assert s["lut4_vs_da4ml_matrix"]["geomean"] == pytest.approx(0.8)
    assert s["lut4_vs_da4ml_fir"]["geomean"] == pytest.approx(0.5)
    assert s["lut4_vs_da4ml_all"]["geomean"] == pytest.approx((0.8 * 0.5) ** 0.5)
    assert s["fmax_comb_vs_da4ml"]["geomean"] == pytest.approx((0.9 * 1.2) ** 0.5)
    assert s["pipelined"]["faster_and_not_bigger"] == 2 + 1  # the wrong row's pipelined designs are exact
    md = synth.render(rows, s, {"command": "c", "machine": "m", "da4ml": "0.6.0", "yosys": "Yosys", "wall_s": 1.0,
                                "max_lut4": 6000, "cutoff": 2})
    assert "**Designs with a wrong output**: bad" in md and "| bad | 10 / 4 | 10 / 50 (**3 wrong outputs**)" in md
    assert "python -m bench.da4ml_pitfall" in md and "withdrawn" in md


def test_equal_latency_every(synth):
    assert synth.equal_latency_every(8, 4) == 2 and synth.equal_latency_every(7, 4) == 2
    assert synth.equal_latency_every(5, 4) == 2  # every 1 would take 5 cycles: 2 levels a stage take 3
    assert synth.equal_latency_every(3, 10) == 1


def test_refmax_redoes_only_the_runs_that_found_no_fmax(synth, monkeypatch):
    """A timing harness yosys gave up on is shown as such, left out of the Fmax ratio, and timed
    again by --refmax with a longer limit (the tools stubbed: only the bookkeeping is tested)."""
    rows = [_row("a", "fir", 50, 100, (120.0, 100.0)), _row("b", "fir", 50, 100, (110.0, 100.0))]
    rows[1]["fmax"]["da4ml"] = {"fmax_mhz": None, "lc": 0, "error": "yosys timed out after 300 s (log: x)"}
    s = synth.summarize(rows)
    assert s["fmax_comb_vs_da4ml"]["count"] == 1
    header = {"command": "c", "machine": "m", "da4ml": "0.6.0", "yosys": "Yosys", "wall_s": 1.0, "max_lut4": 6000,
              "cutoff": 2}
    assert "| b | 110.0 (1) | yosys timed out (0) |" in synth.render(rows, s, header)

    timed = []
    monkeypatch.setattr(synth, "problems", lambda: [{"name": n, "weight": np.eye(2, dtype=int)} for n in "ab"])
    monkeypatch.setattr(synth, "jpq_graph", lambda w: None)
    monkeypatch.setattr(synth, "jpq_rtl", lambda *a: "jpq")
    monkeypatch.setattr(synth, "da4ml_rtl", lambda *a, **k: ("da4ml", {}))

    def fake_fmax(rtl, workdir, harness_timeout):
        timed.append((rtl, harness_timeout))
        return {"fmax_mhz": 90.0, "lc": 7}

    monkeypatch.setattr(synth, "fmax", fake_fmax)
    data = {"header": header, "rows": rows}
    synth.refmax(data, None, 3000.0, "python -m bench.adders_synth --refmax")
    assert timed == [("da4ml", 3000.0)]
    assert rows[1]["fmax"]["da4ml"] == {"fmax_mhz": 90.0, "lc": 7, "harness_timeout_s": 3000.0}
    md = synth.render(rows, synth.summarize(rows), data["header"])
    assert "| b | 110.0 (1) | 90.0 (7) |" in md and "b (da4ml, combinational)" in md


def test_rejpq_redoes_jpq_designs_only_and_resumes(synth, monkeypatch, tmp_path):
    """--rejpq after a jpq-hw change: jpq-hw's designs of every row made again (combinational,
    pipelined at the row's da4ml latency, their Fmax where the row has Fmax runs), da4ml's kept;
    OUT written after each row, and --resume skips the rows already redone (the tools stubbed)."""
    rows = [_row("a", "fir", 50, 100, (120.0, 100.0)), _row("b", "matrix", 60, 100)]
    header = {"command": "c", "machine": "m", "da4ml": "0.6.0", "yosys": "Yosys", "wall_s": 1.0, "max_lut4": 6000,
              "cutoff": 2}
    da4ml_before = [(r["da4ml"], r["da4ml_graph"], r["pipelined"]["da4ml"]) for r in rows]
    made = []
    monkeypatch.setattr(synth, "problems", lambda: [{"name": n, "weight": np.eye(2, dtype=int)} for n in "ab"])
    monkeypatch.setattr(synth, "jpq_graph", lambda w: NS(depth=5))
    monkeypatch.setattr(synth, "jpq_design", lambda g, w, d: made.append("comb") or dict(rows[0]["jpq"], lut4=40))
    monkeypatch.setattr(synth, "jpq_rtl", lambda g, d, every=0: NS(latency=-(-g.depth // every) if every else 0))
    monkeypatch.setattr(synth, "wrong_outputs", lambda *a: 0)
    monkeypatch.setattr(synth, "synth", lambda *a: {"lut4": 45, "carry": 40, "ff": 70})
    monkeypatch.setattr(synth, "fmax", lambda rtl, d: made.append("fmax") or {"fmax_mhz": 130.0, "lc": 9})
    out = tmp_path / "s"
    data = {"header": dict(header), "rows": rows}
    synth.rejpq(data, "^a$", False, "python -m bench.adders_synth --rejpq --only ^a$", out)
    assert made == ["comb", "fmax", "fmax"]  # row b not selected
    a = rows[0]
    assert a["jpq"]["lut4"] == 40 and a["fmax"]["jpq"]["fmax_mhz"] == 130.0
    assert a["pipelined"]["jpq"] == {"every": 2, "latency": 3, "wrong_outputs": 0, "lut4": 45, "carry": 40, "ff": 70,
                                     "fmax": {"fmax_mhz": 130.0, "lc": 9}}  # 5 levels in the 3 cycles of da4ml's
    assert [(r["da4ml"], r["da4ml_graph"], r["pipelined"]["da4ml"]) for r in rows] == da4ml_before
    written = json.loads((tmp_path / "s.json").read_text())
    assert written["header"]["rejpq"]["rows"] == ["a"] and written["rows"][0]["jpq"]["lut4"] == 40
    assert "made again by the current code with `python -m bench.adders_synth --rejpq --only ^a$`" in \
        (tmp_path / "s.md").read_text()
    made.clear()
    synth.rejpq(written, None, True, "python -m bench.adders_synth --rejpq --resume", out)
    assert made == ["comb"]  # only b, which has no Fmax runs
    assert json.loads((tmp_path / "s.json").read_text())["header"]["rejpq"]["rows"] == ["a", "b"]
