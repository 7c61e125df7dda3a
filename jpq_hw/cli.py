"""``jpq-hw``: the command line. It only parses flags and chains the library's stages.

A :class:`~jpq_hw.errors.JpqError` (bad input) prints ``jpq-hw: error: <one line>`` and exits with
status 2; ``--debug`` shows the traceback instead. Ctrl-C (status 130) and SIGTERM (143) unwind the
command, so that no half-written output is left behind.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from . import __version__
from .errors import JpqError


def _lower(args: argparse.Namespace) -> int:
    from .budget import DEFAULT_LIMITS
    from .flow import lower_checkpoint
    from .progress import StderrDisplay, shown

    with shown(StderrDisplay()):  # a long lowering says what it is about to spend, on stderr
        report = lower_checkpoint(args.checkpoint, args.output, target=args.target, backend=args.backend,
                                  pipeline=args.pipeline, top=args.top, n_vectors=args.vectors, seed=args.seed,
                                  force=args.force, optimize=args.optimize, inputs=args.inputs,
                                  max_depth=args.max_depth, limits=None if args.no_limit else DEFAULT_LIMITS)
    _print_summary(report, args.output)
    device = report["largest_common_device"]
    if not device["fits"]:
        print(f"jpq-hw: warning: the estimate, {report['lut4_estimate']:,} {report['cell_names']['lut4']}, is more than the "
              f"{device['name']} has ({device['lut4']:,} LUT4): sparsify further, or use fewer or narrower "
              "weights", file=sys.stderr)
    if args.verify:
        from .verify.command import verify_and_print
        return verify_and_print(args.output)
    return 0


def _print_summary(r: dict, out: str) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=120)
    if r.get("interface") == "stream":
        _print_stream_summary(console, r, out)
        return
    mode = f"pipelined, latency {r['latency_cycles']} cycles" if r["pipelined"] else "combinational"
    console.print(f"[bold]{r['top']}[/bold]: {r['inputs']['count']} inputs -> {r['outputs']['count']} outputs, "
                  f"{r['nonzero_weights']} nonzero weights, {mode}, backend {r['backend']}, --optimize {r['optimize']}")
    table = Table(show_edge=False, header_style="bold")
    for col in ("layer", "in x out", "nonzero", "adders", "adder bits", "levels", "LUT4 est", "CARRY est", "FF est",
                "dense LUT4"):
        table.add_column(col, justify="left" if col in ("layer", "in x out") else "right", no_wrap=True)
    for layer in r["layers"]:
        table.add_row(layer["name"], f"{layer['inputs']} x {layer['outputs']}", str(layer["nonzero_weights"]),
                      str(layer["adders"]), str(layer["adder_bits"]), str(layer["adder_levels"]),
                      str(layer["lut4_estimate"]), str(layer["carry_estimate"]), str(layer["ff_estimate"]),
                      str(layer["dense"]["lut4"]))
    table.add_row("total", "", str(r["nonzero_weights"]), str(r["adders"]), str(r["adder_bits"]), str(r["adder_depth"]),
                  str(r["lut4_estimate"]), str(r["carry_estimate"]), str(r["ff_estimate"]),
                  str(r["dense_lut4_estimate"]), style="bold")
    console.print(table)
    secs = r["seconds"]
    console.print(f"lowered in {secs['total']:.2f} s (graph {secs['lower']:.2f} s, HDL {secs['emit']:.2f} s); "
                  f"wrote {out}/rtl/{r['top']}.v, report.json, report.md, tb/ ({r['test_vectors']} vectors), "
                  f"synth/synth_{r['target']}.ys")


def _print_stream_summary(console, r: dict, out: str) -> None:
    from rich.table import Table

    from .stream.design import stage_kind_text

    i, o = r["input"], r["output"]
    console.print(f"[bold]{r['top']}[/bold]: stream of {i['channels']}x{i['height']}x{i['width']} frames -> "
                  f"{o['channels']}x{o['height']}x{o['width']}, {r['nonzero_weights']} nonzero weights, "
                  f"{r['cycles_per_frame']} cycles per frame, latency {r['latency_cycles']} cycles, "
                  f"--optimize {r['optimize']}")
    table = Table(show_edge=False, header_style="bold")
    for col in ("stage", "kind", "in", "out", "nonzero", "adders", "levels", "LUT4 est", "CARRY est", "FF est",
                "BRAM est"):
        table.add_column(col, justify="left" if col in ("stage", "kind", "in", "out") else "right", no_wrap=True)
    for s in r["layers"]:
        a, b = s["input"], s["output"]
        kind = stage_kind_text(s)
        table.add_row(s["name"], kind, f"{a['channels']}x{a['height']}x{a['width']}",
                      f"{b['channels']}x{b['height']}x{b['width']}", str(s["nonzero_weights"]), str(s["adders"]),
                      str(s["adder_levels"]), str(s["lut4_estimate"]), str(s["carry_estimate"]),
                      str(s["ff_estimate"]), str(s["bram_estimate"]))
    table.add_row("total", "", "", "", str(r["nonzero_weights"]), str(r["adders"]), "", str(r["lut4_estimate"]),
                  str(r["carry_estimate"]), str(r["ff_estimate"]), str(r["bram_estimate"]), style="bold")
    console.print(table)
    secs = r["seconds"]
    console.print(f"lowered in {secs['total']:.2f} s (graphs {secs['lower']:.2f} s, HDL {secs['emit']:.2f} s); "
                  f"wrote {out}/rtl/{r['top']}.v, report.json, report.md, tb/ ({r['test_vectors']} frames), "
                  f"synth/synth_{r['target']}.ys")


def build_parser() -> argparse.ArgumentParser:
    from .arith.optimize import DEFAULT_OPTIMIZE, OPTIMIZE
    from .target import FAMILIES

    p = argparse.ArgumentParser(prog="jpq-hw", description="Extremely sparse quantized networks as shift-add hardware.")
    p.add_argument("--version", action="version", version=f"jpq-hw {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    lo = sub.add_parser("lower", help="lower a checkpoint to shift-add Verilog, a report and a test bench")
    lo.add_argument("checkpoint", help="checkpoint file (format jpq-hw-qnet, version 1)")
    lo.add_argument("--target", default="ice40", metavar="FAMILY",
                    help=f"target FPGA family ({', '.join(FAMILIES)}): its cost model prices the adder graphs and "
                         "the estimate, in its cells (default: ice40)")
    lo.add_argument("-o", "--output", required=True, help="output folder (created; must not exist unless --force)")
    lo.add_argument("--backend", default="verilog", choices=("verilog", "amaranth"),
                    help="direct Verilog emitter (fast, default) or an Amaranth component converted to Verilog")
    lo.add_argument("--pipeline", type=int, default=0, metavar="N",
                    help="register stage every N adder levels (0: combinational, the default; an image "
                         "network: in each stage's graph)")
    lo.add_argument("--optimize", default=DEFAULT_OPTIMIZE, choices=tuple(OPTIMIZE),
                    help="adder sharing: " + ", ".join(f"{k} ({v})" for k, v in OPTIMIZE.items())
                         + f"; default {DEFAULT_OPTIMIZE}")
    lo.add_argument("--max-depth", type=int, metavar="N",
                    help="at most N adder levels per layer where a plan can be (fewer levels: a faster clock, a "
                         "few more cells; default: the cheapest plan, a level less counting as 2%% of the cells)")
    lo.add_argument("--top", default="jpq_net", help="Verilog module name (default: jpq_net)")
    lo.add_argument("--vectors", type=int, default=None,
                    help="test vectors for the test bench (default: 1000; an image network's: 16 frames)")
    lo.add_argument("--inputs", metavar="FILE.npy",
                    help="your own input vectors ([N, inputs] integers in the input format), put first in the test bench")
    lo.add_argument("--seed", type=int, default=0, help="seed of the random test vectors")
    lo.add_argument("--force", action="store_true",
                    help="replace an existing output folder that an earlier jpq-hw lower wrote")
    lo.add_argument("--no-limit", action="store_true",
                    help="lower even a network estimated beyond the limits (checked from the weights before "
                         "anything is built: 10 minutes, 8 GB of memory, 50x the target's largest common "
                         "device in LUT4, 264,000 for iCE40); without it such a network is refused with the "
                         "estimate")
    lo.set_defaults(run=_lower)

    lo.add_argument("--verify", action="store_true",
                    help="then prove the design equal to the checkpoint for every input (jpq-hw verify)")
    lo.set_defaults(run=_lower)

    from .board.command import add_run_parser
    from .compress.command import add_compress_parser
    from .synth.command import add_synth_parser
    from .verify.command import add_verify_parser

    for command in (lo, add_compress_parser(sub), add_verify_parser(sub), add_synth_parser(sub),
                    add_run_parser(sub)):  # also after the sub-command: jpq-hw lower ... --debug
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                             help="show tracebacks for errors")
    return p


class _Terminated(BaseException):
    """SIGTERM, raised where the program is so that it unwinds as on Ctrl-C: no half-written output."""


def _terminate(signum, frame):
    raise _Terminated


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
    try:
        return args.run(args)
    except JpqError as e:
        if args.debug:
            raise
        print(f"jpq-hw: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("jpq-hw: interrupted", file=sys.stderr)
        return 130
    except _Terminated:
        print("jpq-hw: terminated", file=sys.stderr)
        return 143
    except BrokenPipeError:  # the reader of our output went away (jpq-hw verify OUT | head)
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 141
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
