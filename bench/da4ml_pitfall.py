"""A pitfall of da4ml's lower-level API, reduced to ``W = [[1, 2]]`` (``y = x0 + 2 x1``).

    python -m bench.da4ml_pitfall

``da4ml.cmvm.solve`` returns a pipeline of ``CombLogic`` stages whose inputs may carry shifts
(``inp_shifts``): here stage 0 takes ``x1`` shifted left by one. Only calling the whole solution
(``sol(x)``) applies them. ``comb_logic_gen`` of such a raw stage wires the inputs without the
shift, and the stage's own ``predict`` wraps, so a harness that turns raw ``solve`` stages into
Verilog (as jpq-hw's benchmark once did) measures a circuit that computes something else. da4ml's
documented path to Verilog (trace the computation with ``FixedVariableArrayInput``, quantize the
input, ``comb_trace``, then ``comb_logic_gen`` or ``RTLModel``) makes no shifted inputs and is exact.

The script prints, for a few 8-bit inputs, the exact ``W @ x``, the raw stage's ``predict`` and
simulated Verilog, and the documented flow's simulated Verilog; it exits 1 unless the raw stage
is wrong and the documented flow right (so it doubles as a check that the pitfall still exists).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

from bench.common import INPUT_RANGE, da4ml_library, da4ml_version
from jpq_hw.design_folder import pack
from jpq_hw.sim.words import simulate_words, split_fields

W = np.array([[1, 2]])  # W[out, in]
X = np.array([[3, 5], [-128, 127], [100, 100], [-1, -1], [127, -128]])


def simulate(comb, name: str, workdir: Path) -> list[int]:
    """``comb`` (a CombLogic) through ``comb_logic_gen`` and da4ml's library modules, simulated on ``X``."""
    from da4ml.codegen.rtl.verilog import comb_logic_gen
    from da4ml.types import minimal_kif

    workdir.mkdir(parents=True)
    (workdir / f"{name}.v").write_text(comb_logic_gen(comb, name))
    lib = da4ml_library()
    ikif = [minimal_kif(q) for q in comb.inp_qint]
    okif = [minimal_kif(q) for q in comb.out_qint]
    iw = [sum(k) for k in ikif]
    ow = [sum(k) for k in okif]
    words = [pack([int(v) for v in row], iw, [bool(s) for s, _, _ in ikif]) for row in X]
    out = simulate_words([workdir / f"{name}.v", *lib], name, "model_inp", "model_out", sum(iw), sum(ow), words,
                         workdir)
    assert okif[0][2] <= 0  # integer weights and inputs: no fractional output bits
    return [split_fields(y, ow, [bool(s) for s, _, _ in okif])[0] << -okif[0][2] for y in out]


def main() -> int:
    from da4ml.cmvm import solve
    from da4ml.trace import FixedVariableArrayInput, HWConfig, comb_trace
    from da4ml.trace.ops import quantize

    exact = (X @ W.T)[:, 0].tolist()
    pipe = solve(np.ascontiguousarray(W.T, dtype=np.float32), qintervals=[(*map(float, INPUT_RANGE), 1.0)] * 2)
    stage = pipe.solutions[0]
    inp = FixedVariableArrayInput(2, hwconf=HWConfig(-1, -1, -1))
    traced = comb_trace(inp, quantize(inp, 1, 7, 0) @ W.T.astype(float))
    with tempfile.TemporaryDirectory(prefix="da4ml_pitfall_") as tmp:
        raw_sim = simulate(stage, "raw_stage", Path(tmp) / "raw")
        traced_sim = simulate(traced, "traced", Path(tmp) / "traced")
    raw_predict = [int(v) for v in np.asarray(stage.predict(X.astype(float))).reshape(-1)]
    print(f"da4ml {da4ml_version()}, W = {W.tolist()}: solve's stage 0 has inp_shifts {list(stage.inp_shifts)}; "
          f"the traced flow {list(traced.inp_shifts)}")
    print(f"{'x':>12} {'W @ x':>7} {'stage.predict':>14} {'raw stage RTL':>14} {'traced RTL':>11}")
    for row, e, p, r, t in zip(X.tolist(), exact, raw_predict, raw_sim, traced_sim):
        print(f"{str(row):>12} {e:>7} {p:>14} {r:>14} {t:>11}")
    pitfall = raw_sim != exact and traced_sim == exact
    print("the raw stage's Verilog is wrong and the documented flow's exact" if pitfall else
          "the pitfall does not reproduce with this da4ml")
    return 0 if pitfall else 1


if __name__ == "__main__":
    sys.exit(main())
