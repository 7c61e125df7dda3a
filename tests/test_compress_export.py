"""Export exactness: the checkpoint's integer semantics (run_reference) reproduce the fake-quantized
model bit for bit, for linear and conv2d (stride, padding) layers and every quantization mode."""

from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from jpq_hw.compress import QuantNet, QuantSpec, check_exact, extract_chain, to_qnet, weight_levels
from jpq_hw.compress.quant import nearest_level
from jpq_hw.arith.csd import csd_digits
from jpq_hw.errors import JpqError
from jpq_hw.ir import load_checkpoint, save_checkpoint
from jpq_hw.reference import run_reference

MODES = [  # (weight_bits, csd_digits)
    (2, None),   # ternary
    (4, None),
    (6, None),
    (8, None),
    (6, 1),      # powers of two only
    (8, 2),      # CSD-limited
]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _conv_net() -> nn.Module:
    return nn.Sequential(OrderedDict([
        ("c1", nn.Conv2d(2, 4, 3, stride=2, padding=1)), ("r1", nn.ReLU()),
        ("c2", nn.Conv2d(4, 5, 3, stride=1, padding=1)),           # no ReLU: signed hidden output
        ("c3", nn.Conv2d(5, 3, 2, stride=1, padding=0, bias=False)), ("r3", nn.ReLU()),
        ("flat", nn.Flatten()), ("f1", nn.Linear(3 * 3 * 3, 7)), ("r4", nn.ReLU()), ("f2", nn.Linear(7, 4))]))


def _mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 9), nn.Linear(9, 9, bias=False), nn.ReLU(),
                         nn.Linear(9, 3))


def _randomize(model: nn.Module, gen: torch.Generator) -> None:
    with torch.no_grad():
        for i, p in enumerate(model.parameters()):
            p.copy_(torch.randn(p.shape, generator=gen) * (0.05 + 0.4 * (i % 3)))


def _qnet_and_inputs(kind: str, bits: int, k: int | None, signed_input: bool, seed: int):
    gen = torch.Generator().manual_seed(seed)
    model = _conv_net() if kind == "conv" else _mlp()
    _randomize(model, gen)
    shape = (2, 8, 8) if kind == "conv" else (12,)
    blocks = extract_chain(model, shape)
    masks = [(torch.rand(b.module.weight.shape, generator=gen) > 0.4).float() for b in blocks]
    spec = QuantSpec(weight_bits=bits, act_bits=4 + seed % 5, csd_digits=k, input_bits=6,
                     input_signed=signed_input, input_exp=-3)
    net = QuantNet(blocks, masks, spec)
    fmt = spec.input_format
    rng = np.random.default_rng(seed)
    x = rng.integers(fmt.lo, fmt.hi, size=(96, *shape), endpoint=True)
    x[0] = fmt.lo
    x[1] = fmt.hi
    net.calibrate(torch.from_numpy(x[:48] // 2))  # calibrated on smaller inputs: full-range ones saturate
    # move the weights a little with one QAT step so the test does not only see calibrated values
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    y = torch.from_numpy(rng.integers(0, 3, size=96))
    nn.functional.cross_entropy(net(torch.from_numpy(x).float()), y).backward()
    opt.step()
    return net, to_qnet(net, shape), x, spec


@pytest.mark.parametrize("kind", ["linear", "conv"])
@pytest.mark.parametrize("bits,k", MODES)
def test_export_is_bit_exact(kind, bits, k):
    for seed, signed in ((1, False), (2, True)):
        net, qnet, x, spec = _qnet_and_inputs(kind, bits, k, signed, seed + bits)
        check_exact(net, qnet, x)  # every layer, run_reference vs fake-quant
        ref = run_reference(qnet, x)
        fq = net.forward_int(torch.from_numpy(x)).numpy()
        assert np.array_equal(ref, fq)
        levels = set(weight_levels(bits, k).long().tolist())
        for layer in qnet.layers:
            assert set(np.unique(layer.weight).tolist()) <= levels
            assert layer.shift >= 0
        # the float training forward (in float64) is the same computation, scaled by 2**e_out
        e_out = net.exponents()[f"{qnet.layers[-1].name}.out"]
        assert qnet.layers[-1].shift == 0
        assert torch.equal(net(torch.from_numpy(x).double()), torch.from_numpy(fq).double() * 2.0 ** e_out)


def test_pruned_weights_export_as_zero_and_roundtrip(tmp_path):
    net, qnet, x, _ = _qnet_and_inputs("conv", 6, None, False, 7)
    for layer, ql in zip(net.layers, qnet.layers):
        assert np.all(ql.weight[layer.mask.numpy() == 0] == 0)
    save_checkpoint(qnet, tmp_path / "c.pt")
    back = load_checkpoint(tmp_path / "c.pt")
    assert np.array_equal(run_reference(back, x), run_reference(qnet, x))
    assert back.meta["scale_exponents"] == net.exponents()


def test_ternary_and_csd_levels():
    assert weight_levels(2).tolist() == [-1.0, 0.0, 1.0]
    assert weight_levels(4).tolist() == list(range(-7, 8))
    l1 = weight_levels(6, 1).long().tolist()
    assert l1 == [-16, -8, -4, -2, -1, 0, 1, 2, 4, 8, 16]
    for q in weight_levels(8, 2).long().tolist():
        assert len(csd_digits(q)) <= 2 and abs(q) <= 127


def test_nearest_level_minimises_error_ties_up():
    levels = weight_levels(8, 2)
    v = torch.linspace(-140, 140, 5601, dtype=torch.float64)
    q = nearest_level(v, levels)
    err = (v[:, None] - levels[None, :]).abs()
    assert torch.all((q - v).abs() <= err.min(1).values + 1e-12)
    assert nearest_level(torch.tensor([2.5, -2.5, 0.5]), weight_levels(4)).tolist() == [3.0, -2.0, 1.0]


def test_last_layer_never_saturates():
    net, qnet, _, spec = _qnet_and_inputs("linear", 8, None, True, 3)
    last = qnet.layers[-1]
    x_in = qnet.layers[-2].out
    w = last.weight
    hi = last.bias + np.where(w > 0, w, 0).sum(1) * x_in.hi + np.where(w < 0, w, 0).sum(1) * x_in.lo
    lo = last.bias + np.where(w > 0, w, 0).sum(1) * x_in.lo + np.where(w < 0, w, 0).sum(1) * x_in.hi
    assert hi.max() <= last.out.hi and lo.min() >= last.out.lo


def test_bad_bit_widths_are_refused():
    for bits in (1, 17, 0):
        with pytest.raises(JpqError, match="weight bits"):
            QuantSpec(weight_bits=bits)
        with pytest.raises(JpqError, match="activation bits"):
            QuantSpec(act_bits=bits)
    with pytest.raises(JpqError, match="CSD"):
        QuantSpec(csd_digits=0)


def test_network_ending_in_relu_exports_unsigned_logits():
    gen = torch.Generator().manual_seed(5)
    model = nn.Sequential(nn.Linear(5, 6), nn.ReLU(), nn.Linear(6, 3), nn.ReLU())
    _randomize(model, gen)
    blocks = extract_chain(model, (5,))
    net = QuantNet(blocks, [torch.ones_like(b.module.weight) for b in blocks], QuantSpec(4, 5, None, 4, False, -2))
    x = np.random.default_rng(5).integers(0, 15, size=(64, 5), endpoint=True)
    net.calibrate(torch.from_numpy(x))
    qnet = to_qnet(net, (5,))
    assert qnet.layers[-1].relu and not qnet.layers[-1].out.signed
    check_exact(net, qnet, x)
