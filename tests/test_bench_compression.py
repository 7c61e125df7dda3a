"""Smoke test of bench/compression.py (< 10 s): re-quantizing a pruned model equals a full compress run."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def bench():
    from bench import compression

    return compression


def test_requantize_equals_full_run(bench):
    """Prune once at 6 bits, re-quantize at 4 bits: the same QNet as compress() at 4 bits directly.

    ``compensate`` mode, whose refit leaves kept weights exactly 0 on the always-zero pixels."""
    mode = "compensate"
    from jpq_hw.compress import compress, example_data, train_float

    torch.set_num_threads(1)
    train, test = example_data("digits-mlp")
    net = train_float("digits-mlp", train, epochs=2, seed=0)
    settings = bench.Settings(prune_epochs=2, qat_epochs=1)
    unit = bench.Unit("digits-mlp", 0, "magnitude", mode, 0.9)
    first = compress(net, train, test, bench._config("digits-mlp", unit, settings, 6))
    weights = sum(int(m.numel()) for m in first.masks)
    nnz = int(sum(int(m.sum()) for m in first.masks))
    again = compress(bench._mark_kept(first.model, first.masks), train, test,
                     bench.requant_config("digits-mlp", unit, settings, 4, 1.0 - nnz / weights))
    direct = compress(net, train, test, bench._config("digits-mlp", unit, settings, 4))
    assert all(torch.equal(a, b) for a, b in zip(again.masks, first.masks))
    assert again.accuracies["float"] == first.accuracies["pruned"]
    for la, lb in zip(again.qnet.layers, direct.qnet.layers):
        assert np.array_equal(la.weight, lb.weight) and np.array_equal(la.bias, lb.bias)
        assert la.shift == lb.shift and la.out == lb.out
    assert again.accuracies["quantized"] == direct.accuracies["quantized"]


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
