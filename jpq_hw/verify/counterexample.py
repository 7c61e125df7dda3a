"""When a proof fails: an input vector on which the circuit and the checkpoint differ.

:func:`simulate_netlist` runs yosys's netlist cycle by cycle, one input vector per clock (vectorised
over the cycles: a feed-forward netlist's word at cycle ``n`` reads its inputs at ``n - delay``),
so a register skipped on one path shows as it would in a simulator. :func:`find_counterexample`
tries, in order, the design's own test vectors, inputs built to reach the accumulator value at
which an output stage failed (first layer), the extremes and random inputs, and returns the first
vector whose output differs from the reference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..ir.qnet import QNet
from ..reference import run_reference
from .evaluate import as_width, assemble, evaluate_cell, signed_value
from .netlist import Netlist
from .prove import ProofFailure


@dataclass
class Counterexample:
    x: list[int]
    got: list[int]
    want: list[int]

    def first_difference(self) -> int:
        return next(i for i, (a, b) in enumerate(zip(self.got, self.want)) if a != b)


def simulate_netlist(netlist: Netlist, inputs: dict[str, np.ndarray], held: dict[str, int] | None = None,
                     ) -> Callable[[int, int], np.ndarray]:
    """``value_of(word, delay)``: a word's value at every cycle, as it was ``delay`` cycles before.
    ``inputs[port]`` is ``[cycles, fields]`` unsigned field values (one row per clock), ``held``
    ports keep one value (default 1); registers power up at 0."""
    cycles = next(iter(inputs.values())).shape[0]
    vals: dict[int, np.ndarray] = {}
    for port, fields in netlist.input_fields.items():
        for i, w in enumerate(fields):
            if port in inputs:
                vals[w] = as_width(np.asarray(inputs[port][:, i], dtype=np.int64), netlist.words[w].width)
            else:
                vals[w] = np.full(cycles, (held or {}).get(port, 1), dtype=np.int64)

    def value_of(w: int, delay: int) -> np.ndarray:
        v = vals[w]
        if delay == 0:
            return v
        out = np.zeros_like(v)
        if delay < cycles:
            out[delay:] = v[:cycles - delay]
        return out

    for u in netlist.topological():
        if netlist.words[u].cell is not None:
            vals[u] = evaluate_cell(netlist.words[u], value_of, cycles)
    return value_of


def read_output(netlist: Netlist, value_of, cycles: int, port: str, count: int, bits: int, signed: bool
                ) -> np.ndarray:
    """``[cycles, count]`` integers of an output port cut into ``count`` fields."""
    pbits = netlist.output_bits(port)
    out = np.zeros((cycles, count), dtype=object)
    for o in range(count):
        v = assemble(pbits[o * bits:(o + 1) * bits], value_of, cycles)
        out[:, o] = signed_value(v, bits, signed)
    return out


def flat_outputs(netlist: Netlist, qnet: QNet, x: np.ndarray, latency: int) -> np.ndarray:
    """The flat design's outputs for the input vectors ``x`` fed one per clock."""
    fmt = qnet.input
    raw = np.asarray(x, dtype=np.int64) & ((1 << fmt.bits) - 1)
    feed = np.concatenate([raw, np.zeros((latency, raw.shape[1]), dtype=np.int64)]) if latency else raw
    value_of = simulate_netlist(netlist, {"x": feed})
    y = read_output(netlist, value_of, len(feed), "y", int(np.prod(qnet.output_shape)), qnet.output.bits, qnet.output.signed)
    return y[latency:latency + len(x)].astype(np.int64)


def form_values(form, qnet: QNet, x: np.ndarray) -> np.ndarray:
    """The value of ``form`` (over inputs ``("x", i)`` and layer outputs ``("y", k, o)``) for each
    input vector of ``x``, from the reference."""
    layers = run_reference(qnet, x, all_layers=True)
    out = np.full(len(x), form.const, dtype=np.int64)
    for v, c in form.coef.items():
        col = x[:, v[1]] if v[0] == "x" else layers[v[1]].reshape(len(x), -1)[:, v[2]]
        out += c * col
    return out


def _climb(distance, n_in: int, lo: int, hi: int, rng: np.random.Generator, restarts: int = 4,
           steps: int = 48) -> list[np.ndarray]:
    """The inputs where steepest descent on ``distance`` (a batch function, 0 at best) stops, from a
    few starting points: single-input moves to the bounds, the middle, one step, or a random value."""
    found = []
    for r in range(restarts):
        x = np.full(n_in, (lo + hi) // 2, dtype=np.int64) if r == 0 else rng.integers(lo, hi + 1, n_in)
        d = distance(x[None])[0]
        for _ in range(steps):
            if d == 0:
                break
            cands = np.stack([np.full(n_in, lo), np.full(n_in, hi), np.full(n_in, (lo + hi) // 2),
                              np.clip(x - 1, lo, hi), np.clip(x + 1, lo, hi), rng.integers(lo, hi + 1, n_in)])
            batch = np.repeat(x[None], cands.size, axis=0)
            idx = np.arange(cands.size)
            batch[idx, idx % n_in] = cands.reshape(-1)
            ds = distance(batch)
            j = int(np.argmin(ds))
            if ds[j] >= d:
                break
            x, d = batch[j], ds[j]
        found.append(x)
    return found


def _targeted(failure: ProofFailure, qnet: QNet, rng: np.random.Generator) -> list[np.ndarray]:
    """Inputs that drive the failing sum to a failing value (output stages) or to its extremes
    (a read that can wrap around)."""
    form = failure.form
    if form is None or form.is_constant():
        return []
    n_in = int(np.prod(qnet.input_shape))
    lo, hi = qnet.input.lo, qnet.input.hi
    if failure.targets is not None and len(failure.targets):
        targets = np.sort(np.asarray(failure.targets, dtype=np.int64))

        def distance(x):
            v = form_values(form, qnet, x)
            i = np.clip(np.searchsorted(targets, v), 1, len(targets) - 1)
            return np.minimum(np.abs(v - targets[i - 1]), np.abs(v - targets[i]))
        return _climb(distance, n_in, lo, hi, rng)
    out = []
    for sign in (1, -1):  # no target value: push the sum as far as it goes either way
        out += _climb(lambda x, sign=sign: sign * form_values(form, qnet, x), n_in, lo, hi, rng, steps=256)
    return out


def find_counterexample(netlist: Netlist, qnet: QNet, latency: int, failure: ProofFailure,
                        vectors: np.ndarray | None = None, seed: int = 0, random: int = 4096
                        ) -> Counterexample | None:
    rng = np.random.default_rng(seed)
    n_in = int(np.prod(qnet.input_shape))
    lo, hi = qnet.input.lo, qnet.input.hi
    batches = []
    if vectors is not None and len(vectors):
        batches.append(np.asarray(vectors, dtype=np.int64))
    targeted = _targeted(failure, qnet, rng)
    if targeted:
        batches.append(np.stack(targeted))
    batches.append(np.stack([np.full(n_in, lo), np.full(n_in, hi), np.zeros(n_in, dtype=np.int64).clip(lo, hi)]))
    batches.append(rng.integers(lo, hi + 1, size=(random, n_in)))
    batches.append(rng.choice([lo, hi], size=(random, n_in)))
    for x in batches:
        got = flat_outputs(netlist, qnet, x, latency)
        want = run_reference(qnet, x).reshape(len(x), -1)
        bad = np.flatnonzero((got != want).any(axis=1))
        if len(bad):
            i = int(bad[0])
            return Counterexample([int(v) for v in x[i]], [int(v) for v in got[i]], [int(v) for v in want[i]])
    return None


def replay_in_simulator(design, ce: Counterexample) -> str:
    """Run the design's own cocotb test bench on the counterexample alone (a copy of the folder
    whose ``tb/vectors.json`` holds just it) and say what the simulator found."""
    import shutil
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    from ..design_folder import write_vectors
    src = Path(design)
    if not (src / "tb" / "run_tb.py").is_file():
        return "not replayed: the folder has no tb/run_tb.py"
    with tempfile.TemporaryDirectory(prefix="jpq-cex-") as tmp:
        copy = Path(tmp) / src.name
        shutil.copytree(src, copy, ignore=shutil.ignore_patterns("sim_build"))
        write_vectors(copy, [ce.x], [ce.want])
        run = subprocess.run([sys.executable, str(copy / "tb" / "run_tb.py")], capture_output=True, text=True)
    import re
    result = re.search(r"(\d+) of (\d+) cocotb tests passed", run.stdout)
    if result and result.group(1) == result.group(2):
        return "the simulator (tb/run_tb.py) does NOT reproduce it: please report this as a jpq-hw bug"
    if result:
        return "confirmed by the design's cocotb test bench (tb/run_tb.py, Verilator): the test fails on it"
    tail = (run.stderr or run.stdout).strip().splitlines()
    return f"not replayed: the test bench did not run ({tail[-1] if tail else 'no output'})"
