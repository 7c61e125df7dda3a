"""The host side of ``jpq-hw run``: send vectors to a board top, read its answers, check them.

A :class:`Transport` moves bytes (:class:`SerialTransport`: a serial port through pyserial; the tests
use a pseudo-terminal wired to the simulated board top, or an in-process model). :class:`BoardLink`
speaks the protocol of :mod:`jpq_hw.board.protocol` over it: :meth:`BoardLink.info` asks which
design the board runs, :meth:`BoardLink.compute` sends one vector and returns the board's outputs,
retrying a vector whose frame the line corrupted. :func:`run_vectors` checks the board's design and
computes a batch; :func:`check_outputs` compares the outputs with the integer reference.

Every problem the user can act on is a one-line :class:`~jpq_hw.errors.JpqError`: a port that does
not exist, no answer (with what to check), another design on the board, a line that keeps
corrupting frames, outputs that differ from the reference.
"""

from __future__ import annotations

import os
from typing import Callable, Protocol, Sequence

from ..design_folder import Interface
from ..errors import JpqError
from . import protocol as P
from .top import DEFAULT_BAUD

DEFAULT_TIMEOUT_S = 2.0  # how long the host waits for the first byte of an answer
BYTE_TIMEOUT_S = 0.5  # ... and for the rest of a frame once it has begun
RETRIES = 2  # a vector is sent again this often after a corrupted frame (either way)


class Transport(Protocol):
    """A byte pipe to the board: ``write`` all of ``data``; ``read`` up to ``n`` bytes, fewer (maybe
    none) when ``timeout`` seconds pass first; ``close``. ``name`` says where it leads (a port)."""

    name: str

    def write(self, data: bytes) -> None: ...

    def read(self, n: int, timeout: float) -> bytes: ...

    def close(self) -> None: ...


class SerialTransport:
    """A serial port (``/dev/ttyUSB1``, ``COM4``, a pseudo-terminal) through pyserial, 8N1."""

    def __init__(self, port: str, baud: int = DEFAULT_BAUD):
        import serial

        self.name = port
        if os.name == "posix" and not port.startswith(("socket://", "rfc2217://", "loop://")) \
                and not os.path.exists(port):
            raise JpqError(f"serial port {port} does not exist (the board's USB-serial port, such as /dev/ttyUSB1 "
                           "on an FT2232H board; python -m serial.tools.list_ports lists them)")
        try:
            self.serial = serial.serial_for_url(port, baudrate=baud, bytesize=8, parity="N", stopbits=1,
                                                timeout=DEFAULT_TIMEOUT_S, exclusive=True)
        except (serial.SerialException, OSError, ValueError) as e:
            reason = " ".join(str(e).split()) or type(e).__name__
            raise JpqError(f"cannot open serial port {port}: {reason}") from None
        self.serial.reset_input_buffer()

    def write(self, data: bytes) -> None:
        import serial

        try:
            self.serial.write(data)
            self.serial.flush()
        except serial.SerialException as e:
            raise JpqError(f"writing to {self.name} failed: {' '.join(str(e).split())}") from None

    def read(self, n: int, timeout: float) -> bytes:
        import serial

        self.serial.timeout = timeout
        try:
            return self.serial.read(n)
        except serial.SerialException as e:
            raise JpqError(f"reading from {self.name} failed: {' '.join(str(e).split())}") from None

    def close(self) -> None:
        self.serial.close()


class NoAnswer(JpqError):
    """The board sent nothing (or stopped in the middle of a frame) within the timeout."""


class BadFrame(Exception):
    """One exchange went wrong on the line (a corrupted frame either way); the vector may be sent again."""


class BoardLink:
    """The protocol over ``transport`` to a board top computing ``interface``. ``board`` names the
    board in messages; ``timeout`` is how long to wait for an answer to begin."""

    def __init__(self, transport: Transport, interface: Interface, *, timeout: float = DEFAULT_TIMEOUT_S,
                 board: str | None = None, baud: int = DEFAULT_BAUD, retries: int = RETRIES):
        self.t, self.iface, self.timeout, self.retries = transport, interface, timeout, retries
        self.board = board or "the board"
        self.baud = baud
        self.resent = 0  # vectors sent again after a corrupted frame

    # -- one exchange
    def _no_answer(self, what: str) -> NoAnswer:
        return NoAnswer(f"no answer from {self.board} on {self.t.name} {what} within {self.timeout:g} s: check "
                        f"that the bitstream built from this design is flashed (jpq-hw synth DESIGN --board NAME), "
                        f"that the board top runs at {self.baud} baud, and that {self.t.name} is the board's UART "
                        f"(wiring: board TX to adapter RX, board RX to adapter TX, common ground)")

    def _answer(self, what: str) -> P.Answer:
        head = self.t.read(1, self.timeout)
        if not head:
            raise self._no_answer(what)
        if head[0] not in P.PAYLOAD_BYTES:
            raise BadFrame(f"an answer that begins with 0x{head[0]:02x}, not a sync byte")
        n = P.PAYLOAD_BYTES[head[0]](self.iface.outputs) + 1
        rest = b""
        while len(rest) < n:
            more = self.t.read(n - len(rest), BYTE_TIMEOUT_S)
            if not more:
                raise BadFrame(f"an answer that stopped after {1 + len(rest)} of {n + 1} bytes")
            rest += more
        try:
            return P.decode_answer(head + rest, self.iface.outputs)
        except P.ProtocolError as e:
            raise BadFrame(str(e)) from None

    def _resync(self) -> None:
        """Drop whatever is still arriving (the rest of a garbled answer) until the line is quiet."""
        while self.t.read(4096, 0.05):
            pass

    # -- the two requests
    def info(self) -> P.BoardInfo:
        """The board's info frame: the interface it computes and its design id."""
        for attempt in range(self.retries + 1):
            self.t.write(bytes([P.SYNC_INFO_REQUEST]))
            try:
                a = self._answer("to the info request")
                if a.sync == P.SYNC_INFO:
                    return P.BoardInfo.from_payload(a.payload)
                problem = f"the info request was answered with frame 0x{a.sync:02x}"
            except (BadFrame, P.ProtocolError) as e:
                problem = str(e)
            self._resync()
        raise JpqError(f"{self.board} on {self.t.name} does not answer as a jpq-hw board top ({problem}): "
                       f"check the baud rate ({self.baud}) and that the bitstream is jpq-hw synth's")

    def compute(self, x: Sequence[int], index: int = 0) -> list[int]:
        """The board's outputs for the input vector ``x`` (vector ``index``, for messages)."""
        frame = P.vector_frame(x, self.iface.inputs)
        problems = []
        for attempt in range(self.retries + 1):
            if attempt:
                self.resent += 1
            self.t.write(frame)
            try:
                a = self._answer(f"to vector {index}")
            except BadFrame as e:
                problems.append(str(e))
                self._resync()
                continue
            if a.sync == P.SYNC_RESULT:
                try:
                    return P.decode_elements(a.payload, self.iface.outputs)
                except P.ProtocolError as e:
                    problems.append(str(e))
            elif a.sync == P.SYNC_ERROR:
                problems.append(f"the board reported: {P.ERRORS.get(a.payload[0], f'error 0x{a.payload[0]:02x}')}")
            else:
                problems.append(f"a vector was answered with frame 0x{a.sync:02x}")
            self._resync()
        raise JpqError(f"vector {index}: {len(problems)} tries went wrong on the line (last: {problems[-1]}): "
                       f"a noisy connection, or a baud rate off the board's ({self.baud})")


def check_design(info: P.BoardInfo, interface: Interface, ident: int, *, board: str, port: str) -> None:
    """A :class:`JpqError` where the board's info frame does not describe this design."""
    want = P.BoardInfo.of(interface, ident)
    if info.version != P.VERSION:
        raise JpqError(f"{board} on {port} speaks protocol version {info.version}, this jpq-hw {P.VERSION}: "
                       "rebuild the bitstream with this jpq-hw")
    if info != want:
        raise JpqError(f"{board} on {port} runs another design ({info.describe()}; this folder's: "
                       f"{want.describe()}): flash the bitstream that jpq-hw synth built from this folder")


def run_vectors(transport: Transport, interface: Interface, inputs: Sequence[Sequence[int]], *,
                design_id: int | None = None, timeout: float = DEFAULT_TIMEOUT_S, board: str | None = None,
                baud: int = DEFAULT_BAUD, progress: Callable[[int, int], None] | None = None) -> list[list[int]]:
    """The board's outputs for every vector of ``inputs``, one frame at a time. First the board must
    say (info frame) that it computes ``interface`` (and, given ``design_id``, this very design)."""
    link = BoardLink(transport, interface, timeout=timeout, board=board, baud=baud)
    info = link.info()
    if design_id is None:
        design_id = info.design_id16  # the interface alone is checked
    check_design(info, interface, design_id, board=link.board, port=transport.name)
    out = []
    for i, x in enumerate(inputs):
        out.append(link.compute([int(v) for v in x], i))
        if progress is not None:
            progress(i + 1, len(inputs))
    return out


def mismatches(outputs: Sequence[Sequence[int]], reference: Sequence[Sequence[int]]) -> list[tuple[int, int, int, int]]:
    """``(vector, element, board, reference)`` of every differing element, in order."""
    found = []
    for i, (got, want) in enumerate(zip(outputs, reference)):
        for j, (g, w) in enumerate(zip(got, want)):
            if int(g) != int(w):
                found.append((i, j, int(g), int(w)))
    return found


def check_outputs(outputs: Sequence[Sequence[int]], reference: Sequence[Sequence[int]]) -> None:
    """A :class:`JpqError` naming how many vectors differ from the reference, and the first difference."""
    if len(outputs) != len(reference):
        raise ValueError(f"{len(outputs)} outputs for {len(reference)} reference vectors")
    bad = mismatches(outputs, reference)
    if bad:
        n_vectors = len({i for i, *_ in bad})
        i, j, g, w = bad[0]
        raise JpqError(f"{n_vectors} of {len(outputs)} vectors differ from the reference ({len(bad)} elements); "
                       f"the first: vector {i}, y[{j}] = {g} on the board, {w} in the reference")

