"""cocotb tests of the whole board top (:mod:`jpq_hw.board.sim` builds and runs them).

The toplevel is ``board_top`` (:func:`jpq_hw.board.top.board_top_verilog`): ports ``clk``, ``rst``,
``rx``, ``tx``, ``activity``, ``error``, the network an instance of the design's own Verilog. The
settings come as JSON in ``$JPQ_BOARD_SIM`` (design folder, vectors, divisor, clock period, the
frame timeout in cycles, the ``jpq-hw run`` command line). A bit lasts ``divisor`` clock cycles.

:class:`Uart` is the other end of the line, modelled at bit level in simulated time: it drives
``rx`` (start bit, 8 data bits LSB first, stop bit) and decodes ``tx``, sampling each bit in its
middle, into a queue of bytes (a start bit that is not low in its middle, or a stop bit that is not
high, fails the test).
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import time
import tty
from collections import deque

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, Timer
from cocotb.utils import get_sim_time

from ..design_folder import read_design
from . import protocol as P
from .top import read_rtl


def _config() -> dict:
    return json.loads(os.environ["JPQ_BOARD_SIM"])


class Uart:
    """The host end of the board top's UART, in simulated time."""

    def __init__(self, dut, bit_ns: int):
        self.dut, self.bit_ns = dut, bit_ns
        self.received: deque[int] = deque()
        self.last_tx = 0.0  # simulated ns of the last tx activity
        self.busy = False  # a byte is arriving on tx
        self.on_byte = None  # called with each byte received, if set
        dut.rx.value = 1
        cocotb.start_soon(self._monitor())

    async def send(self, data: bytes) -> None:
        for byte in data:
            for bit in [0] + [(byte >> i) & 1 for i in range(8)] + [1]:
                self.dut.rx.value = bit
                await Timer(self.bit_ns, "ns")

    async def _monitor(self) -> None:
        tx = self.dut.tx
        while True:
            await FallingEdge(tx)
            self.busy = True
            await Timer(self.bit_ns // 2, "ns")
            assert int(tx.value) == 0, f"tx: a start bit that is not low in its middle at {get_sim_time('ns')} ns"
            byte = 0
            for i in range(8):
                await Timer(self.bit_ns, "ns")
                byte |= int(tx.value) << i
            await Timer(self.bit_ns, "ns")
            assert int(tx.value) == 1, f"tx: a stop bit that is not high (byte 0x{byte:02x})"
            self.received.append(byte)
            self.busy = False
            self.last_tx = get_sim_time("ns")
            if self.on_byte is not None:
                self.on_byte(byte)

    async def read(self, n: int, limit_bits: int = 2000) -> bytes:
        """``n`` bytes from tx, failing when they take more than ``limit_bits`` bit times."""
        waited = 0
        while len(self.received) < n:
            assert waited < limit_bits, f"the board top answered {len(self.received)} of {n} bytes " \
                                        f"within {limit_bits} bit times: {bytes(self.received).hex()}"
            await Timer(self.bit_ns, "ns")
            waited += 1
        return bytes(self.received.popleft() for _ in range(n))

    async def answer(self, outputs) -> P.Answer:
        """One whole board -> host frame, decoded (its CRC checked)."""
        head = await self.read(1)
        assert head[0] in P.PAYLOAD_BYTES, f"unknown sync byte 0x{head[0]:02x}"
        rest = await self.read(P.PAYLOAD_BYTES[head[0]](outputs) + 1)
        return P.decode_answer(head + rest, outputs)


async def _start(dut) -> tuple[dict, Uart]:
    """Clock, reset, and the UART model, which starts watching ``tx`` only after the reset (before
    it, an X on ``rst`` makes ``tx`` X in four-state simulators)."""
    cfg = _config()
    dut.rst.value = 1
    dut.rx.value = 1
    Clock(dut.clk, cfg["clock_ns"], "ns", impl="gpi").start(start_high=False)
    await ClockCycles(dut.clk, 4)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 4)
    return cfg, Uart(dut, cfg["divisor"] * cfg["clock_ns"])


@cocotb.test()
async def test_frames(dut) -> None:
    """The info frame; vectors against the reference; a wrong CRC; a frame that stops; noise."""
    cfg, uart = await _start(dut)
    d = read_design(cfg["design"])
    iface = d.interface
    outputs = iface.outputs
    rtl = read_rtl(sorted((os.path.join(cfg["design"], "rtl", f)) for f in os.listdir(os.path.join(cfg["design"], "rtl"))
                          if f.endswith(".v")))
    want_info = P.BoardInfo.of(iface, P.design_id(rtl))

    await uart.send(bytes([0x00, 0xFF, 0x42]))  # noise outside a frame: ignored
    await uart.send(bytes([P.SYNC_INFO_REQUEST]))
    a = await uart.answer(outputs)
    assert a.sync == P.SYNC_INFO, f"info request answered with 0x{a.sync:02x}"
    got_info = P.BoardInfo.from_payload(a.payload)
    assert got_info == want_info, f"info frame {got_info.describe()}, expected {want_info.describe()}"

    n = min(cfg["vectors"], len(d.x))
    activity = int(dut.activity.value)
    for i in range(n):
        t0 = get_sim_time("ns")
        await uart.send(P.vector_frame(d.x[i], iface.inputs))
        a = await uart.answer(outputs)
        assert a.sync == P.SYNC_RESULT, f"vector {i}: answered with 0x{a.sync:02x} {a.payload.hex()}"
        y = P.decode_elements(a.payload, outputs)
        assert y == d.y[i], f"vector {i}: board answered {y}, the reference is {d.y[i]}"
        activity ^= 1
        assert int(dut.activity.value) == activity, f"vector {i}: the activity LED did not toggle"
        assert int(dut.error.value) == 0, f"vector {i}: the error LED is lit"
        dut._log.info("vector %d: %s (%.1f us)", i, y, (get_sim_time("ns") - t0) / 1000)

    bad = bytearray(P.vector_frame(d.x[0], iface.inputs))
    bad[-1] ^= 0x01
    await uart.send(bytes(bad))
    a = await uart.answer(outputs)
    assert (a.sync, a.payload) == (P.SYNC_ERROR, bytes([P.ERR_CHECKSUM])), \
        f"a wrong CRC answered with 0x{a.sync:02x} {a.payload.hex()}, expected an error frame (checksum)"
    assert int(dut.error.value) == 1, "a wrong CRC did not light the error LED"

    good = P.vector_frame(d.x[n - 1], iface.inputs)
    await uart.send(good[: len(good) // 2])  # the frame stops midway
    await ClockCycles(dut.clk, cfg["timeout_cycles"] + 2)
    a = await uart.answer(outputs)
    assert (a.sync, a.payload) == (P.SYNC_ERROR, bytes([P.ERR_TIMEOUT])), \
        f"a frame that stopped answered with 0x{a.sync:02x} {a.payload.hex()}, expected an error frame (timeout)"

    await uart.send(good)  # and the board is back in step
    a = await uart.answer(outputs)
    assert a.sync == P.SYNC_RESULT and P.decode_elements(a.payload, outputs) == d.y[n - 1], \
        "after the errors the board did not answer a good vector right"
    assert int(dut.error.value) == 0, "a good vector did not put the error LED out"
    assert not uart.received, f"stray bytes from the board: {bytes(uart.received).hex()}"


@cocotb.test()
async def test_cli_over_pty(dut) -> None:
    """``jpq-hw run DESIGN --port PTY`` in a subprocess, its bytes pumped between the pseudo-terminal
    and the board top's pins; it must exit 0 having checked the vectors against the reference."""
    cfg, uart = await _start(dut)
    master, slave = os.openpty()
    tty.setraw(slave)  # no echo of the board's answers back into rx before pyserial opens the port
    os.set_blocking(master, False)
    uart.on_byte = lambda b: os.write(master, bytes([b]))
    cmd = cfg["cli"] + ["--port", os.ttyname(slave), "--vectors", str(cfg["vectors"]), "--timeout", "20"]
    dut._log.info("running %s", " ".join(cmd))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    bit_ns = uart.bit_ns
    deadline = time.monotonic() + 240
    try:
        while True:
            try:
                data = os.read(master, 4096)
            except (BlockingIOError, OSError):
                data = b""
            if data:
                await uart.send(data)
                continue
            quiet = not uart.busy and get_sim_time("ns") - uart.last_tx > 30 * bit_ns
            if quiet and proc.poll() is not None:
                break
            assert time.monotonic() < deadline, "jpq-hw run did not finish within 240 s"
            if quiet:  # the board is idle: wait (real time) for the host rather than simulate ahead
                select.select([master], [], [], 0.005)
            await Timer(bit_ns, "ns")
    finally:
        if proc.poll() is None:
            proc.kill()
        out, err = proc.communicate()
        os.close(master)
        os.close(slave)
    dut._log.info("jpq-hw run: exit %s\n%s%s", proc.returncode, out, err)
    assert proc.returncode == 0, f"jpq-hw run exited {proc.returncode}: {err.strip() or out.strip()}"
    assert "equal the reference" in out, f"jpq-hw run said: {out.strip()}"
