"""The command line: the main job works, and every bad input is one line, exit 2, nothing written."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cli_run import run_cli
from jpq_hw.cli import main
from jpq_hw.ir import qnet_to_dict, random_qnet, save_checkpoint

ROOT = Path(__file__).resolve().parents[1]


def test_lower_the_shipped_example(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["lower", str(ROOT / "examples" / "digits-mlp.pt"), "--target", "ice40", "-o", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["top"] == "jpq_net" and report["inputs"] == {"count": 64, "bits": 5, "signed": False}
    assert report["outputs"] == {"count": 10, "bits": 16, "signed": True}
    assert report["latency_cycles"] == 0 and not report["pipelined"]
    assert sorted(p.name for p in out.iterdir()) == ["report.json", "report.md", "rtl", "synth", "tb"]
    assert [p.name for p in (out / "rtl").iterdir()] == ["jpq_net.v"]
    assert "module jpq_net (" in (out / "rtl" / "jpq_net.v").read_text()
    vectors = json.loads((out / "tb" / "vectors.json").read_text())
    assert len(vectors["x"]) == 1000 and len(vectors["y"][0]) == 10
    assert "| fc1 | 64 x 32 |" in (out / "report.md").read_text()
    assert "lowered in" in capsys.readouterr().out


def test_best_sharing_is_the_default_and_beats_per_weight_csd(tmp_path):
    reports = {}
    for optimize in (None, "none", "best"):
        out = tmp_path / str(optimize)
        args = ["lower", str(ROOT / "examples" / "digits-mlp.pt"), "-o", str(out)]
        assert main(args + (["--optimize", optimize] if optimize else [])) == 0
        reports[optimize] = json.loads((out / "report.json").read_text())
    assert reports[None]["optimize"] == "best" and reports["none"]["optimize"] == "none"
    assert reports[None]["adders"] == reports["best"]["adders"] < reports["none"]["adders"]
    assert reports["best"]["lut4_estimate"] < reports["none"]["lut4_estimate"]


def test_pipelined_report(tmp_path):
    out = tmp_path / "out"
    assert main(["lower", str(ROOT / "examples" / "digits-mlp.pt"), "-o", str(out), "--pipeline", "3",
                 "--top", "digits"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["pipelined"] and report["latency_cycles"] == -(-report["adder_depth"] // 3)
    text = (out / "rtl" / "digits.v").read_text()
    assert "input  wire clk" in text and "output wire out_valid" in text


@pytest.fixture
def ckpts(tmp_path):
    good = qnet_to_dict(random_qnet([6, 4, 3], seed=2))
    made = {}

    def variant(name, **changes):
        d = {**good, **changes}
        path = tmp_path / f"{name}.pt"
        torch.save(d, path)
        made[name] = path

    variant("wrong_format", format="onnx")
    variant("wrong_version", version=3)
    variant("no_layers", layers=[])
    layers = [dict(l) for l in good["layers"]]
    layers[0]["weight"] = layers[0]["weight"].float()
    variant("float_weights", layers=layers)
    layers = [dict(l) for l in good["layers"]]
    layers[1]["weight"] = torch.ones(3, 5, dtype=torch.int32)
    variant("no_chain", layers=layers)
    layers = [dict(l) for l in good["layers"]]
    layers[0]["shift"] = -2
    variant("negative_shift", layers=layers)
    layers = [dict(l) for l in good["layers"]]
    layers[0]["out_bits"] = 40
    variant("wide_out", layers=layers)
    layers = [dict(l) for l in good["layers"]]
    layers[0]["kind"] = "attention"
    variant("unknown_kind", layers=layers)
    (tmp_path / "truncated.pt").write_bytes(made["wrong_format"].read_bytes()[:200])
    made["truncated"] = tmp_path / "truncated.pt"
    (tmp_path / "text.pt").write_text("not a checkpoint")
    made["text"] = tmp_path / "text.pt"
    made["missing"] = tmp_path / "missing.pt"
    conv = random_qnet([6, 4], seed=3)
    save_checkpoint(conv, tmp_path / "good.pt")
    made["good"] = tmp_path / "good.pt"
    return made


BAD = {
    "wrong_format": "format is 'onnx'",
    "wrong_version": "format version 3 is not supported",
    "no_layers": "no layers",
    "float_weights": "must be an integer tensor",
    "no_chain": "weight has 5 inputs",
    "negative_shift": "shift must be an integer >= 0",
    "wide_out": "bits must be an integer in 1..32",
    "unknown_kind": "unknown layer kind 'attention'",
    "truncated": "not a readable checkpoint",
    "text": "not a readable checkpoint",
    "missing": "does not exist",
}


_run = run_cli


def test_a_real_process_prints_one_line_and_no_traceback(ckpts, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "jpq_hw.cli", "lower", str(ckpts["truncated"]), "-o",
                           str(tmp_path / "o")], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stdout == "" and "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("jpq-hw: error: ")


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_checkpoints_are_one_line_errors(ckpts, tmp_path, name):
    out = tmp_path / f"out_{name}"
    proc = _run("lower", ckpts[name], "--target", "ice40", "-o", out)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("jpq-hw: error: ") and BAD[name] in lines[0], proc.stderr
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(f".out_{name}")]  # no temporary folder left


@pytest.mark.parametrize("args,message", [
    (["--target", "xilinx"], "unknown target 'xilinx' (known: ice40, ecp5)"),
    (["--pipeline", "-1"], "--pipeline must be >= 0"),
    (["--top", "3bad"], "not a valid Verilog module name"),
    (["--vectors", "0"], "--vectors must be >= 1"),
])
def test_bad_flags(ckpts, tmp_path, args, message):
    out = tmp_path / "out"
    proc = _run("lower", ckpts["good"], "-o", out, *args)
    assert proc.returncode == 2 and message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_existing_output_needs_force(ckpts, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    proc = _run("lower", ckpts["good"], "-o", out)
    assert proc.returncode == 2 and "already exists" in proc.stderr
    assert (out / "keep.txt").read_text() == "mine"
    # --force replaces only a folder that jpq-hw lower made (tests/test_outputs.py has the rest)
    proc = _run("lower", ckpts["good"], "-o", out, "--force")
    assert proc.returncode == 2 and "not a folder that jpq-hw lower made" in proc.stderr
    assert (out / "keep.txt").read_text() == "mine"


def test_unknown_backend_is_an_argparse_error(ckpts, tmp_path):
    proc = _run("lower", ckpts["good"], "-o", tmp_path / "o", "--backend", "vhdl")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


def test_own_inputs_come_first_and_are_checked(ckpts, tmp_path):
    import numpy as np

    from jpq_hw.ir import load_checkpoint
    from jpq_hw.reference import run_reference

    qnet = load_checkpoint(ckpts["good"])
    mine = np.array([[1, 200, 3, 40, 5, 255], [0, 0, 0, 0, 0, 1]])
    np.save(tmp_path / "mine.npy", mine)
    out = tmp_path / "out"
    assert _run("lower", ckpts["good"], "-o", out, "--inputs", tmp_path / "mine.npy", "--vectors", "50").returncode == 0
    vectors = json.loads((out / "tb" / "vectors.json").read_text())
    assert vectors["x"][:2] == mine.tolist() and len(vectors["x"]) == 50
    assert vectors["y"][:2] == run_reference(qnet, mine).tolist()
    lo, hi = qnet.input.lo, qnet.input.hi
    bad = {"missing.npy": None, "shape.npy": np.zeros((3, 5), int), "range.npy": np.full((2, 6), hi + 1),
           "float.npy": np.full((1, 6), 0.5), "objects.npy": np.array([[1, "a"]], dtype=object)}
    words = {"missing.npy": "does not exist", "shape.npy": "shape [3, 5] does not hold vectors",
             "range.npy": f"vector 0 leaves the 8-bit unsigned input range [{lo}, {hi}]",
             "float.npy": "must be integers", "objects.npy": "not a readable .npy array"}
    for name, array in bad.items():
        if array is not None:
            np.save(tmp_path / name, array, allow_pickle=True)
        proc = _run("lower", ckpts["good"], "-o", tmp_path / "bad", "--inputs", tmp_path / name)
        assert proc.returncode == 2 and words[name] in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, \
            proc.stderr
        assert not (tmp_path / "bad").exists()


def test_the_digits_example_is_tested_on_real_digits(tmp_path):
    from jpq_hw.datasets import load_digits_split

    out = tmp_path / "out"
    assert main(["lower", str(ROOT / "examples" / "digits-mlp.pt"), "-o", str(out)]) == 0
    x = json.loads((out / "tb" / "vectors.json").read_text())["x"]
    test_images = load_digits_split()[2][:300].tolist()
    start = x.index(test_images[0])
    assert x[start:start + 300] == test_images  # after the extremes, before the random ones


def test_a_design_larger_than_the_largest_common_device_is_warned(tmp_path):
    big = tmp_path / "big.pt"
    save_checkpoint(random_qnet([64, 64], density=0.5, weight_bits=8, seed=4), big)
    proc = _run("lower", big, "-o", tmp_path / "big")
    report = json.loads((tmp_path / "big" / "report.json").read_text())
    assert proc.returncode == 0 and report["largest_common_device"] == {"name": "iCE40 UP5K", "lut4": 5280,
                                                                        "fits": False}
    assert proc.stderr.startswith(f"jpq-hw: warning: the estimate, {report['lut4_estimate']:,} SB_LUT4, is more "
                                  "than the iCE40 UP5K has (5,280 LUT4)")
    proc = _run("lower", ROOT / "examples" / "digits-mlp.pt", "-o", tmp_path / "small")
    assert proc.returncode == 0 and proc.stderr == ""
    script = (tmp_path / "small" / "synth" / "synth_ice40.ys").read_text()
    assert "synth_ice40 -top jpq_net" in script and "jpq-hw synth OUT --board NAME" in script


def test_max_depth_bounds_every_layer(tmp_path):
    ckpt = ROOT / "examples" / "digits-mlp.pt"
    assert main(["lower", str(ckpt), "-o", str(tmp_path / "free")]) == 0
    free = json.loads((tmp_path / "free" / "report.json").read_text())
    bound = max(layer["adder_levels"] for layer in free["layers"]) - 1  # one level less than the default build
    assert main(["lower", str(ckpt), "-o", str(tmp_path / "tight"), "--max-depth", str(bound)]) == 0
    tight = json.loads((tmp_path / "tight" / "report.json").read_text())
    assert tight["max_depth"] == bound and free["max_depth"] is None
    # adder levels per layer (the output stage adds one more)
    assert all(layer["adder_levels"] - 1 <= bound for layer in tight["layers"])
    proc = _run("lower", ckpt, "-o", tmp_path / "bad", "--max-depth", "0")
    assert proc.returncode == 2 and "--max-depth must be >= 1" in proc.stderr and not (tmp_path / "bad").exists()
