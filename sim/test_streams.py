"""Image networks as pixel streams (contract.md section 3), simulated and synthesized.

Designs (:data:`STREAMS`), through the Verilog backend, five of them through the Amaranth one and
five with their stages' graphs pipelined (``--pipeline N``, both backends): seeded random conv nets that cover kernels 1, 3 and 5, strides 1 and 2,
zero padding 0..2, one to three channels in, signed and unsigned formats down to 1-bit inputs,
frames that are not square, line buffers in flip-flops and in block RAM, a flatten into one and
into two linear layers, and a network on 64x64 frames; and the shipped ``digits-cnn`` example. For
each design:

1. ``jpq_hw.flow.lower_checkpoint`` writes the design folder (its own check: the stream's stage
   interpreters equal the reference on every frame); its report must state the stream interface;
2. the Verilog (of both backends) must pass ``verilator --lint-only -Wall`` with no warning, and ``jpq-hw verify`` must
   prove every kernel (the Amaranth backend's cut out of its flat module at the kernels' named boundary wires)
   and the plumbing of every stage part for every stall pattern (``frame64``'s 64x64 windows too: their
   line buffers are proven apart), so the design's progress and its full-rate figures as well;
3. the design folder's test bench (``tb/stream_tb.v``, clocked by :mod:`jpq_hw.sim.cocotb_bench`)
   streams the frames through it: a reset in the middle of a frame, then every frame with random
   bubbles on the input and random back-pressure on the output, then every frame again back to
   back at full rate from an idle design. Every output beat must equal the reference, the output
   must obey AXI4-Stream (nothing changes while a beat waits), and at full rate the first output
   and the frame period must be exactly the report's ``latency_cycles`` and ``cycles_per_frame``.
   Verilator runs every design, Icarus the small ones;
4. for the designs marked ``synth``, yosys ``synth_ice40`` counts the cells, recorded in
   ``sim/build/results.md`` beside the estimate: block RAMs must equal the estimate, SB_LUT4,
   SB_CARRY and flip-flops be within 10% of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pytest

from jpq_hw.design_folder import StreamInterface, read_design, rtl_files
from jpq_hw.flow import lower_checkpoint
from jpq_hw.ir import IntFormat, load_checkpoint, random_conv_qnet, random_stereo_qnet, save_checkpoint
from jpq_hw.reference import run_reference
from jpq_hw.verify import verify_design

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "digits-cnn.pt"


@dataclass(frozen=True)
class Stream:
    name: str
    net: dict = field(default_factory=dict)  # generator arguments (empty: the shipped example)
    frames: int = 8
    icarus: bool = True
    synth: bool = False
    backend: str = "verilog"
    pipeline: int = 0  # a register stage every N adder levels of each stage's graph

    @property
    def id(self) -> str:
        return (self.name + ("" if self.backend == "verilog" else f"-{self.backend}")
                + (f"-pipe{self.pipeline}" if self.pipeline else ""))


STREAMS = [
    Stream("pad_k3_k5s2", dict(input_shape=(2, 7, 9), convs=[(3, 3, 1, 1), (4, 5, 2, 2)],
                               input_format=IntFormat(6, True), hidden_format=IntFormat(5, False),
                               output_format=IntFormat(7, False), relu_last=True, seed=97), synth=True),
    Stream("k1_k3s2_dense2", dict(input_shape=(1, 6, 5), convs=[(3, 1, 1, 0), (5, 3, 2, 0)], dense=[7, 4],
                                  density=0.6, input_format=IntFormat(4, False), output_format=IntFormat(9, True),
                                  seed=98),
           synth=True),
    Stream("k5_k3_bram", dict(input_shape=(3, 10, 12), convs=[(4, 5, 1, 2), (3, 3, 1, 1)],
                              input_format=IntFormat(8, False), output_format=IntFormat(8, True), seed=99),
           synth=True),
    Stream("bin_s2_dense", dict(input_shape=(1, 5, 5), convs=[(2, 3, 2, 1)], dense=[3], input_format=IntFormat(1, False),
                                output_format=IntFormat(4, True), seed=100)),
    Stream("flat_only", dict(input_shape=(2, 4, 4), convs=[], dense=[5], input_format=IntFormat(3, True), seed=101)),
    Stream("frame64", dict(input_shape=(1, 64, 64), convs=[(4, 3, 1, 1), (4, 3, 2, 1)], density=0.25,
                           input_format=IntFormat(8, False), hidden_format=IntFormat(6, False),
                           output_format=IntFormat(8, False), relu_last=True, seed=102),
           frames=2, icarus=False, synth=True),
    Stream("digits_cnn", frames=4, synth=True),
    # stereo: a siamese extractor with binary features, a Hamming cost volume, aggregation, argmin
    Stream("stereo_box", dict(stereo=True, height=8, width=24, convs=[(3, 3), (4, 3)], disparities=6, seed=103),
           synth=True),
    Stream("stereo_conv_sat", dict(stereo=True, height=6, width=9, convs=[(5, 5)], disparities=8, cost_bits=2,
                                   aggregate="conv", box=3, seed=104)),
    Stream("stereo_cost_only", dict(stereo=True, height=5, width=8, convs=[(2, 3)], disparities=3, aggregate=None,
                                    argmin=False, seed=105)),
    Stream("stereo_box_sum", dict(stereo=True, height=9, width=26, convs=[(4, 5)], disparities=8, cost_bits=2,
                                  aggregate="box_sum", box=5, seed=107), synth=True),
    Stream("box_sum_short_frame", dict(stereo=True, height=3, width=10, convs=[(2, 3)], disparities=3, aggregate="box_sum",
                                       box=5, seed=108)),
    Stream("stereo_wta_only", dict(stereo=True, height=6, width=20, convs=[(6, 3)], disparities=16, aggregate=None,
                                   seed=106), synth=True),
]
_BY_NAME = {s.name: s for s in STREAMS}
# the same hardware through the Amaranth backend
STREAMS += [replace(s, backend="amaranth", synth=s.name in ("k5_k3_bram", "digits_cnn"))
            for s in STREAMS if s.name in ("pad_k3_k5s2", "k1_k3s2_dense2", "k5_k3_bram", "bin_s2_dense", "digits_cnn",
                                           "stereo_box", "stereo_conv_sat", "stereo_box_sum", "box_sum_short_frame")]
# with the stages' graphs pipelined (--pipeline N), through both backends
STREAMS += [replace(_BY_NAME["pad_k3_k5s2"], pipeline=2), replace(_BY_NAME["k5_k3_bram"], pipeline=1, icarus=False),
            replace(_BY_NAME["digits_cnn"], pipeline=2),
            replace(_BY_NAME["k1_k3s2_dense2"], backend="amaranth", pipeline=1),
            replace(_BY_NAME["bin_s2_dense"], backend="amaranth", pipeline=2),
            replace(_BY_NAME["stereo_box"], pipeline=1), replace(_BY_NAME["stereo_box_sum"], pipeline=1), replace(_BY_NAME["stereo_box"], backend="amaranth", pipeline=2, synth=False)]


def _checkpoint(s: Stream, root: Path) -> tuple[Path, np.ndarray | None]:
    if not s.net:
        from jpq_hw.datasets import load_digits_split

        return EXAMPLE, load_digits_split()[2][:4]  # real test images after the extremes
    path = root / f"{s.name}.pt"
    args = dict(s.net)
    stereo = args.pop("stereo", False)
    qnet = random_stereo_qnet(**args) if stereo else random_conv_qnet(**args)
    save_checkpoint(qnet, path)
    if stereo:  # pairs that match: random textures seen at a disparity, so that the argmin varies
        return path, _stereo_pairs(qnet.input_shape[1], qnet.input_shape[2], 4, seed=args["seed"])
    return path, np.empty((0, int(np.prod(qnet.input_shape))), dtype=np.int64)


def _stereo_pairs(h: int, w: int, n: int, seed: int) -> np.ndarray:
    """``n`` frames [n, 2*h*w]: a random texture (left) and the same texture moved right by 0 to
    ``w // 3`` pixels (right: ``right(r, c) = left(r, c + d)``), plus noise."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        d = int(rng.integers(0, w // 3 + 1))
        tex = rng.integers(0, 256, size=(h, w + d))
        left = tex[:, d:]
        right = np.clip(tex[:, :w] + rng.integers(-8, 9, size=(h, w)), 0, 255)
        out.append(np.stack([left, right]).reshape(-1))
    return np.array(out, dtype=np.int64)


@pytest.mark.simulator
@pytest.mark.parametrize("case", STREAMS, ids=[s.id for s in STREAMS])
def test_stream_matches_reference(case, sim_build_root, simulators, sim_results):
    from jpq_hw.sim.runner import lint_verilog, run_design

    root = sim_build_root / "streams"
    root.mkdir(exist_ok=True)
    ckpt, extra = _checkpoint(case, root)
    out = root / case.id
    top = f"stream_{case.id.replace('-', '_')}"
    report = lower_checkpoint(ckpt, out, top=top, n_vectors=case.frames, seed=5, force=True, extra_inputs=extra,
                              backend=case.backend, pipeline=case.pipeline)
    assert report["pipeline_every"] == case.pipeline
    assert (max(s["kernel_latency"] for s in report["layers"]) > 0) == (case.pipeline > 0)
    qnet = load_checkpoint(ckpt)
    iface = read_design(out).interface
    assert isinstance(iface, StreamInterface) and report["interface"] == "stream"
    c, h, w = qnet.input_shape
    assert (iface.input.channels, iface.input.height, iface.input.width) == (c, h, w)
    oshape = qnet.output_shape if len(qnet.output_shape) == 3 else (qnet.output_shape[0], 1, 1)
    assert (iface.output.channels, iface.output.height, iface.output.width) == tuple(oshape)
    assert iface.cycles_per_frame <= 1.05 * h * w  # one pixel per clock
    assert report["adders"] == sum(s["adders"] for s in report["layers"])
    assert lint_verilog(rtl_files(out), top) == []  # both backends: the Amaranth one through hdl.netlist_verilog
    proof = verify_design(out, checkpoint=ckpt)  # jpq-hw verify, both backends
    kinds = [s["kind"] for s in report["layers"]]
    assert len(proof.parts) == sum(k in ("conv2d", "box_sum", "dense") for k in kinds)
    assert [p.kind for _, p in proof.functions] == [k for k in kinds if k in ("hamming_cost", "box_sum", "argmin")]
    # the plumbing too, for every stall pattern, every stage part (frame64's 64x64 windows included),
    # and so progress under any fair stalls and the full-rate figures
    assert proof.plumbing is not None and proof.plumbing.complete, proof.assumed
    assert (proof.plumbing.latency, proof.plumbing.period) == (report["latency_cycles"],
                                                               report["cycles_per_frame"]), proof.assumed
    assert proof.assumed == [], proof.assumed
    # every layer's output varies over the frames, so a design that computed a constant would fail
    frames = np.array(read_design(out).x).reshape(-1, *qnet.input_shape)
    for layer, y in zip(qnet.layers, run_reference(qnet, frames, all_layers=True)):
        assert len(np.unique(y.reshape(len(y), -1), axis=0)) > 1, f"{layer.name}: the same output on every frame"

    row = {"design": f"stream {case.id}", "nnz": report["nonzero_weights"], "adders": report["adders"],
           "lut4_est": report["lut4_estimate"], "carry_est": report["carry_estimate"], "ff_est": report["ff_estimate"],
           "latency": report["latency_cycles"]}
    for simulator in simulators:
        if simulator == "icarus" and not case.icarus:
            continue
        result = run_design(out, simulator, build_dir=root / "sim_build" / case.id / simulator)
        assert result.passed, result.summary() + "\n" + result.message
        row[simulator] = f"pass ({result.n_vectors} frames)"
    sim_results.append(row)

    if case.synth:
        from jpq_hw.synth.yosys import synthesize

        s = synthesize(rtl_files(out), top, workdir=out / "synth_run")
        row.update(lut4=s.lut4, carry=s.carry, ff=s.dff, synth_s=round(s.seconds, 1))
        assert s.mac16 == 0
        assert s.ram == report["bram_estimate"], (s.ram, report["bram_estimate"])
        # the estimate (jpq_hw.cost.ice40 for the kernels, jpq_hw.cost.stream for the rest) within 10%
        for what, est, real in (("SB_LUT4", row["lut4_est"], s.lut4), ("SB_CARRY", row["carry_est"], s.carry),
                                ("flip-flops", row["ff_est"], s.dff)):
            assert abs(est - real) <= 0.10 * real, f"{what} estimate {est} vs yosys {real}: {row}"
