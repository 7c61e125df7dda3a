"""``jpq-hw synth OUT [--board NAME | --device DEV [--package PKG]] [--freq MHZ]``.

Runs :func:`jpq_hw.synth.build.synth_design` and prints a short summary: cells used against the
device's capacity beside the estimate of ``jpq-hw lower``, Fmax against the requested clock, where
the bitstream is. Tool output goes to the logs in the build folder; the steps are shown on stderr as
they start. Exit status 0 when the design fits and meets timing, 1 when it does not fit or misses
timing (with the numbers), 2 on bad input (the CLI's one-line errors).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..target import ROLES

STEP_TEXT = {"elaborate": "writing the design's sources"}


def add_synth_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``synth`` sub-command (``set_defaults(run=run_synth)``); returns its parser."""
    p = subparsers.add_parser(
        "synth", help="synthesize, place, route and pack a lowered design into a bitstream",
        description="yosys, nextpnr and the packer on a folder of jpq-hw lower: with --board the network inside "
                    "the board top (UART in and out) as a bitstream to flash; with --device the bare network out "
                    "of context, for figures. Writes OUT/build/NAME/ (bitstream, logs, synth_report.json).")
    p.add_argument("design", nargs="?", help="the folder jpq-hw lower wrote (-o OUT)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--board", metavar="NAME", help="a board of boards/ (jpq-hw synth --list-boards)")
    where.add_argument("--device", metavar="DEV", help="a device of the design's family, out of context (up5k, hx8k, 85k, ...)")
    where.add_argument("--list-boards", action="store_true", help="list the known boards and exit")
    p.add_argument("--package", metavar="PKG", help="the device's package (with --device; default: its first)")
    p.add_argument("--freq", type=float, metavar="MHZ",
                   help="the clock to meet, in MHz (default: the board's oscillator; --device: 12); on a board a "
                        "clock other than the oscillator's comes from a PLL")
    p.add_argument("--seed", type=int, default=1, help="nextpnr's placer seed (default: 1)")
    p.set_defaults(run=run_synth)
    return p


def run_synth(args: argparse.Namespace) -> int:
    from ..errors import JpqError
    from .build import synth_design

    if args.list_boards:
        _list_boards()
        return 0
    if args.design is None:
        raise JpqError("give the design folder that jpq-hw lower wrote: jpq-hw synth OUT --board NAME")
    if args.package and not args.device:
        raise JpqError("--package goes with --device (a board has its own package)")
    err = sys.stderr
    result, folder = synth_design(args.design, board=args.board, device=args.device, package=args.package,
                                  freq_mhz=args.freq, seed=args.seed,
                                  step=lambda s: print(f"jpq-hw synth: {STEP_TEXT.get(s, s)} ...", file=err, flush=True))
    print_summary(result, folder)
    return 0 if result["fits"] and result["meets_timing"] else 1


def _list_boards() -> None:
    from ..boards import known_boards

    for b in known_boards().values():
        print(f"{b.name:16} {b.title}, {b.clock_mhz:g} MHz{'; ' + b.notes if b.notes else ''}")


def print_summary(r: dict, folder: Path) -> None:
    """Used / capacity per cell kind with the estimate beside it, Fmax against the clock, the verdict."""
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=120)
    where = f"board {r['board']}" if r["board"] else "out of context"
    console.print(f"[bold]{r['top']}[/bold] on the {r['device']} ({r['package']}), {where}: {r['measured']}")
    table = Table(show_edge=False, header_style="bold")
    for col in ("cells", "used", "of", "use", "estimate (network alone)"):
        table.add_column(col, justify="left" if col == "cells" else "right", no_wrap=True)
    for role in ROLES:
        used, cap = r["cells"][role]
        est = r["estimate"].get(role)
        share = f"{100 * used / cap:.0f}%" if cap else ""
        table.add_row(r["cell_names"][role], f"{used:,}", f"{cap:,}" if cap is not None else "?", share,
                      f"{est:,}" if isinstance(est, int) else "")
    console.print(table)
    if r["fits"] is False:
        over = ", ".join(f"{k} {u:,} of {c:,}" for k, (u, c) in r["does_not_fit"].items())
        console.print(f"[bold red]does not fit[/bold red] the {r['device']}: {over}; no bitstream. Sparsify further, "
                      f"lower with fewer or narrower weights, or choose a larger device")
        return
    if r.get("logic_cells"):
        used, cap = r["logic_cells"]
        console.print(f"placed: {used:,} of {cap:,} logic cells ({100 * used / cap:.0f}%; each holds a LUT4, "
                      f"its carry and a flip-flop)" if r["target"] == "ice40" else
                      f"placed: {used:,} of {cap:,} logic cells ({100 * used / cap:.0f}%; a LUT4 or half a CCU2C each)")
    fmax = r["fmax_mhz"]
    verdict = "meets" if r["meets_timing"] else "[bold red]misses[/bold red]"
    console.print(f"Fmax {fmax:.1f} MHz: {verdict} the {r['clock_mhz']:g} MHz clock" if fmax is not None else
                  "no clocked path: no Fmax")
    console.print(f"wrote {folder / r['bitstream']} and synth_report.json, logs in {folder} "
                  f"({r['seconds']:.0f} s)")
    if not r["meets_timing"]:
        console.print(f"the bitstream is marked .timing-failed: lower with --pipeline N (registers every N adder "
                      f"levels) or ask for a slower --freq (at most {fmax:.1f} MHz)" if fmax else "")
