"""How fast ``jpq-hw verify`` proves designs, and whether it rejects every kind of mutant.

    python bench/verify.py            # about 15 minutes on 2 cores
    python bench/verify.py --quick    # the shipped examples and one mutant per kind (a few minutes)

1. Proof time and peak memory of the shipped examples (flat, both backends, combinational and
   pipelined; the CNN and the stereo network as streams) and of random sparse networks of 10k,
   30k and 100k nonzero weights: each proof runs in its own process (``jpq-hw verify``), wall-clock
   median of ``--repeats`` runs (one for the stereo network and the 100k one) and the largest peak RSS. Lowering is not counted.
2. Mutants (:mod:`jpq_hw.verify.mutate`) of every design of ``pytest sim/`` (``sim/test_designs.py``
   flat designs, and the kernels of three stream designs, one through the Amaranth backend, their
   plumbing explored up to ``MUTANT_PLUMBING_STATES`` states per part): per kind, how many were rejected. A mutant
   that was accepted is checked on 2,000 random input vectors run through yosys's netlist: if none
   tells it from the checkpoint it is counted as *equivalent* (a change that changes nothing, as
   truncating a bit that is never set), else as a *missed bug* (there should be none).

Writes ``bench/results/verify.md`` and ``verify.json``.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "sim"))

from jpq_hw.design_folder import interface_from_report, rtl_files  # noqa: E402
from jpq_hw.flow import lower_checkpoint  # noqa: E402
from jpq_hw.ir import IntFormat, load_checkpoint, random_qnet, save_checkpoint  # noqa: E402
from jpq_hw.reference import run_reference  # noqa: E402
from jpq_hw.verify import ProofFailure, verify_design  # noqa: E402
from jpq_hw.verify.counterexample import flat_outputs  # noqa: E402
from jpq_hw.verify.mutate import KINDS, module_lines, mutants  # noqa: E402
from jpq_hw.verify.netlist import load_netlist  # noqa: E402

RESULTS = ROOT / "bench" / "results"
EXAMPLES = ROOT / "examples"
# the plumbing proof's states per part for the mutants of a stream design (they change its kernels
# only): the stereo example's windows, minutes each, are not explored again for every mutant
MUTANT_PLUMBING_STATES = 2_000

# peak RSS from VmHWM (ru_maxrss would carry the forking parent's peak over the exec)
_PEAK = ("import re, sys; from jpq_hw.cli import main; rc = main(['verify', sys.argv[1], '--no-simulate']); "
         "print('PEAK_KB', re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)); sys.exit(rc)")


def timed_proof(folder: Path, repeats: int) -> dict:
    walls, inner, peaks, summary = [], [], [], ""
    for _ in range(repeats):
        t0 = time.perf_counter()
        run = subprocess.run([sys.executable, "-c", _PEAK, str(folder)], capture_output=True, text=True, cwd=ROOT)
        walls.append(time.perf_counter() - t0)
        if run.returncode != 0:
            raise RuntimeError(f"{folder}: not proven: {run.stderr.strip()}")
        peaks.append(int(run.stdout.split("PEAK_KB")[1].split()[0]))
        inner.append(float(re.search(r"proven in ([0-9.]+) s", run.stdout).group(1)))
        summary = "; ".join(line.strip() for line in run.stdout.splitlines()[1:-2])
    return {"seconds": round(statistics.median(walls), 2), "proof_seconds": round(statistics.median(inner), 2),
            "runs": repeats, "peak_mb": round(max(peaks) / 1024), "proved": summary}


def proof_designs(work: Path, quick: bool) -> list[dict]:
    """(name, folder, nonzero weights) of the designs whose proof is timed."""
    made = []

    def lower(name, ckpt, once=False, **kw):
        out = work / name
        report = lower_checkpoint(ckpt, out, n_vectors=kw.pop("n_vectors", 16), force=True, **kw)
        made.append({"design": name, "nonzero_weights": report["nonzero_weights"], "folder": out, "once": once})

    lower("digits-mlp (verilog)", EXAMPLES / "digits-mlp.pt")
    lower("digits-mlp (verilog, --pipeline 2)", EXAMPLES / "digits-mlp.pt", pipeline=2)
    lower("digits-mlp (amaranth, --pipeline 3)", EXAMPLES / "digits-mlp.pt", backend="amaranth", pipeline=3)
    lower("digits-cnn stream (--pipeline 2)", EXAMPLES / "digits-cnn.pt", pipeline=2, n_vectors=2)
    lower("stereo stream (Motorcycle example)", EXAMPLES / "stereo.pt", n_vectors=1, once=True)  # minutes
    sizes = [(10_000, [256, 160, 10], 0.24), (30_000, [512, 240, 10], 0.24), (100_000, [1024, 400, 10], 0.24)]
    for target, shape, density in sizes[:1] if quick else sizes:
        q = random_qnet(shape, density=density, weight_bits=6, input_format=IntFormat(8, False), seed=1)
        ckpt = work / f"random{target}.pt"
        save_checkpoint(q, ckpt)
        # --optimize mcm: the proof does not depend on how the adders are shared, and mcm lowers
        # a 100k-weight network in seconds
        lower(f"random {'x'.join(map(str, shape))}, ~{target // 1000}k weights (mcm)", ckpt, optimize="mcm",
              limits=None)
    return made


# ------------------------------------------------------------------------------------------- mutants


def _killable(folder: Path, text: str, qnet, work: Path) -> bool:
    iface = interface_from_report(json.loads((folder / "report.json").read_text()))
    path = work / "mutant.v"
    path.write_text(text)
    nl = load_netlist([path], iface.top, {"x": [iface.inputs.bits] * iface.inputs.count})
    rng = np.random.default_rng(0)
    n = iface.inputs.count
    x = np.concatenate([rng.integers(qnet.input.lo, qnet.input.hi + 1, (1000, n)),
                        rng.choice([qnet.input.lo, qnet.input.hi], (1000, n))])
    return bool((flat_outputs(nl, qnet, x, iface.latency_cycles) != run_reference(qnet, x).reshape(len(x), -1)).any())


def _kernels_killable(folder: Path, text: str, qnet, work: Path) -> bool:
    """Whether some kernel of the mutated stream design differs from its layer on 2,000 random
    windows (run on yosys's netlist of that kernel: its module, or cut out of the Amaranth
    backend's flat module)."""
    from jpq_hw.verify.stream import flat_module, kernel_netlist, kernel_qnet

    report = json.loads((folder / "report.json").read_text())
    path = work / "mutant.v"
    path.write_text(text)
    flat = flat_module([path], report)
    rng = np.random.default_rng(0)
    for i, stage in enumerate(report["layers"]):
        if stage["kind"] not in ("conv2d", "box_sum", "dense"):
            continue
        kq, ranges = kernel_qnet(stage, qnet)
        lo, hi = np.array([a for a, _ in ranges]), np.array([b for _, b in ranges])
        n = kq.input_shape[0]
        latency = int(stage.get("kernel_latency", 0))
        _, nl = kernel_netlist([path], report, i, {"x": [kq.input.bits] * n}, flat)
        x = np.concatenate([rng.integers(lo, hi + 1, (1000, n)), np.where(rng.random((1000, n)) < 0.5, lo, hi)])
        if (flat_outputs(nl, kq, x, latency) != run_reference(kq, x).reshape(len(x), -1)).any():
            return True
    return False


def mutant_designs(work: Path, quick: bool) -> list[tuple[str, Path, Path, bool]]:
    """(name, folder, checkpoint, is_stream) of the designs of pytest sim/."""
    from test_designs import DESIGNS, _checkpoint

    out = []
    for case in DESIGNS[:3] if quick else DESIGNS:
        ckpt, extra = _checkpoint(case.net, work)
        folder = work / f"sim-{case.name}"
        lower_checkpoint(ckpt, folder, backend=case.backend, pipeline=case.pipeline, n_vectors=16, seed=7,
                         force=True, extra_inputs=extra, optimize=case.optimize)
        out.append((case.name, folder, ckpt, False))
    for name, ckpt, kw in (("digits-cnn stream", EXAMPLES / "digits-cnn.pt", {"pipeline": 2}),
                           ("digits-cnn stream (amaranth)", EXAMPLES / "digits-cnn.pt",
                            {"pipeline": 2, "backend": "amaranth"}),
                           ("stereo stream", EXAMPLES / "stereo.pt", {})):
        if quick:
            break
        folder = work / re.sub(r"[^\w-]", "", name.replace(" ", "-"))
        lower_checkpoint(ckpt, folder, n_vectors=1, force=True, **kw)
        out.append((name, folder, ckpt, True))
    return out


def _kernel_lines(text: str, top: str) -> list[range]:
    """The lines of a stream design's kernels: its kernel modules (Verilog backend), or the
    assignments to the kernels' signals (``s<i>_kernel_...``, Amaranth backend)."""
    modules = module_lines(text, f"{top}_s")
    if modules:
        return modules
    return [range(i, i + 1) for i, line in enumerate(text.split("\n"))
            if re.match(r"\s*(assign\s+)?s\d+_kernel_n\w*\s*(=|<=)", line)
            or re.match(r"\s*(\(\* keep \*\)\s*)?(wire|reg)\s+\[\d+:0\]\s+s\d+_kernel_n\w*;", line)]


def run_mutants(work: Path, quick: bool, per_kind: int) -> list[dict]:
    rows = []
    for name, folder, ckpt, stream in mutant_designs(work, quick):
        qnet = load_checkpoint(ckpt)
        (rtl,) = rtl_files(folder)
        text = rtl.read_text()
        top = json.loads((folder / "report.json").read_text())["top"]
        within = _kernel_lines(text, top) if stream else None
        row = {"design": name, "kinds": {}}
        for m in mutants(text, per_kind=per_kind, seed=3, within=within):
            k = row["kinds"].setdefault(m.kind, {"made": 0, "rejected": 0, "equivalent": 0, "missed": 0,
                                                 "with_counterexample": 0, "seconds": 0.0})
            k["made"] += 1
            copy = work / "mutant"
            shutil.rmtree(copy, ignore_errors=True)
            shutil.copytree(folder, copy)
            (copy / "rtl" / rtl.name).write_text(m.text)
            t0 = time.perf_counter()
            try:  # a stream's mutants change its kernels: its plumbing is proven in bench/verify_plumbing.py
                verify_design(copy, checkpoint=ckpt, max_states=MUTANT_PLUMBING_STATES if stream else None)
                accepted = True
            except ProofFailure as e:
                accepted = False
                k["rejected"] += 1
                k["with_counterexample"] += e.counterexample is not None
            k["seconds"] += time.perf_counter() - t0
            if accepted:
                killable = (_kernels_killable if stream else _killable)(folder, m.text, qnet, work)
                k["missed" if killable else "equivalent"] += 1
                if killable:
                    print(f"MISSED: {name}: {m.describe()}", file=sys.stderr)
        rows.append(row)
        print(f"{name}: " + ", ".join(f"{k} {v['rejected']}/{v['made']}" for k, v in row["kinds"].items()),
              file=sys.stderr)
    return rows


# ------------------------------------------------------------------------------------------- report


def write_report(proofs: list[dict], rows: list[dict], args) -> None:
    lines = ["# jpq-hw verify: proof times and mutants", "",
             f"`python bench/verify.py{' --quick' if args.quick else ''}` on this machine (2 cores); "
             "lowering not counted. Each proof is `jpq-hw verify` in its own process; wall-clock median of "
             f"the runs, largest peak RSS.", "",
             "*command*: the whole `jpq-hw verify` (Python, torch and yosys start-up included); *proof*: what "
             "it reports (yosys, the forms, the output stages).", "",
             "| design | nonzero weights | command (s) | proof (s) | runs | peak memory (MB) | what was proven |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for p in proofs:
        lines.append(f"| {p['design']} | {p['nonzero_weights']:,} | {p['seconds']} | {p['proof_seconds']} | "
                     f"{p['runs']} | {p['peak_mb']} | {p['proved']} |")
    lines += ["", "## Mutants of the designs of `pytest sim/`", "",
              "Rejected / made, per kind of mutant (`jpq_hw/verify/mutate.py`); *equivalent*: accepted, and no "
              "difference from the checkpoint on 2,000 random input vectors (a change that changes nothing); "
              "*missed*: accepted although a simulation tells it apart (should be 0). Stream designs: the "
              "kernels are mutated (the part the proof covers: the kernel modules, or the Amaranth backend's "
              "assignments to the kernels' signals).", "",
              "| design | " + " | ".join(KINDS) + " |", "|---|" + "---:|" * len(KINDS)]
    total = {k: [0, 0, 0, 0] for k in KINDS}
    for r in rows:
        cells = []
        for k in KINDS:
            v = r["kinds"].get(k)
            if v is None:
                cells.append("-")
                continue
            extra = []
            if v["equivalent"]:
                extra.append(f"{v['equivalent']} equiv.")
            if v["missed"]:
                extra.append(f"**{v['missed']} missed**")
            cells.append(f"{v['rejected']}/{v['made']}" + (f" ({', '.join(extra)})" if extra else ""))
            t = total[k]
            t[0] += v["rejected"]
            t[1] += v["made"]
            t[2] += v["equivalent"]
            t[3] += v["missed"]
        lines.append(f"| {r['design']} | " + " | ".join(cells) + " |")
    lines.append("| **all** | " + " | ".join(f"{t[0]}/{t[1]} ({t[2]} equiv., {t[3]} missed)" for t in total.values())
                 + " |")
    (RESULTS / "verify.md").write_text("\n".join(lines) + "\n")
    (RESULTS / "verify.json").write_text(json.dumps(
        {"proofs": [{k: v for k, v in p.items() if k != "folder"} for p in proofs], "mutants": rows},
        indent=1, default=str) + "\n")
    print("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--per-kind", type=int, default=3, help="mutants of each kind per design")
    ap.add_argument("--mutants-only", action="store_true", help="keep the proof times of the last verify.json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="jpq-bench-verify-") as tmp:
        work = Path(tmp)
        proofs = []
        if args.mutants_only:
            proofs = json.loads((RESULTS / "verify.json").read_text())["proofs"]
        for d in [] if args.mutants_only else proof_designs(work, args.quick):
            once = d.pop("once") or d["nonzero_weights"] > 50_000
            d.update(timed_proof(d["folder"], 1 if once else args.repeats))
            print(f"{d['design']}: {d['seconds']} s, {d['peak_mb']} MB", file=sys.stderr)
            proofs.append(d)
        rows = run_mutants(work, args.quick, 1 if args.quick else args.per_kind)
        write_report(proofs, rows, args)


if __name__ == "__main__":
    main()
