"""The lowering report: ``report.json`` (contract.md section 2) and its markdown rendering.

Its interface fields are written by :class:`jpq_hw.design_folder.Interface`, which the simulations
read them back with.

Per layer: nonzero weights, adders (and how many subtract), one-bit adder cells, adder levels,
estimated SB_LUT4 / SB_CARRY / flip-flops, and the same layer built densely with one generic
multiplier per weight (:mod:`jpq_hw.cost.dense`), so the saving is visible.
"""

from __future__ import annotations

import numpy as np

from . import __version__
from .arith.graph import Requant, range_width
from .cost.dense import dense_layer_cost
from .lowered import Lowered
from .target import get_target


def _weight_bits(w: np.ndarray) -> int:
    """Signed two's complement bits that hold every weight of ``w``."""
    return range_width(int(min(w.min(), 0)), int(max(w.max(), 0)))[0]


def build_report(design: Lowered, *, checkpoint: str, sha256: str, n_vectors: int) -> dict:
    q, g, s, cost = design.qnet, design.graph, design.sched, design.cost
    acc_bits: dict[int, int] = {}
    for n in g.nodes:
        if isinstance(n, Requant):
            acc_bits[n.layer] = max(acc_bits.get(n.layer, 1), range_width(n.acc_lo, n.acc_hi)[0])
    layers = []
    x_fmt = q.input
    for li, (layer, c) in enumerate(zip(q.layers, cost.layers)):
        n_out, n_in = layer.weight.shape
        dense = dense_layer_cost(n_in, n_out, x_fmt.bits, x_fmt.signed, _weight_bits(layer.weight),
                                 acc_bits.get(li, 1), target=design.target)
        layers.append({
            "name": layer.name, "kind": layer.kind, "inputs": n_in, "outputs": n_out,
            "weights": int(layer.weight.size), "nonzero_weights": layer.nnz,
            "sparsity": round(layer.sparsity, 4), "weight_bits": _weight_bits(layer.weight),
            "adders": c.adders, "subtractors": c.subtractors, "adder_bits": c.adder_bits,
            "adder_levels": c.depth, "lut4_estimate": c.lut4, "carry_estimate": c.carry, "ff_estimate": c.ff,
            "dense": dense,
        })
        x_fmt = layer.out
    totals = {k: cost.total(k) for k in ("adders", "subtractors", "adder_bits", "lut4", "carry", "ff")}
    target = get_target(design.target)
    device, capacity = target.cost.largest_device
    dense_lut = sum(layer["dense"]["lut4"] for layer in layers)
    dense_carry = sum(layer["dense"]["carry"] for layer in layers)
    return {
        "generator": f"jpq-hw {__version__}",
        **design.interface.to_report(),  # top, interface, inputs, outputs, pipelined, latency_cycles
        "pipeline_every": s.every,
        "target": design.target,
        "backend": design.backend,
        "optimize": design.optimize,
        "max_depth": design.max_depth,
        "checkpoint": {"path": checkpoint, "sha256": sha256},
        "adders": totals["adders"],
        "subtractors": totals["subtractors"],
        "adder_bits": totals["adder_bits"],
        "adder_depth": g.depth,
        "lut4_estimate": totals["lut4"],
        "carry_estimate": totals["carry"],
        "ff_estimate": totals["ff"],
        "nonzero_weights": q.nnz,
        "dense_lut4_estimate": dense_lut,
        "largest_common_device": {"name": device, "lut4": capacity,
                                  "fits": target.logic_cells(totals["lut4"], totals["carry"]) <= capacity},
        "dense_carry_estimate": dense_carry,
        "cell_names": {"lut4": target.cell_names["lut4"], "carry": target.cell_names["carry"]},
        "test_vectors": n_vectors,
        "seconds": {k: round(v, 4) for k, v in design.seconds.items()},
        "layers": layers,
    }


def render_markdown(r: dict) -> str:
    """A person's view of a report dict."""
    target = get_target(r["target"])
    lut, carry = target.cell_names["lut4"], target.cell_names["carry"]
    if target.name == "ice40":
        dense_vs_ours, what = (r["dense_lut4_estimate"], r["lut4_estimate"]), "LUTs"
    else:
        dense_vs_ours = (target.logic_cells(r["dense_lut4_estimate"], r["dense_carry_estimate"]),
                         target.logic_cells(r["lut4_estimate"], r["carry_estimate"]))
        what = f"logic cells ({lut} + 2 x {carry})"
    lines = [
        f"# {r['top']}: lowered by {r['generator']}",
        "",
        f"- checkpoint: `{r['checkpoint']['path']}` (sha256 `{r['checkpoint']['sha256'][:16]}...`)",
        f"- target: {r['target']}, backend: {r['backend']}, adder sharing: --optimize {r.get('optimize', 'best')}, "
        + (f"pipelined every {r['pipeline_every']} adder levels, latency {r['latency_cycles']} cycles"
           if r["pipelined"] else "combinational"),
        f"- interface: x = {r['inputs']['count']} x {r['inputs']['bits']}-bit "
        f"{'signed' if r['inputs']['signed'] else 'unsigned'}, y = {r['outputs']['count']} x "
        f"{r['outputs']['bits']}-bit {'signed' if r['outputs']['signed'] else 'unsigned'}",
        f"- {r['nonzero_weights']} nonzero weights, {r['adders']} adders ({r['subtractors']} subtracting), "
        f"{r['adder_bits']} adder bits, adder depth {r['adder_depth']}",
        f"- estimated {target.title} cells: {r['lut4_estimate']} {lut}, {r['carry_estimate']} {carry}, "
        f"{r['ff_estimate']} flip-flops; dense with generic multipliers: {r['dense_lut4_estimate']} {lut}, "
        f"{r['dense_carry_estimate']} {carry} ({_ratio(*dense_vs_ours)} fewer {what})",
        "",
        "| layer | in x out | nonzero | sparsity | w bits | adders | sub | adder bits | levels | LUT4 | CARRY | FF "
        "| dense mults | dense LUT4 | dense CARRY |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for layer in r["layers"]:
        d = layer["dense"]
        lines.append(
            f"| {layer['name']} | {layer['inputs']} x {layer['outputs']} | {layer['nonzero_weights']} | "
            f"{layer['sparsity']:.1%} | {layer['weight_bits']} | {layer['adders']} | {layer['subtractors']} | "
            f"{layer['adder_bits']} | {layer['adder_levels']} | {layer['lut4_estimate']} | {layer['carry_estimate']} | "
            f"{layer['ff_estimate']} | {d['multipliers']} | {d['lut4']} | {d['carry']} |")
    lines += ["", f"Estimates come from `{type(target.cost).__module__}` (shift-add) and `jpq_hw.cost.dense` (one "
              "generic multiplier per weight, measured with yosys, plus an adder tree), in the target's cells; "
              f"`jpq-hw synth` measures them with yosys `{target.synth_command}`.", ""]
    return "\n".join(lines)


def _ratio(a: int, b: int) -> str:
    return f"{a / b:.1f}x" if b else "n/a"
