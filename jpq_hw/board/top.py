"""The board top of a flat-vector network: UART in, the network, UART out (:mod:`.protocol`).

:class:`BoardTop` receives a vector frame into a shift register, checks its CRC, lets the lowered
network (an ``Instance`` of the design's ``rtl/*.v``, contract.md section 2) compute it, captures
``y`` into a second register and sends it back as a result frame. Both buses are registered: the
network sits between two registers of the ``sync`` domain and never touches a pin, so its timing
is one register-to-register path (a combinational network), or its own pipeline stages between
them (a pipelined one, whose ``out_valid`` says when ``y`` is ready).

It runs in the ``sync`` domain at ``clk_hz`` (the platform's default clock; :mod:`jpq_hw.synth.clocking`
renames it onto a PLL's clock where another frequency is wanted). With a platform it requests the
UART resource and up to ``leds`` LEDs (``led`` 0: toggles at every answered vector; ``led`` 1: an
error, a wrong checksum or a frame that stopped midway, lit until the next good vector) and adds the
network's Verilog files to the build. Without a platform (``elaborate(None)``) its pins are the
plain signals ``rx``, ``tx``, ``activity`` and ``error`` of the object, so that
``amaranth.back.verilog.convert(top, ports=top.ports())`` gives a module to simulate
(:func:`board_top_verilog`).

The state machine (one frame at a time, as the protocol says):

``IDLE`` -- sync byte 0xA5 --> ``DATA`` (N_IN x ceil(B_IN/8) bytes into the shift register, CRC-8
updated) --> ``CHECK`` (the CRC byte) --> ``COMPUTE`` (combinational: ``y`` captured on the next
cycle; pipelined: ``in_valid`` for one cycle, ``y`` captured when ``out_valid`` rises) --> ``SEND``
(sync 0x5A, the output bytes, CRC) --> ``IDLE``. A wrong CRC, or no byte for ``timeout_s`` in the
middle of a frame, sends an error frame instead; 0xA6 in ``IDLE`` sends the info frame.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

from amaranth.hdl import Cat, ClockSignal, Const, Elaboratable, Instance, Module, Signal
from amaranth.build import ResourceError

from ..design_folder import Interface
from . import protocol as P
from .uart import UARTReceiver, UARTTransmitter, divisor_for

DEFAULT_BAUD = 115_200
DEFAULT_TIMEOUT_S = 0.05  # a frame that stops arriving for this long is dropped (protocol ERR_TIMEOUT)
TOP_NAME = "board_top"  # the module name of the converted top (board_top_verilog)


def crc8_next(crc, byte):
    """Amaranth expression: the CRC-8 (:func:`protocol.crc8_update`) of ``crc`` after ``byte``.

    The CRC of one byte is linear in ``crc ^ byte``: each output bit is the XOR of the input bits
    that :func:`protocol.crc8_update` carries into it (found here from the 8 unit vectors)."""
    c = crc ^ byte
    columns = [P.crc8_update(0, 1 << i) for i in range(8)]  # what input bit i contributes
    return Cat(_xor([c[i] for i in range(8) if columns[i] >> j & 1]) for j in range(8))


def _xor(bits):
    out = bits[0]
    for bit in bits[1:]:
        out = out ^ bit
    return out


def read_rtl(rtl: Iterable) -> list[tuple[str, str]]:
    """``(file name, Verilog text)`` pairs from paths or from such pairs."""
    out = []
    for item in rtl:
        if isinstance(item, (str, Path)):
            path = Path(item)
            out.append((path.name, path.read_text()))
        else:
            name, text = item
            out.append((str(name), str(text)))
    return out


class BoardTop(Elaboratable):
    """The network of ``interface`` (its Verilog: ``rtl``, paths or ``(name, text)`` pairs) behind
    a UART of ``baud`` at a ``clk_hz`` clock, as the module notes say.

    ``uart``: the platform resource (name, number); ``leds``: how many ``led`` resources to drive
    (0, 1 or 2; fewer where the platform has fewer); ``timeout_s``: how long a frame may pause in
    its middle before the board drops it. ``network``: an Amaranth elaboratable with the network's
    ports as attributes (``x``, ``y``; pipelined also ``in_valid``, ``out_valid``; its registers in
    ``sync``) used in place of the Verilog, so that Amaranth's own simulator can run the whole top
    (the tests' stand-in for a network); ``rtl`` still gives the design id.
    """

    def __init__(self, interface: Interface, rtl: Iterable, *, clk_hz: float, baud: int = DEFAULT_BAUD,
                 uart: tuple[str, int] = ("uart", 0), leds: int = 2, timeout_s: float = DEFAULT_TIMEOUT_S,
                 network: Elaboratable | None = None):
        if not isinstance(interface, Interface):
            raise TypeError("the board top takes a flat-vector network (design_folder.Interface)")
        self.interface = interface
        self.rtl = read_rtl(rtl)
        if not self.rtl:
            raise ValueError("no Verilog files for the network")
        self.clk_hz, self.baud = clk_hz, baud
        self.network = network
        self.divisor = divisor_for(clk_hz, baud)
        self.uart, self.n_leds = tuple(uart), leds
        self.timeout_cycles = max(int(round(clk_hz * timeout_s)), 30 * self.divisor)  # at least 3 byte times
        self.design_id = P.design_id(self.rtl)
        self.info = P.BoardInfo.of(interface, self.design_id)
        self.info.payload()  # a ValueError now for a port the info frame cannot state
        # the pins when there is no platform (simulation), and the LEDs' states
        self.rx = Signal(init=1)
        self.tx = Signal(init=1)
        self.activity = Signal()
        self.error = Signal()

    def ports(self) -> list[Signal]:
        """The signals that are the top's ports when it is converted without a platform."""
        return [self.rx, self.tx, self.activity, self.error]

    def elaborate(self, platform):
        m = Module()
        iface = self.interface
        n_in, n_out = P.frame_payload_bytes(iface.inputs), P.frame_payload_bytes(iface.outputs)
        k_in, k_out = P.element_bytes(iface.inputs.bits), P.element_bytes(iface.outputs.bits)

        m.submodules.rx = rx = UARTReceiver(self.divisor)
        m.submodules.tx = tx = UARTTransmitter(self.divisor)
        if platform is not None:
            pins = platform.request(*self.uart)
            m.d.comb += [rx.rx.eq(pins.rx.i), pins.tx.o.eq(tx.tx)]
            for i, state in enumerate([self.activity, self.error][:self.n_leds]):
                try:
                    m.d.comb += platform.request("led", i).o.eq(state)
                except ResourceError:
                    break
            if self.network is None:
                for name, text in self.rtl:
                    platform.add_file(name, text)
        else:
            m.d.comb += [rx.rx.eq(self.rx), self.tx.eq(tx.tx)]

        # the input register: the vector's bytes shift in, byte 0 ends at the least significant end
        xbuf = Signal(8 * n_in)
        x = Signal(iface.inputs.width)
        m.d.comb += x.eq(Cat(xbuf[8 * k_in * i: 8 * k_in * i + iface.inputs.bits] for i in range(iface.inputs.count)))
        # the network, and the output register: y's elements, each sign- or zero-extended to whole bytes
        y = Signal(iface.outputs.width)
        y_bytes = Signal(8 * n_out)
        b = iface.outputs.bits
        m.d.comb += y_bytes.eq(Cat(
            Cat(y[b * j: b * (j + 1)], (y[b * (j + 1) - 1] if iface.outputs.signed else Const(0, 1)).replicate(8 * k_out - b))
            for j in range(iface.outputs.count)))
        # the answer's payload shifts out of ybuf, byte 0 first: the outputs, the info payload or an error code
        ybuf = Signal(8 * max(n_out, P.INFO_BYTES))
        in_valid, out_valid = Signal(), Signal()
        if self.network is None:
            ports = {"i_x": x, "o_y": y}
            if iface.pipelined:
                ports.update(i_clk=ClockSignal("sync"), i_in_valid=in_valid, o_out_valid=out_valid)
            m.submodules.net = Instance(iface.top, **ports)
        else:
            m.submodules.net = net = self.network
            m.d.comb += [net.x.eq(x), y.eq(net.y)]
            if iface.pipelined:
                m.d.comb += [net.in_valid.eq(in_valid), out_valid.eq(net.out_valid)]

        # the frame's bytes: count, CRC, inter-byte timeout; the answer's sync byte and length
        count = Signal(range(max(n_in, n_out, P.INFO_BYTES) + 1))
        crc = Signal(8)
        timer = Signal(range(self.timeout_cycles + 1))
        sync_byte = Signal(8)
        last = Signal(range(max(n_out, P.INFO_BYTES)))  # the answer's payload bytes - 1
        byte = rx.data.payload
        got = rx.data.valid
        m.d.sync += in_valid.eq(0)

        def answer(sync: int, payload, length: int):
            """Go on to send frame ``sync`` with ``length`` payload bytes, loaded into ybuf now."""
            m.d.sync += [sync_byte.eq(sync), ybuf.eq(payload), last.eq(length - 1)]
            m.next = "SEND_SYNC"

        def error(code: int):
            m.d.sync += self.error.eq(1)
            answer(P.SYNC_ERROR, code, 1)

        info = int.from_bytes(self.info.payload(), "little")
        with m.FSM():
            with m.State("IDLE"):
                with m.If(got & (byte == P.SYNC_VECTOR)):
                    m.d.sync += [count.eq(0), crc.eq(0), timer.eq(self.timeout_cycles)]
                    m.next = "DATA"
                with m.Elif(got & (byte == P.SYNC_INFO_REQUEST)):
                    answer(P.SYNC_INFO, info, P.INFO_BYTES)
            with m.State("DATA"):
                with m.If(got):
                    m.d.sync += [xbuf.eq(Cat(xbuf[8:], byte)), crc.eq(crc8_next(crc, byte)), count.eq(count + 1),
                                 timer.eq(self.timeout_cycles)]
                    with m.If(count == n_in - 1):
                        m.next = "CHECK"
                with m.Elif(timer == 0):
                    error(P.ERR_TIMEOUT)
                with m.Else():
                    m.d.sync += timer.eq(timer - 1)
            with m.State("CHECK"):
                with m.If(got & (byte == crc)):
                    m.d.sync += [in_valid.eq(1), self.error.eq(0)]
                    m.next = "COMPUTE"
                with m.Elif(got):
                    error(P.ERR_CHECKSUM)
                with m.Elif(timer == 0):
                    error(P.ERR_TIMEOUT)
                with m.Else():
                    m.d.sync += timer.eq(timer - 1)
            with m.State("COMPUTE"):
                # combinational: x has not changed since the last data byte, y is settled now
                with m.If(out_valid if iface.pipelined else Const(1)):
                    m.d.sync += self.activity.eq(~self.activity)
                    answer(P.SYNC_RESULT, y_bytes, n_out)
            with m.State("SEND_SYNC"):
                m.d.comb += [tx.data.payload.eq(sync_byte), tx.data.valid.eq(1)]
                with m.If(tx.data.ready):
                    m.d.sync += [count.eq(0), crc.eq(0)]
                    m.next = "SEND_BODY"
            with m.State("SEND_BODY"):
                m.d.comb += [tx.data.payload.eq(ybuf[:8]), tx.data.valid.eq(1)]
                with m.If(tx.data.ready):
                    m.d.sync += [crc.eq(crc8_next(crc, ybuf[:8])), count.eq(count + 1), ybuf.eq(ybuf >> 8)]
                    with m.If(count == last):
                        m.next = "SEND_CRC"
            with m.State("SEND_CRC"):
                m.d.comb += [tx.data.payload.eq(crc), tx.data.valid.eq(1)]
                with m.If(tx.data.ready):
                    m.next = "IDLE"
        return m


def board_top_for(report: dict, rtl: Sequence, board, *, clk_hz: float, baud: int = DEFAULT_BAUD) -> BoardTop:
    """The board top of the design whose ``report.json`` is ``report`` for ``board`` (a
    ``jpq_hw.boards.Board``: its UART resource and LED count) at ``clk_hz``."""
    return BoardTop(Interface.from_report(report), rtl, clk_hz=clk_hz, baud=baud, uart=board.uart, leds=board.leds)


def board_top_verilog(top: BoardTop, name: str = TOP_NAME) -> str:
    """The board top without a platform, as Verilog: module ``name`` with ports ``clk``, ``rst``,
    ``rx``, ``tx``, ``activity``, ``error``; the network stays an instance of ``interface.top``
    (simulate it with the design's ``rtl/*.v``)."""
    from amaranth.back import verilog

    return verilog.convert(top, name=name, ports=top.ports(), emit_src=False)
