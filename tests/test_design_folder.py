"""The design folder: what the flow writes is what its readers read (jpq_hw.design_folder), and buses
are packed as contract.md section 2 says."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, strategies as st

from jpq_hw import design_folder as df
from jpq_hw.flow import lower_checkpoint
from jpq_hw.ir import IntFormat, random_qnet, save_checkpoint
from jpq_hw.vectors import make_vectors

NET = random_qnet([7, 5, 3], density=0.5, weight_bits=5, input_format=IntFormat(4, True),
                  hidden_format=IntFormat(5, False), output_format=IntFormat(9, True), seed=3)


@pytest.mark.parametrize("pipeline", [0, 2])
def test_the_reader_reads_what_the_flow_wrote(tmp_path, pipeline):
    ckpt = tmp_path / "net.pt"
    save_checkpoint(NET, ckpt)
    out = tmp_path / "out"
    report = lower_checkpoint(ckpt, out, pipeline=pipeline, top="dut", n_vectors=50, seed=4)

    design = df.read_design(out)
    latency = report["latency_cycles"]
    assert design.interface == df.Interface("dut", df.Port(7, 4, True), df.Port(3, 9, True), pipeline > 0, latency)
    assert (latency >= 1) == (pipeline > 0)
    x, y = make_vectors(NET, 50, 4)
    assert design.x == x.tolist() and design.y == y.tolist()
    # every file of the layout is there, and nothing else
    assert df.rtl_files(out) == [out / df.RTL_DIR / "dut.v"]
    assert sorted(p.name for p in out.iterdir()) == sorted([df.RTL_DIR, df.REPORT_JSON, df.REPORT_MD, df.TB_DIR,
                                                            df.SYNTH_DIR])
    assert sorted(p.name for p in (out / df.TB_DIR).iterdir()) == sorted(["vectors.json", *df.TB_FILES])
    # report.json's interface fields are exactly what Interface writes (contract.md sections 2 and 3)
    on_disk = json.loads((out / df.REPORT_JSON).read_text())
    assert {k: on_disk[k] for k in design.interface.to_report()} == design.interface.to_report()
    assert on_disk["interface"] == "flat"
    # the copy beside the test bench is this module, byte for byte
    assert (out / df.TB_DIR / "design_folder.py").read_text() == open(df.__file__).read()


def test_the_copied_bench_reads_the_folder_without_jpq_hw(tmp_path):
    ckpt = tmp_path / "net.pt"
    save_checkpoint(NET, ckpt)
    out = tmp_path / "out"
    lower_checkpoint(ckpt, out, top="dut", n_vectors=20)
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import cocotb_bench, design_folder, pathlib; "
            "d = design_folder.read_design(cocotb_bench.design_dir()); "
            "assert d.interface.top == 'dut' and len(d.x) == 20; "
            "assert not [m for m in sys.modules if m.startswith('jpq_hw')], 'imported jpq_hw'; print('ok')")
    done = subprocess.run([sys.executable, "-c", code, str(out / df.TB_DIR)], cwd=tmp_path, capture_output=True,
                          text=True)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


@pytest.mark.parametrize("change,message", [
    (lambda r: r.pop("outputs"), "missing or malformed interface field"),
    (lambda r: r.update(interface="stream"), "interface 'stream', not 'flat'"),
    (lambda r: r.update(pipelined=True, latency_cycles=0), "latency_cycles >= 1"),
])
def test_a_malformed_report_is_named(change, message):
    report = df.Interface("t", df.Port(2, 8, True), df.Port(1, 9, False)).to_report()
    change(report)
    with pytest.raises(ValueError, match=message):
        df.Interface.from_report(report)


def test_vectors_that_disagree_with_the_report_are_named(tmp_path):
    (tmp_path / df.TB_DIR).mkdir()
    (tmp_path / df.REPORT_JSON).write_text(json.dumps(
        df.Interface("t", df.Port(2, 8, True), df.Port(1, 9, False)).to_report()))
    df.write_vectors(tmp_path, np.array([[1, 2], [3, 4]]), np.array([[5], [6, 7]], dtype=object))
    with pytest.raises(ValueError, match="vector 1 has 2 inputs / 2 outputs, report.json says 2 / 1"):
        df.read_design(tmp_path)


def test_pack_and_unpack():
    vals = [-256, 255, 0, -1, 17]
    assert df.unpack(df.pack(vals, 9, True), 5, 9, True) == vals
    assert df.pack([1, 2], 4, False) == 0x21  # element 0 at the least significant end
    assert df.pack([-1, 1], 4, True) == 0x1F
    with pytest.raises(ValueError, match="element 0 = 256 does not fit 9-bit signed"):
        df.pack([256], 9, True)
    with pytest.raises(ValueError, match="does not fit 4-bit unsigned"):
        df.pack([-1], 4, False)
    wide = [(i * 37) % 256 - 128 for i in range(600)]  # a 4800-bit bus
    assert df.unpack(df.pack(wide, 8, True), 600, 8, True) == wide
    # one width and signedness per element; a 0-bit element holds 0 and takes no bits
    assert df.pack([3, 0, -1], [2, 0, 3], [False, True, True]) == 0b111_11
    assert df.unpack(0b111_11, 3, [2, 0, 3], [False, True, True]) == [3, 0, -1]
    with pytest.raises(ValueError, match="3 elements but 2 widths"):
        df.pack([1, 2, 3], [4, 4], False)


@given(st.lists(st.tuples(st.integers(0, 12), st.booleans(), st.integers(0, 1 << 12)), min_size=1, max_size=20))
def test_pack_roundtrips_any_fields(fields):
    widths = [b for b, _, _ in fields]
    signs = [s for _, s, _ in fields]
    values = []
    for b, s, r in fields:  # any value that fits the field
        lo, hi = (-(1 << (b - 1)), (1 << (b - 1)) - 1) if s and b else (0, (1 << b) - 1)
        values.append(lo + r % (hi - lo + 1))
    word = df.pack(values, widths, signs)
    assert 0 <= word < 1 << sum(widths)
    assert df.unpack(word, len(values), widths, signs) == values
