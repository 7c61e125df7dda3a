"""How fast the plumbing of stream designs is proven, and whether wrong plumbing is rejected.

    python bench/verify_plumbing.py      # about 10 minutes on 2 cores

1. Every stream design of ``pytest sim/`` (``sim/test_streams.py``) whose stages are conv2d and
   dense ones (the plumbing proof covers those), lowered as there: states explored, the longest
   shortest path to a state (cycles after reset) and the seconds of :func:`prove_plumbing` (yosys
   included), one run each, at most 30,000 states per stage part: ``frame64`` (64x64 frames) needs
   more, and is shown as given up.
2. The library modules made wrong (:data:`jpq_hw.verify.mutate.PLUMBING_MUTANTS`) in three designs
   (padding and a stride; a flatten; a block-RAM line buffer before pipelined kernels): rejected,
   accepted, or not applicable (the design does not use that code). An accepted mutant is one the
   proof found correct: the change makes no difference there (for example, padding logic in a
   design without padding).

Writes ``bench/results/verify_plumbing.md`` and ``verify_plumbing.json``.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "sim"))

from jpq_hw.design_folder import rtl_files  # noqa: E402
from jpq_hw.flow import lower_checkpoint  # noqa: E402
from jpq_hw.ir import load_checkpoint  # noqa: E402
from jpq_hw.verify.mutate import PLUMBING_MUTANTS  # noqa: E402
from jpq_hw.verify.plumbing import PlumbingFailure, TooManyStates, prove_plumbing, supported  # noqa: E402

RESULTS = ROOT / "bench" / "results"
MUTATED = ("pad_k3_k5s2", "k1_k3s2_dense2", "k5_k3_bram-pipe1")
LIMIT = 30_000  # states per stage part: frame64's window parts need more


def main() -> None:
    import test_streams

    rows, mutants = [], []
    with tempfile.TemporaryDirectory(prefix="jpq-bench-plumbing-") as tmp:
        work = Path(tmp)
        for case in test_streams.STREAMS:
            ck, extra = test_streams._checkpoint(case, work)
            out = work / case.id
            report = lower_checkpoint(ck, out, top="t", n_vectors=1, seed=5, force=True, extra_inputs=extra[:1],
                                      backend=case.backend, pipeline=case.pipeline)
            if not supported(report):
                continue
            qnet = load_checkpoint(ck)
            c, h, w = qnet.input_shape
            t0 = time.perf_counter()
            try:
                p = prove_plumbing(rtl_files(out), report, qnet, max_states=LIMIT)
            except TooManyStates as e:
                rows.append({"design": case.id, "frame": f"{c}x{h}x{w}", "stages": len(report["layers"]),
                             "states": f"gave up: {e}", "depth": "-",
                             "seconds": round(time.perf_counter() - t0, 1)})
                print(rows[-1], file=sys.stderr)
                continue
            seconds = round(time.perf_counter() - t0, 1)
            rows.append({"design": case.id, "frame": f"{c}x{h}x{w}", "stages": p.kernels, "states": p.states,
                         "depth": p.depth, "seconds": seconds})
            print(rows[-1], file=sys.stderr)
            if case.id not in MUTATED:
                continue
            text = (out / "rtl" / "t.v").read_text()
            for what, before, after in PLUMBING_MUTANTS:
                if before not in text:
                    verdict = "not applicable"
                else:
                    bad = work / "mutant"
                    shutil.rmtree(bad, ignore_errors=True)
                    shutil.copytree(out, bad)
                    (bad / "rtl" / "t.v").write_text(text.replace(before, after, 1))
                    try:
                        prove_plumbing(rtl_files(bad), report, qnet, max_states=50_000)
                        verdict = "accepted"
                    except PlumbingFailure as e:
                        verdict = f"rejected ({len(e.trace)} cycles)"
                    except TooManyStates:
                        verdict = "gave up (50,000 states)"
                mutants.append({"design": case.id, "mutant": what, "verdict": verdict})
                print(mutants[-1], file=sys.stderr)
    lines = ["# jpq-hw verify: the plumbing of stream designs", "",
             "`python bench/verify_plumbing.py` on this machine (2 cores), one run each: "
             "`jpq_hw.verify.plumbing.prove_plumbing` (yosys's netlist included) on the stream designs of "
             "`pytest sim/` whose stages are conv2d and dense ones. *states*: distinct states explored, all "
             "stage parts together; *depth*: cycles after reset to the farthest state (shortest path); at most "
             f"{LIMIT:,} states per stage part.", "",
             "| design | input | stages | states | depth | seconds |", "|---|---|---:|---:|---:|---:|"]
    lines += [f"| {r['design']} | {r['frame']} | {r['stages']} | {r['states']:,} | {r['depth']:,} | {r['seconds']} |"
              if isinstance(r["states"], int) else
              f"| {r['design']} | {r['frame']} | {r['stages']} | {r['states']} | - | {r['seconds']} |" for r in rows]
    lines += ["", "## Wrong plumbing", "",
              "The library modules made wrong (`jpq_hw/verify/mutate.py`, `PLUMBING_MUTANTS`); *rejected* with the "
              "length of the handshake sequence that shows it; *accepted*: proven correct (the change makes no "
              "difference in that design); *not applicable*: the design does not contain that code.", "",
              "| design | mutant | verdict |", "|---|---|---|"]
    lines += [f"| {m['design']} | {m['mutant']} | {m['verdict']} |" for m in mutants]
    (RESULTS / "verify_plumbing.md").write_text("\n".join(lines) + "\n")
    (RESULTS / "verify_plumbing.json").write_text(json.dumps({"designs": rows, "mutants": mutants}, indent=1) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
