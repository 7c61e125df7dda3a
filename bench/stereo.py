"""Stereo depth on an iCE40 UP5K: accuracy on Motorcycle against classic matching, and the cost.

The Middlebury Motorcycle pair that ships in scikit-image, at a quarter of its resolution
(:func:`jpq_hw.stereo.data.motorcycle_quarter`: 125x185 grey levels, ground truth in quarter-
resolution pixels, a 4x4 block with any invalid pixel invalid), never seen in training. Scored the
same way for every method (:func:`jpq_hw.stereo.metrics.score`: end-point error and the fraction of
valid pixels more than 1 and 2 px off):

- census 3x3 + Hamming + 5x5 box + winner-take-all over 16 disparities
  (:func:`jpq_hw.stereo.baselines.census_wta`), and the same census bits through the network's
  own aggregation (its cost cap and box), to show what the features add and what the aggregation;
- OpenCV SGBM as its documentation sets it up (:func:`jpq_hw.stereo.baselines.sgbm`; the ``bench``
  extra installs ``opencv-python-headless``);
- the float model (``examples/stereo-float.pt``), its exact hard pipeline;
- the compressed network (``examples/stereo.pt``), by the integer reference;
- the RTL: ``jpq-hw lower`` of ``examples/stereo.pt``, the Motorcycle frame streamed through the
  Verilator simulation (random stalls, then full rate), every output pixel checked equal to the
  reference; then yosys ``synth_ice40`` (cells) and nextpnr-ice40 on the UP5K (the design in a
  pin harness, ``bench.streams.harness``) for Fmax, with combinational stage graphs and with
  ``--pipeline 2``.

Memory and hardware cost are set beside the same network dense (every weight of the learned
convs kept): weight memory as float32 and as sparse fixed point (``jpq_hw.compress.metrics``), and
the LUT estimate of the dense network lowered the same way.

    python -m bench.stereo            # writes bench/results/stereo.md, stereo.json, stereo.png
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from jpq_hw.compress.metrics import layer_memory
from jpq_hw.errors import JpqError
from jpq_hw.ir import QLayer, QNet, load_checkpoint
from jpq_hw.reference import run_reference
from jpq_hw.stereo.baselines import box_sum, census_transform, census_wta, hamming_cost_volume, sgbm, wta
from jpq_hw.stereo.compress import block_diagonal, load_float_model, single_image_weights
from jpq_hw.stereo.data import motorcycle_quarter
from jpq_hw.stereo.metrics import score
from jpq_hw.stereo.model import hard_disparity

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT = ROOT / "examples" / "stereo.pt"
FLOAT = ROOT / "examples" / "stereo-float.pt"


def dense_twin(qnet: QNet, seed: int = 0) -> QNet:
    """The same network with every weight of its learned convs nonzero (the feature convs, before the
    cost volume): random nonzero weights of the same width, the same shifts, siamese again."""
    rng = np.random.default_rng(seed)
    learned = single_image_weights(qnet)  # the first layers of the network
    layers = list(qnet.layers)
    for i, half in enumerate(learned):
        layer = layers[i]
        top = max(int(np.abs(half).max()), 1)
        dense = rng.integers(1, top, size=half.shape, endpoint=True) * rng.choice([-1, 1], size=half.shape)
        layers[i] = QLayer(layer.name, layer.kind, block_diagonal(dense), layer.bias, layer.shift, layer.relu,
                           layer.out, layer.stride, layer.padding)
    return QNet(qnet.input_shape, qnet.input, tuple(layers), {})


def memory(qnet: QNet, weight_bits: int) -> dict:
    """Weight memory of the learned convs, one image's extractor (the two halves share weights)."""
    dense = sparse = kept = total = 0
    for w in single_image_weights(qnet):
        m = layer_memory(w.shape[0], int(np.prod(w.shape[1:])), int(np.count_nonzero(w)), weight_bits)
        dense += m["dense_float32_bits"]
        sparse += m["sparse_bits"]
        kept += int(np.count_nonzero(w))
        total += w.size
    return {"weights": total, "nonzero": kept, "sparsity": 1 - kept / total, "dense_float32_bits": dense,
            "sparse_bits": sparse, "memory_cut": 1 - sparse / dense}


def save_png(path: Path, left, gt, maps: dict[str, np.ndarray]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("left image", left, "gray")] + [("ground truth", gt, "viridis")] + [(k, v, "viridis") for k, v in maps.items()]
    fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 2.4))
    for ax, (title, img, cmap) in zip(axes, panels):
        ax.imshow(img, cmap=cmap, vmin=0 if cmap != "gray" else None, vmax=15 if cmap != "gray" else None)
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", default=str(CHECKPOINT))
    ap.add_argument("--float-model", default=str(FLOAT))
    ap.add_argument("--work", default="bench/build/stereo")
    ap.add_argument("--no-rtl", action="store_true", help="skip simulation, synthesis and place and route")
    args = ap.parse_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    left, right, gt = motorcycle_quarter()
    frame = np.stack([left, right])[None].astype(np.int64)

    rows, maps = {}, {}
    census = census_wta(left, right, 16, 3, 5)
    rows["census 3x3 + 5x5 box + WTA"], maps["census"] = score(census, gt), census
    model = load_float_model(args.float_model)
    if model.cost_cap is not None:  # census features through the network's own aggregation
        bits = census_transform(left), census_transform(right)
        same = wta(box_sum(np.minimum(hamming_cost_volume(*bits, 16), model.cost_cap), model.box))
        rows[f"census 3x3 + cost cap {model.cost_cap} + {model.box}x{model.box} box + WTA "
             "(the network's aggregation)"] = score(same, gt)
    try:
        s = sgbm(left, right)
        rows["OpenCV SGBM (float disparities)"] = score(s, gt)
    except ImportError:
        print("OpenCV is not installed (pip install -e '.[bench]'): no SGBM row")
    flt = hard_disparity(model, left, right)
    rows["float network"], maps["float"] = score(flt, gt), flt
    qnet = load_checkpoint(args.checkpoint)
    ref = run_reference(qnet, frame)[0, 0]
    rows["compressed network (integer reference)"], maps["compressed"] = score(ref, gt), ref

    hw: list[dict] = []
    if not args.no_rtl:
        from bench.streams import measure

        for pipeline in (0, 2):
            t0 = time.perf_counter()
            try:
                x = measure("stereo", Path(args.checkpoint), work, 1, frame.reshape(1, -1), pipeline=pipeline)
            except JpqError as e:  # nextpnr: the design does not fit (or fails otherwise): say so
                print(f"--pipeline {pipeline}: {e}")
                hw.append({"pipeline": pipeline, "failed": str(e)})
                continue
            x["seconds"] = time.perf_counter() - t0
            hw.append(x)
        # the simulation checked every output pixel of the frame against the reference
        rows["RTL (Verilator, every pixel equal to the reference)"], maps["RTL"] = score(ref, gt), ref

    weight_bits = int(qnet.meta.get("weight_bits", 8))
    mem = memory(qnet, weight_bits)
    from jpq_hw.cost import ICE40
    from jpq_hw.stream.design import lower_stream_design

    sparse_design = lower_stream_design(qnet, ICE40)
    dense = dense_twin(qnet)
    dense_design = lower_stream_design(dense, ICE40)

    features = len(single_image_weights(qnet))  # the first layers, one conv stage each

    def lut(d, feature_only=False):
        return sum(g.lut4 + s.lut4 for st, g, s in zip(d.net.stages, d.graph_costs, d.stream.stages)
                   if not feature_only or st.layers[0] < features)

    cost = {"lut4_sparse": lut(sparse_design), "lut4_dense": lut(dense_design),
            "features_lut4_sparse": lut(sparse_design, True), "features_lut4_dense": lut(dense_design, True),
            "adders_sparse": sparse_design.net.adders, "adders_dense": dense_design.net.adders}

    save_png(ROOT / "bench" / "results" / "stereo.png", left, np.where(np.isnan(gt), np.nan, gt), maps)
    lines = ["# Stereo depth on an iCE40 UP5K", "",
             "Produced by `python -m bench.stereo` on this project's 2-core machine. Motorcycle (scikit-image) at a "
             "quarter of its resolution, 125x185, 16 disparities; scored on the "
             f"{next(iter(rows.values()))['valid']:,} pixels with valid ground truth (a 4x4 block with any invalid pixel "
             "is invalid). The network never saw this pair: it trained on pairs rendered from other scikit-image "
             "pictures (`jpq_hw.stereo.data`).", "",
             "| method | EPE (px) | bad > 1 px | bad > 2 px |", "|---|---:|---:|---:|"]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['epe']:.3f} | {100 * r['bad1']:.1f}% | {100 * r['bad2']:.1f}% |")
    lines += ["", "![left, ground truth, census, float, compressed, RTL](stereo.png)", "",
              "## Memory and hardware against the same network dense", "",
              f"- learned weights (one image's feature extractor; both images share it): {mem['weights']:,}, "
              f"{mem['nonzero']:,} nonzero ({100 * mem['sparsity']:.1f}% sparse), {weight_bits}-bit",
              f"- weight memory: {mem['dense_float32_bits']:,} bits dense float32, {mem['sparse_bits']:,} bits sparse "
              f"fixed point: {100 * mem['memory_cut']:.1f}% less (the paper's headline: about 99%); in the circuit "
              "itself no weight memory at all (the weights are wired)",
              f"- iCE40 SB_LUT4 (estimate) of the feature extractor: {cost['features_lut4_dense']:,} dense, "
              f"{cost['features_lut4_sparse']:,} sparse ({100 * (1 - cost['features_lut4_sparse'] / cost['features_lut4_dense']):.1f}% "
              f"less); of the whole pipeline: {cost['lut4_dense']:,} dense, {cost['lut4_sparse']:,} sparse "
              f"({100 * (1 - cost['lut4_sparse'] / cost['lut4_dense']):.1f}% less; the paper's headline: up to 99.9% "
              "hardware cost cut, against multipliers rather than LUTs)",
              f"- adders: {cost['adders_dense']:,} dense, {cost['adders_sparse']:,} sparse", ""]
    if hw:
        lines += ["## The design on the UP5K (5,280 SB_LUT4, 30 block RAMs)", "",
                  "| --pipeline | SB_LUT4 (est) | SB_CARRY (est) | FF (est) | BRAM (est) | cycles/frame | latency | "
                  "Fmax MHz | frames/s at Fmax | sim px/s |", "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for x in hw:
            if "failed" in x:
                lines.append(f"| {x['pipeline']} | {x['failed']} |||||||||")
                continue
            r = x["report"]
            lines.append(f"| {x['pipeline']} | {x['lut4']} ({r['lut4_estimate']}) | {x['carry']} ({r['carry_estimate']}) | "
                         f"{x['ff']} ({r['ff_estimate']}) | {x['bram']} ({r['bram_estimate']}) | {r['cycles_per_frame']} | "
                         f"{r['latency_cycles']} | {x['fmax']:.1f} | {x['fmax'] * 1e6 / r['cycles_per_frame']:,.0f} | "
                         f"{x['pixels_per_s']:,.0f} |")
        lines.append("")
    text = "\n".join(lines)
    (ROOT / "bench" / "results" / "stereo.md").write_text(text)
    (ROOT / "bench" / "results" / "stereo.json").write_text(json.dumps(
        {"scores": rows, "memory": mem, "cost": cost,
         "hardware": [{k: v for k, v in x.items() if k != "report"} for x in hw]}, indent=2, default=float))
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
