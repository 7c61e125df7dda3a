"""The shipped digits example on every board of ``boards/``, and out of context on every family.

    python -m bench.boards [--out bench/results/boards.md] [--only icebreaker,...] [--render]

For each board: ``jpq-hw lower examples/digits-mlp.pt`` (combinational, and ``--pipeline 2``), then
``jpq-hw synth --board NAME`` at the board's oscillator clock (the network inside the UART board
top): cells used of the device's capacity, the estimate of ``jpq-hw lower`` beside them, Fmax
against the clock, seconds. Out of context (``--device``: the bare network, its ports registered)
on the UP5K and, lowered with ``--target ecp5``, on the LFE5U-25F, with the cells of each family.
A board the network does not fit is listed with the numbers (iCEstick: 1,280 LUT4).

Fmax is nextpnr's figure for one placer seed (1): it moves by a few percent from seed to seed.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from jpq_hw.boards import known_boards
from jpq_hw.flow import lower_checkpoint
from jpq_hw.synth.build import synth_design
from jpq_hw.synth.yosys import yosys_version

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT = ROOT / "examples" / "digits-mlp.pt"


def lowered(work: Path, target: str, pipeline: int) -> Path:
    out = work / f"digits-{target}-pipe{pipeline}"
    if not out.exists():
        lower_checkpoint(CHECKPOINT, out, target=target, pipeline=pipeline, n_vectors=50)
    return out


def row(design: Path, label: str, **where) -> dict:
    t0 = time.perf_counter()
    r, _ = synth_design(design, **where)
    r["label"] = label
    r["wall_seconds"] = round(time.perf_counter() - t0, 1)
    print(f"{label}: fits {r['fits']}, Fmax {r['fmax_mhz']} MHz, LUT4 {r['cells']['lut4']}", flush=True)
    return r


def render(rows: list[dict], header: dict) -> str:
    lines = ["# The digits example on boards and devices (`python -m bench.boards`)", "",
             f"yosys: {header['yosys']}; nextpnr placer seed 1. `examples/digits-mlp.pt` (64 inputs of 5 bits, "
             "10 outputs, 307 nonzero weights) lowered by `jpq-hw lower` and built by `jpq-hw synth`. Board rows: "
             "the network inside the UART board top (`jpq_hw.board.top`) at the board's oscillator clock; "
             "out-of-context rows: the bare network in the harness of `jpq_hw.synth.harness` (ports registered, "
             "three pins). LUT4 / carry / FF are yosys's cells of the whole build (board top or harness "
             "included) of the device's capacity; `est.` is `jpq-hw lower`'s estimate of the network alone.", "",
             "| build | lowered | device | LUT4 used / cap | est. | carry used | est. | FF | fits | clock MHz "
             "| Fmax MHz | meets | s |",
             "|---|---|---|---:|---:|---:|---:|---:|---|---:|---:|---|---:|"]
    for r in rows:
        c = r["cells"]
        fmax = f"{r['fmax_mhz']:.1f}" if r["fmax_mhz"] else "-"
        meets = {True: "yes", False: "**no**", None: "-"}[r["meets_timing"]]
        fits = "yes" if r["fits"] else "**no** (" + ", ".join(
            f"{k} {u:,} / {c:,}" for k, (u, c) in r.get("does_not_fit", {}).items()) + ")"
        lines.append(f"| {r['label']} | {r['lowered']} | {r['device']} {r['package']} | "
                     f"{c['lut4'][0]:,} / {c['lut4'][1]:,} | {r['estimate']['lut4']:,} | {c['carry'][0]:,} | "
                     f"{r['estimate']['carry']:,} | {c['ff'][0]:,} | {fits} | "
                     f"{r['clock_mhz']:g} | {fmax} | {meets} | {r['wall_seconds']:.0f} |")
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "boards.md")
    ap.add_argument("--only", help="comma-separated board names (default: all), 'ooc' for the out-of-context rows")
    ap.add_argument("--render", action="store_true", help="only rewrite the table from the .json beside --out")
    args = ap.parse_args(argv)
    if args.render:
        data = json.loads(args.out.with_suffix(".json").read_text())
        args.out.write_text(render(data["rows"], data["header"]))
        return 0
    only = set(args.only.split(",")) if args.only else None
    rows = []
    with tempfile.TemporaryDirectory(prefix="jpq_boards_") as tmp:
        work = Path(tmp)
        for name, board in known_boards().items():
            if only and name not in only:
                continue
            for pipeline in (0, 2):
                d = lowered(work, board.family, pipeline)
                r = row(d, name, board=name)
                r["lowered"] = f"--target {board.family}" + (f" --pipeline {pipeline}" if pipeline else "")
                rows.append(r)
        if not only or "ooc" in only:
            for target, device in (("ice40", "up5k"), ("ecp5", "25k")):
                for pipeline in (0, 2):
                    d = lowered(work, target, pipeline)
                    r = row(d, f"out of context ({device})", device=device)
                    r["lowered"] = f"--target {target}" + (f" --pipeline {pipeline}" if pipeline else "")
                    rows.append(r)
    header = {"yosys": yosys_version()}
    args.out.write_text(render(rows, header))
    args.out.with_suffix(".json").write_text(json.dumps({"header": header, "rows": rows}, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
