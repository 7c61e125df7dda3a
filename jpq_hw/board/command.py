"""``jpq-hw run DESIGN [INPUTS.npy] --port PORT [--board NAME]``: a design on a board, checked.

``DESIGN`` is the folder ``jpq-hw lower`` wrote (its ``report.json`` says the interface, its Verilog
the design id the board must report); the board runs the bitstream ``jpq-hw synth DESIGN --board
NAME`` built from it. Without ``INPUTS.npy`` the vectors are the design's own test vectors
(``tb/vectors.json``), with their reference outputs. With it, the reference is the checkpoint's
integer inference (:func:`jpq_hw.reference.run_reference`) of the checkpoint named by
``--checkpoint``, else of the one ``report.json`` records (if its file is still there, unchanged).

Each vector goes to the board as a frame (:mod:`jpq_hw.board.protocol`), one at a time; the answers
are compared with the reference. Exit status 0 when all outputs equal the reference; otherwise a
one-line error (status 2): the port does not exist, no board answers, the board runs another design,
the line keeps corrupting frames, or how many vectors differ and the first difference.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from ..errors import JpqError
from .top import DEFAULT_BAUD


def add_run_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``run`` sub-command (``set_defaults(run=run_board)``); returns its parser."""
    p = subparsers.add_parser(
        "run", help="send vectors to a design running on a board and check the answers",
        description="Send input vectors over the board's UART to the board top that jpq-hw synth --board built "
                    "from DESIGN, read the outputs back and compare them with the integer reference.")
    p.add_argument("design", help="the design folder that jpq-hw lower wrote (and jpq-hw synth built)")
    p.add_argument("inputs", nargs="?", metavar="INPUTS.npy",
                   help="input vectors ([N, inputs] integers in the input format; default: the design's test "
                        "vectors, tb/vectors.json)")
    p.add_argument("--port", required=True, help="the board's serial port (/dev/ttyUSB1, COM4, ...)")
    p.add_argument("--board", metavar="NAME", help="the board (jpq-hw synth --list-boards), named in messages")
    p.add_argument("--checkpoint", metavar="FILE",
                   help="the checkpoint whose integer inference is the reference for INPUTS.npy "
                        "(default: the one report.json records)")
    p.add_argument("--vectors", type=int, metavar="N", help="only the first N vectors")
    p.add_argument("--baud", type=int, default=DEFAULT_BAUD, help=f"the board top's baud rate (default: {DEFAULT_BAUD})")
    p.add_argument("--timeout", type=float, default=2.0, metavar="S",
                   help="seconds to wait for an answer to begin (default: 2)")
    p.add_argument("-o", "--output", metavar="FILE.npy", help="also save the board's outputs ([N, outputs] int64)")
    p.add_argument("--force", action="store_true", help="replace an existing --output file")
    p.set_defaults(run=run_board)
    return p


def _design(folder: Path):
    from ..design_folder import REPORT_JSON, Interface, interface_from_report

    report_file = folder / REPORT_JSON
    if not report_file.is_file():
        raise JpqError(f"{str(folder)!r} is not a design folder of jpq-hw lower (no {REPORT_JSON})")
    try:
        report = json.loads(report_file.read_text())
        iface = interface_from_report(report)
    except (ValueError, json.JSONDecodeError) as e:
        raise JpqError(f"{report_file}: {e}") from None
    if not isinstance(iface, Interface):
        raise JpqError("jpq-hw run takes flat-vector designs (an image network's frames do not go over the UART)")
    return report, iface


def _checkpoint_path(args: argparse.Namespace, report: dict) -> Path:
    if args.checkpoint:
        return Path(args.checkpoint)
    recorded = report.get("checkpoint") or {}
    path = recorded.get("path")
    if not path or not Path(path).is_file():
        raise JpqError("give --checkpoint FILE: the reference for INPUTS.npy is the checkpoint's integer "
                       f"inference, and the one report.json records ({path or 'none'}) is not here")
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    if recorded.get("sha256") and digest != recorded["sha256"]:
        raise JpqError(f"the checkpoint {path} changed since jpq-hw lower read it (sha256 differs): give "
                       "--checkpoint FILE with the one the design was lowered from")
    return Path(path)


def _vectors(args: argparse.Namespace, folder: Path, report: dict, iface) -> tuple[list[list[int]], list[list[int]], str]:
    """(inputs, reference outputs, where they come from)."""
    import numpy as np

    if args.inputs is None:
        from ..design_folder import read_design

        try:
            d = read_design(folder)
        except (OSError, ValueError, KeyError) as e:
            raise JpqError(f"{folder}: cannot read the test vectors ({e})") from None
        return d.x, d.y, "tb/vectors.json"
    from ..ir import load_checkpoint
    from ..reference import run_reference
    from ..vectors import read_inputs

    ckpt = _checkpoint_path(args, report)
    qnet = load_checkpoint(ckpt)
    n_in = int(np.prod(qnet.input_shape))
    if n_in != iface.inputs.count:
        raise JpqError(f"the checkpoint {ckpt} takes {n_in} inputs, the design {iface.inputs.count}")
    x = read_inputs(args.inputs, qnet).reshape(-1, n_in)
    y = run_reference(qnet, x.reshape(len(x), *qnet.input_shape)).reshape(len(x), -1)
    if y.shape[1] != iface.outputs.count:
        raise JpqError(f"the checkpoint {ckpt} has {y.shape[1]} outputs, the design {iface.outputs.count}")
    return x.tolist(), y.tolist(), f"{args.inputs}, reference from {ckpt}"


def run_board(args: argparse.Namespace) -> int:
    """The ``run`` sub-command: 0 when every output equals the reference (else a :class:`JpqError`)."""
    import numpy as np

    from ..design_folder import rtl_files
    from ..outputs import output_file
    from . import protocol as P
    from .host import SerialTransport, check_outputs, run_vectors

    folder = Path(args.design)
    report, iface = _design(folder)
    board = None
    if args.board:
        from ..boards import get_board
        board = get_board(args.board).title
    if args.vectors is not None and args.vectors < 1:
        raise JpqError(f"--vectors must be >= 1, got {args.vectors}")
    if args.timeout <= 0:
        raise JpqError(f"--timeout must be > 0, got {args.timeout}")
    rtl = rtl_files(folder)
    if not rtl:
        raise JpqError(f"{folder / 'rtl'} holds no Verilog: the design id cannot be checked")
    ident = P.design_id((f.name, f.read_text()) for f in rtl)
    x, y, source = _vectors(args, folder, report, iface)
    if args.vectors is not None:
        x, y = x[:args.vectors], y[:args.vectors]
    inputs_lo = 0 if not iface.inputs.signed else -(1 << (iface.inputs.bits - 1))
    inputs_hi = (1 << (iface.inputs.bits - (1 if iface.inputs.signed else 0))) - 1
    for i, v in enumerate(x):
        if len(v) != iface.inputs.count or not all(inputs_lo <= int(e) <= inputs_hi for e in v):
            raise JpqError(f"input vector {i} does not fit the design's {iface.inputs.count} x {iface.inputs.bits}-bit "
                           "inputs")
    with ExitStack() as stack:  # the outputs are saved, even when they differ from the reference
        tmp = stack.enter_context(output_file(args.output, force=args.force, inputs=[folder])) if args.output else None
        transport = SerialTransport(args.port, args.baud)
        stack.callback(transport.close)
        t0 = time.perf_counter()
        out = run_vectors(transport, iface, x, design_id=ident, timeout=args.timeout, board=board or "the board",
                          baud=args.baud)
        seconds = time.perf_counter() - t0
        if tmp is not None:
            with open(tmp, "wb") as f:
                np.save(f, np.asarray(out, dtype=np.int64))
    check_outputs(out, y)
    print(f"{len(x)} vectors ({source}) on {args.port}: all outputs equal the reference "
          f"({seconds:.1f} s, {len(x) / max(seconds, 1e-9):.0f} vectors/s)")
    return 0
