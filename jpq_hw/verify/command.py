"""``jpq-hw verify OUT`` (and ``jpq-hw lower --verify``): run the proof, print what it proved or
the counterexample, exit 0 when proven and 1 when not."""

from __future__ import annotations

import argparse
import sys

from .design import verify_design
from .plumbing import MAX_STATES, MAX_WORK
from .prove import ProofFailure

EXIT_NOT_PROVEN = 1


def add_verify_parser(sub) -> argparse.ArgumentParser:
    v = sub.add_parser("verify", help="prove a lowered design equal to its checkpoint for every input")
    v.add_argument("design", help="a folder written by jpq-hw lower (its rtl/ and report.json)")
    v.add_argument("--checkpoint", metavar="FILE",
                   help="the checkpoint (default: the one report.json names; its sha256 must match)")
    v.add_argument("--no-simulate", action="store_true",
                   help="do not replay a counterexample in the design's own cocotb test bench")
    v.add_argument("--max-values", type=int, default=None, metavar="N",
                   help="most accumulator values one output stage is run on (default 2**26); "
                        "a wider one is proven by yosys's SAT solver")
    v.add_argument("--max-states", type=int, default=None, metavar="N",
                   help="most states the proof of a stream design's plumbing explores per stage part "
                        f"(default: {MAX_STATES:,}, or fewer where a part's registers are wide: about ten "
                        f"minutes, {MAX_WORK:,} register bits x states); beyond it that part's plumbing is "
                        "reported as not proven")
    v.set_defaults(run=run_verify)
    return v


def run_verify(args: argparse.Namespace) -> int:
    return verify_and_print(args.design, checkpoint=args.checkpoint, simulate=not args.no_simulate,
                            max_values=args.max_values, max_states=args.max_states)


def verify_and_print(design: str, *, checkpoint: str | None = None, simulate: bool = True,
                     max_values: int | None = None, max_states: int | None = None) -> int:
    try:
        proof = verify_design(design, checkpoint=checkpoint, max_enumeration=max_values, max_states=max_states)
    except ProofFailure as failure:
        _print_failure(design, failure, simulate)
        return EXIT_NOT_PROVEN
    first = proof.parts[0][1]
    timing = "combinational" if not first.latency else f"pipelined, {first.latency} register stages on every path"
    if proof.interface == "stream":
        timing = "kernels " + ("combinational" if not any(p.latency for _, p in proof.parts) else
                               "pipelined: " + ", ".join(str(p.latency) for _, p in proof.parts) + " register stages")
        if proof.plumbing is not None and proof.plumbing.complete:
            print(f"proven: {proof.top} ({design}/rtl) computes {proof.checkpoint} exactly: every beat it gives is "
                  "the checkpoint's next output, for every input and every stall pattern")
        else:
            print(f"proven: every kernel and function of {proof.top} ({design}/rtl) computes its layer of "
                  f"{proof.checkpoint} exactly, for every window or pixel; its plumbing in part")
    else:
        print(f"proven: {proof.top} ({design}/rtl) computes {proof.checkpoint} exactly, for every input")
    for what, part in proof.parts:
        lo, hi = part.widest_accumulator
        sat = f", {part.solved} by SAT (yosys sat; accumulators too wide to run)" if part.solved else ""
        print(f"  {what}: {part.layers} layer(s), {part.outputs} outputs; {part.neurons - part.solved} output stages "
              f"run on all {part.values_enumerated:,} accumulator values{sat}; widest accumulator [{lo}, {hi}]")
    for what, fn in proof.functions:
        stages = f", {fn.latency} register stage(s) on every path" if fn.latency else ""
        print(f"  {what}: {fn.formula}; proven by SAT (yosys sat) for all 2^{fn.input_bits} inputs{stages}, "
              f"{fn.seconds:.1f} s")
    if proof.plumbing is not None:
        pl = proof.plumbing
        print(f"  plumbing (line buffers, windows, padding, collectors, handshakes, reset) of {pl.kernels} of "
              f"{pl.stages} stage(s): "
              f"{pl.states:,} states explored with every handshake from each, stage by stage, in {pl.seconds:.1f} s")
        if pl.complete:
            print("  progress: every part takes and gives beats forever under any stalls that keep the contract "
                  "(a source holds a beat until taken, a sink drains a valid beat in the end), so the whole design does")
        if pl.latency is not None:
            print(f"  full rate from reset: latency {pl.latency} cycles, a frame every {pl.period} cycles at most, as "
                  f"report.json says (the joint run is periodic after {pl.full_rate_cycles:,} cycles)")
    units = len(proof.parts) + len(proof.functions)
    print(f"  {timing}; read by yosys (read_verilog; proc; flatten), {units} unit(s) proven in {proof.seconds:.1f} s")
    for line in proof.assumed:
        print(f"  assumed: {line}")
    return 0


def _print_failure(design: str, failure: ProofFailure, simulate: bool) -> None:
    print(f"jpq-hw verify: NOT PROVEN: {failure}", file=sys.stderr)
    ce = getattr(failure, "counterexample", None)
    if ce is None:
        print("  no input vector found that shows it (the proof over-approximates the values a layer's "
              "outputs can take together; the design may still be wrong for some input)", file=sys.stderr)
        return
    i = ce.first_difference()
    print(f"  counterexample: x = {ce.x}", file=sys.stderr)
    print(f"  output {i}: the circuit gives {ce.got[i]}, the checkpoint {ce.want[i]} "
          f"(yosys's netlist run cycle by cycle)", file=sys.stderr)
    if simulate:
        from .counterexample import replay_in_simulator
        verdict = replay_in_simulator(design, ce)
        print(f"  {verdict}", file=sys.stderr)
