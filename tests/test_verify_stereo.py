"""The proof of the stereo stages (:mod:`jpq_hw.verify.functions` and :mod:`jpq_hw.verify.plumbing`):
a ``hamming_cost``'s costs, a ``box_sum``'s column sums and an ``argmin``'s winner are proven equal
to the contract's formulas by SAT, their plumbing (the right features of the columns before, the
row's border, the column sums of a box window and its padding, the argmin tree's pipeline and
handshakes) for every stall pattern, through both backends; wrong ones are rejected."""

from __future__ import annotations

import json
import shutil

import pytest

from jpq_hw.cli import main
from jpq_hw.design_folder import rtl_files
from jpq_hw.flow import lower_checkpoint
from jpq_hw.ir import random_stereo_qnet
from jpq_hw.ir.checkpoint import save_checkpoint
from jpq_hw.verify import verify_design
from jpq_hw.verify.functions import FunctionFailure, prove_functions
from jpq_hw.verify.mutate import FUNCTION_MUTANTS, STEREO_PLUMBING_MUTANTS
from jpq_hw.verify.plumbing import PlumbingFailure, prove_plumbing
from jpq_hw.verify.prove import ProofFailure

# binary features, a Hamming cost saturated to 2 bits (4 features: counts up to 4), a 3x3 box sum,
# 5 disparities (an argmin tree with a padding leaf), and a frame small enough to explore whole
STEREO = dict(height=3, width=7, convs=[(4, 3)], disparities=5, cost_bits=2, aggregate="box_sum", box=3, seed=11)


@pytest.fixture(scope="module")
def stereo(tmp_path_factory):
    """The design lowered pipelined (--pipeline 1: two register stages in the argmin tree)."""
    tmp = tmp_path_factory.mktemp("stereo")
    qnet = random_stereo_qnet(**STEREO)
    ck = tmp / "stereo.pt"
    save_checkpoint(qnet, ck)
    out = tmp / "verilog"
    report = lower_checkpoint(ck, out, n_vectors=2, pipeline=1)
    assert [s["kind"] for s in report["layers"]] == ["conv2d", "hamming_cost", "box_sum", "argmin"]
    assert report["layers"][3]["kernel_latency"] == 2
    return out, qnet, ck


def _mutated(out, tmp_path, before: str, after: str):
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    path = bad / "rtl" / "jpq_net.v"
    text = path.read_text()
    assert text.count(before) == 1, before
    path.write_text(text.replace(before, after))
    return bad


def test_stereo_design_proven_whole(stereo):
    out, _, _ = stereo
    proof = verify_design(out)
    assert [p.kind for _, p in proof.functions] == ["hamming_cost", "box_sum", "argmin"]
    assert [p.latency for _, p in proof.functions] == [0, 0, 2]
    assert proof.functions[0][1].input_bits == 4 + 5 * 4 + 5  # left, the right ones of 5 columns, in-row flags
    assert proof.functions[1][1].input_bits == 5 * 3 * 4  # 5 channels, 3 rows, 4-bit terms
    assert proof.plumbing is not None and proof.plumbing.complete and proof.plumbing.kernels == 4
    assert proof.assumed == [], proof.assumed  # progress and the full-rate figures proven too
    report = json.loads((out / "report.json").read_text())
    assert (proof.plumbing.latency, proof.plumbing.period) == (report["latency_cycles"], report["cycles_per_frame"])


@pytest.mark.parametrize("what,before,after", FUNCTION_MUTANTS, ids=[m[0] for m in FUNCTION_MUTANTS])
def test_function_mutant_rejected(stereo, tmp_path, what, before, after):
    out, _, _ = stereo
    bad = _mutated(out, tmp_path, before, after)
    report = json.loads((bad / "report.json").read_text())
    with pytest.raises(FunctionFailure) as e:
        prove_functions(rtl_files(bad), report)
    kind = "argmin" if "argmin" in what or "tie" in what else "box_sum" if "column" in what else "hamming_cost"
    assert f"({kind})" in str(e.value)


@pytest.mark.parametrize("what,before,after", STEREO_PLUMBING_MUTANTS, ids=[m[0] for m in STEREO_PLUMBING_MUTANTS])
def test_stereo_plumbing_mutant_rejected(stereo, tmp_path, what, before, after):
    out, qnet, _ = stereo
    bad = _mutated(out, tmp_path, before, after)
    report = json.loads((bad / "report.json").read_text())
    with pytest.raises(PlumbingFailure) as e:
        prove_plumbing(rtl_files(bad), report, qnet)
    assert e.value.trace, "a failure comes with the handshakes that show it"


def test_function_failure_shows_an_input(stereo, tmp_path, capsys):
    out, _, ck = stereo
    bad = _mutated(out, tmp_path, *FUNCTION_MUTANTS[1][1:])
    with pytest.raises(ProofFailure, match=r"stage cost \(hamming_cost\): for x = 0x[0-9a-f]+ its function gives"):
        verify_design(bad, checkpoint=ck)
    assert main(["verify", str(bad), "--checkpoint", str(ck), "--no-simulate"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("jpq-hw verify: NOT PROVEN: stage cost (hamming_cost): for x = "), err


def test_amaranth_backend_and_cli(stereo, tmp_path, capsys):
    _, _, ck = stereo
    out = tmp_path / "amaranth"
    assert main(["lower", str(ck), "-o", str(out), "--backend", "amaranth", "--pipeline", "2", "--vectors", "2",
                 "--verify"]) == 0
    printed = capsys.readouterr().out
    assert "every beat it gives is the checkpoint's next output, for every input and every stall pattern" in printed
    assert "stage cost (hamming_cost, function s1_kernel_x -> s1_kernel_y): min(popcount(left XOR right_d), 3)" in printed
    assert "stage aggregate (box_sum, column sums s2_colsum_x -> s2_colsum_y): each of 5 column sums the sum " \
           "of 3 terms of 4 bits" in printed
    assert "stage disparity (argmin, function s3_kernel_x -> s3_kernel_y)" in printed
    assert "proven by SAT (yosys sat) for all 2^25 inputs, 1 register stage(s) on every path" in printed
    assert "of 4 of 4 stage(s)" in printed


def test_column_sum_failure_names_the_column(stereo, tmp_path):
    out, qnet, _ = stereo
    bad = _mutated(out, tmp_path, *STEREO_PLUMBING_MUTANTS[4][1:])  # the rows above the frame kept
    report = json.loads((bad / "report.json").read_text())
    with pytest.raises(PlumbingFailure, match=r"stage aggregate \(window part\): valid is high with window 0 of "
                                              r"frame 0 due, but data bit \d+ is unknown, not bit \d+ of the column "
                                              r"sum of channel \d at row 0, column \d of frame 0"):
        prove_plumbing(rtl_files(bad), report, qnet)
