"""How fast the plumbing of stream designs and the functions of stereo stages are proven, and
whether wrong ones are rejected.

    python bench/verify_plumbing.py      # about 25 minutes on 2 cores

1. Every stream design of ``pytest sim/`` (``sim/test_streams.py``), lowered as there, and the
   shipped stereo example (one 125x185 frame): states explored, the longest shortest path to a
   state (cycles after reset) and the seconds of :func:`prove_plumbing` (yosys included), one run
   each at the default limit, and the parts not proven.
   Per stage part: its states, register bits and seconds (a window's line buffer proof included),
   and from them the time per register bit and state (what ``MAX_WORK`` in
   ``jpq_hw/verify/plumbing.py`` is set from).
2. The SAT proofs of the ``hamming_cost``, ``argmin`` and box_sum column-sum functions
   (:mod:`jpq_hw.verify.functions`) of the stereo designs: seconds per stage.
3. The library modules made wrong (:data:`jpq_hw.verify.mutate.PLUMBING_MUTANTS`) or slow or stuck
   but never wrong (:data:`~jpq_hw.verify.mutate.PROGRESS_MUTANTS`) in three designs
   (padding and a stride; a flatten; a block-RAM line buffer before pipelined kernels), the line
   buffers made wrong (:data:`~jpq_hw.verify.mutate.LINE_BUFFER_MUTANTS`) in the same three, and the
   stereo modules made wrong (``STEREO_PLUMBING_MUTANTS`` in two small stereo designs, one with a
   box_sum; ``FUNCTION_MUTANTS`` in one of them and in a design with a box_sum and a pipelined
   argmin tree): rejected, accepted, or not applicable (the design does not use that code). An accepted
   mutant is one the proof found correct: the change makes no difference there (for example,
   padding logic in a design without padding).

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
from jpq_hw.verify.functions import FunctionFailure, prove_functions  # noqa: E402
from jpq_hw.verify.mutate import (FUNCTION_MUTANTS, LINE_BUFFER_MUTANTS, PLUMBING_MUTANTS,  # noqa: E402
                                  PROGRESS_MUTANTS, STEREO_PLUMBING_MUTANTS)
from jpq_hw.verify.plumbing import PlumbingFailure, prove_plumbing  # noqa: E402

RESULTS = ROOT / "bench" / "results"
MUTATED = ("pad_k3_k5s2", "k1_k3s2_dense2", "k5_k3_bram-pipe1")
STEREO_MUTATED = ("stereo_wta_only", "box_sum_short_frame")  # plumbing mutants (small windows: quick)
FUNCTION_MUTATED = ("stereo_wta_only", "stereo_box_sum-pipe1")  # function mutants (a pipelined argmin tree)


def _mutant_verdict(work: Path, out: Path, report: dict, qnet, text: str, before: str, after: str,
                    function: bool) -> str:
    if before not in text:
        return "not applicable"
    bad = work / "mutant"
    shutil.rmtree(bad, ignore_errors=True)
    shutil.copytree(out, bad)
    (bad / "rtl" / "t.v").write_text(text.replace(before, after, 1))
    try:
        if function:
            prove_functions(rtl_files(bad), report)
            return "accepted"
        p = prove_plumbing(rtl_files(bad), report, qnet, max_states=50_000)
    except FunctionFailure as e:  # SAT shows an input, or the tree's registers break the pipeline's rules
        return "rejected (SAT: an input that shows it)" if e.x is not None else f"rejected ({e})"
    except PlumbingFailure as e:
        if not e.trace:  # the whole design's full-rate run, against the report
            return f"rejected ({e})"
        return f"rejected ({len(e.trace)} cycles)"
    return "accepted" if p.complete else f"not proven: {'; '.join(p.unproven)}"


def main() -> None:
    import test_streams

    rows, parts, functions, mutants = [], [], [], []
    cases = [(case, case.id) for case in test_streams.STREAMS] + [(None, "stereo example (Motorcycle)")]
    with tempfile.TemporaryDirectory(prefix="jpq-bench-plumbing-") as tmp:
        work = Path(tmp)
        for case, name in cases:
            out = work / name.replace(" ", "_")
            if case is None:
                ck = ROOT / "examples" / "stereo.pt"
                report = lower_checkpoint(ck, out, top="t", n_vectors=1, force=True)
            else:
                ck, extra = test_streams._checkpoint(case, work)
                report = lower_checkpoint(ck, out, top="t", n_vectors=1, seed=5, force=True, extra_inputs=extra[:1],
                                          backend=case.backend, pipeline=case.pipeline)
            qnet = load_checkpoint(ck)
            c, h, w = qnet.input_shape
            t0 = time.perf_counter()
            p = prove_plumbing(rtl_files(out), report, qnet)
            full = f"{p.latency} / {p.period} ({p.full_rate_cycles:,})" if p.latency is not None else "-"
            rows.append({"design": name, "frame": f"{c}x{h}x{w}", "stages": f"{p.kernels} of {p.stages}",
                         "states": p.states, "depth": p.depth, "seconds": round(time.perf_counter() - t0, 1),
                         "full rate": full, "not proven": p.unproven})
            parts += [{"design": name, "part": where, "states": n, "bits": bits, "seconds": s}
                      for where, n, bits, s in p.parts]
            print(rows[-1], file=sys.stderr)
            for i, fp in prove_functions(rtl_files(out), report):
                functions.append({"design": name, "stage": report["layers"][i]["name"], "kind": fp.kind,
                                  "inputs": fp.input_bits, "latency": fp.latency, "seconds": fp.seconds})
            text = (out / "rtl" / "t.v").read_text()
            lists = (([(m, False) for m in PLUMBING_MUTANTS + LINE_BUFFER_MUTANTS + PROGRESS_MUTANTS]
                      if name in MUTATED else []) +
                     ([(m, False) for m in STEREO_PLUMBING_MUTANTS] if name in STEREO_MUTATED else []) +
                     ([(m, True) for m in FUNCTION_MUTANTS] if name in FUNCTION_MUTATED else []))
            for (what, before, after), function in lists:
                verdict = _mutant_verdict(work, out, report, qnet, text, before, after, function)
                mutants.append({"design": name, "mutant": what, "verdict": verdict})
                print(mutants[-1], file=sys.stderr)
    timed = [r for r in parts if r["states"] >= 1000]
    rate = sorted(1e6 * r["seconds"] / (r["states"] * r["bits"]) for r in timed)
    lines = ["# jpq-hw verify: the plumbing of stream designs, the functions of stereo stages", "",
             "`python bench/verify_plumbing.py` on this machine (2 cores), one run each: "
             "`jpq_hw.verify.plumbing.prove_plumbing` (yosys's netlist included) on the stream designs of "
             "`pytest sim/` and the shipped stereo example. *stages*: stages whose every part is proven; "
             "*states*: distinct states explored, all proven stage parts together; *depth*: cycles after reset "
             "to the farthest state (shortest path); the default limit of states per stage part, a window's "
             "line buffer proven apart (`jpq_hw/verify/line_buffer.py`) and its states counted in; *full rate*: where every part is proven, the whole design's latency "
             "and frame period (cycles) at full rate from reset, proven equal to the report's, and the cycles "
             "the joint run took to repeat; *seconds*: the whole proof, yosys, progress under fair stalls and "
             "the full-rate run included.", "",
             "| design | input | stages | states | depth | full rate | seconds | not proven |",
             "|---|---|---:|---:|---:|---:|---:|---|"]
    lines += [f"| {r['design']} | {r['frame']} | {r['stages']} | {r['states']:,} | {r['depth']:,} | {r['full rate']} | "
              f"{r['seconds']} | {'; '.join(r['not proven']) or '-'} |" for r in rows]
    lines += ["", f"Time per register bit and state, over the {len(timed)} stage parts of at least 1,000 states: "
              f"median {rate[len(rate) // 2]:.2f} us, range {rate[0]:.2f} to {rate[-1]:.2f} us "
              "(`MAX_WORK`, the default work per part, is set from it)." if rate else "",
              "", "## The functions of stereo stages (SAT)", "",
              "| design | stage | kind | input bits | register stages | seconds |", "|---|---|---|---:|---:|---:|"]
    lines += [f"| {f['design']} | {f['stage']} | {f['kind']} | {f['inputs']} | {f['latency']} | {f['seconds']} |"
              for f in functions]
    lines += ["", "## Wrong plumbing and wrong functions", "",
              "The library modules made wrong (`jpq_hw/verify/mutate.py`: `PLUMBING_MUTANTS`, `LINE_BUFFER_MUTANTS` "
              "(rejected by the line buffer's own proof, with the enables that show it), `PROGRESS_MUTANTS` "
              "(slow or stuck, every beat right), "
              "`STEREO_PLUMBING_MUTANTS`, `FUNCTION_MUTANTS`); *rejected* with the length of the handshake "
              "sequence that shows it (a function: by SAT with an input, or the rule of a pipeline it breaks); *accepted*: proven correct (the "
              "change makes no difference in that design); *not applicable*: the design does not contain that "
              "code.", "", "| design | mutant | verdict |", "|---|---|---|"]
    lines += [f"| {m['design']} | {m['mutant']} | {m['verdict']} |" for m in mutants]
    (RESULTS / "verify_plumbing.md").write_text("\n".join(lines) + "\n")
    (RESULTS / "verify_plumbing.json").write_text(json.dumps({"designs": rows, "parts": parts, "functions": functions,
                                                             "mutants": mutants}, indent=1) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
