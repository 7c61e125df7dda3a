"""The dense-multiplier baseline (:mod:`jpq_hw.cost.dense`) against its measured table."""

import pytest

from jpq_hw.cost.dense import dense_layer_cost, load_table, multiplier_cost
from jpq_hw.errors import JpqError


def test_table_header_and_keys():
    t = load_table()
    assert t["header"]["yosys"].startswith("Yosys")
    assert "dense_multipliers.py" in t["header"]["command"]
    for key in ("u5xs6", "s5xs6", "u8xs8", "s16xs16"):
        assert key in t["multipliers"]


def test_measured_points_are_exact():
    t = load_table()["multipliers"]
    for key, (bx, xs, bw) in {"u5xs6": (5, False, 6), "s8xs4": (8, True, 4), "u16xs2": (16, False, 2)}.items():
        assert multiplier_cost(bx, xs, bw) == (t[key]["lut4"], t[key]["carry"])


def test_interpolated_lies_between_neighbours():
    lo, hi = multiplier_cost(8, False, 6), multiplier_cost(8, False, 8)
    mid = multiplier_cost(8, False, 7)
    assert min(lo[0], hi[0]) <= mid[0] <= max(lo[0], hi[0])
    assert min(lo[1], hi[1]) <= mid[1] <= max(lo[1], hi[1])


def test_extrapolated_grows_like_the_product():
    widths = load_table()["header"]["widths"]
    top = max(widths)
    big = multiplier_cost(top, True, top)
    bigger = multiplier_cost(2 * top, True, top)
    assert bigger[0] == pytest.approx(2 * big[0], rel=0.01)
    assert bigger[1] > big[1]


def test_dense_layer_arithmetic():
    m_lut, m_carry = multiplier_cost(4, False, 3)
    d = dense_layer_cost(3, 2, 4, False, 3, acc_bits=9)
    assert d == {"lut4": 6 * m_lut + 4 * 9, "carry": 6 * m_carry + 4 * 9, "multipliers": 6, "adders": 4}
    assert dense_layer_cost(1, 5, 4, False, 3, acc_bits=9)["adders"] == 0


def test_bad_widths():
    with pytest.raises(JpqError):
        multiplier_cost(0, False, 4)
    with pytest.raises(JpqError):
        dense_layer_cost(0, 1, 4, False, 4, 8)


def test_ecp5_table_and_target():
    t = load_table("ecp5")
    assert "synth_ecp5" in t["header"]["script"] and "-nodsp" in t["header"]["script"]
    assert t["header"]["cells"] == {"lut4": "LUT4", "carry": "CCU2C"}
    m = t["multipliers"]["u8xs8"]
    assert multiplier_cost(8, False, 8, target="ecp5") == (m["lut4"], m["carry"])
    # an n-bit add is ceil((n + 1) / 2) CCU2C and no LUT4 (measured): a dense adder bit is half a CCU2C
    for n, a in t["adders"].items():
        assert a == {"lut4": 0, "carry": -(-(int(n) + 1) // 2)}
    m_lut, m_carry = multiplier_cost(4, False, 3, target="ecp5")
    d = dense_layer_cost(3, 2, 4, False, 3, acc_bits=9, target="ecp5")
    assert d == {"lut4": 6 * m_lut, "carry": 6 * m_carry + 4 * 5, "multipliers": 6, "adders": 4}
    assert dense_layer_cost(3, 2, 4, False, 3, acc_bits=9) != d  # the default stays iCE40
    with pytest.raises(JpqError):
        multiplier_cost(4, False, 4, target="virtex")
