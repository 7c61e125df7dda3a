"""Smoke test of bench/compression.py (< 15 s): a unit (prune once, quantize per width) equals full compress runs."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def bench():
    from bench import compression

    return compression


def test_unit_equals_full_runs(bench, tmp_path):
    """run_unit prunes once (prune) and quantizes each width (quantize): every row is what compress()
    at that width gives directly, from the same float model (``compensate`` mode); and the dense
    reference (all-ones masks) is compress() at sparsity 0."""
    from jpq_hw.compress import compress

    deterministic = torch.are_deterministic_algorithms_enabled()
    threads = torch.get_num_threads()
    try:
        settings = bench.Settings(prune_epochs=2, qat_epochs=1, float_epochs=2)
        unit = bench.Unit("digits-mlp", 0, "magnitude", "compensate", 0.9)
        rows = bench.run_unit(unit, settings, str(tmp_path), bits_list=(6, 4))
        dense = bench.run_unit(bench.Unit("digits-mlp", 0, "dense", "dense", 0.0), settings, str(tmp_path),
                               bits_list=(4,))
        net = bench.get_float("digits-mlp", 0, settings, tmp_path)
        train, test = bench._data("digits-mlp")
        for row in rows:
            direct = compress(net, train, test, bench._config("digits-mlp", unit, settings, row["weight_bits"]))
            assert row["mask_nnz"] == int(sum(int(m.sum()) for m in direct.masks))
            assert row["layer_mask_nnz"] == {layer.name: int(m.sum()) for layer, m in zip(direct.qnet.layers,
                                                                                           direct.masks)}
            assert row["acc_float"] == direct.accuracies["float"]
            assert row["acc_pruned"] == direct.accuracies["pruned"]
            assert row["acc_ptq"] == direct.accuracies["ptq"]
            assert row["acc_quant"] == direct.accuracies["quantized"]
            assert row["layer_nnz"] == {layer.name: int(layer.nnz) for layer in direct.qnet.layers}
            assert row["sparse_bits"] == direct.metrics["memory"]["sparse_bits"]
            assert row["bops"] == direct.metrics["bops"]
            assert row["lut4"] is not None and row["adders"] is not None
        assert rows[0]["seconds"]["prune"] > 0 and rows[1]["seconds"]["prune"] == 0.0
        (d,) = dense
        assert d["mask_nnz"] == d["weights"] == 2368 and d["acc_pruned"] == d["acc_float"]
        direct = compress(net, train, test, bench._config("digits-mlp", unit, settings, 4, sparsity=0.0,
                                                          mode="frozen", prune_epochs=0))
        assert d["acc_quant"] == direct.accuracies["quantized"] and d["qnet_nnz"] == sum(
            int(layer.nnz) for layer in direct.qnet.layers)
    finally:
        torch.use_deterministic_algorithms(deterministic)
        torch.set_num_threads(threads)


def test_pareto(bench):
    pts = [(10, 0.5), (5, 0.6), (20, 0.9), (20, 0.8), (30, 0.85), (1, 0.1)]
    assert bench.pareto(pts) == [5, 1, 2]


def test_report_from_rows(bench, tmp_path):
    """The markdown, csv and plots build from synthetic rows (no training)."""
    rows = []
    rng = np.random.default_rng(0)
    for seed in range(2):
        for crit, mode in [("taylor", "recover"), ("magnitude", "recover"), ("dense", "dense")]:
            for sp in ([0.0] if crit == "dense" else [0.85, 0.99]):
                unit = bench.Unit("digits-wide", seed, crit, mode, sp)
                for bits in bench.BITS:
                    rows.append({"key": f"{unit.key(bench.Settings())}|b{bits}", "unit": unit.key(bench.Settings()),
                                 "model": "digits-wide", "seed": seed, "criterion": crit, "mode": mode,
                                 "sparsity": sp, "settings": bench.Settings().tag(), "weight_bits": bits,
                                 "acc_float": 0.97, "acc_pruned": 0.96 - sp / 10 + rng.random() / 100,
                                 "acc_quant": 0.95 - sp / 10 - bits / 100 + rng.random() / 100,
                                 "mask_nnz": int(1000 * (1 - sp)) + 1, "qnet_nnz": int(900 * (1 - sp)) + 1,
                                 "lut4": 20000 * (1 - sp) * bits + 10, "adders": 1000 * (1 - sp) + 1,
                                 "sparse_bits": 100, "unit_seconds": 1.0})
    out = tmp_path / "compression"
    (tmp_path / "compression.jsonl").write_text("".join(__import__("json").dumps(r) + "\n" for r in rows))
    bench.build_outputs(out, bench.Settings(), "python bench/compression.py --test", None, log=lambda m: None,
                        target=bench.Settings())
    md = (tmp_path / "compression.md").read_text()
    assert "python bench/compression.py --test" in md
    assert "— digits-wide at 99% sparsity, 6-bit weights" in md and "digits-mlp" in md  # not run: said so
    assert "## Where Taylor wins and where it does not" in md
    assert (tmp_path / "compression_sparsity.png").is_file() and (tmp_path / "compression_frontier.png").is_file()
