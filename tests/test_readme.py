"""What the README shows a command printing is what the command prints (timings aside)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMAND = "jpq-hw lower examples/digits-mlp.pt --target ice40 -o out/digits-mlp"


def _shown(readme: str, command: str) -> list[str]:
    """The lines the README's fenced block prints after ``$ command``."""
    start = readme.index(f"$ {command}\n") + len(command) + 3
    return readme[start:readme.index("```", start)].rstrip("\n").splitlines()


def _timeless(lines: list[str]) -> list[str]:
    return [re.sub(r"\d+\.\d+ s", "_ s", line.rstrip()) for line in lines]


def test_the_lower_output_in_the_readme_is_real(tmp_path):
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    args = COMMAND.split()[1:]
    done = subprocess.run([sys.executable, "-m", "jpq_hw.cli", *args], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    shown = _shown((ROOT / "README.md").read_text(), COMMAND)
    assert _timeless(shown) == _timeless(done.stdout.splitlines())
