"""The proof of a stream design's plumbing (:mod:`jpq_hw.verify.plumbing`): it proves what jpq-hw
generates, through both backends, combinational and pipelined, and rejects designs whose windows,
padding, line buffers, collectors or handshakes are wrong, with the handshakes that show it."""

from __future__ import annotations

import json
import shutil

import pytest

from jpq_hw.cli import main
from jpq_hw.design_folder import rtl_files
from jpq_hw.flow import lower_checkpoint
from jpq_hw.ir import random_conv_qnet
from jpq_hw.ir.checkpoint import save_checkpoint
from jpq_hw.verify import verify_design
from jpq_hw.verify.mutate import PLUMBING_MUTANTS, PROGRESS_MUTANTS
from jpq_hw.verify.plumbing import PlumbingFailure, constant_bit, prove_plumbing

# padding, a stride of 2 and a flatten: every kind of plumbing the proof covers, in a small frame
SMALL = dict(input_shape=(2, 5, 6), convs=[(3, 3, 1, 1), (2, 3, 2, 1)], dense=[3], density=0.6, seed=7)

# the Verilog backend's library modules made wrong (the line buffers': tests/test_verify_line_buffer.py)
MUTANTS = PLUMBING_MUTANTS


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("plumbing")
    qnet = random_conv_qnet(**SMALL)
    ck = tmp / "small.pt"
    save_checkpoint(qnet, ck)
    out = tmp / "verilog"
    lower_checkpoint(ck, out, n_vectors=2)
    return out, qnet


def test_plumbing_proven(small):
    out, _ = small
    proof = verify_design(out)
    assert proof.plumbing is not None and proof.plumbing.kernels == 3 and proof.plumbing.states > 100
    assert proof.assumed == [], proof.assumed  # progress and the full-rate figures proven too


@pytest.mark.parametrize("what,before,after", MUTANTS, ids=[m[0] for m in MUTANTS])
def test_plumbing_mutant_rejected(small, tmp_path, what, before, after):
    out, qnet = small
    report = json.loads((out / "report.json").read_text())
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    text = (bad / "rtl" / "jpq_net.v").read_text()
    assert text.count(before) == 1, what
    (bad / "rtl" / "jpq_net.v").write_text(text.replace(before, after))
    with pytest.raises(PlumbingFailure) as e:
        prove_plumbing(rtl_files(bad), report, qnet)
    assert e.value.trace, "a failure comes with the handshakes that show it"


def test_deadlock_found(small, tmp_path):
    """A window that stops taking pixels once a frame's bottom padding is due (while the input stays
    valid) is safe, loses nothing, and never gives another window: the progress check finds it."""
    out, qnet = small
    report = json.loads((out / "report.json").read_text())
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    text = (bad / "rtl" / "jpq_net.v").read_text()
    text = text.replace("wire slot = free && (faking || s_valid);", "wire slot = free && (faking || (s_valid && !tail));")
    text = text.replace("assign s_ready = free && !faking;", "assign s_ready = free && !faking && !tail;")
    (bad / "rtl" / "jpq_net.v").write_text(text)
    with pytest.raises(PlumbingFailure, match="it never takes an input beat nor offers an output beat again") as e:
        prove_plumbing(rtl_files(bad), report, qnet)
    assert "repeats forever" in str(e.value) and e.value.trace


def _mutated(small, tmp_path, before, after):
    out, qnet = small
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    text = (bad / "rtl" / "jpq_net.v").read_text()
    assert text.count(before) == 1
    (bad / "rtl" / "jpq_net.v").write_text(text.replace(before, after))
    return bad, json.loads((out / "report.json").read_text()), qnet


def test_deadlock_with_a_sink_that_waits_for_valid_found(small, tmp_path):
    """A register that takes a beat only while its output is ready: every beat right, full speed at
    full rate (so a check fed and drained at full rate passes it), but a sink may wait for valid
    before it raises ready, and then nothing moves. The progress check under fair stalls finds the
    cycle it stays in: input offered, output ready low, forever."""
    what, before, after = PROGRESS_MUTANTS[0]
    bad, report, qnet = _mutated(small, tmp_path, before, after)
    with pytest.raises(PlumbingFailure, match="under stalls that keep the contract, its input offered and its "
                                              "output valid low, it never takes") as e:
        prove_plumbing(rtl_files(bad), report, qnet)
    assert "the cycle of 1 handshake(s) 10 repeats forever" in str(e.value), str(e.value)


def test_half_rate_register_found(small, tmp_path):
    """A register that takes a beat every other cycle is right and makes progress, but the design
    then takes a frame in twice the report's cycles: the full-rate run of the whole design finds it."""
    what, before, after = PROGRESS_MUTANTS[1]
    bad, report, qnet = _mutated(small, tmp_path, before, after)
    with pytest.raises(PlumbingFailure, match="report.json says latency_cycles"):
        prove_plumbing(rtl_files(bad), report, qnet)


def test_full_rate_proven(small):
    """The whole design at full rate from reset: the report's latency and frame period, exactly."""
    out, qnet = small
    report = json.loads((out / "report.json").read_text())
    proof = prove_plumbing(rtl_files(out), report, qnet)
    assert (proof.latency, proof.period) == (report["latency_cycles"], report["cycles_per_frame"])
    assert proof.full_rate_cycles > 2 * report["cycles_per_frame"] and not proof.full_rate_unproven


def test_cli_prints_the_failure_and_its_handshakes(small, tmp_path, capsys):
    out, _ = small
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    text = (bad / "rtl" / "jpq_net.v").read_text()
    (bad / "rtl" / "jpq_net.v").write_text(text.replace(MUTANTS[2][1], MUTANTS[2][2]))
    assert main(["verify", str(bad), "--checkpoint", str(out.parent / "small.pt")]) == 1
    err = capsys.readouterr().err
    assert "NOT PROVEN: plumbing of stage" in err and "valid fell before its beat transferred" in err
    assert "handshakes (valid in, ready out, per cycle)" in err


def test_amaranth_backend_pipelined(small, tmp_path, capsys):
    _, qnet = small
    ck = tmp_path / "small.pt"
    save_checkpoint(qnet, ck)
    out = tmp_path / "amaranth"
    assert main(["lower", str(ck), "-o", str(out), "--backend", "amaranth", "--pipeline", "1", "--vectors", "2",
                 "--verify"]) == 0
    printed = capsys.readouterr().out
    assert "every beat it gives is the checkpoint's next output, for every input and every stall pattern" in printed
    assert "plumbing (line buffers, windows, padding, collectors, handshakes, reset) of 3 of 3 stage(s)" in printed


def test_state_limit_leaves_the_plumbing_assumed(small):
    out, _ = small
    proof = verify_design(out, max_states=5)
    assert not proof.plumbing.complete and proof.plumbing.kernels == 0
    # the windows: more positions in a frame than 5 states, not tried; the kernel parts: explored
    assert any("not proven" in a and "positions in a frame, so more than 5 states" in a for a in proof.assumed)
    assert any("not proven" in a and "more than 5 states (raise --max-states)" in a for a in proof.assumed)


def test_default_limit_follows_the_register_bits(small, monkeypatch):
    """By default a part may explore MAX_WORK register bits x states: a part with more positions in
    a frame than that allows for its bits is not tried, and says why."""
    import jpq_hw.verify.plumbing as plumbing

    out, _ = small
    monkeypatch.setattr(plumbing, "MAX_WORK", 2000)
    proof = verify_design(out)
    assert not proof.plumbing.complete
    assert any("register bits x states allow for its" in u for u in proof.plumbing.unproven), proof.plumbing.unproven


def test_nonsense_state_limit_refused(small, capsys):
    out, _ = small
    assert main(["verify", str(out), "--max-states", "0"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["jpq-hw: error: --max-states must be at least 1, got 0"], err


def test_constant_bit_matches_enumeration():
    for bits in (1, 3, 5):
        lo_all, hi_all = -(1 << bits - 1), (1 << bits) - 1
        for lo in range(lo_all, hi_all + 1):
            for hi in range(lo, hi_all + 1):
                for j in range(bits):
                    seen = {v % (1 << bits) >> j & 1 for v in range(lo, hi + 1)}
                    assert constant_bit(lo, hi, j, bits) == (seen.pop() if len(seen) == 1 else None), (lo, hi, j)


def test_symbolic_netlist_runs_the_whole_design_exactly(small):
    """With every bit known, the symbolic engine is a plain simulator: the whole design, kernels
    and all (every cell kind yosys gives it: arithmetic, comparisons, logic, multiplexers,
    memories), run on frames with random stalls, gives the reference's outputs bit for bit."""
    import numpy as np

    from jpq_hw.reference import run_reference
    from jpq_hw.verify.plumbing import plumbing_module
    from jpq_hw.verify.symbolic import SymbolicNetlist, slot

    out, qnet = small
    report = json.loads((out / "report.json").read_text())
    module = plumbing_module(rtl_files(out), report)
    port = {p: [slot(b) for b in d["bits"]] for p, d in module["ports"].items()}
    net = SymbolicNetlist(module, inputs=[*port["clk"], *port["rst"], *port["s_valid"], *port["m_ready"],
                                          *port["s_data"]], observe=[*port["s_ready"], *port["m_valid"], *port["m_data"]])
    rng = np.random.default_rng(3)
    c, h, w = qnet.input_shape
    frames = rng.integers(qnet.input.lo, qnet.input.hi + 1, size=(3, c, h, w))
    pixels = [sum((int(frames[f, ch, r, col]) % (1 << qnet.input.bits)) << (ch * qnet.input.bits) for ch in range(c))
              for f in range(3) for r in range(h) for col in range(w)]
    width, bits = len(port["s_data"]), qnet.layers[-1].out.bits
    regs, _ = net.cycle(tuple(None for _ in net.reg_q), (0, 1, 0, 0) + (0,) * width, ())
    got, k = [], 0
    for _ in range(2000):
        valid = int(k < len(pixels) and rng.random() < 0.7)
        ready = int(rng.random() < 0.6)
        data = tuple(pixels[k] >> b & 1 for b in range(width)) if valid else (0,) * width
        regs, seen = net.cycle(regs, (0, 0, valid, ready) + data, ())
        assert seen[0] in (0, 1) and seen[1] in (0, 1)
        k += valid and seen[0]
        if seen[1] and ready:
            word = sum(b << i for i, b in enumerate(seen[2:]))
            got.append([(word >> (o * bits) & ((1 << bits) - 1)) for o in range(len(seen[2:]) // bits)])
    want = run_reference(qnet, frames)
    signed = qnet.layers[-1].out.signed
    got = np.array([[v - (1 << bits) if signed and v >> (bits - 1) else v for v in row] for row in got])
    assert len(got) == 3 and np.array_equal(got, want.reshape(3, -1))
