"""Calibration of the iCE40 estimate (``jpq_hw.cost.ice40``) against yosys ``synth_ice40``.

    python -m bench.calibrate_ice40 [--out bench/results/calibrate_ice40.md]

Synthesizes, in one yosys process, single-node designs written by the real emitter: adders and
subtractors of many operand widths, shifts and signednesses (a one-layer net whose only row has two
weights), output stages with every rounding / ReLU / saturation shape (a one-layer net with weight
1), and then whole networks (the shipped example and seeded random nets). For each it prints the
estimate beside yosys' SB_LUT4 / SB_CARRY and the relative error, and writes a markdown table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from jpq_hw.flow import lower
from jpq_hw.ir import IntFormat, QLayer, QNet, load_checkpoint, random_qnet
from jpq_hw.synth.yosys import find_yosys, yosys_version

ROOT = Path(__file__).resolve().parents[1]


def one_layer(weights, bias, in_fmt, shift, relu, out_fmt) -> QNet:
    w = np.array([weights], dtype=np.int64).reshape(-1, len(weights)) if np.ndim(weights[0]) == 0 else np.array(weights)
    return QNet((w.shape[1],), in_fmt, (QLayer("f", "linear", w, np.array(bias, dtype=np.int64), shift, relu, out_fmt),))


def cases() -> list[tuple[str, QNet]]:
    out = []
    # adders: x0*1 + x1*2**k (and minus), output wide enough to pass the sum through unsaturated
    for bits, signed in ((5, False), (8, False), (8, True), (12, True)):
        for k in (0, 1, 3):
            for sign in (1, -1):
                f = IntFormat(bits, signed)
                net = one_layer([[1, sign * (1 << k)]], [0], f, 0, False, IntFormat(min(bits + k + 2, 32), True))
                out.append((f"add {'s' if signed else 'u'}{bits} {'+' if sign > 0 else '-'} <<{k}", net))
    # output stages: weight 1, every rounding / ReLU / saturation shape
    for bits, signed, bias, shift, relu, ob, osg in [
        (12, True, 81, 2, True, 8, False), (12, True, 0, 0, True, 8, False), (12, True, 81, 0, False, 12, True),
        (11, False, 6, 2, True, 8, False), (16, True, -300, 0, False, 16, True), (16, True, -300, 4, False, 8, True),
        (14, True, 1000, 3, True, 6, False), (12, True, 5, 2, False, 10, True), (10, False, 0, 3, False, 7, False),
        (13, True, 0, 1, True, 12, False)]:
        net = one_layer([[1]], [bias], IntFormat(bits, signed), shift, relu, IntFormat(ob, osg))
        out.append((f"requant {'s' if signed else 'u'}{bits} b{bias} >>{shift}{' relu' if relu else ''} -> "
                    f"{'s' if osg else 'u'}{ob}", net))
    out.append(("network digits-mlp example", load_checkpoint(ROOT / "examples" / "digits-mlp.pt")))
    for seed, (sizes, density, wbits) in enumerate([([32, 24, 10], 0.3, 6), ([64, 16], 0.15, 8), ([48, 32, 8], 0.1, 4)]):
        out.append((f"network random {'-'.join(map(str, sizes))} d{density} w{wbits}",
                    random_qnet(sizes, density=density, weight_bits=wbits, seed=seed)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "calibrate_ice40.md"))
    args = ap.parse_args()
    items = cases()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        script = []
        est = []
        for i, (_, net) in enumerate(items):
            design = lower(net, top=f"c{i}")
            (tmp / f"c{i}.v").write_text(design.verilog)
            est.append((design.cost.total("lut4"), design.cost.total("carry")))
            script += ["design -reset", f"read_verilog c{i}.v", f"synth_ice40 -top c{i}", f"tee -q -o c{i}.json stat -json"]
        (tmp / "all.ys").write_text("\n".join(script) + "\n")
        t0 = time.perf_counter()
        subprocess.run([*find_yosys(), "-q", "-s", "all.ys"], cwd=tmp, check=True, capture_output=True)
        seconds = time.perf_counter() - t0
        real = []
        for i in range(len(items)):
            cells = json.loads((tmp / f"c{i}.json").read_text())["design"]["num_cells_by_type"]
            real.append((cells.get("SB_LUT4", 0), cells.get("SB_CARRY", 0)))

    def err(e, r):
        return f"{(e - r) / r:+.0%}" if r else ("0%" if e == 0 else "n/a")

    lines = ["# iCE40 estimate vs yosys synth_ice40", "",
             f"`python bench/calibrate_ice40.py`; {yosys_version()}; {len(items)} designs in {seconds:.0f} s.", "",
             "| design | LUT4 est | LUT4 yosys | error | CARRY est | CARRY yosys | error |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for (name, _), (el, ec), (rl, rc) in zip(items, est, real):
        lines.append(f"| {name} | {el} | {rl} | {err(el, rl)} | {ec} | {rc} | {err(ec, rc)} |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
