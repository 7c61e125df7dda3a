"""The proof of a window's line buffer (jpq_hw.verify.line_buffer), and the window proof with the
line buffer cut out: flip-flop and block-RAM line buffers, both backends, wrong ones rejected."""

from __future__ import annotations

import json
import shutil

import pytest

from jpq_hw.design_folder import rtl_files
from jpq_hw.flow import lower_checkpoint
from jpq_hw.ir import IntFormat, random_conv_qnet
from jpq_hw.ir.checkpoint import save_checkpoint
from jpq_hw.verify.line_buffer import LineBufferFailure, line_buffer_wires, prove_line_buffer
from jpq_hw.verify.mutate import LINE_BUFFER_MUTANTS
from jpq_hw.verify.plumbing import PlumbingFailure, StagePlumbing, plumbing_module, prove_plumbing
from jpq_hw.verify.stream import channel_ranges

# a 5x5 window over 3 channels of 8 bits, 12 wide (block RAM: 4 rows x 24 bits x 12), then a 3x3
# one over 2 channels of 4 bits (flip-flops: 2 rows x 8 bits x 12); padding, so the tail runs too
NET = dict(input_shape=(3, 6, 12), convs=[(2, 5, 1, 2), (2, 3, 1, 1)], density=0.3,
           input_format=IntFormat(8, False), hidden_format=IntFormat(4, False), output_format=IntFormat(6, True),
           seed=11)


@pytest.fixture(scope="module", params=["verilog", "amaranth"])
def design(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(f"lines-{request.param}")
    qnet = random_conv_qnet(**NET)
    ck = tmp / "net.pt"
    save_checkpoint(qnet, ck)
    out = tmp / "out"
    report = lower_checkpoint(ck, out, n_vectors=2, backend=request.param)
    return out, report, qnet


def test_line_buffers_proven(design):
    out, report, qnet = design
    module = plumbing_module(rtl_files(out), report)
    depth = NET["input_shape"][2]
    got = {}
    for i in range(2):
        wires = line_buffer_wires(report, i)
        states, bits, _ = prove_line_buffer(module, wires, depth)
        got[i] = states, bits
        width = len(module["netnames"][wires["d"]]["bits"])
        assert width == (96 if i == 0 else 16) and bits >= depth * width  # rows 1..K-1 of a column, W of them
    # the states: filling (the first W enables), then a block RAM's pointer values (its contents move
    # with it) where a shift register has one state per phase
    assert got[0][0] > got[1][0] >= depth, got


def test_window_part_without_its_line_buffer(design):
    """The window part's states do not carry the line buffer's bits, and the whole design is proven."""
    out, report, qnet = design
    module = plumbing_module(rtl_files(out), report)
    ranges = channel_ranges(qnet)
    window = StagePlumbing(module, report, 0, ranges[0], "window")
    assert window.line is not None and window.line.depth == 12 and window.line.width == 4 * 3 * 8
    assert window.register_bits < 4 * 3 * 8 * 12  # less than the line buffer alone
    proof = prove_plumbing(rtl_files(out), report, qnet)
    assert proof.complete and proof.latency == report["latency_cycles"], proof.unproven


def test_no_line_buffer_for_a_one_by_one_kernel():
    report = {"layers": [{"kind": "conv2d", "kernel": 1}, {"kind": "dense"}]}
    assert line_buffer_wires(report, 0) is None and line_buffer_wires(report, 1) is None


@pytest.mark.parametrize("design", ["verilog"], indirect=True)  # the mutants change the Verilog library
@pytest.mark.parametrize("what,before,after", LINE_BUFFER_MUTANTS, ids=[m[0] for m in LINE_BUFFER_MUTANTS])
def test_line_buffer_mutant_rejected(design, tmp_path, what, before, after):
    out, report, qnet = design
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    path = next(p for p in (bad / "rtl").glob("*.v") if before in p.read_text())
    text = path.read_text()
    assert text.count(before) == 1, what
    path.write_text(text.replace(before, after))
    report = json.loads((bad / "report.json").read_text())
    module = plumbing_module(rtl_files(bad), report)
    stage = 0 if "block-RAM" in what else 1
    with pytest.raises(LineBufferFailure, match="the line buffer"):
        prove_line_buffer(module, line_buffer_wires(report, stage), NET["input_shape"][2])
    with pytest.raises(PlumbingFailure, match="line buffer"):
        prove_plumbing(rtl_files(bad), report, qnet)
