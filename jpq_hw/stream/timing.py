"""Handshake timing of a stream design, cycle by cycle: latency and cycles per frame.

:func:`simulate_handshakes` runs the control logic of the hardware that
:mod:`jpq_hw.hdl.stream_verilog` writes (``rtl_templates/stream_lib.v.j2``: window, collector,
handshake registers), without data, for a source that always has a pixel and a sink that is always
ready. :func:`window_slot` is the window's position logic, the same function the Verilog computes;
the simulations check both figures against the hardware.
"""

from __future__ import annotations

from dataclasses import dataclass

from .net import ConvStage, DenseStage, StreamNet


def window_slot(st: ConvStage, r: int, c: int, tail: bool) -> tuple[bool, int, int]:
    """For a slot at pixel position ``(r, c)`` of its frame: whether it emits a window, and the
    padded-frame position (bottom-right corner of the window) it stands for."""
    k, s, p, h, w = st.kernel, st.stride, st.padding, st.inp.height, st.inp.width
    wrap = c < p
    rr = r - 1 if wrap else r
    prev = tail and rr < p
    pr = rr + p + (h if prev else 0)
    pc = c + w + p if wrap else c + p
    in_frame = prev or rr >= 0
    emit = in_frame and pr >= k - 1 and pc >= k - 1 and (pr - k + 1) % s == 0 and (pc - k + 1) % s == 0
    return emit, pr, pc


@dataclass
class _Conv:
    st: ConvStage
    pipe: list  # valid bits of the kernel's register stages (or of the output register), last = out
    r: int = 0
    c: int = 0
    tail: bool = False
    fake: bool = False
    win_valid: bool = False

    @property
    def out_valid(self) -> bool:
        return self.pipe[-1]


@dataclass
class _Dense:
    n: int
    pipe: list
    count: int = 0
    full: bool = False

    @property
    def out_valid(self) -> bool:
        return self.pipe[-1]


@dataclass
class _Pixel:
    """A stage that yields one beat per beat it takes: its registers (``lat`` inside, then the
    output's) move together when its output is free or taken."""

    pipe: list

    @property
    def out_valid(self) -> bool:
        return self.pipe[-1]


@dataclass(frozen=True)
class StreamTiming:
    """``latency_cycles``: from the cycle the first pixel of a frame is accepted to the cycle its
    first output beat is valid; ``cycles_per_frame``: the most cycles between the first pixels of
    two frames in a row; both with the input always valid and the output always ready."""

    latency_cycles: int
    cycles_per_frame: int


def simulate_handshakes(net: StreamNet, frames: int = 4, latencies=None) -> StreamTiming:
    """``latencies``: the register stages of each stage's graph, or inside a stage without weights
    (default none: a combinational kernel and one output register); the registers of a stage move
    together, when its output is empty or taken."""
    latencies = latencies or [0] * len(net.stages)
    stages = [_Conv(s, [False] * max(lat, 1)) if isinstance(s, ConvStage)
              else _Dense(s.inp.pixels, [False] * max(lat, 1)) if isinstance(s, DenseStage) else _Pixel([False] * (lat + 1))
              for s, lat in zip(net.stages, latencies)]
    per_frame_out = net.out.pixels
    pixels = net.inp.pixels
    accepted = out_beats = 0
    frame_starts: list[int] = []
    first_out = None
    limit = (frames + 2) * pixels * 4 + 1000 * len(stages)
    for t in range(limit):
        # ready, from the sink back to the source; valid comes from registers (and the source)
        ready_down = True
        readies: list[bool] = [False] * len(stages)
        valids = [True] + [s.out_valid for s in stages[:-1]]
        actions = []
        for i in range(len(stages) - 1, -1, -1):
            s, v = stages[i], valids[i]
            in_ready = not s.out_valid or ready_down
            if isinstance(s, _Conv):
                p = s.st.padding
                free = not s.win_valid or in_ready
                start_fake = p > 0 and s.tail and s.r == 0 and s.c == 0 and not s.fake and not v
                faking = s.fake or start_fake
                slot = free and (faking or v)
                readies[i] = free and not faking
                actions.append((i, in_ready, slot, faking))
            elif isinstance(s, _Pixel):
                readies[i] = in_ready
                actions.append((i, in_ready, v, None))
            else:
                take = s.full and in_ready
                readies[i] = not s.full or take
                actions.append((i, in_ready, take, v and readies[i]))
            ready_down = readies[i]
        if stages[-1].out_valid:  # the sink is always ready
            out_beats += 1
            if first_out is None:
                first_out = t
        if readies[0]:
            if accepted % pixels == 0:
                frame_starts.append(t)
            accepted += 1
        for i, in_ready, a, b in actions:  # clock edge
            s = stages[i]
            if isinstance(s, _Conv):
                slot, faking = a, b
                if in_ready:
                    s.pipe = [s.win_valid] + s.pipe[:-1]
                if slot:
                    st = s.st
                    emit, _, _ = window_slot(st, s.r, s.c, s.tail)
                    last = s.r == st.inp.height - 1 and s.c == st.inp.width - 1 and not faking
                    tail_done = st.padding > 0 and s.r == st.padding and s.c == st.padding - 1
                    if last or (faking and tail_done):
                        s.r = s.c = 0
                    elif s.c == st.inp.width - 1:
                        s.r, s.c = s.r + 1, 0
                    else:
                        s.c += 1
                    if last:
                        s.tail = st.padding > 0
                    elif tail_done:
                        s.tail = False
                    s.fake = faking and not tail_done
                    s.win_valid = emit
                elif in_ready:
                    s.win_valid = False
            elif isinstance(s, _Pixel):
                if in_ready:
                    s.pipe = [a] + s.pipe[:-1]
            else:
                take, accept = a, b
                if in_ready:
                    s.pipe = [s.full] + s.pipe[:-1]
                done = s.count == s.n - 1
                if accept:
                    s.count = 0 if done else s.count + 1
                if accept and done:
                    s.full = True
                elif take:
                    s.full = False
        if out_beats >= frames * per_frame_out and len(frame_starts) > frames:
            break
    else:
        raise AssertionError("internal error: the stream stalls in its timing model")
    gaps = [b - a for a, b in zip(frame_starts[1:frames], frame_starts[2:frames + 1])] or [pixels]
    return StreamTiming(first_out - frame_starts[0], max(max(gaps), pixels))
