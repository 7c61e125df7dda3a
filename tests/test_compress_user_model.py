"""``jpq-hw compress --model FILE.py:FUNCTION``: the shipped example end to end, and every bad input
as one line on stderr, a non-zero exit and no output file."""

import json
import sys
from pathlib import Path

import pytest

from jpq_hw import cli
from jpq_hw.compress import UserModel, load_user_model
from jpq_hw.errors import JpqError
from jpq_hw.ir import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--prune-epochs", "1", "--qat-epochs", "1", "--prune-steps", "2", "--calib-size", "64", "--no-progress"]

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# a valid model file: 6 features of unsigned 4-bit inputs, two classes; untrained (the checks do not care)
HEADER = '''
import torch
from torch import nn

from jpq_hw.compress import UserModel


def data(n=48, hi=15):
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, hi + 1, (n, 6), generator=g)
    return x, (x[:, 0] > x[:, 1]).long()


def net(*middle):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), *(middle or (nn.ReLU(),)), nn.Linear(8, 2))
'''


def _write(folder: Path, body: str, name: str = "m.py") -> Path:
    path = folder / name
    path.write_text(HEADER + body)
    return path


def _fails(tmp_path, capsys, model: str, match: str, *extra: str) -> str:
    """Run compress --model; it must fail with one line naming ``match`` and leave no file behind."""
    before = sorted(p.name for p in tmp_path.iterdir())
    out = tmp_path / "out.pt"
    rc = cli.main(["compress", "--model", model, "-o", str(out), *extra, *TINY])
    err = capsys.readouterr().err
    assert rc != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("jpq-hw: error: "), err
    assert match in lines[0], lines[0]
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "__pycache__") == \
        [n for n in before if n != "__pycache__"]  # no temporary file left either
    return lines[0]


def test_the_shipped_example_end_to_end(tmp_path, capsys):
    spec = f"{ROOT / 'examples' / 'user_model.py'}:build"
    out = tmp_path / "my.pt"
    assert cli.main(["compress", "--model", spec, "-o", str(out), "--sparsity", "0.9",
                     "--metrics-json", str(tmp_path / "m.json"), *TINY]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"{spec}:") and "BatchNorm1d 'bn1' folded into 'fc1'" in printed
    qnet = load_checkpoint(out)
    assert qnet.meta["model"] == spec and "example" not in qnet.meta and "split" not in qnet.meta
    assert (qnet.input.bits, qnet.input.signed) == (4, False) and list(qnet.input_shape) == [64]
    assert qnet.meta["config"]["input_exp"] == -3 and qnet.meta["config"]["sparsity"] == 0.9
    assert abs(qnet.meta["metrics"]["sparsity"] - 0.9) < 0.02
    assert json.loads((tmp_path / "m.json").read_text())["model"] == spec
    assert cli.main(["lower", str(out), "-o", str(tmp_path / "hw")]) == 0


def test_a_dict_its_defaults_and_a_sibling_import(tmp_path, capsys):
    (tmp_path / "helper.py").write_text("HIDDEN_BITS = 6\n")
    _write(tmp_path, '''
from helper import HIDDEN_BITS


def build():
    return {"model": net(), "train": data(), "test": data(24), "input_bits": 4,
            "sparsity": 0.5, "act_bits": HIDDEN_BITS}
''')
    path_before = list(sys.path)
    out = tmp_path / "c.pt"
    assert cli.main(["compress", "--model", f"{tmp_path / 'm.py'}:build", "-o", str(out), *TINY]) == 0
    assert sys.path == path_before
    config = load_checkpoint(out).meta["config"]
    assert (config["sparsity"], config["act_bits"], config["input_bits"], config["input_exp"]) == (0.5, 6, 4, 0)
    capsys.readouterr()


def test_numpy_data_through_the_api(tmp_path):
    _write(tmp_path, '''
def build():
    x, y = data()
    return UserModel(net(), (x.numpy(), y.numpy()), (x.numpy(), y.numpy()), input_bits=5, input_signed=True)
''')
    user = load_user_model(f"{tmp_path / 'm.py'}:build")
    assert isinstance(user, UserModel) and user.train[0].dtype.is_floating_point is False
    assert user.input_signed and user.sparsity is None


@pytest.mark.parametrize("body,match", [
    ("def build():\n    return (net(), data(), data())\n", "returned tuple; it must return jpq_hw.compress.UserModel"),
    ("def build():\n    pass\n", "returned None"),
    ("def build():\n    return {'model': net(), 'train': data(), 'test': data()}\n", "without 'input_bits'"),
    ("def build():\n    return {'model': net(), 'train': data(), 'test': data(), 'input_bits': 4, 'bits': 2}\n",
     "unknown key(s) 'bits'"),
    ("def build():\n    return UserModel(net().state_dict(), data(), data(), 4)\n", "must be a torch.nn.Module"),
    ("def build():\n    return UserModel(net(), data()[0], data(), 4)\n", "train must be a pair (x, y)"),
    ("def build():\n    return UserModel(net(), data(), data(), input_bits=4.0)\n", "input_bits=4.0"),
    ("def build():\n    return UserModel(net(), data(), data(), input_bits=4, input_signed=1)\n", "True or False"),
    ("def build():\n    return UserModel(net(), data(), data(), input_bits=4, sparsity=1.0)\n", "sparsity=1.0"),
    ("def build():\n    return UserModel(net(), data(hi=16), data(), input_bits=4)\n",
     "training inputs lie in [0, 16], outside the 4-bit unsigned input format [0, 15]"),
    ("def build():\n    x, y = data()\n    return UserModel(net(), (x / 3, y), data(), input_bits=4)\n",
     "training inputs must be integers"),
    ("def build():\n    x, y = data()\n    return UserModel(net(), data(), (x[:, :5], y), input_bits=4)\n",
     "test inputs have shape [5], training inputs [6]"),
    ("def build():\n    x, y = data()\n    return UserModel(net(), (x, y + 1), data(), input_bits=4)\n",
     "labels go up to 2 but the model has 2 outputs"),
    ("def build():\n    x, y = data()\n    return UserModel(net(), (x, y.float() / 2), data(), input_bits=4)\n",
     "integer class indices"),
    ("def build():\n    return UserModel(net(nn.Sigmoid()), data(), data(), input_bits=4)\n", "Sigmoid"),
    ("def build():\n    return UserModel(nn.LSTM(6, 2), data(), data(), input_bits=4)\n", "m.py:build"),
    ("def build():\n    raise ValueError('no data here')\n", "build() raised ValueError: no data here (m.py line "),
    ("def build():\n    import sys\n    sys.exit(3)\n", "build() called sys.exit(3)"),
])
def test_a_bad_return_value_is_one_line(tmp_path, capsys, body, match):
    _write(tmp_path, body)
    _fails(tmp_path, capsys, f"{tmp_path / 'm.py'}:build", match)


def test_bad_files_and_names_are_one_line(tmp_path, capsys):
    _fails(tmp_path, capsys, f"{tmp_path / 'none.py'}:build", "no file")
    _fails(tmp_path, capsys, str(tmp_path / "m.py"), "--model wants FILE.py:FUNCTION")
    (tmp_path / "m.txt").write_text("def build(): pass\n")
    _fails(tmp_path, capsys, f"{tmp_path / 'm.txt'}:build", "is not a Python file (.py)")
    _write(tmp_path, "def build():\n    return None\n\ndef other():\n    pass\n")
    _fails(tmp_path, capsys, f"{tmp_path / 'm.py'}:nope", "has no function 'nope' (it defines: build, data, net, other)")
    _fails(tmp_path, capsys, f"{tmp_path / 'm.py'}:HEADER", "")  # not a name in the file at all
    _write(tmp_path, "SIZE = 3\n")
    _fails(tmp_path, capsys, f"{tmp_path / 'm.py'}:SIZE", "'SIZE' is a int, not a function")


def test_a_file_that_does_not_import_is_one_line(tmp_path, capsys):
    _write(tmp_path, "def build(:\n    pass\n")
    line = _fails(tmp_path, capsys, f"{tmp_path / 'm.py'}:build", "cannot import")
    assert "SyntaxError" in line and f"m.py line {HEADER.count(chr(10)) + 1}" in line
    _write(tmp_path, "import no_such_module_here\n")
    line = _fails(tmp_path, capsys, f"{tmp_path / 'm.py'}:build", "No module named 'no_such_module_here'")
    assert "ModuleNotFoundError" in line and f"m.py line {HEADER.count(chr(10)) + 1}" in line
    (tmp_path / "helper.py").write_text("x = 1\nraise RuntimeError('helper broke')\n")
    _write(tmp_path, "import helper\n")
    _fails(tmp_path, capsys, f"{tmp_path / 'm.py'}:build", "RuntimeError: helper broke (helper.py line 2)")
    _write(tmp_path, "import sys\nsys.exit(2)\n")
    _fails(tmp_path, capsys, f"{tmp_path / 'm.py'}:build", "if __name__ == '__main__'")


def test_example_only_flags_and_the_model_file_itself(tmp_path, capsys):
    model = _write(tmp_path, "def build():\n    return UserModel(net(), data(), data(), input_bits=4)\n")
    spec = f"{model}:build"
    _fails(tmp_path, capsys, spec, "--float-epochs is for the --example models", "--float-epochs", "3")
    _fails(tmp_path, capsys, spec, "--load-float, --save-float are for", "--load-float", "f.pt", "--save-float", "g.pt")
    text = model.read_text()
    assert cli.main(["compress", "--model", spec, "-o", str(model), "--force", *TINY]) != 0
    assert "is the input" in capsys.readouterr().err and model.read_text() == text
    with pytest.raises(SystemExit):
        cli.main(["compress", "--model", spec, "--example", "digits-mlp", "-o", str(tmp_path / "x.pt")])
    assert "not allowed with argument" in capsys.readouterr().err


def test_load_user_model_raises_jpq_error(tmp_path):
    with pytest.raises(JpqError, match="no file"):
        load_user_model(f"{tmp_path / 'x.py'}:build")
