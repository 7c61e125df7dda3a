"""Self-test of the simulation harness on hand-written designs.

y[0] = x0 + x1 and y[1] = x0 - x1 (x: 2 x 8-bit signed, y: 2 x 9-bit signed), once combinational
and once as a 2-stage pipeline with clk/in_valid/out_valid. The harness must pass them, and must
fail (``passed=False``, with the vector, element, expected and got in the message) on a wrong
vectors file, a wrong latency, and a design whose out_valid ignores in_valid.
"""

from __future__ import annotations

import random
import subprocess
import sys

import pytest

COMB = """\
module tiny_comb (
    input  wire [15:0] x,
    output wire [17:0] y
);
    wire [8:0] a = {x[7], x[7:0]};
    wire [8:0] b = {x[15], x[15:8]};
    assign y = {a - b, a + b};
endmodule
"""

PIPE = """\
module tiny_pipe (
    input  wire        clk,
    input  wire        in_valid,
    input  wire [15:0] x,
    output wire        out_valid,
    output wire [17:0] y
);
    reg [15:0] x_q;
    reg [17:0] y_q;
    reg [1:0]  v_q;
    wire [8:0] a = {x_q[7], x_q[7:0]};
    wire [8:0] b = {x_q[15], x_q[15:8]};
    always @(posedge clk) begin
        x_q <= x;
        y_q <= {a - b, a + b};
        v_q <= {v_q[0], in_valid};
    end
    assign y = y_q;
    assign out_valid = v_q[1];
endmodule
"""


def vectors(n: int = 200, seed: int = 0):
    rng = random.Random(seed)
    x = [[-128, -128], [127, 127], [-128, 127], [127, -128], [0, 0]]
    x += [[rng.randint(-128, 127), rng.randint(-128, 127)] for _ in range(n - len(x))]
    return x, [[a + b, a - b] for a, b in x]


def report(top: str, latency: int = 0) -> dict:
    return {"top": top, "inputs": {"count": 2, "bits": 8, "signed": True},
            "outputs": {"count": 2, "bits": 9, "signed": True},
            "latency_cycles": latency, "pipelined": latency > 0}


def test_elements_with_x_stay_text():
    bench = pytest.importorskip("jpq_hw.sim.cocotb_bench")  # (pack / unpack: tests/test_design_folder.py)
    assert bench._elements_of("0000000X1" "000000011", 2, 9, True) == [3, "0000000X1"]
    assert bench._elements_of("111111111" "000000011", 2, 9, True) == [3, -1]


def test_schedule_has_bubbles():
    bench = pytest.importorskip("jpq_hw.sim.cocotb_bench")
    s = bench._schedule(50, 3)
    assert s[:3] == [None] * 3 and s[3:53] == list(range(50)) and s[-4:] == [None] * 4
    assert [None] * 5 in [s[i:i + 5] for i in range(53, len(s))]  # a gap longer than the pipeline


@pytest.mark.parametrize("top,verilog", [("tiny_comb", COMB), ("tiny_pipe", PIPE)], ids=["comb", "pipe"])
def test_tiny_designs_are_lint_clean(simulators, top, verilog, tmp_path):
    if "verilator" not in simulators:
        pytest.skip("verilator not available")
    from jpq_hw.sim.runner import lint_verilog

    f = tmp_path / f"{top}.v"
    f.write_text(verilog)
    assert lint_verilog([f], top) == []
    f.write_text(verilog.replace("wire [8:0] a = {x", "wire [7:0] a = {x"))  # a width bug
    assert any("WIDTH" in w for w in lint_verilog([f], top))


def test_combinational(simulator, make_design, sim_build_root):
    from jpq_hw.sim.runner import run_design

    x, y = vectors()
    good = make_design("comb", COMB, report("tiny_comb"), x, y)
    bdir = sim_build_root / simulator / "tiny_comb"
    res = run_design(good, simulator, build_dir=bdir)
    assert res.passed, res.summary()
    assert res.n_vectors == len(x) and res.log.is_file()

    y_bad = [list(v) for v in y]
    y_bad[7][1] += 1
    bad = make_design("comb_bad", COMB, report("tiny_comb"), x, y_bad)
    res = run_design(bad, simulator, build_dir=bdir)
    assert not res.passed
    assert f"vector 7, y[1]: expected {y_bad[7][1]}, got {y[7][1]}" in res.message, res.message


def test_signed_ports(simulator, make_design, sim_build_root):
    """Ports declared ``signed`` take the same packed words (cocotb range-checks ints by signedness)."""
    from jpq_hw.sim.runner import run_design

    signed = COMB.replace("input  wire [15:0] x", "input  wire signed [15:0] x") \
                 .replace("output wire [17:0] y", "output wire signed [17:0] y")
    x, y = vectors(50, seed=3)
    res = run_design(make_design("signed", signed, report("tiny_comb"), x, y), simulator,
                     build_dir=sim_build_root / simulator / "tiny_comb_signed")
    assert res.passed, res.summary()


def test_pipelined(simulator, make_design, sim_build_root):
    from jpq_hw.sim.runner import run_design

    x, y = vectors(300, seed=1)
    bdir = sim_build_root / simulator / "tiny_pipe"
    res = run_design(make_design("pipe", PIPE, report("tiny_pipe", 2), x, y), simulator, build_dir=bdir)
    assert res.passed, res.summary()

    y_bad = [list(v) for v in y]
    y_bad[290][0] -= 1  # 290 lies in the back-to-back stream only
    res = run_design(make_design("pipe_bad", PIPE, report("tiny_pipe", 2), x, y_bad), simulator, build_dir=bdir)
    assert not res.passed and "vector 290, y[0]" in res.message, res.message

    res = run_design(make_design("pipe_late", PIPE, report("tiny_pipe", 3), x, y), simulator, build_dir=bdir)
    assert not res.passed and "out_valid" in res.message, res.message


def test_pipelined_valid_must_follow_in_valid(simulator, make_design, sim_build_root):
    from jpq_hw.sim.runner import run_design

    x, y = vectors(40, seed=2)
    always_valid = PIPE.replace("v_q <= {v_q[0], in_valid};", "v_q <= {v_q[0], 1'b1};")
    res = run_design(make_design("pipe_v", always_valid, report("tiny_pipe", 2), x, y), simulator,
                     build_dir=sim_build_root / simulator / "tiny_pipe_always_valid")
    assert not res.passed and "out_valid high, but in_valid was low" in res.message, res.message


def test_command_line(simulator, make_design, sim_build_root):
    x, y = vectors(20)
    good = make_design("cli", COMB, report("tiny_comb"), x, y)
    cmd = [sys.executable, "-m", "jpq_hw.sim.runner", str(good), "--simulator", simulator,
           "--build-dir", str(sim_build_root / simulator / "tiny_comb")]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=str(sim_build_root.parent.parent))
    assert proc.returncode == 0 and proc.stdout.startswith("PASS"), proc.stdout + proc.stderr
    y[3][0] += 1
    bad = make_design("cli_bad", COMB, report("tiny_comb"), x, y)
    cmd[3] = str(bad)
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=str(sim_build_root.parent.parent))
    assert proc.returncode == 1 and proc.stdout.startswith("FAIL"), proc.stdout + proc.stderr


def test_build_failure_is_reported(simulator, make_design, sim_build_root):
    from jpq_hw.sim.runner import run_design

    x, y = vectors(5)
    broken = make_design("broken", COMB.replace("assign y", "assign y ="), report("tiny_comb"), x, y)
    res = run_design(broken, simulator, build_dir=sim_build_root / simulator / "broken")
    assert not res.passed and res.message.startswith("build failed") and res.log.name == "build.log"


def test_simulate_words_reads_a_module_with_other_ports(simulators, tmp_path):
    """jpq_hw.sim.words (the benchmarks' harness for other tools' modules): y = {a - b, a + b} per word,
    combinational and pipelined (one word a cycle, read 2 cycles later), bit for bit."""
    from jpq_hw.design_folder import pack
    from jpq_hw.sim.words import simulate_words

    x, y = vectors(40)
    words = [pack(v, 8, True) for v in x]
    want = [pack(v, 9, True) for v in y]
    (tmp_path / "comb").mkdir()
    (tmp_path / "comb" / "other.v").write_text(COMB.replace("module tiny_comb", "module other").replace("x", "inp")
                                               .replace("y", "outp"))
    got = simulate_words([tmp_path / "comb" / "other.v"], "other", "inp", "outp", 16, 18, words, tmp_path / "comb")
    assert got == [f"{w:018b}" for w in want]
    (tmp_path / "pipe").mkdir()
    (tmp_path / "pipe" / "p.v").write_text(PIPE)
    got = simulate_words([tmp_path / "pipe" / "p.v"], "tiny_pipe", "x", "y", 16, 18, words, tmp_path / "pipe",
                         clock="clk", latency=2, tie={"in_valid": "1'b1", "out_valid": ""})
    assert got == [f"{w:018b}" for w in want]


def test_split_fields_tells_undriven_from_unknown_bits():
    from jpq_hw.sim.words import split_fields

    # element 0 is the least significant field
    assert split_fields("zzzz" "0011" "1111", [4, 4, 4], True) == [-1, 3, None]
    assert split_fields("0z11" "x000", [4, 4], False) == ["x000", "0z11"]  # a z among driven bits is wrong
    assert split_fields("101", [0, 3, 0], [False, False, True]) == [0, 5, 0]
