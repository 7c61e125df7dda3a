"""The word-level proof that a netlist computes a flat network's integer function.

Walk yosys's netlist (:mod:`.netlist`) in topological order and give every word the exact linear
form (:mod:`.forms`) it holds: an input field holds its variable; ``$add`` / ``$sub`` / ``$neg`` /
``$mul`` by a constant hold the sum, difference, negation or multiple of what their ports read,
and ``$not`` of a word with a form holds ``-a - 1``, where every read is checked not to wrap
(:func:`.forms.read_port`). Any other cell (comparison, multiplexer, logic, a slice that drops low
bits) holds no form: it belongs to an *output stage*,
a cone of such cells over words that all hold one linear form up to a constant (the accumulator).
Such a cone is proven by running it (:mod:`.evaluate`) on every value of that form's range and
comparing with the contract's rounding, ReLU and saturation of the neuron whose weights the form
carries (:mod:`.reference`), or, where the range holds more than ``max_enumeration`` values, by
yosys's SAT solver on the same comparison (:mod:`.sat`); the cone's result then holds that neuron's output variable, which the
next layer's adders read. The module outputs must hold, modulo their width, the last layer's
outputs.

Registers are delays: every cell must combine values of one age (registers crossed since the
input), the outputs must have the age ``latency_cycles``, ``out_valid`` must be ``in_valid``
through exactly that many registers that power up at 0, and every register must be clocked by
``clk`` on its rising edge (with, for a stream kernel, every register enabled by ``en``).

The proof is independent of the lowering: it reads the Verilog through yosys and the weights from
the checkpoint, never jpq-hw's adder graph.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .evaluate import as_width, evaluate_cell
from .forms import Form, NotLinear, WrapError, extend, read_port, reduce_mod
from .netlist import BitRef, Netlist, NetlistError
from .reference import FlatReference, Neuron
from .sat import SatJob, SatUndecided, sat_output_stages

LINEAR = {"$add", "$sub", "$neg", "$not", "$mul"}
MAX_ENUMERATION = 1 << 26   # accumulator values one output stage may be run on
CHUNK = 1 << 20
MAX_CONE = 4096             # cells in one output stage


class ProofFailure(Exception):
    """The design does not compute the checkpoint's function (or the proof cannot show that it
    does); ``neuron`` and ``acc`` locate an output-stage counterexample when there is one."""

    def __init__(self, msg: str, *, neuron: Neuron | None = None, acc: int | None = None,
                 form: Form | None = None, targets=None):
        super().__init__(msg)
        self.neuron, self.acc = neuron, acc
        self.form = form          # a sum whose value, at one of ``targets`` (or its extremes), shows the bug
        self.targets = targets
        self.counterexample = None  # set by the caller that searched for one


@dataclass
class FlatProof:
    """What was proven: outputs, layers, output stages run exhaustively, the largest accumulator."""

    outputs: int
    layers: int
    neurons: int                 # output stages proven (cones)
    values_enumerated: int       # accumulator values the output stages run on were run on
    solved: int = 0              # output stages proven by SAT instead (ranges too wide to run)
    widest_accumulator: tuple[int, int] = (0, 0)
    latency: int = 0
    words: int = 0
    seconds: dict = field(default_factory=dict)


class FlatProver:
    """One proof of ``netlist`` against ``ref`` (see the module notes)."""

    def __init__(self, netlist: Netlist, ref: FlatReference, *, data_inputs: dict[str, str],
                 control: dict[str, str], latency: int, max_enumeration: int = MAX_ENUMERATION):
        """``data_inputs``: port -> variable prefix ("x"); ``control``: role -> port name for
        ``clk``, ``in_valid``, ``en`` (those present)."""
        self.nl, self.ref, self.latency = netlist, ref, latency
        self.max_enumeration = max_enumeration
        n = len(netlist.words)
        self.form: list[Form | None] = [None] * n
        self.age: list[int | None] = [None] * n
        self.control = {}
        for port, fields in netlist.input_fields.items():  # every input that carries no data
            if port not in data_inputs:
                role = next((r for r, p in control.items() if p == port), port)
                for w in fields:
                    self.control[w] = role
                    self.age[w] = 0
        for port, prefix in data_inputs.items():
            for i, w in enumerate(netlist.input_fields[port]):
                self.form[w] = Form.var((prefix, i))
                self.age[w] = 0
        self.failures: list[ProofFailure] = []
        self._tried: dict[int, ProofFailure | None] = {}
        self.cones = 0
        self.enumerated = 0
        self.solved = 0
        self.pending: list[tuple] = []  # (SatJob, neuron, scale, base form) left to SAT
        self.widest = (0, 0)

    # ---------------------------------------------------------------- driving

    def prove(self, output_port: str = "y") -> FlatProof:
        t0 = time.perf_counter()
        self._check_registers()
        for u in self._topological():
            self._visit(u)
        t1 = time.perf_counter()
        try:
            self._check_outputs(output_port)
        except ProofFailure:
            self._run_pending()  # a wrong output stage explains a wrong output better
            raise
        self._run_pending()
        outs = self.ref.outputs()
        ranges = [n.acc.range(self.ref.ranges) for layer in self.ref.layers for n in layer]
        self.widest = max(ranges, key=lambda r: r[1] - r[0], default=(0, 0))
        return FlatProof(outputs=len(outs), layers=len(self.ref.layers), neurons=self.cones,
                         values_enumerated=self.enumerated, solved=self.solved, widest_accumulator=self.widest,
                         latency=self.latency,
                         words=len(self.nl.words), seconds={"forms": round(t1 - t0, 3),
                                                            "outputs": round(time.perf_counter() - t1, 3)})

    def _topological(self) -> list[int]:
        try:
            return self.nl.topological()
        except NetlistError as e:
            raise ProofFailure(str(e)) from None

    def _visit(self, u: int) -> None:
        word = self.nl.words[u]
        if word.cell is None:
            return
        self.age[u] = self._age_of(word.name, [b for bits in word.ports.values() for b in bits])
        if word.type not in LINEAR:
            return
        try:
            self.form[u] = self._linear(u)
        except NotLinear:
            pass
        except WrapError as e:
            self.failures.append(ProofFailure(f"cell {word.name}: {e}", form=e.form))

    def _age_of(self, where: str, bits) -> int | None:
        ages = {self.age[b.word] + b.delay for b in bits if isinstance(b, BitRef) and self.age[b.word] is not None}
        if len(ages) > 1:
            raise ProofFailure(f"{where} combines values from different clock cycles "
                               f"({', '.join(str(a) for a in sorted(ages))} registers after the input)")
        return ages.pop() if ages else None

    # ---------------------------------------------------------------- linear cells

    def _read(self, bits, prefer: Neuron | None = None) -> Form:
        """``read_port`` with the words it finds opaque resolved as output stages first."""
        for attempt in (0, 1):
            try:
                return read_port(bits, self.form.__getitem__, self.ref.ranges, self._name)
            except NotLinear as e:
                if attempt or not e.opaque:
                    raise
                for w in dict.fromkeys(e.opaque):
                    self._resolve(w, prefer)
        raise AssertionError("unreachable")

    def _linear(self, u: int) -> Form:
        word = self.nl.words[u]
        m, kind = word.width, word.type

        both = kind in ("$add", "$sub", "$mul") and word.param("A_SIGNED") == 1 and word.param("B_SIGNED") == 1

        def port(p):  # simlib.v: a binary operation is signed only where both operands are
            signed = both if kind != "$neg" else word.param("A_SIGNED") == 1
            return self._read(extend(word.ports[p], signed, m))

        if kind == "$neg":
            return port("A").scaled(-1)
        if kind == "$not":  # ~a == -a - 1 on the extended word; of a linear word only (an inverted
            # test inside an output stage stays part of that stage's cone)
            bits = extend(word.ports["A"], word.param("A_SIGNED") == 1, m)
            return read_port(bits, self.form.__getitem__, self.ref.ranges, self._name).scaled(-1).plus(Form.constant(-1))
        if kind == "$mul":
            a, b = port("A"), port("B")
            if not b.is_constant():
                a, b = b, a
            if not b.is_constant():
                raise NotLinear("a product of two variables")
            return a.scaled(b.const)
        a, b = port("A"), port("B")
        return a.plus(b, 1 if kind == "$add" else -1)

    def _name(self, w: int) -> str:
        return self.nl.words[w].name

    # ---------------------------------------------------------------- output stages

    def _resolve(self, w: int, prefer: Neuron | None = None, record: bool = True) -> bool:
        """Prove what the opaque word ``w`` holds (a neuron's output), or record why not.

        Where the cone down to linear words is not one neuron's output stage, it may run through
        another layer's output (a threshold of the previous layer's output, say): the opaque words
        inside it that are neuron outputs are resolved first (deepest first), and ``w`` is tried
        again over them."""
        if self.form[w] is not None:
            return True
        if w in self._tried and (prefer is None or self._tried[w] is None):
            return False
        try:
            order, frontier = self._cone(w)
            try:
                self.form[w] = self._prove_cone(w, order, frontier, prefer)
            except ProofFailure:
                inner = [u for u in order[:-1] if self.form[u] is None and u not in self._tried]
                if not any([self._resolve(u, record=False) for u in inner]):
                    raise
                order, frontier = self._cone(w)
                self.form[w] = self._prove_cone(w, order, frontier, prefer)
            self._tried[w] = None
            return True
        except ProofFailure as e:
            self._tried[w] = e
            if record:
                self.failures.append(e)
            return False

    def _cone(self, w: int) -> tuple[list[int], list[int]]:
        order, frontier, seen = [], {}, set()
        stack = [(w, False)]
        while stack:
            u, done = stack.pop()
            if done:
                order.append(u)
                continue
            if u in seen:
                continue
            seen.add(u)
            if len(seen) > MAX_CONE:
                raise ProofFailure(f"{self._name(w)} depends on more than {MAX_CONE} cells that are not "
                                   "additions: not an output stage")
            stack.append((u, True))
            for bits in self.nl.words[u].ports.values():
                for b in bits:
                    if not isinstance(b, BitRef):
                        continue
                    if b.word in self.control:
                        raise ProofFailure(f"{self._name(w)} depends on the control input "
                                           f"{self.control[b.word]}")
                    if self.form[b.word] is not None:
                        frontier[b.word] = True
                    elif b.word not in seen:
                        stack.append((b.word, False))
        return order, list(frontier)

    def _prove_cone(self, w: int, order: list[int], frontier: list[int], prefer: Neuron | None) -> Form:
        words = self.nl.words
        norm = {f: self.form[f].normalized() for f in frontier}  # a constant word: (empty key, scale 0)
        if not any(key for key, _ in norm.values()):  # a function of constants: a constant
            vals: dict[int, np.ndarray] = {f: as_width(np.array([self.form[f].const]), words[f].width)
                                           for f in frontier}
            for u in order:
                vals[u] = evaluate_cell(words[u], lambda v, d: vals[v], 1)
            return Form.constant(int(vals[w][0]))
        frontier = [f for f in frontier if norm[f][0]] + [f for f in frontier if not norm[f][0]]
        if len({key for key, _ in norm.values() if key}) != 1:
            names = ", ".join(self._name(f) for f in frontier[:4])
            raise ProofFailure(f"{self._name(w)} is a function of several different sums ({names}): "
                               "not one neuron's output stage")
        key = norm[frontier[0]][0]
        base = Form(dict(key))  # every frontier word holds scale * base + constant
        candidates = list(self.ref.by_shape.get(key, []))
        if not candidates:
            raise ProofFailure(f"{self._name(w)} is computed from {self._name(frontier[0])} = "
                               f"{self.form[frontier[0]]}, which is no neuron's weighted sum in the checkpoint")
        if prefer is not None:
            candidates.sort(key=lambda c: c[0] is not prefer)
        lo, hi = base.range(self.ref.ranges)
        inputs = [(f, norm[f][1], self.form[f].const) for f in frontier]
        by_sat = hi - lo + 1 > self.max_enumeration
        if by_sat and len(candidates) == 1:  # proven later, with the others, in one yosys run
            neuron, scale = candidates[0]
            self.pending.append((self._sat_job(w, order, inputs, neuron, scale, lo, hi), neuron, scale, base))
            self.cones += 1
            self.solved += 1
            return neuron.out
        first_failure = None
        for neuron, scale in candidates:
            bad = self._sat_cone(w, order, inputs, neuron, scale, lo, hi) if by_sat else \
                self._run_cone(w, order, inputs, neuron, scale, lo, hi)
            if bad is None:
                self.cones += 1
                if by_sat:
                    self.solved += 1
                else:
                    self.enumerated += hi - lo + 1
                return neuron.out
            if first_failure is None:
                first_failure = (neuron, scale, bad)
        neuron, scale, bad = first_failure
        raise self._cone_failure(w, neuron, scale, bad, base)

    def _cone_failure(self, w: int, neuron: Neuron, scale: int, bad, base: Form) -> ProofFailure:
        u, got, want, where = bad
        layer = self.ref.qnet.layers[neuron.layer]
        acc = scale * u + neuron.acc.const
        return ProofFailure(f"layer {layer.name} output {neuron.index}: at accumulator {acc} the circuit's output "
                            f"stage gives {got}, the contract {want} (modulo 2**{self.nl.words[w].width})",
                            neuron=neuron, acc=acc, form=base, targets=where)

    def _sat_job(self, w, order, inputs, neuron: Neuron, scale: int, lo: int, hi: int) -> SatJob:
        layer = self.ref.qnet.layers[neuron.layer]
        return SatJob(w, order, inputs, scale, neuron.acc.const, lo, hi, layer.shift, layer.relu, layer.out.lo,
                      layer.out.hi)

    def _solve(self, jobs: list[SatJob]) -> list[int | None]:
        try:
            return sat_output_stages(self.nl, jobs)
        except SatUndecided as e:
            raise ProofFailure(f"an output stage's accumulator takes more than the {self.max_enumeration:,} values "
                               f"an output stage is run on, and yosys's SAT solver could not decide it: {e}") from None

    def _run_pending(self) -> None:
        """The output stages left to SAT (:meth:`_prove_cone`), in as few yosys runs as they fit."""
        pending, self.pending = self.pending, []
        if not pending:
            return
        for (job, neuron, scale, base), u in zip(pending, self._solve([p[0] for p in pending])):
            if u is not None:
                raise self._cone_failure(job.w, neuron, scale, self._confirm(job, neuron, scale, u), base)

    def _sat_cone(self, w, order, inputs, neuron: Neuron, scale: int, lo: int, hi: int):
        """As :meth:`_run_cone`, for a range too wide to run: yosys's SAT solver (:mod:`.sat`) proves
        the cone or finds a value where it differs, on which the cone is then run."""
        job = self._sat_job(w, order, inputs, neuron, scale, lo, hi)
        (u,) = self._solve([job])
        return None if u is None else self._confirm(job, neuron, scale, u)

    def _confirm(self, job: SatJob, neuron: Neuron, scale: int, u: int):
        """The cone run on the base sum ``u`` that SAT says shows a difference."""
        bad = self._run_cone(job.w, job.order, job.inputs, neuron, scale, u, u)
        if bad is None:
            raise ProofFailure(f"{self._name(job.w)}: yosys's SAT solver says the output stage differs at base sum "
                               f"{u}, running the cone there says it does not")
        return bad

    def _run_cone(self, w, order, inputs, neuron: Neuron, scale: int, lo: int, hi: int):
        """None if the cone equals the neuron's output stage for every value ``u`` in ``[lo, hi]``
        of the base sum (the neuron's accumulator is ``scale * u + const``; frontier word ``f``
        holds ``s_f * u + c_f``, ``inputs`` lists ``(f, s_f, c_f)``), else the first
        ``(u, got, want, sample of failing u)``."""
        words = self.nl.words
        width = words[w].width
        g = self.ref.stage(neuron.layer)
        for start in range(lo, hi + 1, CHUNK):
            t = np.arange(start, min(hi + 1, start + CHUNK), dtype=np.int64)
            vals: dict[int, np.ndarray] = {}
            for f, s_f, c_f in inputs:
                vals[f] = as_width(s_f * t + c_f, words[f].width)
            for u in order:
                vals[u] = evaluate_cell(words[u], lambda v, d: vals[v], len(t))
            got = vals[w]
            want = as_width(np.asarray(g(scale * t + neuron.acc.const)), width)
            bad = np.flatnonzero(got != want)
            if len(bad):
                i = int(bad[0])
                return int(t[i]), int(got[i]), int(want[i]), t[bad[np.linspace(0, len(bad) - 1, 256).astype(int)]]
        return None

    # ---------------------------------------------------------------- outputs and registers

    def _check_outputs(self, port: str) -> None:
        bits = self.nl.output_bits(port)
        outs = self.ref.outputs()
        fmt = self.ref.qnet.output
        if len(bits) != len(outs) * fmt.bits:
            raise ProofFailure(f"output {port} has {len(bits)} bits, the checkpoint needs {len(outs)} x {fmt.bits}")
        for neuron in outs:
            o = neuron.index
            sl = bits[o * fmt.bits:(o + 1) * fmt.bits]
            age = self._age_of(f"output {o}", sl)
            if age is not None and age != self.latency:
                raise ProofFailure(f"output {o} is {age} register stages after the input, the report says "
                                   f"{self.latency}")
            try:
                got = self._read(sl, prefer=neuron)
            except (NotLinear, WrapError) as e:
                raise self._first_failure(f"output {o}: {e}", getattr(e, "form", None)) from None
            diff = reduce_mod(got.plus(neuron.out, -1), fmt.bits)
            if diff.coef or diff.const:
                raise self._first_failure(f"output {o} computes {got}, the checkpoint {neuron.out}")

    def _first_failure(self, fallback: str, form: Form | None = None) -> ProofFailure:
        return self.failures[0] if self.failures else ProofFailure(fallback, form=form)

    def _check_registers(self) -> None:
        clk = next((w for w, r in self.control.items() if r == "clk"), None)
        en = next((w for w, r in self.control.items() if r == "en"), None)
        cells = self.nl.register_cells()
        if cells and clk is None:
            raise ProofFailure("the design has registers but no clk input")
        if not cells and self.latency:
            raise ProofFailure(f"the report says latency {self.latency} but the design has no register")
        for name, cell in zip(self.nl.registers, cells):
            c = self.nl.resolve(cell["connections"]["CLK"][0])
            pol = cell["parameters"]["CLK_POLARITY"]
            if not (isinstance(c, BitRef) and c.word == clk and c.delay == 0) or int(str(pol), 2) != 1:
                raise ProofFailure(f"register {name} is not clocked by the rising edge of clk")
        if en is not None and self.nl.unenabled_registers():
            raise ProofFailure(f"register {self.nl.unenabled_registers()[0]} loads whatever en is: a stalled "
                               "pipeline would lose or change its value")

    def check_valid(self, out_port: str = "out_valid", in_port: str = "in_valid") -> None:
        """``out_valid`` is ``in_valid`` through exactly ``latency`` registers that power up at 0."""
        nl = self.nl
        net = nl.module["ports"][out_port]["bits"][0]
        crossed = 0
        while True:
            if net in nl._input_bit:
                src = nl._input_bit[net]
                if src.word not in nl.input_fields.get(in_port, []):
                    raise ProofFailure(f"{out_port} comes from an input other than {in_port}")
                break
            if not isinstance(net, int) or net not in nl._driver:
                raise ProofFailure(f"{out_port} is not {in_port} delayed by registers")
            name, _, i = nl._driver[net]
            cell = nl.module["cells"][name]
            if cell["type"] == "$dff":
                if nl.init.get(net) != "0":
                    raise ProofFailure(f"register {name} on the {out_port} path does not power up at 0")
                crossed += 1
                net = cell["connections"]["D"][i]
            elif name not in nl.word_of_cell:  # a wiring cell
                net, delay = nl._wiring_source(cell, i)
                if isinstance(net, str):
                    raise ProofFailure(f"{out_port} is a constant")
            else:
                raise ProofFailure(f"{out_port} is computed by {cell['type']} {name}, not delayed {in_port}")
        if crossed != self.latency:
            raise ProofFailure(f"{out_port} follows {in_port} by {crossed} cycles, the report says {self.latency}")
