"""The board top's gateware in Amaranth's own simulator (no HDL simulator needed).

- :class:`UARTTransmitter`: the exact waveform (start bit, 8 data bits LSB first, stop bit, each
  ``divisor`` cycles; back-to-back bytes with no gap);
- :class:`UARTReceiver`: bytes from a bit-level sender whose baud rate is 2 % off either way, a glitch
  shorter than half a bit ignored, a low stop bit reported as a framing error;
- :func:`crc8_next` equal to the protocol's CRC-8 for every byte;
- :class:`BoardTop` around a stand-in network (combinational and pipelined): the info frame, vectors
  against a Python model, a wrong CRC, a frame that stops midway, noise, the LEDs.
"""

from __future__ import annotations

import random

import pytest
from amaranth.hdl import Cat, Elaboratable, Module, Signal, signed
from amaranth.sim import Simulator

from jpq_hw.board import protocol as P
from jpq_hw.board.top import BoardTop, crc8_next
from jpq_hw.board.uart import UARTReceiver, UARTTransmitter, divisor_for
from jpq_hw.design_folder import Interface, Port


def run(dut, testbench, processes=()):
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    for p in processes:
        sim.add_process(p)
    sim.run()


def line_bits(byte: int) -> list[int]:
    return [0] + [(byte >> i) & 1 for i in range(8)] + [1]


async def drive(ctx, rx, data: bytes, div: int, error: float = 0.0) -> None:
    """Drive ``data`` on ``rx`` as a sender whose bit lasts ``div * (1 + error)`` cycles."""
    for byte in data:
        bits = line_bits(byte)
        edges = [round(k * div * (1 + error)) for k in range(len(bits) + 1)]
        for k, bit in enumerate(bits):
            ctx.set(rx, bit)
            for _ in range(edges[k + 1] - edges[k]):
                await ctx.tick()


async def receive(ctx, tx, div: int, limit: int = 100_000) -> int:
    """One byte from ``tx``, sampled mid-bit (the host's UART); fails after ``limit`` idle cycles."""
    waited = 0
    while ctx.get(tx):
        await ctx.tick()
        waited += 1
        assert waited < limit, "no start bit on tx"
    for _ in range(div // 2):
        await ctx.tick()
    assert ctx.get(tx) == 0, "start bit not low in its middle"
    byte = 0
    for i in range(8):
        for _ in range(div):
            await ctx.tick()
        byte |= ctx.get(tx) << i
    for _ in range(div):
        await ctx.tick()
    assert ctx.get(tx) == 1, "stop bit not high"
    return byte


def test_divisor_for():
    assert divisor_for(12e6, 115200) == 104
    assert divisor_for(25e6, 115200) == 217
    with pytest.raises(ValueError, match="too slow"):
        divisor_for(300e3, 115200)
    with pytest.raises(ValueError, match="off"):
        divisor_for(115200 * 4.6, 115200)  # 4.6 cycles per bit: 13 % off at 5


@pytest.mark.parametrize("div", [4, 5, 7])
def test_transmitter_waveform(div):
    dut = UARTTransmitter(div)
    data = bytes([0x00, 0xFF, 0xA5, 0x5A, 0x01, 0x80])
    want = [b for byte in data for b in line_bits(byte) for _ in range(div)]
    seen = []

    async def tb(ctx):
        assert ctx.get(dut.tx) == 1
        for byte in data:
            ctx.set(dut.data.payload, byte)
            ctx.set(dut.data.valid, 1)
            while True:
                ready = ctx.get(dut.data.ready)
                await ctx.tick()
                seen.append(ctx.get(dut.tx))
                if ready:
                    break
        ctx.set(dut.data.valid, 0)
        for _ in range(len(want) - len(seen) + 3 * div):
            await ctx.tick()
            seen.append(ctx.get(dut.tx))

    run(dut, tb)
    assert seen[:len(want)] == want  # the first byte starts at the first tick, no gaps after it
    assert set(seen[len(want):]) == {1}


@pytest.mark.parametrize("div,error", [(8, 0.0), (16, 0.02), (16, -0.02), (5, 0.0)])
def test_receiver_bytes(div, error):
    dut = UARTReceiver(div)
    rng = random.Random(div)
    data = bytes([0x00, 0xFF, 0x55, 0xAA] + [rng.randrange(256) for _ in range(12)])
    got = []

    async def tb(ctx):
        await drive(ctx, dut.rx, data, div, error)
        for _ in range(4 * div):
            await ctx.tick()

    async def collect(ctx):
        async for _, _, valid, payload, ferr in ctx.tick().sample(dut.data.valid, dut.data.payload, dut.frame_error):
            assert not ferr
            if valid:
                got.append(payload)

    run(dut, tb, [collect])
    assert bytes(got) == data


def test_receiver_glitch_and_framing_error():
    div = 8
    dut = UARTReceiver(div)
    events = []

    async def tb(ctx):
        for _ in range(5):
            await ctx.tick()
        ctx.set(dut.rx, 0)  # a glitch: low for less than half a bit
        for _ in range(2):
            await ctx.tick()
        ctx.set(dut.rx, 1)
        for _ in range(3 * div):
            await ctx.tick()
        bits = [0] + [1, 0] * 4 + [0]  # a stop bit that is low, then the line stays low a while (a break)
        for bit in bits + [0] * 12:
            ctx.set(dut.rx, bit)
            for _ in range(div):
                await ctx.tick()
        ctx.set(dut.rx, 1)
        for _ in range(2 * div):
            await ctx.tick()
        await drive(ctx, dut.rx, b"\x3c", div)
        for _ in range(2 * div):
            await ctx.tick()

    async def collect(ctx):
        async for _, _, valid, payload, ferr in ctx.tick().sample(dut.data.valid, dut.data.payload, dut.frame_error):
            if valid:
                events.append(("byte", payload))
            if ferr:
                events.append(("frame_error",))

    run(dut, tb, [collect])
    assert events == [("frame_error",), ("byte", 0x3C)]


class _CrcHarness(Elaboratable):
    def __init__(self):
        self.crc, self.byte, self.out = Signal(8), Signal(8), Signal(8)

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.out.eq(crc8_next(self.crc, self.byte))
        return m


def test_crc8_gateware_equals_protocol():
    dut = _CrcHarness()
    bad = []

    async def tb(ctx):
        for crc in (0x00, 0x01, 0x80, 0xA7, 0xFF):
            for byte in range(256):
                ctx.set(dut.crc, crc)
                ctx.set(dut.byte, byte)
                if ctx.get(dut.out) != P.crc8_update(crc, byte):
                    bad.append((crc, byte))

    sim = Simulator(dut)
    sim.add_testbench(tb)
    sim.run()
    assert not bad


# -- the whole board top around a stand-in network ----------------------------------------------

IFACE_IN = Port(4, 5, False)
IFACE_OUT = Port(3, 12, True)


def model(x: list[int]) -> list[int]:
    """What the stand-in network computes."""
    return [x[0] - x[1] - 100, 3 * x[2] - x[3], -x[0]]


class StandIn(Elaboratable):
    """:func:`model` in gateware; pipelined: ``latency`` register stages on y and in_valid."""

    def __init__(self, latency: int = 0):
        self.latency = latency
        self.x = Signal(IFACE_IN.width)
        self.y = Signal(IFACE_OUT.width)
        self.in_valid, self.out_valid = Signal(), Signal()

    def elaborate(self, platform):
        m = Module()
        x = [self.x[5 * i: 5 * i + 5] for i in range(4)]
        outs = [Signal(signed(12)) for _ in range(3)]
        m.d.comb += [outs[0].eq(x[0] - x[1] - 100), outs[1].eq(3 * x[2] - x[3]), outs[2].eq(-x[0])]
        y = Signal(IFACE_OUT.width)
        m.d.comb += y.eq(Cat(*outs))
        valid = self.in_valid
        for _ in range(self.latency):
            ry, rv = Signal.like(y), Signal()
            m.d.sync += [ry.eq(y), rv.eq(valid)]
            y, valid = ry, rv
        m.d.comb += [self.y.eq(y), self.out_valid.eq(valid)]
        return m


@pytest.mark.parametrize("latency", [0, 3])
def test_board_top_with_stand_in(latency):
    div = 4
    iface = Interface("stand_in", IFACE_IN, IFACE_OUT, pipelined=latency > 0, latency_cycles=latency)
    rtl = [("stand_in.v", f"// stand-in, latency {latency}\n")]
    top = BoardTop(iface, rtl, clk_hz=div * 115200, timeout_s=0.0, network=StandIn(latency))
    rng = random.Random(latency)
    xs = [[0, 0, 0, 0], [31, 31, 31, 31], [0, 31, 0, 31]] + [[rng.randrange(32) for _ in range(4)] for _ in range(3)]
    log = []

    async def answer(ctx):
        head = await receive(ctx, top.tx, div)
        n = P.PAYLOAD_BYTES[head](IFACE_OUT) + 1
        rest = bytes([await receive(ctx, top.tx, div, limit=20 * div) for _ in range(n)])
        return P.decode_answer(bytes([head]) + rest, IFACE_OUT)

    async def tb(ctx):
        await drive(ctx, top.rx, bytes([0x00, 0x5A, 0xFF]), div)  # noise outside a frame
        await drive(ctx, top.rx, bytes([P.SYNC_INFO_REQUEST]), div)
        a = await answer(ctx)
        assert a.sync == P.SYNC_INFO
        assert P.BoardInfo.from_payload(a.payload) == P.BoardInfo.of(iface, P.design_id(rtl))
        activity = ctx.get(top.activity)
        for x in xs:
            await drive(ctx, top.rx, P.vector_frame(x, IFACE_IN), div)
            a = await answer(ctx)
            assert a.sync == P.SYNC_RESULT
            log.append((x, P.decode_elements(a.payload, IFACE_OUT)))
            activity ^= 1
            assert ctx.get(top.activity) == activity and ctx.get(top.error) == 0
        bad = bytearray(P.vector_frame(xs[1], IFACE_IN))
        bad[2] ^= 0x10
        await drive(ctx, top.rx, bytes(bad), div)
        a = await answer(ctx)
        assert (a.sync, a.payload) == (P.SYNC_ERROR, bytes([P.ERR_CHECKSUM]))
        assert ctx.get(top.error) == 1
        await drive(ctx, top.rx, P.vector_frame(xs[1], IFACE_IN)[:3], div)  # stops midway
        a = await answer(ctx)  # within the timeout (30 bit times here) and 20 more bits
        assert (a.sync, a.payload) == (P.SYNC_ERROR, bytes([P.ERR_TIMEOUT]))
        await drive(ctx, top.rx, P.vector_frame(xs[3], IFACE_IN), div)
        a = await answer(ctx)
        log.append((xs[3], P.decode_elements(a.payload, IFACE_OUT)))
        assert ctx.get(top.error) == 0

    run(top, tb)
    assert len(log) == len(xs) + 1
    for x, y in log:
        assert y == model(x), f"x = {x}"
