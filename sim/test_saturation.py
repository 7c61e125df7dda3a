"""Every rounding / ReLU / saturation case of the output stage, exhaustively over small input formats.

Each design is one layer with four outputs (weights 1, 3, -2, 5) over a single input, so every
input value is a vector: all ``2**bits`` of them are simulated. The cases cover signed and unsigned
accumulators, rounding shifts of 0..4, ReLU on and off, negative and positive biases, and outputs
narrower than, equal to and wider than the accumulator (1-bit outputs included), so each branch of
the saturation tests in :func:`jpq_hw.hdl.verilog.saturation_tests` is exercised at its boundary.
"""

from __future__ import annotations

import numpy as np
import pytest

from jpq_hw.flow import lower_checkpoint
from jpq_hw.ir import IntFormat, QLayer, QNet, save_checkpoint
from jpq_hw.vectors import make_vectors

# (input bits, input signed, bias, shift, relu, out bits, out signed)
CASES = [
    (9, True, 81, 2, True, 6, False),
    (9, True, 0, 0, True, 8, False),
    (10, True, -300, 4, False, 5, True),
    (8, False, 6, 2, True, 4, False),
    (9, True, -3, 0, False, 1, True),
    (9, True, 3, 1, False, 1, False),
    (9, False, 3, 1, False, 2, True),
    (8, True, -5, 1, False, 6, True),
    (7, True, 0, 0, False, 12, True),
]


@pytest.mark.simulator
@pytest.mark.parametrize("backend", ["verilog", "amaranth"])
def test_output_stage_exhaustively(backend, simulators, sim_build_root, tmp_path):
    from jpq_hw.sim.runner import run_design

    simulator = "icarus" if "icarus" in simulators else simulators[0]  # Icarus builds these in ~1 s
    failures = []
    for i, (bits, signed, bias, shift, relu, out_bits, out_signed) in enumerate(CASES):
        net = QNet((1,), IntFormat(bits, signed), (QLayer(
            "f", "linear", np.array([[1], [3], [-2], [5]]), np.array([bias, bias // 2, -bias, 7]), shift, relu,
            IntFormat(out_bits, out_signed)),))
        every = np.arange(net.input.lo, net.input.hi + 1).reshape(-1, 1)
        assert len(make_vectors(net, 1, extra=every)[0]) >= len(every)
        ckpt = tmp_path / f"case{i}.pt"
        save_checkpoint(net, ckpt)
        out = tmp_path / f"case{i}"
        lower_checkpoint(ckpt, out, backend=backend, top=f"sat{i}", n_vectors=1, extra_inputs=every)
        result = run_design(out, simulator, build_dir=sim_build_root / "saturation" / backend / str(i))
        if not result.passed:
            failures.append(f"case {CASES[i]}: {result.summary()}")
    assert not failures, "\n".join(failures)
