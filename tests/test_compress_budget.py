"""The two public stages (prune, quantize), compensate's masks, and compression under a cell budget."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from jpq_hw import cli
from jpq_hw.compress import config_for_example, example_data, train_float
from jpq_hw.compress.cells import CellBudget, budget_cells, cell_target, weight_terms
from jpq_hw.compress.pipeline import compress, prune, quantize
from jpq_hw.compress.quant import QuantSpec
from jpq_hw.compress.schedules import Schedule
from jpq_hw.errors import JpqError
from jpq_hw.ir import load_checkpoint
from jpq_hw.reference import run_reference

TINY = dict(prune_epochs=2, qat_epochs=1, prune_steps=4, calib_size=64, batch_size=128)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def digits():
    train, test = example_data("digits-mlp")
    model = train_float("digits-mlp", train, epochs=8)
    return model, train, test


def _acc(qnet, test):
    return float(np.mean(run_reference(qnet, test[0].numpy()).argmax(1) == test[1].numpy()))


# ---------------------------------------------------------------------------------------------- the two stages
def test_prune_then_quantize_is_compress(digits):
    model, train, test = digits
    cfg = config_for_example("digits-mlp", sparsity=0.9, mode="frozen", **TINY)
    p = prune(model, train, test, cfg)
    assert p.names == ["fc1", "fc2"] and sum(int(m.sum()) for m in p.masks) == round(0.1 * 2368)
    q = quantize(p.model, p.masks, train, test, cfg)
    whole = compress(model, train, test, cfg)
    assert [layer.name for layer in q.qnet.layers] == ["fc1", "fc2"]
    for a, b in zip(q.qnet.layers, whole.qnet.layers):
        assert np.array_equal(a.weight, b.weight) and np.array_equal(a.bias, b.bias) and a.shift == b.shift
    assert q.accuracies["quantized"] == whole.accuracies["quantized"] == _acc(q.qnet, test)


def test_quantize_holds_the_users_masks(digits):
    """A user's own step between the stages: masks of their making, given by layer name."""
    model, train, test = digits
    cfg = config_for_example("digits-mlp", **TINY)
    gen = torch.Generator().manual_seed(3)
    masks = {"fc1": (torch.rand(32, 64, generator=gen) < 0.1).float(),
             "fc2": (torch.rand(10, 32, generator=gen) < 0.3).float()}
    q = quantize(model, masks, train, test, cfg)
    for layer in q.qnet.layers:
        outside = masks[layer.name].numpy() == 0
        assert not np.any(layer.weight[outside])  # nothing outside the mask
    with pytest.raises(JpqError, match="unknown layers"):
        quantize(model, {**masks, "fc9": masks["fc1"]}, train, test, cfg)
    with pytest.raises(JpqError, match="no mask for layers"):
        quantize(model, {"fc1": masks["fc1"]}, train, test, cfg)
    with pytest.raises(JpqError, match="shape"):
        quantize(model, [masks["fc1"], masks["fc1"]], train, test, cfg)
    with pytest.raises(JpqError, match="only 0 and 1"):
        quantize(model, [masks["fc1"] * 0.5, masks["fc2"]], train, test, cfg)


def test_compensate_keeps_no_zero_weight(digits):
    """compensate's refit gives exactly 0 to weights on always-zero inputs (corner pixels): such
    weights are never kept, so the mask and the nonzero weights agree."""
    model, train, test = digits
    dead_pixels = int((train[0] == 0).all(0).sum())
    assert dead_pixels > 0  # the digits have always-zero pixels: the case exists
    for criterion in ("magnitude", "taylor"):
        cfg = config_for_example("digits-mlp", sparsity=0.8, mode="compensate", criterion=criterion, **TINY)
        p = prune(model, train, test, cfg)
        for b, m in zip(p.model.blocks, p.masks):
            assert torch.equal(b.module.weight != 0, m.bool()), criterion
        assert sum(int(m.sum()) for m in p.masks) == round(0.2 * 2368)


# ---------------------------------------------------------------------------------------------- pricing
def test_weight_terms_share_fundamentals():
    # one input column with weights 3, 6, -3 (fundamental 3, 2 CSD digits) and 5 (fundamental 5, 2 digits)
    q = torch.tensor([[3.0], [6.0], [-3.0], [5.0], [1.0]])
    digits = torch.tensor([[2.0], [2.0], [2.0], [2.0], [1.0]])
    kept = torch.tensor([[True], [True], [True], [True], [False]])
    t = weight_terms(q, kept, digits)
    # group {3, 6, -3}: 2 + 3 - 1 = 4 terms shared by 3; {5}: 2; the unkept 1 would start its own group: 1 digit
    assert torch.allclose(t.flatten(), torch.tensor([4 / 3, 4 / 3, 4 / 3, 2.0, 1.0], dtype=torch.float64))
    kept[0, 0] = False  # 3 left out: adding it back joins the group of 6 and -3, one term
    assert weight_terms(q, kept, digits)[0, 0] == 1.0


def test_cell_targets_follow_the_schedule():
    g, it, one = Schedule("gradual", 10), Schedule("iterative", 10), Schedule("oneshot", 10)
    assert cell_target(g, 10, 1000.0, 100.0) == pytest.approx(100.0)
    assert cell_target(it, 10, 1000.0, 100.0) == pytest.approx(100.0)
    assert cell_target(one, 1, 1000.0, 100.0) == 100.0
    assert cell_target(g, 1, 1000.0, 100.0) == pytest.approx(1000 - 900 * (1 - 0.9 ** 3))
    assert cell_target(it, 5, 1000.0, 100.0) == pytest.approx(1000 * 0.1 ** 0.5)
    assert cell_target(g, 3, 50.0, 100.0) == 100.0  # already within: nothing to prune for cells


def test_budget_cells_are_what_lower_estimates():
    from jpq_hw.flow import lower
    from jpq_hw.target import get_target

    qnet = load_checkpoint(Path(__file__).resolve().parent.parent / "examples" / "digits-mlp.pt")
    for target in ("ice40", "ecp5"):
        cost = lower(qnet, target=target).cost
        total, layers = budget_cells(qnet, target)
        assert layers == [get_target(target).logic_cells(c.lut4, c.carry) for c in cost.layers]
        assert total == sum(layers) > 0
    assert budget_cells(qnet, "ice40")[0] == lower(qnet).cost.total("lut4")  # iCE40: SB_LUT4 exactly


def test_prices_predict_the_measured_cells(digits):
    """After a measurement, the sum of the kept weights' prices is the measured estimate."""
    model, train, _ = digits
    blocks = [model.fc1, model.fc2]
    from jpq_hw.compress.chain import read_chain

    chain = read_chain(model, (64,))
    spec = QuantSpec(6, 8, None, 5, False, -4)
    budget = CellBudget(chain.blocks, spec, 3000, train[0][:256], (64,))
    weights = [b.weight.detach() for b in blocks]
    masks = budget.select([w.abs() for w in weights], weights, [torch.ones_like(w) for w in weights], 3000.0)
    measured = budget.measure(masks)
    assert measured.cells > 0 and measured.nnz == sum(int(m.sum()) for m in masks)
    assert budget.predict(weights, masks) == pytest.approx(measured.cells, rel=0.02)


# ---------------------------------------------------------------------------------------------- the budget
@pytest.mark.parametrize("mode,priced,passes", [("frozen", True, 2), ("recover", False, 1), ("compensate", True, 1)])
def test_budget_is_met(digits, mode, priced, passes):
    model, train, test = digits
    cfg = config_for_example("digits-mlp", lut_budget=2500, mode=mode, priced=priced, budget_passes=passes, **TINY)
    r = compress(model, train, test, cfg)
    cells, _ = budget_cells(r.qnet)
    info = r.metrics["budget"]
    assert cells <= 2500 and cells == info["cells"] == r.metrics["lut4"]
    assert r.qnet.meta["budget"]["cells"] == cells and r.qnet.meta["budget"]["budget"] == 2500
    assert cells > 0.7 * 2500  # the budget is used, not wasted
    assert r.accuracies["quantized"] == _acc(r.qnet, test)
    # a second pass runs exactly when the first used less than 95 % of the budget (and is allowed), aimed
    # from the first one's drift; the pass that uses more of the budget is kept
    runs = info["passes"]
    assert 1 <= len(runs) <= passes and runs[0]["aim"] == pytest.approx(0.97)
    if len(runs) == 2:
        assert runs[0]["cells"] < 0.95 * 2500
        assert runs[1]["aim"] == pytest.approx(min(0.97 * runs[0]["pruned_cells"] / runs[0]["qat_cells"], 1.5))
    assert cells == max(run["cells"] for run in runs) and info["pass"] in [run["pass"] for run in runs]


def test_budget_errors(digits):
    model, train, test = digits
    with pytest.raises(JpqError, match="below the smallest network of this shape") as e:
        compress(model, train, test, config_for_example("digits-mlp", lut_budget=100, **TINY))
    assert "\n" not in str(e.value)
    for bad in (0, -5, 2.5, True):
        with pytest.raises(JpqError, match="positive integer"):
            compress(model, train, test, config_for_example("digits-mlp", lut_budget=bad, **TINY))
    with pytest.raises(JpqError, match="does not combine"):
        compress(model, train, test, config_for_example("digits-mlp", lut_budget=3000, scope="layer", **TINY))


def test_cli_budget(tmp_path, capsys):
    out = tmp_path / "b.pt"
    argv = ["compress", "--example", "digits-mlp", "--lut-budget", "3000", "-o", str(out), "--float-epochs", "4",
            "--prune-epochs", "2", "--prune-steps", "4", "--qat-epochs", "1", "--no-progress",
            "--metrics-json", str(tmp_path / "m.json")]
    assert cli.main(argv) == 0
    text = capsys.readouterr().out
    assert "SB_LUT4 estimated, budget 3000" in text
    qnet = load_checkpoint(out)
    assert qnet.meta["budget"]["cells"] <= 3000 == qnet.meta["config"]["lut_budget"]
    assert json.loads((tmp_path / "m.json").read_text())["metrics"]["budget"]["cells"] == qnet.meta["budget"]["cells"]
    bad = tmp_path / "bad.pt"
    assert cli.main([*argv[:3], "--lut-budget", "100", "-o", str(bad), *argv[7:-2]]) != 0
    err = capsys.readouterr().err
    assert "below the smallest network" in err and len(err.strip().splitlines()) == 1 and not bad.exists()


# ---------------------------------------------------------------------------------------------- widths
def test_per_layer_widths(digits):
    model, train, test = digits
    cfg = config_for_example("digits-mlp", sparsity=0.8, layer_weight_bits={"fc1": 3}, layer_act_bits={"fc1": 4},
                             weight_bits=6, **TINY)
    r = compress(model, train, test, cfg)  # verify=True: the export is checked bit for bit
    fc1, fc2 = r.qnet.layers
    assert np.abs(fc1.weight).max() <= 3 and np.abs(fc2.weight).max() > 3  # 3-bit levels are -3..3
    assert fc1.out.bits == 4 and not fc1.out.signed
    assert r.qnet.meta["weight_bits"] == [3, 6] and r.qnet.meta["act_bits"] == 4
    assert [m["weight_bits"] for m in r.metrics["layers"]] == [3, 6]
    for bad, match in ((dict(layer_weight_bits={"fc7": 4}), "unknown layers"),
                       (dict(layer_act_bits={"fc2": 4}), "last layer"),
                       (dict(layer_weight_bits={"fc1": 1}), "weight bits of layer 'fc1'"),
                       (dict(widths="search"), "give --lut-budget")):
        with pytest.raises(JpqError, match=match):
            compress(model, train, test, config_for_example("digits-mlp", **{**TINY, **bad}))


def test_width_search_descends_to_the_best_neighbour():
    from jpq_hw.compress.widths import MAX_BITS, MIN_BITS, Widths, search_widths

    # validation accuracy peaks at weights (3, 5), activation 4; one bit off costs a point per bit
    def evaluate(w):
        return 1.0 - 0.01 * (abs(w.weight[0] - 3) + abs(w.weight[1] - 5) + abs(w.act[0] - 4)), {}

    best, trials = search_widths(Widths((6, 6), (8,)), evaluate, ["fc1", "fc2"])
    # the grid's best is (3, 3; 4) (0.98, scored before the equal (4, 4; 4)); the descent then moves fc2's
    # weights up twice (MAX_ROUNDS = 2) to the peak
    assert best == Widths((3, 5), (4,))
    grid = [(tuple(t["weight_bits"]), tuple(t["act_bits"])) for t in trials[1:9]]
    assert grid == [((w, w), (a,)) for w in (3, 4, 6) for a in (4, 6, 8) if (w, a) != (6, 8)]  # the start: once
    assert trials[0]["weight_bits"] == [6, 6] and len({(tuple(t["weight_bits"]), tuple(t["act_bits"]))
                                                        for t in trials}) == len(trials)  # each candidate once
    assert all(MIN_BITS <= b <= MAX_BITS for t in trials for b in t["weight_bits"] + t["act_bits"])
    flat, _ = search_widths(Widths((4, 4), (6,)), lambda w: (0.5, {}), ["fc1", "fc2"])
    assert flat == Widths((4, 4), (6,))  # no candidate beats the start: it stays (ties go to the current)


def test_width_search_under_a_budget(digits, monkeypatch):
    from jpq_hw.compress.widths import Widths

    from jpq_hw.compress import widths

    # a one-point grid and one neighbour per candidate keep the test short: the start, the grid's
    # point, then one or two descent moves
    monkeypatch.setattr(widths, "GRID_WEIGHT_BITS", (4,))
    monkeypatch.setattr(widths, "GRID_ACT_BITS", (5,))
    monkeypatch.setattr(widths, "MAX_ROUNDS", 1)
    monkeypatch.setattr(Widths, "neighbours", lambda self, top: [Widths(self.weight, (self.act[0] - 1,))])
    model, train, test = digits
    cfg = config_for_example("digits-mlp", lut_budget=2000, widths="search", weight_bits=4, act_bits=6,
                             budget_passes=1, **TINY)
    r = compress(model, train, test, cfg)
    search = r.metrics["width_search"]
    assert 2 <= len(search["trials"]) <= 3 and search["trials"][0]["act_bits"] == [6]  # a neighbour may be the grid point
    assert search["trials"][1]["act_bits"] == [5] and search["trials"][1]["weight_bits"] == [4, 4]
    chosen = search["act_bits"]["fc1"]
    best = max(search["trials"], key=lambda t: t["val_accuracy"])  # first of the best: ties go to the earlier
    assert chosen == best["act_bits"][0] and r.qnet.layers[0].out.bits == chosen
    assert r.metrics["budget"]["cells"] <= 2000 and r.qnet.meta["width_search"]["act_bits"] == {"fc1": chosen}


def test_validation_split_is_stratified_and_disjoint():
    from jpq_hw.compress.widths import validation_split

    train, _ = example_data("digits-mlp")
    (xf, yf), (xv, yv) = validation_split(train, seed=0)
    assert len(yf) + len(yv) == len(train[1]) and abs(len(yv) - len(train[1]) / 5) < 11
    assert set(yv.tolist()) == set(range(10))


def test_budget_refuses_image_networks():
    train, test = example_data("digits-cnn")
    model = train_float("digits-cnn", train, epochs=1)
    with pytest.raises(JpqError, match="prices flat networks"):
        compress(model, train, test, config_for_example("digits-cnn", lut_budget=4000, **TINY))


@pytest.mark.parametrize("argv,match", [
    (["--layer-bits", "fc1"], "expected NAME=BITS"),
    (["--layer-bits", "fc1=x"], "expected NAME=BITS"),
    (["--widths", "search"], "give --lut-budget"),
    (["--lut-budget", "0"], "positive integer"),
    (["--lut-budget", "3000", "--scope", "layer"], "does not combine"),
])
def test_cli_bad_budget_flags(tmp_path, capsys, argv, match):
    out = tmp_path / "x.pt"
    try:
        rc = cli.main(["compress", "--example", "digits-mlp", "-o", str(out), "--no-progress", *argv])
    except SystemExit as e:  # argparse's usage errors
        rc = e.code
    assert rc == 2
    err = capsys.readouterr().err
    assert match in err and not out.exists()
