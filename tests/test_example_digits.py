"""The shipped ``examples/digits-mlp.pt`` loads, has the documented shape and formats, and its
stored integer accuracy is exactly what :func:`jpq_hw.reference.run_reference` gives on the fixed
test split (no training here)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from jpq_hw.ir import load_checkpoint
from jpq_hw.reference import run_reference

CHECKPOINT = Path(__file__).resolve().parents[1] / "examples" / "digits-mlp.pt"


@pytest.fixture(scope="module")
def qnet():
    return load_checkpoint(CHECKPOINT)


def test_loads_weights_only():
    data = torch.load(CHECKPOINT, map_location="cpu", weights_only=True)
    assert data["format"] == "jpq-hw-qnet" and data["version"] == 1


def test_shape_and_formats(qnet):
    assert qnet.input_shape == (64,)
    assert (qnet.input.bits, qnet.input.signed) == (5, False)
    assert [layer.name for layer in qnet.layers] == ["fc1", "fc2"]
    assert [layer.weight.shape for layer in qnet.layers] == [(32, 64), (10, 32)]
    fc1, fc2 = qnet.layers
    assert fc1.relu and (fc1.out.bits, fc1.out.signed) == (8, False)
    assert not fc2.relu and fc2.out.signed
    for layer in qnet.layers:
        assert layer.weight.min() >= -32 and layer.weight.max() <= 31  # signed 6-bit
        assert abs(layer.sparsity - 0.85) < 0.03
        assert qnet.meta["nnz"][layer.name] == layer.nnz


def test_int_accuracy_matches_meta(qnet):
    pytest.importorskip("sklearn")
    from jpq_hw.datasets import load_digits_split

    _, _, x_test, y_test = load_digits_split()
    assert x_test.shape == (450, 64) and x_test.min() >= 0 and x_test.max() <= 16
    logits = run_reference(qnet, x_test)
    # the logits never saturate on the test split
    assert logits.min() > qnet.output.lo and logits.max() < qnet.output.hi
    accuracy = int(np.sum(logits.argmax(axis=1) == y_test)) / len(y_test)
    assert accuracy == qnet.meta["int_accuracy"]
    assert accuracy >= 0.90
    assert qnet.meta["float_accuracy"] - accuracy <= 0.025
