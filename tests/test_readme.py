"""What the README shows a command printing is what the command prints (timings aside)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = ["jpq-hw lower examples/digits-mlp.pt --target ice40 -o out/digits-mlp",
            "jpq-hw lower examples/digits-cnn.pt --target ice40 -o out/digits-cnn"]


def _shown(readme: str, command: str) -> list[str]:
    """The lines the README's fenced block prints after ``$ command`` (up to the next command)."""
    start = readme.index(f"$ {command}\n") + len(command) + 3
    lines = readme[start:readme.index("```", start)].rstrip("\n").splitlines()
    return lines[:next((i for i, line in enumerate(lines) if line.startswith("$ ")), len(lines))]


def _timeless(lines: list[str]) -> list[str]:
    return [re.sub(r"\d+\.\d+ s", "_ s", line.rstrip()) for line in lines]


@pytest.mark.parametrize("command", COMMANDS)
def test_the_lower_output_in_the_readme_is_real(tmp_path, command):
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    args = command.split()[1:]
    done = subprocess.run([sys.executable, "-m", "jpq_hw.cli", *args], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    shown = _shown((ROOT / "README.md").read_text(), command)
    assert _timeless(shown) == _timeless(done.stdout.splitlines())


def test_the_verify_output_in_the_readme_is_real(tmp_path):
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    run = lambda *args: subprocess.run([sys.executable, "-m", "jpq_hw.cli", *args], cwd=tmp_path,  # noqa: E731
                                       capture_output=True, text=True)
    assert run(*COMMANDS[0].split()[1:]).returncode == 0
    done = run("verify", "out/digits-mlp")
    assert done.returncode == 0, done.stderr
    shown = _shown((ROOT / "README.md").read_text(), "jpq-hw verify out/digits-mlp")
    assert _timeless(shown) == _timeless(done.stdout.splitlines())
