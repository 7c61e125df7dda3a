"""What the constant-matrix benchmarks share (``bench/adders.py``, ``bench/adders_synth.py``).

- The problems: seeded sparse integer matrices (written ``inputs x outputs``, da4ml's kernel shape;
  jpq-hw's weight is the transpose, ``W[out, in]``) and the FIR coefficient sets of
  :mod:`bench.fir_sets`; inputs are 8-bit signed (:data:`INPUT_RANGE`) for every tool.
- Reading results files, geometric means, and what the benchmarks need to know of da4ml.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from bench.fir_sets import FIR_SETS

SHAPES = ((64, 64), (256, 128), (512, 256), (576, 64), (144, 16))  # (inputs, outputs)
DENSITIES = (0.01, 0.02, 0.05, 0.10)
WEIGHT_BITS = (8, 4)
INPUT_RANGE = (-128, 127)


# -- problems -------------------------------------------------------------------------------------

def sparse_matrix(n_in: int, n_out: int, density: float, bits: int, seed: int) -> np.ndarray:
    """``W[out, in]`` with exactly ``round(density * size)`` nonzeros, uniform over the nonzero
    ``bits``-bit signed values."""
    rng = np.random.default_rng(seed)
    size = n_in * n_out
    nnz = max(1, int(round(density * size)))
    lim = 1 << (bits - 1)
    vals = rng.integers(-lim, lim - 1, size=nnz, endpoint=True)
    vals[vals >= 0] += 1  # [-lim, lim-1] without zero
    w = np.zeros(size, np.int64)
    w[rng.choice(size, nnz, replace=False)] = vals
    return w.reshape(n_out, n_in)


def problems() -> list[dict]:
    out = []
    for k, (n_in, n_out) in enumerate(SHAPES):
        for bits in WEIGHT_BITS:
            for j, d in enumerate(DENSITIES):
                w = sparse_matrix(n_in, n_out, d, bits, seed=1000 + 100 * k + 10 * bits + j)
                out.append({"name": f"{n_in}x{n_out} {bits}b {round(d * 100)}%", "kind": "matrix", "bits": bits,
                            "density": d, "weight": w})
    for s in FIR_SETS:
        out.append({"name": s.name, "kind": "fir", "bits": s.wordlength, "density": 1.0,
                    "weight": np.array(s.coeffs, dtype=np.int64)[:, None], "source": s.source})
    return out


# -- results --------------------------------------------------------------------------------------

def geomean(xs) -> float:
    xs = [x for x in xs if x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def read_results(path: Path | str) -> dict:
    """A results JSON written earlier; a missing or unreadable one ends the script with one line."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise SystemExit(f"error: cannot read the results {path} ({e.__class__.__name__}): run the benchmark first")


# -- da4ml ----------------------------------------------------------------------------------------

def da4ml_library() -> list[Path]:
    """da4ml's Verilog library modules (shift_adder, negative, ...), without ``lookup_table.v``: the
    constant-matrix designs use no table, and Icarus rejects that file's string-valued attribute."""
    from da4ml.codegen.rtl import verilog as dv

    return sorted(p for p in (Path(dv.__file__).parent / "source").glob("*.v") if p.name != "lookup_table.v")


def da4ml_version() -> str:
    try:
        import da4ml

        return getattr(da4ml, "__version__", "?")
    except ImportError:
        return "not installed"


