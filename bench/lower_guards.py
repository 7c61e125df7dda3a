"""The estimate ``jpq-hw lower`` makes before it builds anything, against what the lowering spends.

    python -m bench.lower_guards [--out bench/results/lower_guards.md] [--only NAME ...]

For each network: :func:`jpq_hw.budget.estimate_lowering` (adders, SB_LUT4, memory, seconds of the
whole command), then the command itself, ``jpq-hw lower --no-limit``, as a subprocess, one at a
time: its wall time (start-up included), its peak resident memory (``wait4``) and the adders and
SB_LUT4 of its report. Networks: the shipped examples and seeded random ones (``random_qnet``,
``random_conv_qnet``) of 350 to 320,000 nonzero weights, 6 to 16 bits, the default flags (about 6
minutes). Last, the issue's 3000 x 3000 dense 16-bit layer as a new user runs it (``jpq-hw lower
big.pt -o out``): the time until the refusal. These are the figures the docstring of
:mod:`jpq_hw.budget` quotes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from jpq_hw.budget import estimate_lowering
from jpq_hw.ir import IntFormat, QLayer, QNet, load_checkpoint, random_conv_qnet, random_qnet, save_checkpoint

ROOT = Path(__file__).resolve().parents[1]

NETWORKS = {  # name: a function making the QNet (or the path of an example)
    "digits-mlp": ROOT / "examples" / "digits-mlp.pt",
    "digits-cnn": ROOT / "examples" / "digits-cnn.pt",
    "stereo": ROOT / "examples" / "stereo.pt",
    "mlp 64-32-10, 6 bit": lambda: random_qnet([64, 32, 10], density=0.15, weight_bits=6, seed=3),
    "mlp 256-64-10 (2k)": lambda: random_qnet([256, 64, 10], density=0.115, weight_bits=8, seed=1),
    "conv 3x16x16": lambda: random_conv_qnet((3, 16, 16), [(16, 3, 1, 1), (16, 3, 2, 1)], [10], density=0.3, seed=1),
    "mlp 512-320-64 (20k)": lambda: random_qnet([512, 320, 64], density=0.109, weight_bits=8, seed=1),
    "400x200, 12 bit": lambda: random_qnet([400, 200], density=0.3, weight_bits=12, seed=1),
    "dense 128x128, 16 bit": lambda: random_qnet([128, 128], density=1.0, weight_bits=16,
                                                 input_format=IntFormat(16, True), seed=1),
    "dense 300x300, 8 bit": lambda: random_qnet([300, 300], density=1.0, weight_bits=8, seed=1),
    "mlp 1024-512-256 (100k)": lambda: random_qnet([1024, 512, 256], density=0.152, weight_bits=8, seed=1),
    "1000x1000, 5 %": lambda: random_qnet([1000, 1000], density=0.05, weight_bits=8, seed=1),
    "2000x2000, 8 %": lambda: random_qnet([2000, 2000], density=0.08, weight_bits=8, seed=1),
    "dense 256x256, 16 bit": lambda: random_qnet([256, 256], density=1.0, weight_bits=16,
                                                 input_format=IntFormat(16, True), seed=1),
}


def dense16(n: int = 3000) -> QNet:
    """The issue's example: an ``n x n`` dense linear layer of 16-bit weights and activations."""
    w = np.random.default_rng(0).integers(-(1 << 15), (1 << 15) - 1, size=(n, n), endpoint=True)
    layer = QLayer("fc1", "linear", w, np.zeros(n, np.int64), 16, False, IntFormat(16, True))
    return QNet((n,), IntFormat(16, True), (layer,))


def run(cmd: list[str]) -> tuple[int, float, float, str]:
    """(exit status, wall seconds, peak resident MB, stderr) of ``cmd``."""
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    err = p.stderr.read()
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    p.returncode = os.waitstatus_to_exitcode(status)
    return p.returncode, wall, usage.ru_maxrss / 1024, err


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "lower_guards.md"))
    ap.add_argument("--only", nargs="*", help="networks to run (default: all)")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, make in NETWORKS.items():
            if args.only and name not in args.only:
                continue
            ckpt = make if isinstance(make, Path) else Path(tmp) / "net.pt"
            if not isinstance(make, Path):
                save_checkpoint(make(), ckpt)
            est = estimate_lowering(load_checkpoint(ckpt), frames=16)
            out = Path(tmp) / "out"
            code, wall, mb, err = run([sys.executable, "-m", "jpq_hw.cli", "lower", str(ckpt), "-o", str(out),
                                       "--force", "--no-limit"])
            if code:
                raise SystemExit(f"{name}: {err}")
            report = json.loads((out / "report.json").read_text())
            row = dict(name=name, nnz=report["nonzero_weights"], adders=(est.adders, report["adders"]),
                       lut4=(est.lut4, report["lut4_estimate"]), mb=(est.memory_bytes / 2**20, mb),
                       s=(est.seconds, wall))
            rows.append(row)
            print(row, flush=True)
        big = Path(tmp) / "big.pt"
        save_checkpoint(dense16(), big)
        est = estimate_lowering(load_checkpoint(big))
        code, refusal_s, refusal_mb, refusal = run([sys.executable, "-m", "jpq_hw.cli", "lower", str(big), "-o",
                                                    str(Path(tmp) / "big_out")])
        assert code == 2 and not (Path(tmp) / "big_out").exists(), refusal
        print(f"refused in {refusal_s:.1f} s: {refusal.strip()}")

    def ratio(pair) -> str:
        e, m = pair
        return f"{e / m:.2f}" if m else ""

    lines = ["# The estimate before lowering, against the lowering", "",
             "`python -m bench.lower_guards`: `jpq_hw.budget.estimate_lowering` from the weights, then "
             "`jpq-hw lower --no-limit` as a subprocess on this machine (2 cores), default flags: wall time "
             "(start-up included), peak resident memory, adders and SB_LUT4 of its report. Ratio: estimate / "
             "measured.", "",
             "| network | nonzero weights | adders est / real | ratio | SB_LUT4 est / report | ratio "
             "| memory MB est / peak | ratio | seconds est / wall | ratio |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['name']} | {r['nnz']:,} | {r['adders'][0]:,} / {r['adders'][1]:,} | {ratio(r['adders'])} "
                     f"| {r['lut4'][0]:,} / {r['lut4'][1]:,} | {ratio(r['lut4'])} "
                     f"| {r['mb'][0]:,.0f} / {r['mb'][1]:,.0f} | {ratio(r['mb'])} "
                     f"| {r['s'][0]:.1f} / {r['s'][1]:.1f} | {ratio(r['s'])} |")
    lines += ["", f"The issue's example, a 3000 x 3000 dense linear layer of 16-bit weights and activations "
              f"(9,000,000 weights), as a new user runs it (`jpq-hw lower big.pt -o out`): refused after "
              f"{refusal_s:.1f} s (wall, start-up included; peak {refusal_mb:,.0f} MB), exit status 2, no "
              f"folder written. Estimate: {est.summary()}.", "", "```", refusal.strip(), "```"]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
