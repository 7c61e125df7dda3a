"""Prove a design folder: find its checkpoint, read its netlist, run the right proof."""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..design_folder import REPORT_JSON, VECTORS_JSON, Interface, StreamInterface, interface_from_report, rtl_files
from ..errors import JpqError
from ..ir.checkpoint import load_checkpoint
from ..ir.qnet import QNet
from .counterexample import find_counterexample
from .netlist import NetlistError, load_netlist
from .functions import FunctionProof
from .plumbing import PlumbingProof
from .prove import FlatProof, FlatProver, ProofFailure
from .reference import build_reference


@dataclass
class Proof:
    """What ``jpq-hw verify`` proved about one design folder."""

    top: str
    interface: str
    checkpoint: str
    parts: list[tuple[str, FlatProof]] = field(default_factory=list)  # (what, proof) per proven unit
    seconds: float = 0.0
    assumed: list[str] = field(default_factory=list)
    plumbing: PlumbingProof | None = None  # a stream design's plumbing, where proven
    functions: list[tuple[str, FunctionProof]] = field(default_factory=list)  # by SAT: costs, argmins, column sums


def find_checkpoint(root: Path, report: dict, checkpoint: str | os.PathLike | None) -> Path:
    """The checkpoint ``report.json`` names (as given, or relative to the folder's parent), or
    ``checkpoint``; its sha256 must be the one the report recorded."""
    if checkpoint is not None:
        path = Path(checkpoint)
    else:
        named = Path(report.get("checkpoint", {}).get("path", ""))
        tries = [named, root.parent / named, root / named]
        path = next((p for p in tries if p.is_file()), None)
        if path is None:
            raise JpqError(f"report.json names checkpoint {named}, which is not there: pass --checkpoint FILE")
    if not path.is_file():
        raise JpqError(f"no checkpoint at {path}")
    want = report.get("checkpoint", {}).get("sha256")
    got = hashlib.sha256(path.read_bytes()).hexdigest()
    if want and got != want:
        raise JpqError(f"{path} is not the checkpoint this design was lowered from (sha256 {got[:12]}..., "
                       f"report.json says {want[:12]}...)")
    return path


def verify_design(root: str | os.PathLike, *, checkpoint: str | os.PathLike | None = None,
                  max_enumeration: int | None = None, max_states: int | None = None) -> Proof:
    """Prove ``root/rtl/`` equal to the checkpoint its report names, for every input (module notes)."""
    t0 = time.perf_counter()
    if max_states is not None and max_states < 1:
        raise JpqError(f"--max-states must be at least 1, got {max_states}")
    root = Path(root)
    try:
        report = json.loads((root / REPORT_JSON).read_text())
        iface = interface_from_report(report)
    except (OSError, ValueError) as e:
        raise JpqError(f"{root} is not a design folder written by jpq-hw lower ({e})") from None
    path = find_checkpoint(root, report, checkpoint)
    qnet = load_checkpoint(path)
    files = rtl_files(root)
    if not files:
        raise JpqError(f"{root}/rtl holds no Verilog")
    proof = Proof(iface.top, report.get("interface", "flat"), str(path))
    kw = {} if max_enumeration is None else {"max_enumeration": max_enumeration}
    if isinstance(iface, StreamInterface):
        from .stream import prove_stream
        prove_stream(proof, root, report, qnet, files, max_states=max_states, **kw)
    else:
        proof.parts.append(("network", prove_flat(qnet, iface, files, vectors=_test_inputs(root), **kw)))
    proof.seconds = round(time.perf_counter() - t0, 3)
    return proof


def _test_inputs(root: Path):
    try:
        return np.asarray(json.loads((root / VECTORS_JSON).read_text())["x"], dtype=np.int64)
    except (OSError, ValueError, KeyError):
        return None


def prove_flat(qnet: QNet, iface: Interface, files, vectors=None, **kw) -> FlatProof:
    """The proof of a flat design (contract.md section 2). A failure carries a counterexample
    (``failure.counterexample``) where one is found, checked on yosys's netlist cycle by cycle."""
    if len(qnet.input_shape) != 1:
        raise JpqError("report.json says a flat interface, but the checkpoint's input is an image")
    if iface.inputs.count != qnet.input_shape[0] or iface.inputs.bits != qnet.input.bits:
        raise ProofFailure("report.json's input fields differ from the checkpoint's input")
    t0 = time.perf_counter()
    netlist = load_netlist(files, iface.top, {"x": [iface.inputs.bits] * iface.inputs.count})
    t1 = time.perf_counter()
    ref = build_reference(qnet)
    control = {"clk": "clk", "in_valid": "in_valid"} if iface.latency_cycles or "clk" in netlist.input_fields else {}
    prover = FlatProver(netlist, ref, data_inputs={"x": "x"}, control=control, latency=iface.latency_cycles,
                        **kw)
    try:
        proof = prover.prove("y")
        if "out_valid" in netlist.module["ports"] or iface.latency_cycles:
            prover.check_valid()
    except ProofFailure as failure:
        try:
            failure.counterexample = find_counterexample(netlist, qnet, iface.latency_cycles, failure, vectors)
        except NetlistError:
            failure.counterexample = None
        raise
    proof.seconds["yosys"] = round(t1 - t0, 3)
    return proof
