"""Checkpoint loading: round trip, and one clear error for every defect the contract names."""

import copy

import numpy as np
import pytest
import torch

from jpq_hw.errors import JpqError
from jpq_hw.ir import load_checkpoint, qnet_from_dict, qnet_to_dict, random_qnet, save_checkpoint


@pytest.fixture
def good():
    return qnet_to_dict(random_qnet([8, 5, 3], seed=1))


def test_round_trip(tmp_path):
    net = random_qnet([8, 5, 3], seed=1)
    path = tmp_path / "net.pt"
    save_checkpoint(net, path)
    back = load_checkpoint(path)
    assert torch.load(path, weights_only=True)["format"] == "jpq-hw-qnet"
    for a, b in zip(net.layers, back.layers):
        assert np.array_equal(a.weight, b.weight) and np.array_equal(a.bias, b.bias)
        assert (a.shift, a.relu, a.out) == (b.shift, b.relu, b.out)
    assert not (tmp_path / "net.pt.partial").exists()


def broken(d, path, value):
    d = copy.deepcopy(d)
    target = d
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return d


CASES = [
    (("format",), "onnx", "format is 'onnx'"),
    (("version",), 2, "version 2 is not supported"),
    (("layers",), [], "no layers"),
    (("layers", 0, "weight"), torch.ones(5, 8), "must be an integer tensor"),
    (("layers", 0, "weight"), torch.ones(5, 7, dtype=torch.int32), "weight has 7 inputs"),
    (("layers", 1, "weight"), torch.ones(3, 4, dtype=torch.int32), "weight has 4 inputs"),
    (("layers", 0, "shift"), -1, "shift must be an integer >= 0"),
    (("layers", 0, "out_bits"), 33, "bits must be an integer in 1..32"),
    (("layers", 0, "out_bits"), 0, "bits must be an integer in 1..32"),
    (("layers", 0, "kind"), "lstm", "unknown layer kind 'lstm'"),
    (("layers", 0, "relu"), "yes", "relu must be true or false"),
    (("layers", 0, "bias"), torch.ones(4, dtype=torch.int32), "bias has 4 values for 5 outputs"),
    (("input", "shape"), [8, 0], "input shape"),
    (("input", "bits"), 40, "input bits"),
    (("input",), KeyError, "'input' must be a dict"),
    (("layers", 0, "weight"), torch.full((5, 8), 1 << 61, dtype=torch.int64), "accumulator"),
]


@pytest.mark.parametrize("path,value,message", CASES, ids=[c[2] for c in CASES])
def test_defects_are_named(good, path, value, message):
    with pytest.raises(JpqError, match=message.replace("(", r"\(").replace(")", r"\)")) as e:
        qnet_from_dict(broken(good, path, value))
    assert "\n" not in str(e.value)


def test_not_a_dict():
    with pytest.raises(JpqError, match="not a jpq-hw checkpoint"):
        qnet_from_dict([1, 2, 3])


def test_missing_truncated_and_foreign_files(tmp_path, good):
    with pytest.raises(JpqError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")
    path = tmp_path / "good.pt"
    torch.save(good, path)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[:300])
    with pytest.raises(JpqError, match="not a readable checkpoint"):
        load_checkpoint(truncated)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(JpqError, match="not a readable checkpoint"):
        load_checkpoint(text)


class Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_a_checkpoint_never_runs_code(tmp_path, good, capsys):
    path = tmp_path / "evil.pt"
    torch.save({**good, "meta": {"x": Evil()}}, path)
    with pytest.raises(JpqError, match="weights-only load refuses|not a readable checkpoint"):
        load_checkpoint(path)
    assert "must never run" not in capsys.readouterr().out
