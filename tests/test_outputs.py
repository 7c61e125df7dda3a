"""No command loses a user's file: refused outputs leave every input and old output byte for byte as
it was, bad paths are one error line and exit 2 before any work, and what is written follows the umask."""

from __future__ import annotations

import contextlib
import io
import os
import stat
from pathlib import Path

import pytest

from jpq_hw.cli import main
from jpq_hw.ir import random_qnet, save_checkpoint

FAST_COMPRESS = ["--float-epochs", "0", "--prune-epochs", "0", "--qat-epochs", "0", "--no-progress", "--no-adders",
                 "--calib-size", "16"]


def run(*args) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as e:  # argparse's own errors
            code = e.code
    return code, err.getvalue()


def one_error_line(code: int, err: str, words: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("jpq-hw: error: ") and words in lines[0], err


@pytest.fixture
def ckpt(tmp_path) -> Path:
    path = tmp_path / "model.pt"
    save_checkpoint(random_qnet([6, 4, 3], seed=2), path)
    return path


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("where", ["the checkpoint", "its folder", "a file", "a folder lower did not make"])
def test_force_never_replaces_what_lower_did_not_make(tmp_path, ckpt, where):
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "keep.txt").write_text("keep")
    out = {"the checkpoint": ckpt, "its folder": tmp_path, "a file": tmp_path / "notes.txt",
           "a folder lower did not make": tmp_path / "mine"}[where]
    before = snapshot(tmp_path)
    code, err = run("lower", ckpt, "-o", out, "--force")
    words = {"the checkpoint": "is the input", "its folder": "holds the input", "a file": "is a file",
             "a folder lower did not make": "not a folder that jpq-hw lower made"}[where]
    one_error_line(code, err, words)
    assert snapshot(tmp_path) == before  # the checkpoint, byte for byte, and everything else


def test_force_replaces_a_folder_lower_made(tmp_path, ckpt):
    out = tmp_path / "out"
    assert run("lower", ckpt, "-o", out)[0] == 0
    (out / "stale.txt").write_text("from an old run")
    one_error_line(*run("lower", ckpt, "-o", out), "already exists")
    assert (out / "stale.txt").exists()
    assert run("lower", ckpt, "-o", out, "--force")[0] == 0
    assert not (out / "stale.txt").exists() and (out / "report.json").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left


@pytest.mark.parametrize("bad", ["inside a file", "unwritable"])
def test_bad_output_places_are_one_line(tmp_path, ckpt, bad):
    out = ckpt / "sub" if bad == "inside a file" else Path("/proc/jpq-hw-test/out")
    before = ckpt.read_bytes()
    code, err = run("lower", ckpt, "-o", out)
    one_error_line(code, err, "is a file, not a folder" if bad == "inside a file" else "cannot write")
    assert ckpt.read_bytes() == before


def test_outputs_follow_the_umask(tmp_path, ckpt):
    old = os.umask(0o022)
    try:
        assert run("lower", ckpt, "-o", tmp_path / "out")[0] == 0
        save_checkpoint(random_qnet([3, 2], seed=1), tmp_path / "c.pt")
    finally:
        os.umask(old)
    for folder in (tmp_path / "out", tmp_path / "out" / "rtl", tmp_path / "out" / "tb"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o755, folder
    assert stat.S_IMODE((tmp_path / "out" / "report.json").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "c.pt").stat().st_mode) == 0o644


def test_debug_is_accepted_after_the_sub_command(tmp_path):
    from jpq_hw.errors import JpqError

    missing = tmp_path / "missing.pt"
    one_error_line(*run("lower", missing, "-o", tmp_path / "o"), "does not exist")
    with pytest.raises(JpqError, match="does not exist"):  # --debug: the exception, with its traceback
        main(["lower", str(missing), "-o", str(tmp_path / "o"), "--debug"])
    with pytest.raises(JpqError, match="does not exist"):
        main(["--debug", "lower", str(missing), "-o", str(tmp_path / "o")])


def test_compress_refuses_an_existing_output_before_training(tmp_path, monkeypatch):
    import jpq_hw.compress.pipeline as pipeline

    def no_training(*a, **k):
        raise AssertionError("trained before the output was checked")

    out = tmp_path / "own.pt"
    out.write_bytes(b"the user's checkpoint")
    monkeypatch.setattr(pipeline, "train_float", no_training)
    monkeypatch.setattr(pipeline, "compress", no_training)
    for args, words in ((["-o", out], "already exists (use --force"),
                        (["-o", out / "sub.pt"], "is a file, not a folder"),
                        (["-o", "/proc/jpq-hw-test.pt"], "cannot write"),
                        (["-o", tmp_path / "no" / "c.pt"], "does not exist"),
                        (["-o", tmp_path / "c.pt", "--metrics-json", out], "already exists"),
                        (["-o", out, "--load-float", out, "--force"], "is the input")):
        one_error_line(*run("compress", *args, *FAST_COMPRESS), words)
        assert out.read_bytes() == b"the user's checkpoint"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["own.pt"]  # no temporary file left


def test_compress_force_replaces_its_output_atomically(tmp_path):
    out = tmp_path / "own.pt"
    out.write_bytes(b"old")
    assert run("compress", "-o", out, "--force", *FAST_COMPRESS)[0] == 0
    from jpq_hw.ir import load_checkpoint

    assert load_checkpoint(out).meta["example"] == "digits-mlp"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["own.pt"]
