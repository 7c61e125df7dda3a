"""Compression benchmark: test accuracy against sparsity, criterion, fine-tuning mode and weight bits.

    python bench/compression.py                 # full default run, ~60-75 min on 2 processes x 1 thread
    python bench/compression.py --quick         # a few minutes: digits-mlp 1 seed + the digits-wide target point
    python bench/compression.py --report-only   # rebuild the markdown and plots from the jsonl

For every example (``digits-mlp``, ``digits-wide``, a slice of ``digits-cnn``), seed, pruning
criterion (taylor / magnitude / random / blend), fine-tuning mode (recover / frozen / compensate)
and target sparsity, the float model of that (example, seed) is pruned **once** with
:func:`jpq_hw.compress.prune` (library defaults: gradual cubic schedule, 20 events, mask frozen at
60 % of 60 SGD epochs, global scope); the pruned float model and its masks are then quantized at
6 bits, 4 bits and ternary by :func:`jpq_hw.compress.quantize` (calibration, QAT with the masks held:
the library's 20 epochs for the target points, ``--qat-epochs`` for the sweep; export) and measured with
:func:`jpq_hw.compress.metrics.compute_metrics`: each width is what :func:`jpq_hw.compress.compress`
(prune then quantize) gives at that width, for one pruning run. A dense reference (sparsity 0, no
fine-tuning, same QAT: the float model quantized with all-ones masks) is added per (example, seed).
Every exported QNet of a linear network is lowered with :func:`jpq_hw.flow.lower` for the iCE40
LUT4 estimate and the adder count (conv2d is not lowered yet, so the CNN has none).

Float models are trained once per (example, seed) and cached (``--cache``). Every finished unit
(one pruning and its three quantizations) is appended to ``<out>.jsonl``; a rerun skips units
already there, so the benchmark can be run in pieces. Outputs: ``<out>.jsonl`` (raw rows),
``<out>.md`` (tables, targets, the Taylor verdict), ``<out>_summary.csv`` (means and spreads),
``<out>_sparsity.png`` and ``<out>_frontier.png``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shlex
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "bench" / "results" / "compression"

MODELS = ("digits-mlp", "digits-wide", "digits-cnn")
CRITERIA = ("taylor", "magnitude", "random", "blend")
MODES = ("recover", "frozen", "compensate")
BITS = (6, 4, 2)                     # 2 = ternary; the unit's pruning time is in the first one's row
BIT_LABELS = {"float": "float (pruned, before quantization)", 6: "6-bit weights", 4: "4-bit weights",
              2: "ternary weights"}
SHORT_BITS = {"float": "float", 6: "6-bit", 4: "4-bit", 2: "ternary"}

# (model, criteria, modes, sparsities)
FULL_GRID = [
    ("digits-mlp", CRITERIA, MODES, (0.80, 0.85, 0.90, 0.95)),
    ("digits-wide", CRITERIA, MODES, (0.90, 0.95, 0.98, 0.99)),
    ("digits-cnn", ("taylor", "magnitude"), ("recover", "frozen"), (0.85, 0.95)),
]
QUICK_GRID = [
    ("digits-mlp", CRITERIA, MODES, (0.85, 0.95)),
    ("digits-wide", ("taylor", "magnitude"), ("recover",), (0.99,)),
]
TARGETS = [  # (model, sparsity, bits, max points below float, baseline note)
    ("digits-mlp", 0.85, 6, 2.0, None),
    ("digits-wide", 0.99, 6, 3.0, 2.7),
]


# ---------------------------------------------------------------------------------------------- units
@dataclass(frozen=True)
class Settings:
    prune_epochs: int = 60
    qat_epochs: int = 20
    float_epochs: int | None = None   # None: the example's default

    def tag(self) -> str:
        fe = "def" if self.float_epochs is None else str(self.float_epochs)
        return f"pe{self.prune_epochs}-qe{self.qat_epochs}-fe{fe}"


@dataclass(frozen=True)
class Unit:
    """One pruning run (or the dense reference, criterion ``dense``) and its quantizations."""

    model: str
    seed: int
    criterion: str
    mode: str
    sparsity: float

    def key(self, settings: Settings) -> str:
        return f"{self.model}|s{self.seed}|{self.criterion}|{self.mode}|{self.sparsity:.4f}|{settings.tag()}"


COST = {"digits-mlp": 1.0, "digits-wide": 5.0, "digits-cnn": 2.5}


def make_units(grid, seeds: Sequence[int], dense: bool = True) -> list[Unit]:
    """All units of ``grid``, seed by seed (so a partial run has whole seeds), expensive ones first."""
    units = []
    for seed in seeds:
        batch = []
        for model, crits, modes, sps in grid:
            if dense:
                batch.append(Unit(model, seed, "dense", "dense", 0.0))
            for sp in sps:
                for crit in crits:
                    for mode in modes:
                        batch.append(Unit(model, seed, crit, mode, float(sp)))
        batch.sort(key=lambda u: -COST[u.model] * (0.4 if u.mode == "compensate" else 1.0))
        units.extend(batch)
    return units


def target_jobs(grid, seeds: Sequence[int], target: Settings) -> list[tuple]:
    """The target points at ``target`` settings, 6-bit only: taylor (the default) and magnitude, recover."""
    models = {g[0] for g in grid}
    return [(Unit(model, seed, crit, "recover", sp), target, (bits,))
            for seed in seeds for model, sp, bits, _, _ in TARGETS if model in models
            for crit in ("taylor", "magnitude")]


# ---------------------------------------------------------------------------------------------- workers
_DATA: dict[str, Any] = {}


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)


def _data(model: str):
    if model not in _DATA:
        from jpq_hw.compress import example_data

        _DATA[model] = example_data(model)
    return _DATA[model]


def float_path(cache: Path, model: str, seed: int, settings: Settings) -> Path:
    fe = "def" if settings.float_epochs is None else str(settings.float_epochs)
    return cache / f"{model}-seed{seed}-e{fe}.pt"


def get_float(model: str, seed: int, settings: Settings, cache: Path):
    """The float model of (model, seed): loaded from ``cache`` or trained and saved there."""
    import torch

    from jpq_hw.compress import build_example, train_float

    path = float_path(cache, model, seed, settings)
    if path.is_file():
        net = build_example(model, seed)
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return net
    train, _ = _data(model)
    net = train_float(model, train, epochs=settings.float_epochs, seed=seed)
    cache.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=cache, suffix=".tmp")
    os.close(fd)
    torch.save(net.state_dict(), tmp)
    os.replace(tmp, path)
    return net


def train_float_task(model: str, seed: int, settings: Settings, cache: str) -> tuple[str, int, float]:
    _init_worker()
    t = time.perf_counter()
    get_float(model, seed, settings, Path(cache))
    return model, seed, time.perf_counter() - t


def _config(model: str, unit: Unit, settings: Settings, bits: int, **over):
    from jpq_hw.compress import config_for_example

    kw = dict(criterion=unit.criterion, mode=unit.mode, sparsity=unit.sparsity, prune_epochs=settings.prune_epochs,
              qat_epochs=settings.qat_epochs, weight_bits=bits, seed=unit.seed, adders=False, verify=True)
    kw.update(over)
    return config_for_example(model, **kw)


def _quantize(net, masks, train, test, config, prune_seconds: float):
    """Stage 2 of ``net`` with ``masks`` held (:func:`jpq_hw.compress.quantize`) and the metrics
    :func:`jpq_hw.compress.compress` computes: an object with the ``qnet``, ``masks``, ``accuracies``
    (ptq, quantized), ``metrics`` and ``seconds`` (prune, quantize, export, metrics) of its result."""
    from types import SimpleNamespace

    from jpq_hw.compress import quantize
    from jpq_hw.compress.metrics import compute_metrics

    q = quantize(net, masks, train, test, config)
    t = time.perf_counter()
    metrics = compute_metrics(q.qnet, config.weight_bits, adders=config.adders)
    seconds = {"prune": prune_seconds, **q.seconds, "metrics": time.perf_counter() - t}
    return SimpleNamespace(qnet=q.qnet, masks=list(masks), accuracies=dict(q.accuracies), metrics=metrics,
                           seconds=seconds)


def _hardware(qnet, kind: str) -> dict[str, Any]:
    if kind != "linear":
        return {"lut4": None, "carry": None, "adders": None, "subtractors": None, "adder_depth": None,
                "lower_s": None}
    from jpq_hw.flow import lower

    t = time.perf_counter()
    design = lower(qnet)
    st = design.graph.stats()
    return {"lut4": int(design.cost.total("lut4")), "carry": int(design.cost.total("carry")),
            "adders": int(st["adders"]), "subtractors": int(st["subtractors"]), "adder_depth": int(st["depth"]),
            "lower_s": time.perf_counter() - t}


def _row(unit: Unit, settings: Settings, bits: int, result, acc_float: float, acc_pruned: float,
         mask_nnz: int, weights: int, seconds: dict[str, float]) -> dict[str, Any]:
    qnet = result.qnet
    kind = "linear" if all(layer.kind == "linear" for layer in qnet.layers) else "conv2d"
    row = {
        "key": f"{unit.key(settings)}|b{bits}", "unit": unit.key(settings), **asdict(unit),
        "settings": settings.tag(), "prune_epochs": settings.prune_epochs, "qat_epochs": settings.qat_epochs,
        "weight_bits": bits, "acc_float": acc_float, "acc_pruned": acc_pruned,
        "acc_ptq": result.accuracies["ptq"], "acc_quant": result.accuracies["quantized"],
        "weights": weights, "mask_nnz": mask_nnz, "mask_sparsity": 1.0 - mask_nnz / weights,
        "qnet_nnz": int(sum(layer.nnz for layer in qnet.layers)),
        "layer_nnz": {layer.name: int(layer.nnz) for layer in qnet.layers},
        "layer_mask_nnz": {layer.name: int(m.sum()) for layer, m in zip(qnet.layers, result.masks)},
        "sparse_bits": int(result.metrics["memory"]["sparse_bits"]), "bops": float(result.metrics["bops"]),
        "seconds": dict(seconds),
    }
    row.update(_hardware(qnet, kind))
    return row


def run_unit(unit: Unit, settings: Settings, cache: str, bits_list: Sequence[int] = BITS) -> list[dict[str, Any]]:
    """Prune once (or not, for ``dense``), quantize at every width of ``bits_list``; one row per width."""
    _init_worker()
    import torch

    from jpq_hw.compress import accuracy, prune
    from jpq_hw.compress.models import get_example

    t_unit = time.perf_counter()
    net = get_float(unit.model, unit.seed, settings, Path(cache))
    train, test = _data(unit.model)
    ex = get_example(unit.model)
    acc_float = accuracy(net, (test[0].float() * 2.0 ** ex.input_exp, test[1]))
    layers = [m for m in net.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]
    weights = sum(m.weight.numel() for m in layers)
    # the dense reference is not pruned: its config's pruning fields go unused, they only have to be valid
    over = dict(criterion="magnitude", mode="frozen", sparsity=0.0) if unit.criterion == "dense" else {}
    configs = {bits: _config(unit.model, unit, settings, bits, **over) for bits in bits_list}
    if unit.criterion == "dense":
        model, masks, acc_pruned, prune_s = net, [torch.ones_like(m.weight) for m in layers], acc_float, 0.0
    else:
        pruned = prune(net, train, test, configs[bits_list[0]])
        model, masks, acc_pruned = pruned.model, pruned.masks, pruned.accuracies["pruned"]
        prune_s = pruned.seconds["prune"]
    nnz = int(sum(int(m.sum()) for m in masks))
    rows = []
    for i, bits in enumerate(bits_list):
        # the pruning time goes to the first width's row, as compress() at that width would report it
        r = _quantize(model, masks, train, test, configs[bits], prune_s if i == 0 else 0.0)
        rows.append(_row(unit, settings, bits, r, acc_float, acc_pruned, nnz, weights, r.seconds))
    total = time.perf_counter() - t_unit
    for row in rows:
        row["unit_seconds"] = total
    return rows


# ---------------------------------------------------------------------------------------------- driver
def load_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of the jsonl (the last one wins for a repeated key); a torn last line is ignored."""
    if not path.is_file():
        return []
    by_key: dict[str, dict] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        by_key[row["key"]] = row
    return list(by_key.values())


def _log(msg: str) -> None:
    print(msg, flush=True)


Job = tuple  # (Unit, Settings, bits tuple)


def run_all(work: list[Job], jsonl: Path, cache: Path, jobs: int, log=_log) -> float:
    """Run the jobs whose rows are not yet in ``jsonl``, appending their rows; returns the wall seconds."""
    t0 = time.perf_counter()
    done_rows = load_rows(jsonl)
    done = defaultdict(set)
    for r in done_rows:
        done[r["unit"]].add(r["weight_bits"])
    todo, seen = [], set()
    for u, st, bl in work:
        k = (u.key(st), tuple(bl))
        if k not in seen and not set(bl) <= done[u.key(st)]:
            todo.append((u, st, tuple(bl)))
        seen.add(k)
    log(f"{len(seen)} jobs, {len(seen) - len(todo)} already in {jsonl}, {len(todo)} to run on {jobs} process(es)")
    if not todo:
        return 0.0
    ran_from = time.time()
    jsonl.parent.mkdir(parents=True, exist_ok=True)
    floats = sorted({(u.model, u.seed, st.float_epochs) for u, st, _ in todo}, key=str)
    floats = [(m, sd, Settings(float_epochs=fe)) for m, sd, fe in floats
              if not float_path(cache, m, sd, Settings(float_epochs=fe)).is_file()]

    def write(rows: list[dict]) -> None:
        with jsonl.open("a") as fh:
            fh.write("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
            fh.flush()

    def report(i: int, unit: Unit, rows: list[dict]) -> None:
        el = time.perf_counter() - t0
        eta = el / i * (len(todo) - i)
        accs = "  ".join(f"{SHORT_BITS[r['weight_bits']]} {100 * r['acc_quant']:.1f}" for r in rows)
        log(f"[{i}/{len(todo)}] {unit.model} s{unit.seed} {unit.criterion}/{unit.mode} {unit.sparsity:.2f} "
            f"(QAT {rows[0]['qat_epochs']}): "
            f"float {100 * rows[0]['acc_float']:.1f} pruned {100 * rows[0]['acc_pruned']:.1f}  {accs}  "
            f"({rows[0]['unit_seconds']:.0f} s; {el / 60:.1f} min elapsed, ~{eta / 60:.0f} min left)")

    if jobs <= 1:
        for m, sd, st in floats:
            train_float_task(m, sd, st, str(cache))
        for i, (u, st, bl) in enumerate(todo, start=1):
            rows = run_unit(u, st, str(cache), bl)
            write(rows)
            report(i, u, rows)
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn"),
                                 initializer=_init_worker) as pool:
            for fut in as_completed([pool.submit(train_float_task, m, sd, st, str(cache)) for m, sd, st in floats]):
                m, sd, sec = fut.result()
                log(f"float model {m} seed {sd} trained in {sec:.1f} s")
            futs = {pool.submit(run_unit, u, st, str(cache), bl): u for u, st, bl in todo}
            for i, fut in enumerate(as_completed(futs), start=1):
                rows = fut.result()
                write(rows)
                report(i, futs[fut], rows)
    wall = time.perf_counter() - t0
    runs = jsonl.parent / f"{jsonl.stem}_runs.jsonl"
    with runs.open("a") as fh:
        fh.write(json.dumps({"command": "python " + " ".join(sys.argv), "jobs_run": len(todo), "processes": jobs,
                             "wall_s": round(wall, 1), "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ran_from)),
                             "finished": time.strftime("%Y-%m-%d %H:%M:%S")}) + "\n")
    return wall


# ---------------------------------------------------------------------------------------------- aggregation
def _mean_std(vals: Sequence[float]) -> tuple[float, float]:
    m = statistics.fmean(vals)
    return m, (statistics.stdev(vals) if len(vals) > 1 else float("nan"))


def groups(rows: Iterable[dict]) -> dict[tuple, list[dict]]:
    """Rows grouped by (model, criterion, mode, sparsity, bits), ``bits`` also ``"float"`` (the pruned model)."""
    g: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        g[(r["model"], r["criterion"], r["mode"], r["sparsity"], r["weight_bits"])].append(r)
        if r["weight_bits"] == BITS[0]:
            g[(r["model"], r["criterion"], r["mode"], r["sparsity"], "float")].append(r)
    for k in g:
        g[k].sort(key=lambda r: r["seed"])
    return g


def acc_of(row: dict, bits) -> float:
    return row["acc_pruned"] if bits == "float" else row["acc_quant"]


def summary(rows: list[dict]) -> list[dict[str, Any]]:
    """One record per (model, criterion, mode, sparsity, bits): means and sample std over seeds."""
    out = []
    for (model, crit, mode, sp, bits), rs in sorted(groups(rows).items(), key=lambda kv: _sort_key(kv[0])):
        acc = [100 * acc_of(r, bits) for r in rs]
        gap = [100 * (r["acc_float"] - acc_of(r, bits)) for r in rs]
        rec = {"model": model, "criterion": crit, "mode": mode, "sparsity": sp, "bits": bits, "seeds": len(rs),
               "acc_mean": _mean_std(acc)[0], "acc_std": _mean_std(acc)[1],
               "drop_mean": _mean_std(gap)[0], "drop_std": _mean_std(gap)[1],
               "float_mean": statistics.fmean(100 * r["acc_float"] for r in rs)}
        for f in ("mask_nnz", "qnet_nnz", "lut4", "adders", "sparse_bits"):
            vals = [r[f] for r in rs if r.get(f) is not None] if bits != "float" or f == "mask_nnz" else []
            rec[f] = statistics.fmean(vals) if vals else None
        out.append(rec)
    return out


def _sort_key(k: tuple) -> tuple:
    model, crit, mode, sp, bits = k
    ci = CRITERIA.index(crit) if crit in CRITERIA else -1
    mi = MODES.index(mode) if mode in MODES else -1
    bi = -1 if bits == "float" else BITS.index(bits)
    return (MODELS.index(model) if model in MODELS else 9, bi, ci, mi, sp)


def pareto(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points on the frontier of low cost (first) and high accuracy (second), by cost."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    best = -math.inf
    front = []
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


# ---------------------------------------------------------------------------------------------- markdown
def _fmt(m: float, s: float, digits: int = 1) -> str:
    if math.isnan(s):
        return f"{m:.{digits}f}"
    return f"{m:.{digits}f} ± {s:.{digits}f}"


def _pct(s: float) -> str:
    return f"{100 * s:g}%"


def paired(g: dict, model: str, a: str, b: str, mode: str, sp: float, bits) -> tuple[float, float, int] | None:
    """Mean and std over seeds of ``acc(a) - acc(b)`` (points), same model, seed, mode, sparsity, bits."""
    ra = {r["seed"]: acc_of(r, bits) for r in g.get((model, a, mode, sp, bits), [])}
    rb = {r["seed"]: acc_of(r, bits) for r in g.get((model, b, mode, sp, bits), [])}
    seeds = sorted(set(ra) & set(rb))
    if not seeds:
        return None
    d = [100 * (ra[s] - rb[s]) for s in seeds]
    m, s = _mean_std(d)
    return m, s, len(seeds)


def _verdict(m: float, s: float, margin: float = 0.5) -> int:
    """+1 clearly ahead, -1 clearly behind, 0 within noise: |mean| > margin and > one seed std."""
    noise = max(margin, 0.0 if math.isnan(s) else s)
    return 1 if m > noise else (-1 if m < -noise else 0)


def taylor_section(rows: list[dict]) -> list[str]:
    """The "where Taylor wins and where it does not" paragraph, computed from the paired differences."""
    g = groups(rows)
    lines = ["## Where Taylor wins and where it does not", ""]
    lines.append("Paired differences: for each model, mode, sparsity and weight format, taylor's test accuracy minus "
                 "the other criterion's on the same float model (same seed), mean over seeds. A cell counts as a "
                 "win (loss) when the mean difference exceeds both 0.5 points and the seed-to-seed standard "
                 "deviation of the difference; otherwise it is a tie. Cells: every sparsity x {float, 6-bit, "
                 "4-bit, ternary}.")
    lines.append("")
    lines.append("| model | mode | vs | wins | ties | losses | mean diff | best cell | worst cell |")
    lines.append("|---|---|---|---:|---:|---:|---:|---|---|")
    facts: dict[tuple, dict] = {}
    for model in MODELS:
        sps = sorted({k[3] for k in g if k[0] == model and k[1] == "taylor"})
        if not sps:
            continue
        for mode in MODES:
            for other in ("magnitude", "blend", "random"):
                cells = []
                for sp in sps:
                    for bits in ("float", *BITS):
                        p = paired(g, model, "taylor", other, mode, sp, bits)
                        if p:
                            cells.append((sp, bits, *p))
                if not cells:
                    continue
                v = [_verdict(m, s) for _, _, m, s, _ in cells]
                best = max(cells, key=lambda c: c[2])
                worst = min(cells, key=lambda c: c[2])
                mean = statistics.fmean(c[2] for c in cells)
                facts[(model, mode, other)] = {"cells": cells, "wins": v.count(1), "losses": v.count(-1),
                                               "ties": v.count(0), "mean": mean, "best": best, "worst": worst,
                                               "verdicts": v}
                lines.append(f"| {model} | {mode} | {other} | {v.count(1)} | {v.count(0)} | {v.count(-1)} | "
                             f"{mean:+.1f} | {best[2]:+.1f} ({_pct(best[0])}, {SHORT_BITS[best[1]]}) | "
                             f"{worst[2]:+.1f} ({_pct(worst[0])}, {SHORT_BITS[worst[1]]}) |")
    lines.append("")
    lines.extend(_taylor_prose(facts, g))
    return lines


def _paired_cfg(g: dict, model: str, a: tuple[str, str], b: tuple[str, str], sp: float, bits):
    """Mean and std over common seeds of ``acc(a) - acc(b)`` in points; ``a``, ``b`` are (criterion, mode)."""
    ra = {r["seed"]: acc_of(r, bits) for r in g.get((model, *a, sp, bits), [])}
    rb = {r["seed"]: acc_of(r, bits) for r in g.get((model, *b, sp, bits), [])}
    seeds = sorted(set(ra) & set(rb))
    if not seeds:
        return None
    return _mean_std([100 * (ra[s] - rb[s]) for s in seeds])


def _mean_acc(g: dict, model: str, crit: str, mode: str, sp: float, bits) -> float | None:
    rs = g.get((model, crit, mode, sp, bits), [])
    return statistics.fmean(100 * acc_of(r, bits) for r in rs) if rs else None


def winners(g: dict, model: str) -> list[dict]:
    """Per (weight format, sparsity): the best criterion x mode, taylor's best mode, and their paired gap."""
    sps = sorted({k[3] for k in g if k[0] == model and k[1] in CRITERIA})
    out = []
    for bits in ("float", *BITS):
        for sp in sps:
            cands = [(m, c, md) for c in CRITERIA for md in MODES
                     if (m := _mean_acc(g, model, c, md, sp, bits)) is not None]
            if not cands:
                continue
            best = max(cands)
            tay = [x for x in cands if x[1] == "taylor"]
            rec = {"bits": bits, "sparsity": sp, "best": best, "taylor": max(tay) if tay else None}
            if tay:
                d = _paired_cfg(g, model, ("taylor", max(tay)[2]), best[1:], sp, bits)
                rec["gap"] = d
                rec["taylor_ok"] = d is not None and _verdict(*d) >= 0
            out.append(rec)
    return out


def _winners_table(ws: list[dict], model: str) -> list[str]:
    if not ws:
        return []
    sps = sorted({w["sparsity"] for w in ws})
    cell = {(w["bits"], w["sparsity"]): w for w in ws}
    lines = [f"Best criterion / mode of {model} per column (mean %), and taylor's best mode with its paired gap "
             f"to it (points; *tie* when within noise):", "",
             "| weights | " + " | ".join(_pct(sp) for sp in sps) + " |", "|---|" + "---|" * len(sps)]
    for bits in ("float", *BITS):
        vals = []
        for sp in sps:
            w = cell.get((bits, sp))
            if not w:
                vals.append("")
                continue
            m, c, md = w["best"]
            txt = f"{c}/{md} {m:.1f}"
            if w["taylor"] and c != "taylor":
                tm, _, tmd = w["taylor"]
                gap = w.get("gap")
                tag = "tie" if w.get("taylor_ok") else f"{gap[0]:+.1f}" if gap else "?"
                txt += f"; taylor/{tmd} {tm:.1f} (*{tag}*)" if tag == "tie" else f"; taylor/{tmd} {tm:.1f} ({tag})"
            vals.append(txt)
        lines.append(f"| {SHORT_BITS[bits]} | " + " | ".join(vals) + " |")
    lines.append("")
    return lines


def _bottom_line(facts: dict, g: dict) -> list[str]:
    """Three or four data-driven sentences over all models: where Taylor wins, where it does not."""
    models = [m for m in MODELS if winners(g, m)]
    if not models:
        return []
    sents = []
    # where magnitude breaks and taylor does not
    breaks = []
    for model in models:
        for mode in ("recover", "compensate"):
            f = facts.get((model, mode, "magnitude"))
            if not f:
                continue
            big = [c for c in f["cells"] if c[1] == "float" and c[2] > 10]
            if big:
                c = max(big, key=lambda c: c[2])
                mag = _mean_acc(g, model, "magnitude", mode, c[0], "float")
                tay = _mean_acc(g, model, "taylor", mode, c[0], "float")
                breaks.append(f"{model} {mode} at {_pct(c[0])} ({tay:.0f} % vs {mag:.0f} %)")
    if breaks:
        sents.append("Taylor wins big where magnitude breaks down at high sparsity: in recover mode (masks "
                     "re-chosen from dense shadow weights that keep training) and in compensate mode (least-squares "
                     "refit, no training) — " + "; ".join(breaks)
                     + " (taylor vs magnitude, pruned float accuracy).")
    ws_all = [(m, w) for m in models for w in winners(g, m)]
    frozen_best = sum(1 for _, w in ws_all if w["best"][2] == "frozen")
    ok = sum(1 for _, w in ws_all if w.get("taylor_ok"))
    mag_best = sum(1 for _, w in ws_all if w["best"][1] in ("magnitude", "blend"))
    sents.append(f"But the best operating points mostly come from frozen-mode fine-tuning (best mode in {frozen_best} of "
                 f"{len(ws_all)} columns over all models), and there magnitude and blend match or beat Taylor: the "
                 f"column winner is magnitude or blend in {mag_best} of {len(ws_all)} columns, and Taylor is within "
                 f"noise of the winner in {ok}.")
    tern = [(w["gap"][0], m, w["sparsity"]) for m, w in ws_all
            if w["bits"] == 2 and w.get("gap") and not w.get("taylor_ok")]
    if tern:
        worst = min(tern)
        sents.append(f"Taylor is weakest at ternary weights: it trails the best configuration in {len(tern)} of "
                     f"{sum(1 for _, w in ws_all if w['bits'] == 2)} ternary columns, by up to {-worst[0]:.1f} points "
                     f"({worst[1]}, {_pct(worst[2])}).")
    big_model = [m for m in models if sum(1 for w in winners(g, m) if w.get("taylor_ok")) >= 0.75 * len(winners(g, m))]
    if big_model:
        sents.append(f"On {', '.join(big_model)} Taylor (in its best mode) is within noise of the best in at least "
                     f"three columns of four, so it is a safe criterion there; everywhere, frozen mode is the safer "
                     f"fine-tuning mode, and magnitude or blend the better criterion for ternary weights.")
    return [" ".join(sents), ""]


def _taylor_prose(facts: dict, g: dict) -> list[str]:
    """Plain sentences from ``facts`` (paired taylor - other differences) and the per-column winners."""
    out = []
    for model in MODELS:
        ws = winners(g, model)
        if not ws:
            continue
        out.extend(_winners_table(ws, model))
    out += ["**In plain words:**", ""]
    out.extend(_bottom_line(facts, g))
    for model in MODELS:
        ws = winners(g, model)
        if not ws:
            continue
        n = len(ws)
        sents = []
        # 1. is taylor the criterion to pick?
        ok = [w for w in ws if w.get("taylor_ok")]
        top = [w for w in ws if w["best"][1] == "taylor"]
        lost = [w for w in ws if w["taylor"] and not w.get("taylor_ok")]
        s1 = (f"Taylor (in its best mode) is the best criterion or within noise of the best in {len(ok)} of {n} "
              f"columns (sparsity x weight format; outright best in {len(top)})")
        if lost:
            worst = max(lost, key=lambda w: -w["gap"][0])
            who = defaultdict(int)
            for w in lost:
                who[f"{w['best'][1]}/{w['best'][2]}"] += 1
            s1 += (f"; it loses the other {len(lost)}, most often to " + ", ".join(
                f"{k} ({v})" for k, v in sorted(who.items(), key=lambda kv: -kv[1])[:2])
                + f", by up to {-worst['gap'][0]:.1f} points ({_pct(worst['sparsity'])}, "
                f"{SHORT_BITS[worst['bits']]})")
        sents.append(s1 + ".")
        # 2. which mode wins the columns
        modes = defaultdict(int)
        for w in ws:
            modes[w["best"][2]] += 1
        mode_s = ", ".join(f"{m} {modes[m]}" for m in MODES if modes[m])
        sents.append(f"Best mode per column: {mode_s} of {n}.")
        # 3. taylor vs magnitude per mode
        parts = []
        for mode in MODES:
            f = facts.get((model, mode, "magnitude"))
            if not f:
                continue
            by_sp = defaultdict(list)
            for sp, bits, m, sd, _ in f["cells"]:
                by_sp[sp].append(m)
            sp_means = {sp: statistics.fmean(ms) for sp, ms in by_sp.items()}
            lo, hi = min(sp_means), max(sp_means)
            trend = (f", {sp_means[lo]:+.1f} at {_pct(lo)} -> {sp_means[hi]:+.1f} at {_pct(hi)}"
                     if len(sp_means) > 1 else "")
            parts.append(f"{mode}: {f['wins']} wins / {f['losses']} losses of {len(f['cells'])}, mean "
                         f"{f['mean']:+.1f}{trend}")
        if parts:
            sents.append("Against magnitude at the same mode (wins / losses of cells, mean paired difference in "
                         "points, by sparsity): " + "; ".join(parts) + ".")
        parts = []
        for mode in MODES:
            f = facts.get((model, mode, "blend"))
            if f:
                parts.append(f"{mode} {f['wins']} / {f['losses']} (mean {f['mean']:+.1f})")
        if parts:
            sents.append("Against blend: " + "; ".join(parts) + ".")
        # 4. ternary: how many kept weights the quantizer zeroes, per criterion
        zs = []
        for crit in CRITERIA:
            rs = [r for k, v in g.items() if k[0] == model and k[1] == crit and k[4] == 2 for r in v]
            if rs:
                zs.append((crit, 100 * statistics.fmean(1 - r["qnet_nnz"] / r["mask_nnz"] for r in rs if r["mask_nnz"])))
        if zs:
            zd = dict(zs)
            why = (": consistent with Taylor keeping small weights with large gradients, which the ternary grid "
                   "rounds away"
                   if zd.get("taylor", 0) > zd.get("magnitude", 0) + 5 else "")
            sents.append("Ternary quantization zeroes a further " + ", ".join(f"{z:.0f} % ({c})" for c, z in zs)
                         + f" of the kept weights (mean over modes and sparsities){why}.")
        # 5. collapses of recover mode (non-taylor criteria) where frozen holds up
        coll = []
        for crit in CRITERIA:
            for sp in sorted({w["sparsity"] for w in ws}):
                r = _mean_acc(g, model, crit, "recover", sp, "float")
                fz = _mean_acc(g, model, crit, "frozen", sp, "float")
                if r is not None and fz is not None and r < 60 and fz >= 80:
                    coll.append(f"{crit} at {_pct(sp)} ({r:.0f} % vs {fz:.0f} % frozen)")
        if coll:
            sents.append("Recover mode collapses where frozen does not: " + ", ".join(coll) + ".")
        head = []
        fm = {m: f for m in MODES if (f := facts.get((model, m, "magnitude")))}
        win_modes = [m for m, f in fm.items() if f["wins"] > f["losses"] and f["wins"] >= len(f["cells"]) / 4]
        lose_modes = [m for m, f in fm.items() if f["losses"] > f["wins"] and f["losses"] >= len(f["cells"]) / 4]
        tie_modes = [m for m in fm if m not in win_modes and m not in lose_modes]
        if win_modes:
            head.append(f"Taylor beats magnitude in {' and '.join(win_modes)} mode")
        if lose_modes:
            head.append(f"{'loses to it' if win_modes else 'Taylor loses to magnitude'} in {' and '.join(lose_modes)} mode")
        if tie_modes:
            head.append(f"{'is level with it' if head else 'Taylor is level with magnitude'} in "
                        f"{' and '.join(tie_modes)} mode (mostly ties)")
        lead = (", ".join(head) + "; ") if head else ""
        overall = ("overall Taylor is a safe choice here" if len(ok) >= 0.75 * n else
                   "overall Taylor is not the criterion to pick here" if len(ok) <= 0.25 * n else
                   "overall Taylor is competitive in some columns only")
        out.append(f"- **{model}** — {lead}{overall}. " + " ".join(sents))
    out.append("")
    return out


def _table(summ: list[dict], model: str, bits) -> list[str]:
    recs = [r for r in summ if r["model"] == model and r["bits"] == bits and r["criterion"] != "dense"]
    if not recs:
        return []
    sps = sorted({r["sparsity"] for r in recs})
    combos = [(c, m) for c in CRITERIA for m in MODES if any(r["criterion"] == c and r["mode"] == m for r in recs)]
    cell = {(r["criterion"], r["mode"], r["sparsity"]): r for r in recs}
    best = {sp: max((r["acc_mean"] for r in recs if r["sparsity"] == sp), default=None) for sp in sps}
    lines = ["| criterion | mode | " + " | ".join(_pct(sp) for sp in sps) + " |",
             "|---|---|" + "---:|" * len(sps)]
    for c, m in combos:
        vals = []
        for sp in sps:
            r = cell.get((c, m, sp))
            if r is None:
                vals.append("")
                continue
            s = _fmt(r["acc_mean"], r["acc_std"])
            vals.append(f"**{s}**" if abs(r["acc_mean"] - best[sp]) < 1e-9 else s)
        lines.append(f"| {c} | {m} | " + " | ".join(vals) + " |")
    return lines


def _dense_line(summ: list[dict], model: str, bits) -> str:
    fl = [r for r in summ if r["model"] == model and r["criterion"] == "dense" and r["bits"] == "float"]
    q = [r for r in summ if r["model"] == model and r["criterion"] == "dense" and r["bits"] == bits]
    if not fl:
        return ""
    s = f"Dense float model: {_fmt(fl[0]['acc_mean'], fl[0]['acc_std'])}"
    if q and bits != "float":
        r = q[0]
        s += (f"; dense (no pruning) at {SHORT_BITS[bits]}: {_fmt(r['acc_mean'], r['acc_std'])}, "
              f"{r['qnet_nnz']:.0f} nonzero weights")
        if r.get("lut4") is not None:
            s += f", ~{r['lut4']:.0f} LUT4"
    return s + "."


def target_lines(rows: list[dict], sweep: list[dict], target: Settings, settings: Settings) -> list[str]:
    """PASS / FAIL of the issue's targets from ``rows`` (run at ``target``); the sweep's rows (at
    ``settings``) add every criterion x mode at the same point."""
    g = groups(rows)
    gs = groups(sweep)
    out = ["## Targets", ""]
    out.append(f"Target points run with the library defaults (`jpq-hw compress` defaults: taylor, recover, gradual, "
               f"{target.prune_epochs} pruning epochs, {target.qat_epochs} QAT epochs), 6-bit weights, one run per seed; "
               f"magnitude / recover at the same settings alongside, as the baseline the issue names.")
    out.append("")
    for model, sp, bits, limit, baseline in TARGETS:
        rs = g.get((model, "taylor", "recover", sp, bits), [])
        if not rs:
            out.append(f"- {model} at {_pct(sp)} sparsity, {SHORT_BITS[bits]} weights: **not run**.")
            continue
        fl = [100 * r["acc_float"] for r in rs]
        q = [100 * r["acc_quant"] for r in rs]
        pr = [100 * r["acc_pruned"] for r in rs]
        drop = [a - b for a, b in zip(fl, q)]
        pdrop = [a - b for a, b in zip(fl, pr)]
        ok = statistics.fmean(drop) <= limit
        out.append(
            f"- **{'PASS' if ok else 'FAIL'}** — {model} at {_pct(sp)} sparsity, {SHORT_BITS[bits]} weights, within "
            f"{limit:g} points of its float model (default config: taylor, recover, gradual): float "
            f"{_fmt(*_mean_std(fl), 2)} %, pruned {_fmt(*_mean_std(pr), 2)} %, quantized {_fmt(*_mean_std(q), 2)} %; "
            f"drop {_fmt(*_mean_std(drop), 2)} points (mean over {len(rs)} seed{'s' if len(rs) > 1 else ''}; worst seed {max(drop):.2f}; "
            f"per seed {', '.join(f'{d:+.2f}' for d in drop)}).")
        if baseline is not None:
            out.append(f"  Before quantization the pruned model is {statistics.fmean(pdrop):.2f} points below float "
                       f"(the quick gradual magnitude prune of the issue: {baseline} points below): "
                       f"{'beaten' if statistics.fmean(pdrop) < baseline else 'NOT beaten'}.")
        mg = g.get((model, "magnitude", "recover", sp, bits), [])
        if mg:
            mq = [100 * (r["acc_float"] - r["acc_quant"]) for r in mg]
            mp = [100 * (r["acc_float"] - r["acc_pruned"]) for r in mg]
            out.append(f"  Magnitude / recover, same settings: pruned {_fmt(*_mean_std(mp), 2)} and quantized "
                       f"{_fmt(*_mean_std(mq), 2)} points below float.")
        passing = []
        for crit in CRITERIA:
            for mode in MODES:
                rr = gs.get((model, crit, mode, sp, bits), [])
                if rr:
                    d = statistics.fmean(100 * (r["acc_float"] - r["acc_quant"]) for r in rr)
                    passing.append((d, crit, mode))
        if passing:
            ok_list = sorted(p for p in passing if p[0] <= limit)
            out.append(f"  The sweep ({settings.qat_epochs} QAT epochs), every criterion x mode at this point: "
                       f"{len(ok_list)} of {len(passing)} within {limit:g} points ("
                       + ", ".join(f"{c}/{m} {d:+.2f}" for d, c, m in sorted(passing))
                       + " points below float; negative: above).")
    out.append("")
    return out


def frontier_rows(summ: list[dict], model: str, cost: str) -> list[dict]:
    recs = [r for r in summ if r["model"] == model and r["bits"] != "float" and r.get(cost) is not None]
    pts = [(r[cost], r["acc_mean"]) for r in recs]
    return [recs[i] for i in pareto(pts)]


def _frontier_table(summ: list[dict], model: str) -> list[str]:
    front = frontier_rows(summ, model, "lut4")
    if not front:
        return []
    usable = [r for r in front if r["drop_mean"] <= 10]
    lines = [f"Pareto frontier of {model}, accuracy against estimated LUT4 (means over seeds; every criterion, mode, "
             f"sparsity and weight format, plus the dense references), the points within 10 points of float "
             f"({len(front) - len(usable)} cheaper frontier points below that are left out; all are in the frontier "
             f"plot). Neighbouring points that differ by less than their spread are equivalent operating points; "
             f"pick the cheaper.", "",
             "| LUT4 (est.) | adders | nonzero weights | weights | sparsity | criterion | mode | test accuracy % | "
             "below float |",
             "|---:|---:|---:|---|---:|---|---|---:|---:|"]
    for r in usable:
        lines.append(f"| {r['lut4']:.0f} | {r['adders']:.0f} | {r['qnet_nnz']:.0f} | {SHORT_BITS[r['bits']]} | "
                     f"{_pct(r['sparsity'])} | {r['criterion']} | {r['mode']} | {_fmt(r['acc_mean'], r['acc_std'])} | "
                     f"{r['drop_mean']:.1f} |")
    lines.append("")
    return lines


def write_markdown(path: Path, rows: list[dict], summ: list[dict], command: str, settings: Settings,
                   wall: float | None, images: Sequence[str], target_rows: list[dict], target: Settings) -> None:
    seeds = sorted({r["seed"] for r in rows + target_rows})
    all_rows = {r["key"]: r for r in rows + target_rows}.values()
    cpu = sum({r["unit"]: r["unit_seconds"] for r in all_rows}.values())
    lines = ["# Compression benchmark: accuracy against sparsity, criterion, mode and weight bits", ""]
    runs_path = path.parent / f"{path.stem}_runs.jsonl"
    runs = [json.loads(x) for x in runs_path.read_text().splitlines() if x.strip()] if runs_path.is_file() else []
    if runs:
        done = "; ".join(f"`{r['command']}` ran {r['jobs_run']} jobs in {r['wall_s'] / 60:.1f} min wall on "
                         f"{r['processes']} processes ({r['started']} - {r['finished']})" for r in runs)
        lines.append(f"Computation log (`{runs_path.name}`): {done}.")
        lines.append("")
    lines.append(f"Produced by `{command}`" + (f" ({wall / 60:.1f} min wall for this invocation; " if wall else " (")
                 + f"{len(all_rows)} rows, {cpu / 60:.1f} min of worker time in all, 1 torch thread per worker, "
                 f"2 shared CPU cores). Raw rows: `{path.with_suffix('.jsonl').name}`; means and spreads: "
                 f"`{path.stem}_summary.csv`.")
    lines.append("")
    lines.append(
        f"Setup: sklearn 8x8 digits, fixed split (1,347 train, 450 test: one test image is 0.22 points). Seeds "
        f"{', '.join(map(str, seeds))}: seed `s` trains the float model (example defaults) and drives pruning and "
        f"QAT. Pruning: `jpq_hw.compress.prune` library defaults — gradual cubic schedule, 20 events, global "
        f"scope, {settings.prune_epochs} fine-tuning epochs of SGD (lr 0.1, Nesterov), mask frozen at 60 % of the run "
        f"(`compensate`: the 20 events each followed by the least-squares refit, no training); then "
        f"{settings.qat_epochs} QAT epochs (Adam 5e-4), 8-bit activations"
        + (f" — **reduced from the library default of {target.qat_epochs} to fit the sweep in its time budget; the "
           f"target points below are rerun at the defaults**" if settings.qat_epochs != target.qat_epochs else "")
        + ". Each pruned model is quantized at 6-bit, "
        "4-bit and ternary from the same pruned weights and masks (`jpq_hw.compress.prune` once, then "
        "`jpq_hw.compress.quantize` per width: each width is what `compress` gives at that width). "
        "`float` is the pruned model before quantization. Cells: test accuracy in %, mean ± sample standard "
        "deviation over seeds; the best mean of each column in bold. LUT4: `jpq_hw.flow.lower(qnet)` then "
        "`design.cost.total(\"lut4\")` (the iCE40 estimate of the shift-add design, combinational); adders: "
        "`design.graph.stats()[\"adders\"]` (subtractors included). The CNN (conv2d is not lowered yet) has no "
        "hardware numbers and only a slice of the grid.")
    lines.append("")
    g = groups(rows)
    rk = [k for k in g if k[1] == "random" and k[2] == "recover"]
    if rk and all([acc_of(r, k[4]) for r in g[k]] == [acc_of(r, k[4]) for r in g.get((k[0], "random", "frozen", *k[3:]), [])]
                  for k in rk):
        lines.append("`random / recover` equals `random / frozen` in every cell, as it must: the random scores are "
                     "drawn once, so recover re-chooses the same nested masks, and the kept weights train identically.")
        lines.append("")
    lines.extend(target_lines(target_rows or rows, rows, target if target_rows else settings, settings))
    lines.extend(taylor_section(rows))
    for model in MODELS:
        if not any(r["model"] == model for r in summ):
            continue
        lines.append(f"## {model}")
        lines.append("")
        for bits in ("float", *BITS):
            t = _table(summ, model, bits)
            if not t:
                continue
            lines.append(f"### {model}, {BIT_LABELS[bits]}")
            lines.append("")
            lines.extend(t)
            lines.append("")
            d = _dense_line(summ, model, bits)
            if d:
                lines.append(d)
                lines.append("")
        cost_t = _cost_table(summ, model)
        if cost_t:
            lines.extend(cost_t)
        lines.extend(_frontier_table(summ, model))
    if images:
        lines.append("## Plots")
        lines.append("")
        for im in images:
            lines.append(f"![{im}]({im})")
            lines.append("")
    path.write_text("\n".join(lines).rstrip() + "\n")


def _cost_table(summ: list[dict], model: str) -> list[str]:
    """Nonzero weights and LUT4 of taylor / recover per sparsity and bits (other configs differ little)."""
    recs = [r for r in summ if r["model"] == model and r["criterion"] == "taylor" and r["mode"] == "recover"
            and r["bits"] != "float"]
    if not recs or recs[0].get("lut4") is None:
        return []
    sps = sorted({r["sparsity"] for r in recs})
    cell = {(r["bits"], r["sparsity"]): r for r in recs}
    lines = [f"Hardware estimate of {model}, taylor / recover (nonzero weights after quantization / LUT4 / adders; "
             "means over seeds; the other criteria and modes land within a few % of these at the same sparsity, "
             "see the jsonl):", "",
             "| weights | " + " | ".join(_pct(sp) for sp in sps) + " |", "|---|" + "---:|" * len(sps)]
    for bits in BITS:
        vals = []
        for sp in sps:
            r = cell.get((bits, sp))
            vals.append(f"{r['qnet_nnz']:.0f} / {r['lut4']:.0f} / {r['adders']:.0f}" if r else "")
        lines.append(f"| {SHORT_BITS[bits]} | " + " | ".join(vals) + " |")
    lines.append("")
    return lines


def write_csv(path: Path, summ: list[dict]) -> None:
    fields = ["model", "criterion", "mode", "sparsity", "bits", "seeds", "acc_mean", "acc_std", "drop_mean",
              "drop_std", "float_mean", "mask_nnz", "qnet_nnz", "lut4", "adders", "sparse_bits"]
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        for r in summ:
            w.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in r.items()})


# ---------------------------------------------------------------------------------------------- plots
COLORS = {"taylor": "#d62728", "magnitude": "#1f77b4", "random": "#7f7f7f", "blend": "#2ca02c", "dense": "black"}
STYLES = {"recover": "-", "frozen": "--", "compensate": ":"}
MARKERS = {"recover": "o", "frozen": "s", "compensate": "^"}
BIT_COLORS = {6: "#1f77b4", 4: "#ff7f0e", 2: "#9467bd"}
CRIT_MARKERS = {"taylor": "o", "magnitude": "s", "random": "x", "blend": "^", "dense": "*"}


def _y_floor(ys: Sequence[float], top: float, span: float) -> float:
    """Cut the y axis ``span`` points below ``top`` (collapsed runs stay in the tables) unless that
    would hide most points."""
    cut = top - span
    return cut if sum(y >= cut for y in ys) >= len(ys) / 2 and min(ys) < cut else min(ys)


def plot_sparsity(path: Path, summ: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    models = [m for m in MODELS if any(r["model"] == m and r["criterion"] != "dense" for r in summ)]
    cols = ["float", *BITS]
    fig, axes = plt.subplots(len(models), len(cols), figsize=(4.2 * len(cols), 3.6 * len(models)), squeeze=False)
    for i, model in enumerate(models):
        recs = [r for r in summ if r["model"] == model and r["criterion"] != "dense"]
        sps = sorted({r["sparsity"] for r in recs})
        fl = [r for r in summ if r["model"] == model and r["criterion"] == "dense" and r["bits"] == "float"]
        float_acc = fl[0]["acc_mean"] if fl else max(r["float_mean"] for r in recs)
        for j, bits in enumerate(cols):
            ax = axes[i][j]
            sub = [r for r in recs if r["bits"] == bits]
            for crit in CRITERIA:
                for mode in MODES:
                    pts = sorted((r["sparsity"], r["acc_mean"], r["acc_std"]) for r in sub
                                 if r["criterion"] == crit and r["mode"] == mode)
                    if not pts:
                        continue
                    x = [1 - p[0] for p in pts]
                    y = [p[1] for p in pts]
                    e = [0 if math.isnan(p[2]) else p[2] for p in pts]
                    ax.errorbar(x, y, yerr=e, color=COLORS[crit], ls=STYLES[mode], marker=MARKERS[mode], ms=4,
                                lw=1.4, capsize=2, alpha=0.9)
            ax.axhline(float_acc, color="black", lw=0.8, ls="-.")
            ax.set_xscale("log")
            ax.invert_xaxis()
            ax.set_xticks([1 - s for s in sps])
            ax.set_xticklabels([f"{100 * s:g}" for s in sps])
            ax.minorticks_off()
            ys = [r["acc_mean"] for r in sub]
            if ys:
                top = max(max(ys), float_acc)
                ax.set_ylim(_y_floor(ys, top, 30) - 1, top + 1)
            ax.grid(alpha=0.3)
            ax.set_title(f"{model}, {SHORT_BITS[bits]}", fontsize=10)
            if i == len(models) - 1:
                ax.set_xlabel("sparsity %")
            if j == 0:
                ax.set_ylabel("test accuracy %")
    handles = [Line2D([], [], color=COLORS[c], lw=2, label=c) for c in CRITERIA]
    handles += [Line2D([], [], color="black", ls=STYLES[m], marker=MARKERS[m], label=m) for m in MODES]
    handles.append(Line2D([], [], color="black", ls="-.", lw=0.8, label="dense float model"))
    fig.suptitle("Test accuracy against sparsity (mean ± std over seeds; where most points allow, the y axis is cut "
                 "30 points below the best: see the tables for collapsed runs)", y=0.995, fontsize=11)
    fig.legend(handles=handles, loc="upper center", ncol=len(handles), frameon=False, fontsize=10,
               bbox_to_anchor=(0.5, 0.975))
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_frontier(path: Path, summ: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    models = [m for m in MODELS if any(r["model"] == m and r.get("lut4") is not None for r in summ)]
    costs = [("qnet_nnz", "nonzero weights (after quantization)"), ("lut4", "estimated iCE40 LUT4")]
    fig, axes = plt.subplots(len(models), 2, figsize=(14, 5.5 * len(models)), squeeze=False)
    for i, model in enumerate(models):
        recs = [r for r in summ if r["model"] == model and r["bits"] != "float" and r.get("lut4") is not None]
        fl = [r for r in summ if r["model"] == model and r["criterion"] == "dense" and r["bits"] == "float"]
        float_acc = fl[0]["acc_mean"] if fl else None
        for j, (cost, label) in enumerate(costs):
            ax = axes[i][j]
            for r in recs:
                ax.scatter(r[cost], r["acc_mean"], s=22 if r["criterion"] != "dense" else 70,
                           marker=CRIT_MARKERS[r["criterion"]], color=BIT_COLORS[r["bits"]], alpha=0.35,
                           linewidths=1)
            front = frontier_rows(summ, model, cost)
            ax.step([r[cost] for r in front], [r["acc_mean"] for r in front], where="post", color="black", lw=1.5,
                    zorder=3)
            for r in front:
                unfilled = CRIT_MARKERS[r["criterion"]] == "x"
                ax.scatter(r[cost], r["acc_mean"], s=60 if r["criterion"] != "dense" else 120,
                           marker=CRIT_MARKERS[r["criterion"]], color=BIT_COLORS[r["bits"]],
                           edgecolors=None if unfilled else "black", linewidths=2 if unfilled else 1.2, zorder=4)
            if float_acc is not None:
                ax.axhline(float_acc, color="black", lw=0.8, ls="-.")
                ax.axhline(float_acc - 2, color="gray", lw=0.6, ls=":")
            ax.set_xscale("log")
            ys = [r["acc_mean"] for r in recs]
            top = max(ys + ([float_acc] if float_acc else []))
            y0 = _y_floor(ys, top, 15) - 1
            ax.set_ylim(y0, top + 1.5)
            xs = [r[cost] for r in recs if r["acc_mean"] >= y0] or [r[cost] for r in recs]
            ax.set_xlim(min(xs) / 1.5, max(xs) * 1.5)
            # label the visible frontier points, skipping a label that would sit on top of the previous one
            placed: list[tuple[float, float]] = []
            for r in front:
                if r["acc_mean"] < y0:
                    continue
                px, py = ax.transData.transform((r[cost], r["acc_mean"]))
                if any(abs(px - qx) < 110 and abs(py - qy) < 16 for qx, qy in placed):
                    continue
                placed.append((px, py))
                tag = ("dense" if r["criterion"] == "dense"
                       else f"{100 * r['sparsity']:g}% {r['criterion'][:3]}/{r['mode'][:3]}")
                below = len(placed) % 2 == 1
                ax.annotate(f"{tag} {SHORT_BITS[r['bits']]}", (r[cost], r["acc_mean"]), textcoords="offset points",
                            xytext=(7, -11) if below else (7, 4), ha="left", fontsize=7.5,
                            zorder=5, bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.7))
            ax.grid(alpha=0.3, which="both")
            ax.set_xlabel(label)
            ax.set_ylabel("test accuracy % (mean over seeds)")
            ax.set_title(f"{model}: accuracy against {label}", fontsize=10)
    handles = [Line2D([], [], color=BIT_COLORS[b], marker="o", ls="", label=SHORT_BITS[b]) for b in BITS]
    handles += [Line2D([], [], color="gray", marker=CRIT_MARKERS[c], ls="", label=c) for c in (*CRITERIA, "dense")]
    handles += [Line2D([], [], color="black", lw=1.5, label="Pareto frontier"),
                Line2D([], [], color="black", ls="-.", lw=0.8, label="dense float"),
                Line2D([], [], color="gray", ls=":", lw=0.6, label="float - 2 points")]
    fig.suptitle("Operating points, means over seeds (y axis cut 15 points below the best)\nfrontier labels: sparsity, "
                 "criterion/mode, weights; crowded labels skipped, see the frontier tables in compression.md",
                 y=0.995, fontsize=11)
    fig.legend(handles=handles, loc="upper center", ncol=len(handles), frameon=False, fontsize=9,
               bbox_to_anchor=(0.5, 0.955))
    fig.tight_layout(rect=(0, 0, 1, 0.925))
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------- main
def build_outputs(out: Path, settings: Settings, command: str, wall: float | None, log=_log,
                  target: Settings | None = None) -> None:
    """The markdown, summary csv and plots from ``<out>.jsonl``: the sweep's rows (``settings``) and the
    target points' rows (``target``, default the library defaults)."""
    target = target or Settings()
    every = load_rows(out.with_suffix(".jsonl"))
    rows = [r for r in every if r["settings"] == settings.tag()]
    target_rows = [r for r in every if r["settings"] == target.tag()]
    if not rows:
        log("no rows to report")
        return
    summ = summary(rows)
    write_csv(out.parent / f"{out.name}_summary.csv", summ)
    images = []
    try:
        plot_sparsity(out.parent / f"{out.name}_sparsity.png", summ)
        images.append(f"{out.name}_sparsity.png")
        if any(r.get("lut4") is not None for r in summ):
            plot_frontier(out.parent / f"{out.name}_frontier.png", summ)
            images.append(f"{out.name}_frontier.png")
    except ImportError as e:  # pragma: no cover
        log(f"no plots ({e})")
    write_markdown(out.with_suffix(".md"), rows, summ, command, settings, wall, images, target_rows, target)
    log(f"wrote {out.with_suffix('.md')}, {out.name}_summary.csv and {len(images)} plot(s)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a few minutes: digits-mlp, 1 seed, + the digits-wide target")
    ap.add_argument("--seeds", type=int, default=None, help="number of seeds 0..N-1 (default 3; quick 1)")
    ap.add_argument("--models", default=None, help="comma-separated subset of the grid's models")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes, 1 torch thread each (at most 2)")
    ap.add_argument("--prune-epochs", type=int, default=60, help="fine-tuning epochs of the pruning stage (default 60)")
    ap.add_argument("--qat-epochs", type=int, default=10,
                    help="QAT epochs of the sweep (default 10, half the library default, for time)")
    ap.add_argument("--target-qat-epochs", type=int, default=20,
                    help="QAT epochs of the target points (default 20, the library default)")
    ap.add_argument("--out", type=Path, default=None,
                    help=f"output prefix (default {DEFAULT_OUT.relative_to(ROOT)}; quick: a temp folder)")
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "jpq_hw_compression_cache",
                    help="float-model cache folder")
    ap.add_argument("--report-only", action="store_true", help="only rebuild the markdown, csv and plots")
    ap.add_argument("--no-dense", action="store_true", help="skip the dense (sparsity 0) references")
    args = ap.parse_args(argv)
    argv_used = sys.argv[1:] if argv is None else argv
    command = "python bench/compression.py" + "".join(" " + shlex.quote(a) for a in argv_used)
    jobs = max(1, min(args.jobs, 2))
    grid = QUICK_GRID if args.quick else FULL_GRID
    if args.models:
        keep = set(args.models.split(","))
        grid = [g for g in grid if g[0] in keep]
    seeds = list(range(args.seeds if args.seeds is not None else (1 if args.quick else 3)))
    out = args.out or (Path(tempfile.gettempdir()) / "jpq_hw_compression_quick" / "compression" if args.quick
                       else DEFAULT_OUT)
    out.parent.mkdir(parents=True, exist_ok=True)
    settings = Settings(args.prune_epochs, args.qat_epochs)
    target = Settings(args.prune_epochs, args.target_qat_epochs)
    wall = None
    if not args.report_only:
        import torch

        torch.set_num_threads(1)
        work = target_jobs(grid, seeds, target) + [(u, settings, BITS) for u in make_units(grid, seeds, not args.no_dense)]
        wall = run_all(work, out.with_suffix(".jsonl"), args.cache, jobs)
        print(f"ran in {wall / 60:.1f} min", flush=True)
    build_outputs(out, settings, command, wall, target=target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
