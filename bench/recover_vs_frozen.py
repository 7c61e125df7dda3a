"""recover vs frozen fine-tuning at high sparsity (issue 16, defect 1): pruned float accuracy only.

    python -m bench.recover_vs_frozen                         # all three examples, seeds 0,1,2
    python -m bench.recover_vs_frozen --models digits-mlp --label before --mechanism old --jobs 2
    python -m bench.recover_vs_frozen --report-only           # rebuild the markdown from the json

For every example, seed, criterion (taylor / magnitude / blend; random is identical in both modes by
construction) and target sparsity, the example's float model (trained once per seed with
:func:`jpq_hw.compress.train_float`) is pruned by :func:`jpq_hw.compress.compress` with the library
defaults (gradual cubic schedule, 20 events in the first 60 % of 60 SGD epochs, lr 0.1 Nesterov,
global scope) in ``recover`` and in ``frozen`` mode, without quantization (``qat_epochs=0``,
``verify=False``, ``adders=False``); the row is ``result.accuracies["pruned"]``. In recover mode the
number of weights that came back (pruned at one pruning step, kept at a later one) is counted too.

``--mechanism old`` runs the recover mode as it was before the fix (a pruning step zeroed the
shadows of pruned weights only in frozen mode), by pointing ``Pruner._restart`` at the old
behaviour, so the "before" rows can be rerun from this tree.

A setting passes when the mean recover accuracy over the seeds is at most 1 point below the mean
frozen accuracy. Rows go to ``<out>.json`` (one list per ``--label``, replaced per model on rerun),
the tables to ``<out>.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "bench" / "results" / "recover_vs_frozen"
GRID = {
    "digits-mlp": (0.80, 0.85, 0.90, 0.95),
    "digits-wide": (0.90, 0.95, 0.98, 0.99),
    "digits-cnn": (0.85, 0.95),
}
CRITERIA = ("taylor", "magnitude", "blend")
MODES = ("frozen", "recover")
TOLERANCE = 1.0  # points


def _setup(mechanism: str) -> None:
    import torch

    torch.set_num_threads(1)
    if mechanism == "old":
        from jpq_hw.compress.pruner import Pruner

        Pruner._restart = lambda self, old: self.after_step()  # type: ignore[method-assign]  # pre-fix: zero only when frozen


def _train(job: tuple[str, int, str, str]) -> str:
    name, seed, path, mechanism = job
    _setup(mechanism)
    import torch
    from jpq_hw.compress import example_data, train_float

    train, _test = example_data(name)
    torch.save(train_float(name, train, seed=seed), path)
    return path


def _prune(job: tuple[str, int, str, float, str, str, str]) -> dict:
    name, seed, criterion, sparsity, mode, path, mechanism = job
    _setup(mechanism)
    import torch
    from jpq_hw.compress import compress, config_for_example, example_data
    from jpq_hw.compress.pruner import Pruner

    revived = [0]
    step = Pruner.step

    def counting_step(self, *args, **kwargs):
        old = [m.clone() for m in self.masks]
        new = step(self, *args, **kwargs)
        revived[0] += sum(int(((n > 0) & (o == 0)).sum()) for n, o in zip(new, old))
        return new

    Pruner.step = counting_step  # type: ignore[method-assign]
    train, test = example_data(name)
    model = torch.load(path, weights_only=False)
    cfg = config_for_example(name, criterion=criterion, mode=mode, sparsity=sparsity, qat_epochs=0, verify=False,
                             adders=False, seed=seed, device="cpu")
    t0 = time.perf_counter()
    result = compress(model, train, test, cfg)
    Pruner.step = step  # type: ignore[method-assign]
    return {"model": name, "seed": seed, "criterion": criterion, "sparsity": sparsity, "mode": mode,
            "pruned": result.accuracies["pruned"], "float": result.accuracies["float"], "revived": revived[0],
            "seconds": round(time.perf_counter() - t0, 2)}


def _map(fn, jobs: list, n: int) -> list:
    if n <= 1:
        return [fn(j) for j in jobs]
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(n) as pool:
        return pool.map(fn, jobs, chunksize=1)


def run(models: list[str], seeds: list[int], criteria: list[str], jobs: int, mechanism: str) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        trains = [(m, s, os.path.join(tmp, f"{m}-{s}.pt"), mechanism) for m in models for s in seeds]
        _map(_train, trains, jobs)
        units = [(m, s, c, sp, mode, os.path.join(tmp, f"{m}-{s}.pt"), mechanism)
                 for m in models for s in seeds for c in criteria for sp in GRID[m] for mode in MODES]
        units.sort(key=lambda u: u[0] != "digits-wide")  # the slow example first (stable otherwise)
        rows = _map(_prune, units, jobs)
    return rows


def _stats(v: list[float]) -> tuple[float, float]:
    return statistics.mean(v), (statistics.stdev(v) if len(v) > 1 else 0.0)


def table(rows: list[dict]) -> list[str]:
    lines = ["| model | criterion | sparsity | frozen % | recover % | recover - frozen | revived (mean) | verdict |",
             "|---|---|---:|---:|---:|---:|---:|---|"]
    groups: dict[tuple, dict[str, list[dict]]] = {}
    for r in rows:
        groups.setdefault((r["model"], r["criterion"], r["sparsity"]), {}).setdefault(r["mode"], []).append(r)
    order = {m: i for i, m in enumerate(GRID)}
    crit_order = {c: i for i, c in enumerate(CRITERIA)}
    n_pass = n_all = 0
    for key in sorted(groups, key=lambda k: (order.get(k[0], 9), crit_order.get(k[1], 9), k[2])):
        g = groups[key]
        if "frozen" not in g or "recover" not in g:
            continue
        fm, fs = _stats([100 * r["pruned"] for r in g["frozen"]])
        rm, rs = _stats([100 * r["pruned"] for r in g["recover"]])
        rev = statistics.mean(r["revived"] for r in g["recover"])
        ok = rm >= fm - TOLERANCE
        n_pass += ok
        n_all += 1
        lines.append(f"| {key[0]} | {key[1]} | {100 * key[2]:.0f} % | {fm:.1f} ± {fs:.1f} | {rm:.1f} ± {rs:.1f} | "
                     f"{rm - fm:+.1f} | {rev:.0f} | {'PASS' if ok else 'FAIL'} |")
    lines.append("")
    lines.append(f"{n_pass} of {n_all} settings pass (recover at most {TOLERANCE:g} point below frozen, mean of seeds).")
    return lines


def report(data: dict, out: Path) -> None:
    md = ["# recover vs frozen fine-tuning (issue 16, defect 1)", "",
          "Pruned float test accuracy (no quantization), mean ± std over seeds, library defaults (gradual cubic "
          "schedule, 20 events in the first 60 % of 60 SGD epochs, lr 0.1 Nesterov, global scope). "
          "*revived*: weights that came back in recover mode (pruned at one pruning step, kept at a later one), "
          "summed over the steps. Produced by `bench/recover_vs_frozen.py` (see its docstring).", ""]
    for label in sorted(data, key=lambda s: (s != "before", s)):
        entry = data[label]
        md.append(f"## {label}")
        md.append("")
        for model, meta in entry.get("runs", {}).items():
            md.append(f"- {model}: `{meta['command']}` ({meta['wall_s']:.0f} s wall, {meta['mechanism']} mechanism, "
                      f"commit {meta.get('commit', '?')})")
        md.append("")
        md.extend(table(entry["rows"]))
        md.append("")
    out.with_suffix(".md").write_text("\n".join(md) + "\n")


def _commit() -> str:
    import subprocess

    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except Exception:  # noqa: BLE001
        return "?"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=",".join(GRID), help="comma-separated examples (default: all three)")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--criteria", default=",".join(CRITERIA))
    ap.add_argument("--jobs", type=int, default=1, help="worker processes (1 thread each)")
    ap.add_argument("--mechanism", choices=("new", "old"), default="new",
                    help="old: the recover mode before the fix (for the 'before' rows)")
    ap.add_argument("--label", default=None, help="section of the report (default: 'after' / 'before' by mechanism)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args(argv)
    label = args.label or ("before" if args.mechanism == "old" else "after")
    js = args.out.with_suffix(".json")
    data = json.loads(js.read_text()) if js.exists() else {}
    if not args.report_only:
        models = [m for m in args.models.split(",") if m]
        unknown = set(models) - set(GRID)
        if unknown:
            ap.error(f"unknown examples {sorted(unknown)} (known: {', '.join(GRID)})")
        t0 = time.perf_counter()
        rows = run(models, [int(s) for s in args.seeds.split(",")], args.criteria.split(","), args.jobs,
                   args.mechanism)
        wall = time.perf_counter() - t0
        entry = data.setdefault(label, {"rows": [], "runs": {}})
        entry["rows"] = [r for r in entry["rows"] if r["model"] not in models] + rows
        command = "python -m bench.recover_vs_frozen " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
        for m in models:
            entry["runs"][m] = {"command": command, "wall_s": wall, "mechanism": args.mechanism, "commit": _commit()}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        js.write_text(json.dumps(data, indent=1) + "\n")
        print("\n".join(table(rows)))
        print(f"wall time {wall:.1f} s")
    report(data, args.out)
    print(f"wrote {args.out.with_suffix('.md')} and {js}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
