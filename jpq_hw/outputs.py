"""Writing what a command produces without ever losing a user's file.

Every output is checked before any work starts (a bad path costs no training and no lowering), is
written under a temporary name beside its target (which also proves, up front, that the place is
writable), and is renamed into place only when it is complete: a failed command leaves nothing
behind and the old file or folder untouched. What is created follows the user's umask, as a plain
``open`` or ``mkdir`` would (``tempfile`` alone makes everything private to its owner).

Replacing needs ``force``, and some things are never replaced: a file where a folder is wanted (or
the other way round), the command's own inputs, a folder that holds one of them, and a folder that
a ``jpq-hw lower`` did not make (it holds that command's ``report.json``).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

from .errors import JpqError

LOWER_MARKER = "report.json"  # a folder holding this, written by jpq-hw, is one that `jpq-hw lower` made


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _reason(e: OSError) -> str:
    return e.strerror or type(e).__name__


def _check_place(path: Path) -> None:
    """The folders above ``path`` must be folders (``-o own.pt/sub`` names a file as a folder)."""
    for parent in reversed(path.absolute().parents):
        if parent.exists() and not parent.is_dir():
            raise JpqError(f"cannot write {str(path)!r}: {str(parent)!r} is a file, not a folder")


def _check_not_an_input(path: Path, inputs: Sequence[Path]) -> None:
    target = path.resolve()
    for source in inputs:
        source = Path(source).resolve()
        if target == source:
            raise JpqError(f"output {str(path)!r} is the input {str(source)!r}; choose another name")
        if target in source.parents:
            raise JpqError(f"output folder {str(path)!r} holds the input {str(source)!r}; choose another folder")


def made_by_lower(folder: Path) -> bool:
    """Whether ``folder`` holds the ``report.json`` that a ``jpq-hw lower`` writes."""
    try:
        report = json.loads((folder / LOWER_MARKER).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(report, dict) and str(report.get("generator", "")).startswith("jpq-hw")


def check_output_folder(out: Path, *, force: bool, inputs: Sequence[Path] = ()) -> None:
    """Raise :class:`JpqError` unless ``out`` may become (or be replaced by) an output folder."""
    _check_place(out)
    _check_not_an_input(out, inputs)
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise JpqError(f"output {str(out)!r} is a file, not a folder; it is never replaced")
    if out.exists() and any(out.iterdir()):
        if not force:
            raise JpqError(f"output {str(out)!r} already exists and is not empty (use --force to replace it)")
        if not made_by_lower(out):
            raise JpqError(f"output {str(out)!r} is not a folder that jpq-hw lower made (it has no jpq-hw "
                           f"{LOWER_MARKER}); --force replaces only those")


def check_output_file(path: Path, *, force: bool, inputs: Sequence[Path] = ()) -> None:
    """Raise :class:`JpqError` unless ``path`` may become (or be replaced by) an output file."""
    _check_place(path)
    _check_not_an_input(path, inputs)
    if path.is_dir():
        raise JpqError(f"output {str(path)!r} is a folder; give a file name")
    if path.exists() and not force:
        raise JpqError(f"output {str(path)!r} already exists (use --force to replace it)")
    if not path.parent.is_dir():
        raise JpqError(f"output folder {str(path.parent)!r} does not exist")


@contextmanager
def output_folder(out: str | os.PathLike, *, force: bool = False, inputs: Sequence[Path] = ()) -> Iterator[Path]:
    """Check ``out``, then yield an empty temporary folder beside it to fill; when the block ends
    without an exception the folder replaces ``out``, else it is removed and ``out`` stays as it was.

    The parent folders of ``out`` are created as needed."""
    out = Path(out)
    check_output_folder(out, force=force, inputs=inputs)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
        os.chmod(tmp, 0o777 & ~_umask())
    except OSError as e:
        raise JpqError(f"cannot write {str(out)!r} ({_reason(e)})") from None
    try:
        yield tmp
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextmanager
def output_file(path: str | os.PathLike, *, force: bool = False, inputs: Sequence[Path] = (),
                checked: bool = True) -> Iterator[Path]:
    """Yield a temporary file beside ``path`` to write (created now, so an unwritable place fails at
    once); when the block ends without an exception it replaces ``path``, else it is removed.

    ``checked=False`` skips :func:`check_output_file` (for library writes that replace freely)."""
    path = Path(path)
    if checked:
        check_output_file(path, force=force, inputs=inputs)
    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
        os.close(fd)
        os.chmod(name, 0o666 & ~_umask())
    except OSError as e:
        if e.errno == errno.ENOENT and not path.parent.exists():
            raise JpqError(f"output folder {str(path.parent)!r} does not exist") from None
        raise JpqError(f"cannot write {str(path)!r} ({_reason(e)})") from None
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
