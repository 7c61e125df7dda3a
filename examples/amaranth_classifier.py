"""A lowered network inside your own Amaranth design: the README's example.

    python examples/amaranth_classifier.py [--checkpoint examples/digits-mlp.pt] [--images 100]

``DigitClassifier`` is a user's component: it registers a digit's 64 pixels, runs them through the
shipped ``digits-mlp`` network (:class:`jpq_hw.hdl.amaranth_backend.QNetComponent`, pipelined, in
the user's ``sync`` domain) and picks the largest of the 10 logits with its own comparator tree.
Amaranth's simulator runs it on real test digits; every class it outputs must equal the argmax of
the exact integer reference (first index on ties, as ``numpy.argmax``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from amaranth import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from jpq_hw.datasets import load_digits_split
from jpq_hw.design_folder import pack
from jpq_hw.hdl.amaranth_backend import QNetComponent
from jpq_hw.ir import load_checkpoint
from jpq_hw.reference import run_reference

EXAMPLE = Path(__file__).resolve().parent / "digits-mlp.pt"


class DigitClassifier(wiring.Component):
    """Pixels in (with a valid strobe), the class of the digit out, a few cycles later."""

    def __init__(self, checkpoint: str | Path):
        self.net = QNetComponent(checkpoint, pipeline=2)  # lowered as `jpq-hw lower --pipeline 2` would
        q = self.net.qnet
        self.n_out, self.bits = q.layers[-1].n_out, q.output.bits
        super().__init__({"pixels": In(len(self.net.x)), "valid": In(1),
                          "digit": Out(4), "digit_valid": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.net = net = self.net
        m.d.sync += [net.x.eq(self.pixels), net.in_valid.eq(self.valid)]  # the user's input register
        logits = [net.y[i * self.bits:(i + 1) * self.bits].as_signed() for i in range(self.n_out)]
        # argmax as a chain of comparators (a strict > keeps the first index on ties)
        best, best_i = logits[0], 0
        for i, v in enumerate(logits[1:], start=1):
            take = v > best
            best, best_i = Mux(take, v, best), Mux(take, i, best_i)
        m.d.sync += [self.digit.eq(best_i), self.digit_valid.eq(net.out_valid)]
        return m


def main(argv: list[str] | None = None) -> float:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default=str(EXAMPLE))
    ap.add_argument("--images", type=int, default=100, help="test digits to classify")
    args = ap.parse_args(argv)
    qnet = load_checkpoint(args.checkpoint)
    _, _, x_test, y_test = load_digits_split()
    x, labels = x_test[:args.images], y_test[:args.images]
    want = run_reference(qnet, x).argmax(axis=1)

    dut = DigitClassifier(args.checkpoint)
    got: list[int] = []

    async def bench(ctx):
        for cycle in range(len(x) + dut.net.latency + 3):
            if cycle < len(x):
                ctx.set(dut.pixels, pack(x[cycle].tolist(), qnet.input.bits, qnet.input.signed))
            ctx.set(dut.valid, cycle < len(x))
            await ctx.tick()
            if ctx.get(dut.digit_valid):
                got.append(ctx.get(dut.digit))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    if got != want.tolist():
        bad = next(i for i, (g, w) in enumerate(zip(got, want)) if g != w) if len(got) == len(want) else len(got)
        raise SystemExit(f"image {bad}: the hardware says {got[bad] if bad < len(got) else None}, "
                         f"the reference {want[bad]}")
    accuracy = float(np.mean(np.array(got) == labels))
    print(f"{len(got)} digits classified in Amaranth's simulator, every class equal to the reference's; "
          f"accuracy {accuracy:.3f}")
    return accuracy


if __name__ == "__main__":
    main()
