"""Guards against absurd inputs (issue 14): ``jpq-hw lower`` estimates what a lowering will spend
from the weights, refuses one beyond the limits before it builds anything (one line, exit 2,
nothing written), lowers it with ``--no-limit``, and writes the same Verilog whatever Python's
hash seed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from jpq_hw import budget, flow
from jpq_hw.budget import DEFAULT_LIMITS, Limits, check_limits, estimate_lowering
from cli_run import run_cli
from jpq_hw.cli import build_parser
from jpq_hw.cost import ICE40
from jpq_hw.errors import JpqError
from jpq_hw.ir import IntFormat, QLayer, QNet, load_checkpoint, random_qnet, save_checkpoint

ROOT = Path(__file__).resolve().parents[1]


_run = run_cli  # (exit status, stdout, stderr) when unpacked


def _dense16(n: int) -> QNet:
    """The issue's example: an ``n x n`` dense linear layer of 16-bit weights and activations."""
    w = np.random.default_rng(0).integers(-(1 << 15), (1 << 15) - 1, size=(n, n), endpoint=True)
    layer = QLayer("fc1", "linear", w, np.zeros(n, np.int64), 16, False, IntFormat(16, True))
    return QNet((n,), IntFormat(16, True), (layer,))


def _big_conv() -> QNet:
    """An image network whose one 3x3 conv has 1024 x 16 x 9 dense 16-bit weights (its line
    buffers fit the UP5K's block RAM)."""
    w = np.random.default_rng(1).integers(-(1 << 15), (1 << 15) - 1, size=(1024, 16, 3, 3), endpoint=True)
    layer = QLayer("conv1", "conv2d", w, np.zeros(1024, np.int64), 20, True, IntFormat(8, False), 1, 1)
    return QNet((16, 12, 12), IntFormat(4, False), (layer,))


def _wide(n: int = 128) -> QNet:
    """Over the cell limit, yet quick to lower: ``n x n`` weights of one CSD digit each (+-2**k, so
    no constant to build: ``n - 1`` adders per row) on 16-bit inputs, every adder about 24 bits."""
    rng = np.random.default_rng(2)
    w = rng.choice([-1, 1], size=(n, n)) * (1 << rng.integers(0, 15, size=(n, n)))
    layer = QLayer("fc", "linear", w, np.zeros(n, np.int64), 20, False, IntFormat(16, True))
    return QNet((n,), IntFormat(16, True), (layer,))


@pytest.fixture
def nothing_is_built(monkeypatch):
    """Building any adder fails the test: a refusal must come before the work."""
    def boom(*args, **kwargs):
        raise AssertionError("the lowering started")

    import jpq_hw.stream.design

    monkeypatch.setattr(flow, "lower_graph", boom)
    monkeypatch.setattr(jpq_hw.stream.design, "lower_stream_design", boom)


def _assert_refused(code: int, out: str, err: str, tmp_path: Path, name: str) -> str:
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"jpq-hw: error: {name}.pt is too big to lower: estimated ~"), err
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]  # no temporary folder either
    return lines[0]


def test_the_issue_example_is_refused_before_anything_is_built(tmp_path, nothing_is_built):
    save_checkpoint(_dense16(3000), tmp_path / "big.pt")
    line = _assert_refused(*_run("lower", tmp_path / "big.pt", "-o", tmp_path / "out"), tmp_path, "big")
    # the estimate, in one line: adders, cells (and against the device), memory, time, the limits, the way out
    for words in ("adders", "SB_LUT4", "x the iCE40 UP5K", "GB of memory and ~", ", over the limit of 264,000 SB_LUT4 "
                  "(50x the iCE40 UP5K), 8 GB of memory and 10 min of lowering", "--no-limit"):
        assert words in line, line


def test_an_absurd_image_network_is_refused_too(tmp_path, nothing_is_built):
    save_checkpoint(_big_conv(), tmp_path / "conv.pt")
    line = _assert_refused(*_run("lower", tmp_path / "conv.pt", "-o", tmp_path / "out"), tmp_path, "conv")
    assert "over the limit of 264,000 SB_LUT4" in line


def test_the_estimate_counts_adders_from_the_weights():
    qnet = _wide(64)
    # one CSD digit per weight: per-weight CSD and MCM both need 63 adders per row, exactly
    assert estimate_lowering(qnet, optimize="none").adders == 64 * 63
    assert estimate_lowering(qnet, optimize="mcm").adders == 64 * 63
    big = estimate_lowering(_dense16(300), optimize="best", vectors=1000)
    # too large for CSE: the smaller of the two bounds, MCM (distinct odd constants per column + row sums)
    assert 300 * 299 < big.adders < 300 * 299 + 300 * 300
    assert big.lut4 > 50 * ICE40.largest_device[1] and big.memory_bytes > 1000 * 8 * big.adders
    with pytest.raises(JpqError, match="unknown --optimize"):
        estimate_lowering(qnet, optimize="fastest")


def test_each_limit_is_named_when_exceeded():
    est = estimate_lowering(random_qnet([16, 8], seed=1))
    check_limits(est, DEFAULT_LIMITS, ICE40)  # a small network is within every default limit
    with pytest.raises(JpqError, match=r"over the limit of 1 s of lowering;") as e:
        check_limits(est, Limits(seconds=1), ICE40, source="n.pt")
    assert str(e.value).startswith("n.pt is too big to lower: estimated ~")
    with pytest.raises(JpqError, match=r"over the limit of 1 MB of memory;"):
        check_limits(est, Limits(memory_bytes=2**20), ICE40)
    with pytest.raises(JpqError, match=r"over the limit of 0 SB_LUT4 \(0x the iCE40 UP5K\);"):
        check_limits(est, Limits(device_factor=0), ICE40)


def test_no_limit_lowers_a_network_over_the_limit(tmp_path):
    qnet = _wide()
    assert estimate_lowering(qnet).lut4 > DEFAULT_LIMITS.device_factor * ICE40.largest_device[1]
    save_checkpoint(qnet, tmp_path / "wide.pt")
    args = ["lower", tmp_path / "wide.pt", "-o", tmp_path / "out", "--optimize", "none", "--vectors", "20"]
    _assert_refused(*_run(*args), tmp_path, "wide")
    code, out, err = _run(*args, "--no-limit")
    assert code == 0 and "lowered in" in out, err
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["adders"] == 128 * 127 and not report["largest_common_device"]["fits"]


def test_the_library_takes_limits_or_none(tmp_path):
    ckpt = tmp_path / "n.pt"
    save_checkpoint(random_qnet([6, 4], seed=2), ckpt)
    with pytest.raises(JpqError, match="over the limit of 1 MB of memory"):
        flow.lower_checkpoint(ckpt, tmp_path / "out", limits=Limits(memory_bytes=2**20), n_vectors=5)
    assert not (tmp_path / "out").exists()
    report = flow.lower_checkpoint(ckpt, tmp_path / "out", limits=None, n_vectors=5)
    assert report["adders"] >= 1


def test_the_help_names_the_default_limits():
    text = " ".join(build_parser()._subparsers._group_actions[0].choices["lower"].format_help().split())
    d = DEFAULT_LIMITS
    assert "--no-limit lower even a network estimated beyond the limits" in text
    assert f"{d.seconds / 60:.0f} minutes, {d.memory_bytes // 2**30} GB of memory, {d.device_factor}x" in text
    assert f"{d.device_factor * ICE40.largest_device[1]:,} for iCE40" in text


def test_a_short_lowering_prints_nothing_more(tmp_path):
    est = estimate_lowering(load_checkpoint(ROOT / "examples" / "digits-mlp.pt"))
    assert est.seconds < budget.NOTICE_SECONDS  # its stderr stays empty (tests/test_cli.py checks)
    est = estimate_lowering(load_checkpoint(ROOT / "examples" / "digits-cnn.pt"), frames=16)
    assert est.seconds < budget.NOTICE_SECONDS


def test_a_long_lowering_says_what_it_will_spend(tmp_path, monkeypatch):
    monkeypatch.setattr(budget, "NOTICE_SECONDS", 0.0)
    save_checkpoint(random_qnet([6, 4], seed=2), tmp_path / "n.pt")
    code, out, err = _run("lower", tmp_path / "n.pt", "-o", tmp_path / "out", "--vectors", "5")
    assert code == 0
    assert err.startswith("jpq-hw: lowering 1 layer to adders: ~") and err.count("\n") == 1, err
    assert "adders" in err and "SB_LUT4, estimated ~" in err and "of memory" in err


# -- the same Verilog whatever the hash seed ---------------------------------------------------------

def test_lowering_is_byte_identical_across_hash_seeds(tmp_path):
    """Two processes per design, with different PYTHONHASHSEED (string hashing, so the order of
    sets and dicts of names, differs between them): the rtl/*.v files must be byte-identical."""
    flat = tmp_path / "flat.pt"
    save_checkpoint(random_qnet([16, 12, 6], density=0.3, weight_bits=8, input_format=IntFormat(8, True), seed=1),
                    flat)
    designs = {"flat-verilog": [flat, "--vectors", "20"],
               "flat-amaranth": [flat, "--backend", "amaranth", "--vectors", "20"],
               # --optimize cmvm: a third of the default's time; the flat design covers the default
               "stream-digits-cnn": [ROOT / "examples" / "digits-cnn.pt", "--optimize", "cmvm", "--vectors", "2"],
               "stream-digits-cnn-amaranth": [ROOT / "examples" / "digits-cnn.pt", "--optimize", "cmvm", "--vectors",
                                              "2", "--backend", "amaranth", "--pipeline", "2"]}
    procs = {}
    for name, args in designs.items():
        for seed in ("1", "4242"):
            env = {**os.environ, "PYTHONHASHSEED": seed}
            cmd = [sys.executable, "-m", "jpq_hw.cli", "lower", *map(str, args), "-o", str(tmp_path / f"{name}-{seed}")]
            procs[name, seed] = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                                 text=True)
    for key, p in procs.items():
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, (key, err)
    for name in designs:
        a = sorted((tmp_path / f"{name}-1" / "rtl").glob("*.v"))
        b = sorted((tmp_path / f"{name}-4242" / "rtl").glob("*.v"))
        assert [p.name for p in a] == [p.name for p in b] and a
        for x, y in zip(a, b):
            assert x.read_bytes() == y.read_bytes(), f"{name}: {x.name} differs between hash seeds"



def test_the_block_rams_of_line_buffers_are_known_before_lowering():
    """They depend on the frames alone: counted from the network, they equal what the stream's
    cost model counts on the lowered stages."""
    from jpq_hw.ir import random_conv_qnet, random_stereo_qnet
    from jpq_hw.stream.design import line_buffer_brams, lower_stream_design

    for qnet in (load_checkpoint(ROOT / "examples" / "stereo.pt"),
                 random_conv_qnet((3, 16, 40), [(8, 3, 1, 1), (8, 5, 2, 2)], [4], seed=1),
                 random_stereo_qnet(8, 40, [(4, 3), (4, 3)], aggregate="box_sum", seed=1)):
        design = lower_stream_design(qnet, ICE40, optimize="none")
        assert line_buffer_brams(qnet) == sum(s.bram for s in design.stream.stages) > 0


def test_line_buffers_beyond_the_block_ram_are_refused_before_lowering(tmp_path, nothing_is_built):
    from jpq_hw.ir import random_conv_qnet
    from jpq_hw.stream.design import line_buffer_brams

    wide = random_conv_qnet((64, 8, 300), [(2, 3, 1, 1)], seed=1)
    assert line_buffer_brams(wide) > ICE40.largest_device_bram
    save_checkpoint(wide, tmp_path / "wide.pt")
    code, out, err = _run("lower", tmp_path / "wide.pt", "-o", tmp_path / "out", "--no-limit")
    assert code == 2 and "block RAMs" in err and err.count("\n") == 1 and not (tmp_path / "out").exists()


# -- a terminated command leaves nothing half-written ------------------------------------------------

def test_sigterm_during_lowering_leaves_no_partial_output(tmp_path):
    """SIGTERM (a job scheduler's stop, a timeout) unwinds the command as Ctrl-C does: exit 143, one
    line, and the half-filled temporary folder beside the output is removed."""
    import signal
    import time

    ck = tmp_path / "net.pt"
    save_checkpoint(random_qnet([256, 96, 10], density=0.12, weight_bits=8, input_format=IntFormat(8, False),
                                seed=4), ck)
    out = tmp_path / "out"
    p = subprocess.Popen([sys.executable, "-m", "jpq_hw.cli", "lower", str(ck), "-o", str(out)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".out.*.partial")) and p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    if p.poll() is not None:
        pytest.skip("the lowering finished before it could be stopped")  # pragma: no cover
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 143 and err.strip().splitlines()[-1] == "jpq-hw: terminated"
    assert not list(tmp_path.glob(".out.*")) and not out.exists()
