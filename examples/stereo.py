"""Train, compress and export the shipped stereo network: ``examples/stereo.pt`` and its float model.

    python examples/stereo.py [-o examples/stereo.pt] [--float examples/stereo-float.pt]

The network (:class:`jpq_hw.stereo.model.StereoNet`, built for an iCE40 UP5K):

- a siamese feature extractor of one 9x9 conv (zero padding 4) with 16 outputs on each 8-bit
  grey image, binarised (a feature bit is its pre-activation > 0: in the checkpoint, a conv2d with
  a 1-bit output, i.e. a threshold); it starts as census: feature c compares the centre with one
  other pixel of the window (the 8 neighbours of census 3x3, then 8 farther pixels);
- a Hamming cost volume over 16 disparities, saturated at 3 (2 bits: a bad match counts the same
  however bad, which makes the sum that follows robust);
- a 7x7 box sum of each cost map (column sums then a row sum in the stream: 12 adders per map);
- winner-take-all: the disparity 0..15 in quarter-resolution pixels.

Steps (seeded; about 10 minutes on 2 CPU cores, most of it rendering the training pairs):

1. 1,500 training pairs rendered from other scikit-image pictures with known disparity
   (:func:`jpq_hw.stereo.data.make_training_pairs`; the Motorcycle pair is never seen);
2. float training with the relaxed pipeline (straight-through feature bits, soft Hamming cost,
   soft-argmin; :func:`jpq_hw.stereo.train.train_float`);
3. jpq-hw's compression stage (:func:`jpq_hw.stereo.compress.compress_stereo`): Taylor-score
   pruning to 95.1% sparsity (64 of the 1,296 weights kept) on a gradual schedule with recover
   fine-tuning, then quantization to 3-bit weights with the masks held (QAT);
4. export as a stream-ready checkpoint (input ``[2, 125, 185]``: channel 0 the left image, 1 the
   right, unsigned 8-bit; output ``[1, 125, 185]``: the disparity), checked exact against the
   quantized model on the Motorcycle frame, with the scores of the float and the compressed
   network on Motorcycle in its ``meta``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from jpq_hw.ir import QNet, save_checkpoint  # noqa: E402
from jpq_hw.reference import run_reference  # noqa: E402
from jpq_hw.stereo.baselines import census_wta  # noqa: E402
from jpq_hw.stereo.compress import (StereoCompressConfig, check_stereo_exact, compress_stereo,  # noqa: E402
                                    save_float_model, single_image_weights)
from jpq_hw.stereo.data import make_training_pairs, motorcycle_quarter  # noqa: E402
from jpq_hw.stereo.metrics import score  # noqa: E402
from jpq_hw.stereo.model import StereoNet, census_init, hard_disparity  # noqa: E402
from jpq_hw.stereo.train import train_float  # noqa: E402

HERE = Path(__file__).resolve().parent
ARCH = dict(hidden=(), kernels=(9,), F=16, D=16, box=7, cost_cap=3, binarize="ste")
PAIRS, PAIR_SIZE, PAIR_SEED = 1500, (64, 96), 1
FLOAT_STEPS, FLOAT_LR = 300, 5e-4
COMPRESS = StereoCompressConfig(sparsity=0.951, criterion="taylor", mode="recover", prune_events=10,
                                prune_steps=600, prune_lr=5e-4, weight_bits=3, act_bits=6, qat_steps=300,
                                qat_lr=1.25e-4, crop=(48, 64), seed=0)


def learned_weights(qnet: QNet, masks) -> dict:
    """One image's feature extractor (the checkpoint's block-diagonal convs hold it twice): its
    weights, those the pruning mask kept, and those nonzero after quantization."""
    return {"total": int(sum(m.numel() for m in masks)), "kept_by_mask": int(sum(int(m.sum()) for m in masks)),
            "nonzero": sum(int(np.count_nonzero(w)) for w in single_image_weights(qnet))}


def _rounded(s: dict) -> dict:
    return {k: (round(float(v), 6) if isinstance(v, float) else v) for k, v in s.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-o", "--output", default=str(HERE / "stereo.pt"))
    ap.add_argument("--float", dest="float_path", default=str(HERE / "stereo-float.pt"))
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    data = make_training_pairs(PAIRS, size=PAIR_SIZE, seed=PAIR_SEED)
    print(f"{PAIRS} training pairs rendered in {time.perf_counter() - t0:.0f} s", flush=True)
    left, right, gt = motorcycle_quarter()

    model = StereoNet(**ARCH)
    census_init(model)
    t1 = time.perf_counter()
    train_float(model, FLOAT_STEPS, seed=0, data=data, lr=FLOAT_LR, crop=COMPRESS.crop)
    float_score = score(hard_disparity(model, left, right), gt)
    print(f"float model trained in {time.perf_counter() - t1:.0f} s: Motorcycle EPE {float_score['epe']:.3f}, "
          f"bad > 2 px {100 * float_score['bad2']:.1f}%", flush=True)

    census_score = score(census_wta(left, right, 16, 3, 5), gt)
    result = compress_stereo(model, data, COMPRESS, log=print)
    frame = np.stack([left, right])[None].astype(np.int64)
    qnet = result.qnet
    check_stereo_exact(qnet, result.quant, model, left, right)
    compressed_score = score(run_reference(qnet, frame)[0, 0], gt)
    meta = dict(qnet.meta)
    meta.update({
        "dataset": "skimage.data.stereo_motorcycle (evaluation only)",
        "interface": "input channel 0: left, 1: right grey levels (rgb2gray * 255, cropped to 500x740, 4x4 block "
                     "means, rounded); output: disparity in quarter-resolution pixels",
        "training_pairs": {"count": PAIRS, "size": list(PAIR_SIZE), "seed": PAIR_SEED,
                           "generator": "jpq_hw.stereo.data.make_training_pairs"},
        "float_training": {"steps": FLOAT_STEPS, "lr": FLOAT_LR, "init": "census_init"},
        "motorcycle": {"float": _rounded(float_score), "compressed": _rounded(compressed_score),
                       "census_3x3_box5": _rounded(census_score)},
        "learned_weights": learned_weights(qnet, result.masks),
    })
    qnet = QNet(qnet.input_shape, qnet.input, qnet.layers, meta)
    save_checkpoint(qnet, args.output)
    save_float_model(model, args.float_path)
    print(f"compressed ({result.seconds['prune']:.0f} s pruning, {result.seconds['quantize']:.0f} s quantization): "
          f"Motorcycle EPE {compressed_score['epe']:.3f}, bad > 2 px {100 * compressed_score['bad2']:.1f}% "
          f"(census 3x3 + 5x5 box: {census_score['epe']:.3f}, {100 * census_score['bad2']:.1f}%); "
          f"{qnet.nnz} nonzero weights; wrote {args.output} and {args.float_path} "
          f"in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
