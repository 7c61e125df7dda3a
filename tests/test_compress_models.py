"""The models people bring, read through torch.fx (jpq_hw.compress.chain): BatchNorm folded, functional
ReLU and flattening, a final Softmax dropped, and everything else refused with the line that uses it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from jpq_hw.compress import CompressConfig, compress, read_chain
from jpq_hw.errors import JpqError


def with_stats(model: nn.Module, shape, seed: int = 0) -> nn.Module:
    """Give every BatchNorm non-trivial running statistics and affine parameters."""
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=gen))
            m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
            with torch.no_grad():
                m.weight.copy_(torch.randn(n, generator=gen))
                m.bias.copy_(torch.randn(n, generator=gen))
    return model.eval()


def same_outputs(model, chain, shape) -> bool:
    x = torch.rand((16, *shape), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        want = model.eval()(x)
        got = chain.module()(x)
        if chain.tail is not None:
            got = chain.tail(got)
    return torch.allclose(want, got, rtol=1e-5, atol=1e-5)


class Functional(nn.Module):
    """A forward written the way people write it: functional ReLU, view, torch.flatten, log_softmax."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.fc1 = nn.Linear(4 * 6 * 6, 8)
        self.fc2 = nn.Linear(8, 3)

    def forward(self, x):
        x = F.relu(self.bn(self.conv(x)))
        x = x.view(x.size(0), -1)
        x = torch.relu(self.fc1(torch.flatten(x, 1)))
        return F.log_softmax(self.fc2(x), dim=1)


def test_batchnorm_is_folded_and_functional_forms_are_read():
    model = with_stats(Functional(), (1, 6, 6))
    chain = read_chain(model, (1, 6, 6))
    assert [(b.name, b.kind, b.relu) for b in chain.blocks] == [("conv", "conv2d", True), ("fc1", "linear", True),
                                                               ("fc2", "linear", False)]
    assert chain.notes == ["BatchNorm2d 'bn' folded into 'conv'", "the final LogSoftmax dropped (the argmax is unchanged)"]
    assert chain.blocks[0].module is not model.conv  # a folded copy; the user's model is left alone
    assert same_outputs(model, chain, (1, 6, 6))


def test_linear_batchnorm_and_a_softmax_module():
    model = with_stats(nn.Sequential(nn.Linear(5, 7, bias=False), nn.BatchNorm1d(7), nn.ReLU(), nn.Linear(7, 3),
                                     nn.Softmax(dim=1)), (5,))
    chain = read_chain(model, (5,))
    # an unnamed Sequential: layers named by kind and position
    assert [b.name for b in chain.blocks] == ["linear1", "linear2"] and chain.blocks[0].module.bias is not None
    assert chain.notes == ["BatchNorm1d '1' folded into 'linear1'", "the final Softmax dropped (the argmax is unchanged)"]
    assert same_outputs(model, chain, (5,))


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 4)

    def forward(self, x):
        return self.a(x) + x


class Concat(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 4)

    def forward(self, x):
        return torch.cat([self.a(x), x], dim=1)


class TanhForward(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 4)

    def forward(self, x):
        return torch.tanh(self.a(x))


class RawParameter(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(3, 4))

    def forward(self, x):
        return F.linear(x, self.w)


class DataDependent(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 4)

    def forward(self, x):
        if x.sum() > 0:
            return self.a(x)
        return x


@pytest.mark.parametrize("model,match", [
    (Residual(), r"'add' of two tensors \(line \d+ of test_compress_models.py: return self.a\(x\) \+ x\).*residual"),
    (Concat(), r"'cat' of two tensors \(line \d+ of test_compress_models.py: return torch.cat"),
    (TanhForward(), r"'tanh' \(line \d+ of test_compress_models.py: return torch.tanh\(self.a\(x\)\)\).*ReLU"),
    (RawParameter(), r"'w' .*a parameter used directly"),
    (DataDependent(), "cannot be read by torch.fx tracing"),
    (nn.Sequential(nn.Linear(4, 4), nn.Sigmoid()), r"Sigmoid \(module '1'\).*left out"),
    (nn.Sequential(nn.Linear(4, 4), nn.Softmax(dim=0)), "only a final Softmax"),
])
def test_what_does_not_fit_is_refused_with_where_and_what_to_do(model, match):
    with pytest.raises(JpqError, match=match):
        read_chain(model, (4,))


def test_compress_trains_the_folded_chain(one_torch_thread):
    torch.manual_seed(0)
    model = with_stats(nn.Sequential(nn.Linear(6, 12), nn.BatchNorm1d(12), nn.ReLU(), nn.Linear(12, 3),
                                     nn.LogSoftmax(dim=1)), (6,))
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.integers(0, 16, size=(96, 6))).float()
    y = torch.from_numpy(rng.integers(0, 3, size=96))
    config = CompressConfig(sparsity=0.5, prune_epochs=2, qat_epochs=1, input_bits=4, input_exp=-2, calib_size=32,
                            batch_size=32)
    result = compress(model, (x, y), (x, y), config)
    assert result.notes == ["BatchNorm1d '1' folded into 'linear1'",
                            "the final LogSoftmax dropped (the argmax is unchanged)"]
    assert [layer.name for layer in result.qnet.layers] == ["linear1", "linear2"]
    assert result.qnet.meta["model_notes"] == result.notes
    assert isinstance(model[1], nn.BatchNorm1d)  # the user's model is not changed


def _tiny_run(device: str):
    from jpq_hw.compress import config_for_example, example_data, train_float

    train, test = example_data("digits-mlp")
    net = train_float("digits-mlp", train, epochs=1, seed=0, device=device)
    config = config_for_example("digits-mlp", prune_epochs=1, qat_epochs=1, adders=False, device=device)
    return compress(net, train, test, config)


def test_the_device_choice(one_torch_thread):
    from jpq_hw.compress.pipeline import resolve_device

    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(JpqError, match="unknown device 'gpu0'"):
        CompressConfig(device="gpu0").validate()
    if not torch.cuda.is_available():
        with pytest.raises(JpqError, match="no CUDA device"):
            CompressConfig(device="cuda").validate()
    # an explicit cpu is what the default does on this machine, to the bit
    a, b = _tiny_run("cpu"), _tiny_run("auto")
    if not torch.cuda.is_available():
        assert all(np.array_equal(x.weight, y.weight) for x, y in zip(a.qnet.layers, b.qnet.layers))
        assert a.qnet.meta["device"] == "cpu"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_compress_on_cuda(one_torch_thread):
    r = _tiny_run("cuda")  # the export is checked bit for bit against the fake-quantized model inside
    assert r.qnet.meta["device"].startswith("cuda") and r.accuracies["quantized"] > 0.2  # above chance (0.1)
