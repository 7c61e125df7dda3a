"""The budget benchmark's report: targets judged on yosys counts of every seed, paired comparisons."""

from bench import compression_budget as bench


def _row(budget, method, seed, acc, cells, yosys=None):
    r = {"budget": budget, "method": method, "seed": seed, "accuracy": acc, "cells": cells, "nnz": 300,
         "weight_bits": 4, "act_bits": 6, "compress_s": 1.0}
    if yosys is not None:
        r["yosys_lut4"] = yosys
    return r


def test_report_judges_targets_on_yosys_counts(tmp_path):
    rows = [_row(5120, "taylor / priced", s, a, 5000, 5100) for s, a in enumerate((0.97, 0.975, 0.98))]
    rows += [_row(5120, "taylor / unpriced", s, a, 5100, 5300 if s == 2 else 5200)  # one seed over: cannot count
             for s, a in enumerate((0.99, 0.99, 0.99))]
    rows += [_row(2560, "magnitude / unpriced", s, 0.96, 2550, 2650) for s in range(3)]  # over the budget
    path = tmp_path / "r.md"
    bench.write_report(rows, path, "python -m bench.compression_budget", 60.0, 2)
    text = path.read_text()
    assert ("**PASS** — at most 5280 SB_LUT4 after `synth_ice40`, at least 97.0 %: taylor / priced at "
            "`--lut-budget 5120`, 97.50") in text
    assert "**FAIL** — at most 2640 SB_LUT4 after `synth_ice40`, at least 95.5 %: no method has every seed" in text
    assert "taylor / priced minus taylor / unpriced: -1.50 ± 0.50 points over 3 seeds" in text
    bench.plot(rows, tmp_path / "r.png")
    assert (tmp_path / "r.png").stat().st_size > 0
