"""``jpq-hw verify``: a formal proof that a design folder's Verilog computes its checkpoint.

:func:`verify_design` reads ``OUT/report.json`` (the interface, the checkpoint it names and that
checkpoint's sha256), reads ``OUT/rtl/*.v`` through yosys (:mod:`.netlist`) and proves, for every
input, that the circuit computes the contract's integer function of the checkpoint: the word-level
method of :mod:`.prove`. A flat design is proven whole; a stream design stage by stage
(:mod:`.stream`). On failure it raises :class:`ProofFailure`, with a counterexample input where one
is found (:mod:`.counterexample`).
"""

from .forms import Form
from .prove import FlatProof, ProofFailure
from .design import Proof, verify_design

__all__ = ["FlatProof", "Form", "Proof", "ProofFailure", "verify_design"]
