"""The integer reference against an independent computation (torch in float64, exact for these sizes)."""

import numpy as np
import pytest
import torch

from jpq_hw.errors import JpqError
from jpq_hw.ir import IntFormat, QLayer, QNet
from jpq_hw.reference import requantize, run_reference


def test_round_half_up_relu_and_saturation():
    out = IntFormat(4, True)  # [-8, 7]
    acc = np.array([-20, -3, -2, -1, 0, 1, 2, 3, 6, 100])
    # shift 2: (acc + 2) >> 2 = floor((acc + 2) / 4)
    assert requantize(acc, 2, False, out).tolist() == [-5, -1, 0, 0, 0, 0, 1, 1, 2, 7]
    assert requantize(acc, 2, True, out).tolist() == [0, 0, 0, 0, 0, 0, 1, 1, 2, 7]
    assert requantize(acc, 0, False, out).tolist() == [-8, -3, -2, -1, 0, 1, 2, 3, 6, 7]
    assert requantize(acc, 0, False, IntFormat(3, False)).tolist() == [0, 0, 0, 0, 0, 1, 2, 3, 6, 7]


@pytest.mark.parametrize("stride,padding", [(1, 0), (1, 1), (2, 1), (2, 0)])
def test_conv2d_matches_torch(stride, padding):
    rng = np.random.default_rng(stride * 10 + padding)
    w = rng.integers(-8, 8, size=(4, 3, 3, 3))
    b = rng.integers(-50, 50, size=4)
    conv = QLayer("c", "conv2d", w, b, 3, True, IntFormat(8, False), stride=stride, padding=padding)
    fc_in = 4 * ((7 + 2 * padding - 3) // stride + 1) ** 2
    fc = QLayer("f", "linear", rng.integers(-8, 8, size=(5, fc_in)), np.zeros(5, np.int64), 2, False, IntFormat(12, True))
    net = QNet((3, 7, 7), IntFormat(6, False), (conv, fc))
    x = rng.integers(0, 64, size=(9, 3, 7, 7))
    acc = torch.nn.functional.conv2d(torch.tensor(x, dtype=torch.float64), torch.tensor(w, dtype=torch.float64),
                                     torch.tensor(b, dtype=torch.float64), stride=stride, padding=padding)
    h = requantize(acc.numpy().astype(np.int64), 3, True, IntFormat(8, False))
    acc2 = torch.flatten(torch.tensor(h, dtype=torch.float64), 1) @ torch.tensor(fc.weight.T, dtype=torch.float64)
    expected = requantize(acc2.numpy().astype(np.int64), 2, False, IntFormat(12, True))
    assert np.array_equal(run_reference(net, x), expected)


def test_inputs_outside_the_format_are_refused():
    net = QNet((2,), IntFormat(4, False), (QLayer("f", "linear", np.eye(2, dtype=np.int64), np.zeros(2, np.int64), 0,
                                                  False, IntFormat(8, True)),))
    with pytest.raises(JpqError, match=r"inputs must lie in \[0, 15\]"):
        run_reference(net, np.array([[16, 0]]))
