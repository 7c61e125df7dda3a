"""The shipped stereo network (``examples/stereo.pt``) as RTL, on a real frame.

``jpq-hw lower`` writes the stream design; the Verilator simulation streams the quarter-resolution
Motorcycle pair (channel 0 the left image, 1 the right: one 125x185 frame, plus the extremes every
design folder's vectors hold) through it, first with random bubbles on the input and random
back-pressure on the output, then at full rate, and requires every output pixel (the disparity) to
equal the integer reference. The reference itself is checked against the compressed model's
accuracy recorded in the checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from jpq_hw.design_folder import read_design, rtl_files
from jpq_hw.flow import lower_checkpoint
from jpq_hw.ir import load_checkpoint
from jpq_hw.reference import run_reference
from jpq_hw.stereo.data import motorcycle_quarter
from jpq_hw.stereo.metrics import score

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "stereo.pt"


@pytest.mark.simulator
def test_stereo_example_streams_motorcycle_bit_exact(sim_build_root, simulators, sim_results):
    from jpq_hw.sim.runner import lint_verilog, run_design

    if "verilator" not in simulators:
        pytest.skip("Verilator is not installed")
    left, right, gt = motorcycle_quarter()
    frame = np.stack([left, right]).astype(np.int64)
    qnet = load_checkpoint(EXAMPLE)
    assert qnet.input_shape == (2, 125, 185) and qnet.output_shape == (1, 125, 185)
    disparity = run_reference(qnet, frame[None])[0, 0]
    recorded = qnet.meta["motorcycle"]["compressed"]
    assert score(disparity, gt)["epe"] == pytest.approx(recorded["epe"])

    out = sim_build_root / "stereo_example"
    report = lower_checkpoint(EXAMPLE, out, top="stereo", n_vectors=1, force=True, extra_inputs=frame.reshape(1, -1))
    assert report["interface"] == "stream" and report["cycles_per_frame"] == 125 * 185
    assert lint_verilog(rtl_files(out), "stereo") == []
    from jpq_hw.verify import verify_design
    # the feature conv and the box filter, proven; the plumbing too, but for the two windows: their
    # 125x185 frames take about six minutes (78,481 and 76,209 states), so they are proven by
    # bench/verify_plumbing.py and bench/verify.py, not in the suite (here: 2,000 states per part)
    proof = verify_design(out, checkpoint=EXAMPLE, max_states=2_000)
    assert [p.outputs for _, p in proof.parts] == [32, 16]
    # the cost, the column sums and the argmin, by SAT
    assert [p.kind for _, p in proof.functions] == ["hamming_cost", "box_sum", "argmin"]
    unproven = [u.split(":")[0] for u in proof.plumbing.unproven]
    assert unproven == ["stage feat1 (window part)", "stage aggregate (window part)"], proof.plumbing.unproven
    x = np.array(read_design(out).x)
    assert any(np.array_equal(row, frame.reshape(-1)) for row in x)  # the Motorcycle frame is among them
    result = run_design(out, "verilator", build_dir=sim_build_root / "sim_build" / "stereo_example")
    assert result.passed, result.summary() + "\n" + result.message
    sim_results.append({"design": "stream stereo example (Motorcycle)", "nnz": report["nonzero_weights"],
                        "adders": report["adders"], "lut4_est": report["lut4_estimate"],
                        "carry_est": report["carry_estimate"], "ff_est": report["ff_estimate"],
                        "latency": report["latency_cycles"], "verilator": f"pass ({result.n_vectors} frames)"})
