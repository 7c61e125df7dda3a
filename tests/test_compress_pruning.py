"""Pruning: criteria definitions, mask selection, schedules, fine-tuning modes, compensation, model reading."""

import math

import pytest
import torch
from torch import nn

from jpq_hw.compress import Pruner, Schedule, extract_chain, make_criterion, select_masks
from jpq_hw.compress.compensate import compensate
from jpq_hw.compress.chain import run_chain
from jpq_hw.errors import JpqError


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ---------------------------------------------------------------- criteria
def test_taylor_is_an_ema_of_abs_w_times_grad():
    c = make_criterion("taylor", beta=0.75)
    w = [torch.tensor([1.0, -2.0, 0.5])]
    g1, g2 = torch.tensor([0.5, 0.25, -4.0]), torch.tensor([-1.0, 1.0, 0.0])
    assert torch.equal(c.scores(w)[0], w[0].abs())  # no observation yet: magnitude
    c.observe(w, [g1])
    assert torch.equal(c.scores(w)[0], (w[0] * g1).abs())  # s_1 = x_1
    c.observe(w, [g2])
    expected = 0.75 * (w[0] * g1).abs() + 0.25 * (w[0] * g2).abs()
    assert torch.allclose(c.scores(w)[0], expected)


def test_blend_normalises_over_all_layers():
    c = make_criterion("blend", alpha=0.25, beta=0.5)
    w = [torch.tensor([1.0, -3.0]), torch.tensor([2.0])]
    g = [torch.tensor([2.0, 1.0]), torch.tensor([0.5])]
    c.observe(w, g)
    t = [torch.tensor([2.0, 3.0]), torch.tensor([1.0])]
    m = [torch.tensor([1.0, 3.0]), torch.tensor([2.0])]
    s = c.scores(w)
    for si, ti, mi in zip(s, t, m):
        assert torch.allclose(si, 0.25 * ti / 2.0 + 0.75 * mi / 2.0)


def test_random_scores_are_fixed_and_seeded():
    w = [torch.zeros(4, 5)]
    a, b = make_criterion("random", seed=3), make_criterion("random", seed=3)
    assert torch.equal(a.scores(w)[0], b.scores(w)[0])
    assert torch.equal(a.scores(w)[0], a.scores(w)[0])
    with pytest.raises(JpqError, match="unknown pruning criterion"):
        make_criterion("hessian")


# ---------------------------------------------------------------- mask selection
def test_global_and_layer_targets_keep_exact_counts():
    scores = [torch.arange(100.0).reshape(10, 10), torch.arange(50.0) * 10]
    g = select_masks(scores, 0.9, scope="global")
    assert sum(int(m.sum()) for m in g) == 15
    assert int(g[1].sum()) == 15  # the 15 highest scores all lie in layer 2 (values up to 490)
    lay = select_masks(scores, 0.9, scope="layer")
    assert [int(m.sum()) for m in lay] == [10, 5]
    per = select_masks(scores, [0.5, 0.0], scope="layer")
    assert [int(m.sum()) for m in per] == [50, 50]


def test_floor_keeps_every_layer_alive():
    scores = [torch.arange(100.0), torch.arange(100.0) + 1000]
    no_floor = select_masks(scores, 0.9, scope="global")
    assert int(no_floor[0].sum()) == 0
    floored = select_masks(scores, 0.9, scope="global", floor=0.03)
    assert int(floored[0].sum()) == 3 and sum(int(m.sum()) for m in floored) == 20
    assert floored[0][97:].sum() == 3  # the floor keeps the layer's best
    with pytest.raises(JpqError, match="floor"):
        select_masks(scores, 0.99, scope="global", floor=0.05)


def test_ties_are_broken_by_position_and_eligibility_is_respected():
    scores = [torch.ones(10)]
    m = select_masks(scores, 0.7, scope="layer")
    assert m[0].tolist() == [1, 1, 1, 0, 0, 0, 0, 0, 0, 0]
    elig = [torch.tensor([False] * 5 + [True] * 5)]
    m = select_masks(scores, 0.7, scope="layer", eligible=elig)
    assert m[0].tolist() == [0] * 5 + [1, 1, 1, 0, 0]
    for s in (-0.1, 1.0, 1.5):
        with pytest.raises(JpqError, match="sparsity"):
            select_masks(scores, s)


# ---------------------------------------------------------------- schedules
def test_gradual_is_zhu_gupta_cubic():
    s = Schedule("gradual", steps=4, begin=0.0, end=0.5)
    ev = s.events(100, 0.8)
    assert [t for t, _ in ev] == [0, 12, 25, 37]
    for j, (_, sp) in enumerate(ev, start=1):
        assert math.isclose(sp, 0.8 * (1 - (1 - j / 4) ** 3))
    assert ev[-1][1] == pytest.approx(0.8) and s.freeze_step(100) == 50


def test_iterative_is_geometric_and_oneshot_single():
    ev = Schedule("iterative", steps=3).events(30, 0.875)
    assert [round(sp, 6) for _, sp in ev] == [0.5, 0.75, 0.875]
    one = Schedule("oneshot", steps=5, begin=0.1, end=0.6)
    assert one.events(100, 0.9) == [(10, 0.9)]
    assert one.events(100, 0.9, refresh=True) == [(10, 0.9), (20, 0.9), (30, 0.9), (40, 0.9), (50, 0.9)]
    with pytest.raises(JpqError, match="schedule"):
        Schedule("cosine")
    with pytest.raises(JpqError, match="window"):
        Schedule("gradual", begin=0.7, end=0.2)


# ---------------------------------------------------------------- fine-tuning modes
def _toy(seed=0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    x = torch.randn(64, 6)
    y = torch.randint(0, 3, (64,))
    return model, x, y


def _steps(model, pruner, x, y, n, lr=0.05):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(n):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        pruner.observe()
        opt.step()
        pruner.after_step()


def test_frozen_mode_keeps_pruned_weights_zero():
    model, x, y = _toy()
    blocks = extract_chain(model, (6,))
    pruner = Pruner(blocks, make_criterion("taylor"), mode="frozen", sparsity=0.5)
    pruner.prepare()
    _steps(model, pruner, x, y, 2)
    masks = [m.clone() for m in pruner.step(0.5)]
    _steps(model, pruner, x, y, 10)
    for b, m, w in zip(blocks, masks, pruner.shadows):
        assert torch.all(b.module.weight[m == 0] == 0) and torch.all(w[m == 0] == 0)
    later = pruner.step(0.75)
    for old, new in zip(masks, later):
        assert torch.all(new <= old)  # masks only shrink
    final = pruner.squash()
    assert not hasattr(blocks[0].module, "parametrizations")
    assert abs(1 - sum(float(m.sum()) for m in final) / sum(m.numel() for m in final) - 0.75) < 0.01


def test_recover_mode_lets_a_pruned_weight_come_back():
    model, x, y = _toy(1)
    blocks = extract_chain(model, (6,))
    pruner = Pruner(blocks, make_criterion("magnitude"), mode="recover", sparsity=0.5)
    pruner.prepare()
    masks = pruner.step(0.5)
    # the dense shadow of pruned weights still receives gradients
    model.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()
    g = pruner.shadows[0].grad
    assert torch.count_nonzero(g[masks[0] == 0]) > 0
    # a pruned weight whose shadow grows comes back at the next step
    idx = torch.nonzero(masks[0].flatten() == 0)[0, 0]
    with torch.no_grad():
        pruner.shadows[0].view(-1)[idx] = 100.0
    again = pruner.step(0.5)
    assert again[0].flatten()[idx] == 1
    pruner.freeze()
    assert torch.all(pruner.shadows[0][again[0] == 0] == 0)
    model.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()
    assert torch.all(pruner.shadows[0].grad[again[0] == 0] == 0)


def test_pruner_validates():
    model, _, _ = _toy()
    blocks = extract_chain(model, (6,))
    with pytest.raises(JpqError, match="fine-tuning mode"):
        Pruner(blocks, make_criterion("magnitude"), mode="thaw")
    with pytest.raises(JpqError, match="unknown layers"):
        Pruner(blocks, make_criterion("magnitude"), sparsity={"nope": 0.5})
    with pytest.raises(JpqError, match="floor"):
        Pruner(blocks, make_criterion("magnitude"), sparsity=0.95, floor=0.2)


@pytest.mark.parametrize("conv", [False, True])
def test_compensation_reduces_output_error(conv):
    torch.manual_seed(2)
    if conv:
        model = nn.Sequential(nn.Conv2d(2, 6, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 4 * 4, 5))
        x = nn.functional.avg_pool2d(torch.rand(200, 2, 10, 10), 3, stride=1)  # smooth, correlated images
        shape = (2, 8, 8)
    else:
        model = nn.Sequential(nn.Linear(10, 12), nn.ReLU(), nn.Linear(12, 5))
        x = torch.randn(300, 4) @ torch.randn(4, 10) + 0.1 * torch.randn(300, 10)  # correlated inputs
        shape = (10,)
    blocks = extract_chain(model, shape)
    with torch.no_grad():
        dense_out = run_chain(blocks, x)
    dense_w = [b.module.weight.detach().clone() for b in blocks]
    dense_b = [b.module.bias.detach().clone() for b in blocks]
    pruner = Pruner(blocks, make_criterion("magnitude"), mode="compensate", scope="layer", sparsity=0.6)
    pruner.prepare()
    masks = pruner.step(0.6)
    with torch.no_grad():
        err_pruned = float(((run_chain(blocks, x) - dense_out) ** 2).mean())
    compensate(blocks, dense_w, dense_b, pruner.masks, x)
    with torch.no_grad():
        err_comp = float(((run_chain(blocks, x) - dense_out) ** 2).mean())
    assert err_comp < 0.5 * err_pruned
    for b, m in zip(blocks, masks):
        assert torch.all(b.module.weight[m == 0] == 0)


# ---------------------------------------------------------------- reading models
def test_chain_reads_relu_and_flatten():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Dropout(0.1), nn.Linear(2 * 16, 3))
    blocks = extract_chain(model, (1, 4, 4))
    assert [(b.kind, b.relu, b.stride, b.padding) for b in blocks] == [("conv2d", True, 1, 1), ("linear", False, 1, 0)]


@pytest.mark.parametrize("model,shape,match", [
    (nn.Sequential(nn.Linear(4, 4), nn.Sigmoid(), nn.Linear(4, 2)), (4,), r"layer type Sigmoid \(module '1'\) .*ReLU"),
    (nn.Sequential(nn.Conv2d(2, 2, 3, groups=2), nn.Flatten(), nn.Linear(2, 2)), (2, 3, 3), "grouped"),
    (nn.Sequential(nn.Conv2d(1, 1, 3, dilation=2)), (1, 5, 5), "dilation"),
    (nn.Sequential(nn.Conv2d(1, 1, 3, padding="same")), (1, 5, 5), "padding"),
    (nn.Sequential(nn.ReLU(), nn.Linear(4, 2)), (4,), "before the first"),
    (nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.BatchNorm1d(4)), (4,), "folded only into the Linear"),
    (nn.Sequential(nn.Linear(4, 4), nn.Softmax(dim=1), nn.Linear(4, 2)), (4,), "after a Softmax"),
    (nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(2)), (1, 6, 6), "MaxPool2d .*stride 2"),
    (nn.Sequential(nn.Flatten()), (4,), "no Linear or Conv2d"),
    (nn.Sequential(nn.BatchNorm1d(4), nn.Linear(4, 2)), (4,), "BatchNorm1d"),
])
def test_unsupported_models_are_refused(model, shape, match):
    with pytest.raises(JpqError, match=match):
        extract_chain(model, shape)


def test_a_forward_that_is_not_the_chain_is_refused():
    class Skip(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(4, 4)
            self.b = nn.Linear(4, 4)

        def forward(self, x):
            return self.b(self.a(x)) + x

    with pytest.raises(JpqError, match=r"'add' of two tensors \(line \d+ of test_compress_pruning.py: return "
                                       r"self.b\(self.a\(x\)\) \+ x\) .*residual"):
        extract_chain(Skip(), (4,))
