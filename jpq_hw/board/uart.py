"""A UART receiver and transmitter (8N1) as Amaranth 0.5 components, in the ``sync`` domain.

``divisor`` is the number of clock cycles per bit, ``clk_hz // baud`` (:func:`divisor_for`): at
12 MHz and 115,200 baud it is 104 (0.16 % fast, well inside the 2 to 4 % a UART tolerates).

Line format: idle high; a start bit (low), 8 data bits least significant first, a stop bit (high).
"""

# no `from __future__ import annotations`: wiring.Component reads its members from the annotations
from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

MIN_DIVISOR = 4  # the receiver samples half a bit after the start edge, minus the 2-FF synchronizer
MAX_BAUD_ERROR = 0.02  # beyond this the two ends drift half a bit apart within one frame


def divisor_for(clk_hz: float, baud: int) -> int:
    """Clock cycles per bit; a ValueError where the clock cannot make ``baud`` within 2 %."""
    div = int(round(clk_hz / baud))
    if div < MIN_DIVISOR:
        raise ValueError(f"a {clk_hz / 1e6:g} MHz clock is too slow for {baud} baud "
                         f"(needs {MIN_DIVISOR} cycles per bit)")
    error = abs(clk_hz / div - baud) / baud
    if error > MAX_BAUD_ERROR:
        raise ValueError(f"{clk_hz / 1e6:g} MHz / {div} = {clk_hz / div:.0f} baud, {error:.1%} off {baud}")
    return div


class UARTReceiver(wiring.Component):
    """Receives bytes from ``rx``.

    ``rx`` passes through two flip-flops (it comes from another clock's world) before anything
    looks at it. A falling edge starts a frame; the start bit is checked half a bit later (a glitch
    shorter than that is ignored), then each data bit and the stop bit are sampled in their middle,
    ``divisor`` cycles apart. A good frame presents its byte on ``data.payload`` with ``data.valid``
    high for one cycle (there is no back-pressure: a receiver cannot stop the sender). A frame whose
    stop bit is low (a framing error, or a break) pulses ``frame_error`` instead, and the receiver
    waits for the line to return high before it looks for the next start bit.
    """

    rx: In(1, init=1)
    data: Out(stream.Signature(8, always_ready=True))
    frame_error: Out(1)

    def __init__(self, divisor: int):
        if divisor < MIN_DIVISOR:
            raise ValueError(f"divisor {divisor} < {MIN_DIVISOR}")
        self.divisor = divisor
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        div = self.divisor
        sync1 = Signal(init=1)
        line = Signal(init=1)  # rx after two flip-flops
        m.d.sync += [sync1.eq(self.rx), line.eq(sync1)]

        timer = Signal(range(div))
        bit = Signal(range(8))
        shift = Signal(8)
        m.d.sync += [self.data.valid.eq(0), self.frame_error.eq(0)]
        m.d.comb += self.data.payload.eq(shift)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(~line):
                    m.d.sync += timer.eq(div // 2 - 1)
                    m.next = "START"
            with m.State("START"):  # wait to the middle of the start bit
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(line):
                    m.next = "IDLE"  # a glitch, not a start bit
                with m.Else():
                    m.d.sync += [timer.eq(div - 1), bit.eq(0)]
                    m.next = "DATA"
            with m.State("DATA"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    m.d.sync += [shift.eq(Cat(shift[1:], line)), timer.eq(div - 1), bit.eq(bit + 1)]
                    with m.If(bit == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(line):
                    m.d.sync += self.data.valid.eq(1)
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += self.frame_error.eq(1)
                    m.next = "BREAK"
            with m.State("BREAK"):  # after a framing error: wait for the idle (high) line
                with m.If(line):
                    m.next = "IDLE"
        return m


class UARTTransmitter(wiring.Component):
    """Sends the bytes it takes from ``data`` on ``tx``.

    ``data`` is a stream: a byte is taken on a cycle where ``data.valid`` and ``data.ready`` are both
    high; ``ready`` is low while a byte is on the line (start bit, 8 data bits, stop bit, each
    ``divisor`` cycles), so back-to-back bytes leave no gap. ``tx`` comes straight from a flip-flop.
    """

    tx: Out(1, init=1)
    data: In(stream.Signature(8))

    def __init__(self, divisor: int):
        if divisor < 1:
            raise ValueError(f"divisor {divisor} < 1")
        self.divisor = divisor
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        div = self.divisor
        timer = Signal(range(div))
        shift = Signal(9, init=0x1FF)  # the bits still to send after the one on tx: data, then stop
        left = Signal(range(11))  # bits still to send, counting the one on tx
        # ready while idle, and in the last cycle of a stop bit: the next start bit follows without a gap
        m.d.comb += self.data.ready.eq((left == 0) | ((left == 1) & (timer == 0)))
        with m.If(self.data.ready & self.data.valid):
            m.d.sync += [self.tx.eq(0), shift.eq(Cat(self.data.payload, Const(1, 1))),
                         timer.eq(div - 1), left.eq(10)]
        with m.Elif(left == 0):
            pass  # idle: tx stays high
        with m.Elif(timer != 0):
            m.d.sync += timer.eq(timer - 1)
        with m.Else():
            m.d.sync += [self.tx.eq(shift[0]), shift.eq(Cat(shift[1:], Const(1, 1))), timer.eq(div - 1),
                         left.eq(left - 1)]  # from left == 1 on, shift holds only ones: tx idles high
        return m
