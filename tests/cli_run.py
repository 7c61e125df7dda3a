"""``jpq-hw ARGS`` run in this process, for the command-line tests."""

from __future__ import annotations

import contextlib
import io

from jpq_hw.cli import main


class Result:
    """What a run gave: ``returncode``, ``stdout``, ``stderr`` (also unpacks in that order)."""

    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr

    def __iter__(self):
        return iter((self.returncode, self.stdout, self.stderr))


def run_cli(*args) -> Result:
    """``jpq-hw ARGS`` in this process (argparse's own errors exit via SystemExit)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as e:
            code = e.code
    return Result(code, out.getvalue(), err.getvalue())
