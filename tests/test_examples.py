"""The README's Python API example runs end to end (tiny epochs: this checks the API, not accuracy)."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_own_model_example(tmp_path):
    spec = importlib.util.spec_from_file_location("own_model", ROOT / "examples" / "own_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = module.main(["--epochs", "3", "--prune-epochs", "2", "--qat-epochs", "1", "-o", str(tmp_path / "own.pt")])
    assert (tmp_path / "own.pt").exists()
    assert set(out["accuracies"]) >= {"float", "pruned", "quantized"}
    assert out["adders"] > 0
