"""The serial protocol between ``jpq-hw run`` (the host) and the board top (:mod:`jpq_hw.board.top`).

One module for both sides: the gateware takes its constants and byte layout from here, the host
its encoder and decoder, so the two cannot drift apart. The link is a UART, 8 data bits, no parity,
1 stop bit (8N1), 115,200 baud unless the board top was built otherwise. Every frame is a sync byte
that says what the frame is, a payload, and a CRC-8 of the payload::

    host -> board   0xA5  x[0] x[1] ... x[N_IN-1]    crc    a vector to compute
    host -> board   0xA6                                    ask which design the board runs (no payload, no CRC)
    board -> host   0x5A  y[0] y[1] ... y[N_OUT-1]   crc    the outputs for the last vector
    board -> host   0x5B  info (10 bytes)            crc    the answer to 0xA6
    board -> host   0x5E  code (1 byte)              crc    an error (the vector is dropped)

- An element of ``B`` bits travels as ``ceil(B / 8)`` bytes, least significant byte first, two's
  complement sign-extended to the whole bytes where the port is signed (zero-extended where it is
  not). The board ignores the bits of an input element above ``B`` and the host checks that the
  bits it receives above ``B`` are the sign (or zero) extension.
- The CRC is CRC-8 with polynomial x^8 + x^2 + x + 1 (0x07), initial value 0, no reflection, no
  final XOR (CRC-8/SMBUS; ``crc8(b"123456789") == 0xF4``), over the payload bytes only (not the
  sync byte). It catches every error within 8 consecutive bits (every corrupted byte) and, unlike a
  sum, most reordered bytes.
- Info payload: ``b"J"``, protocol version (1), ``N_IN`` (2 bytes, LSB first), ``B_IN | signed << 7``,
  ``N_OUT`` (2 bytes), ``B_OUT | signed << 7``, and the low 16 bits of the design id
  (:func:`design_id`: a CRC-32 of the network's Verilog), so that the host can tell a board that runs
  another design from one whose vectors merely mismatch.
- Error codes: :data:`ERR_CHECKSUM` (the vector frame's CRC byte was wrong) and :data:`ERR_TIMEOUT`
  (a vector frame stopped arriving in the middle: no byte for the board top's timeout, 50 ms by
  default). Either way the board lights its error LED (until the next good vector), drops the
  frame and waits for a sync byte again.
- Outside a frame the board ignores every byte that is not a sync byte. One frame at a time: the
  host sends the next vector after it has read the answer to the previous one (the board reads no
  vector while it computes and answers; bytes sent then are dropped).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Iterable, Sequence

from ..design_folder import Interface, Port

SYNC_VECTOR = 0xA5  # host -> board: a vector follows
SYNC_INFO_REQUEST = 0xA6  # host -> board: which design do you run?
SYNC_RESULT = 0x5A  # board -> host: outputs follow
SYNC_INFO = 0x5B  # board -> host: the info payload follows
SYNC_ERROR = 0x5E  # board -> host: an error code follows

ERR_CHECKSUM = 0x01
ERR_TIMEOUT = 0x02
ERRORS = {ERR_CHECKSUM: "the vector's checksum was wrong on arrival",
          ERR_TIMEOUT: "the vector stopped arriving in the middle of its frame"}

INFO_MAGIC = ord("J")
VERSION = 1
INFO_BYTES = 10
CRC8_POLY = 0x07


class ProtocolError(ValueError):
    """A frame that does not decode: a wrong sync byte, a wrong length, a wrong CRC."""


def element_bytes(bits: int) -> int:
    """Bytes one element of ``bits`` bits takes on the wire."""
    return max(1, (bits + 7) // 8)


def frame_payload_bytes(port: Port) -> int:
    """Bytes of the payload of a vector (``inputs``) or result (``outputs``) frame for ``port``."""
    return port.count * element_bytes(port.bits)


def crc8_update(crc: int, byte: int) -> int:
    """The CRC-8 (polynomial 0x07, MSB first) after one more byte."""
    crc ^= byte
    for _ in range(8):
        crc = ((crc << 1) ^ CRC8_POLY) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def crc8(data: Iterable[int]) -> int:
    """CRC-8/SMBUS of ``data`` (initial value 0, no reflection, no final XOR)."""
    crc = 0
    for b in data:
        crc = crc8_update(crc, b)
    return crc


def encode_elements(values: Sequence[int], port: Port) -> bytes:
    """The payload bytes of ``values`` as elements of ``port`` (a ValueError for a value out of range)."""
    if len(values) != port.count:
        raise ValueError(f"{len(values)} elements, the port has {port.count}")
    k = element_bytes(port.bits)
    lo, hi = (-(1 << (port.bits - 1)), (1 << (port.bits - 1)) - 1) if port.signed else (0, (1 << port.bits) - 1)
    out = bytearray()
    for i, v in enumerate(values):
        v = int(v)
        if not lo <= v <= hi:
            raise ValueError(f"element {i} = {v} does not fit {port.bits}-bit "
                             f"{'signed' if port.signed else 'unsigned'}")
        out += (v & ((1 << (8 * k)) - 1)).to_bytes(k, "little")
    return bytes(out)


def decode_elements(payload: bytes, port: Port) -> list[int]:
    """The elements of a payload of ``port``; a ProtocolError where the bits above an element's
    ``bits`` are not its sign (or zero) extension."""
    k = element_bytes(port.bits)
    if len(payload) != port.count * k:
        raise ProtocolError(f"payload of {len(payload)} bytes, expected {port.count * k}")
    out = []
    for i in range(port.count):
        raw = int.from_bytes(payload[i * k:(i + 1) * k], "little")
        v = raw & ((1 << port.bits) - 1)
        if port.signed and v >> (port.bits - 1):
            v -= 1 << port.bits
        if (v & ((1 << (8 * k)) - 1)) != raw:
            raise ProtocolError(f"element {i}: bytes {payload[i * k:(i + 1) * k].hex()} are not a "
                                f"{port.bits}-bit {'signed' if port.signed else 'unsigned'} value")
        out.append(v)
    return out


def frame(sync: int, payload: bytes) -> bytes:
    """A whole frame: sync byte, payload, CRC-8 of the payload."""
    return bytes([sync]) + bytes(payload) + bytes([crc8(payload)])


def vector_frame(values: Sequence[int], inputs: Port) -> bytes:
    """The host's frame for one input vector."""
    return frame(SYNC_VECTOR, encode_elements(values, inputs))


def result_frame(values: Sequence[int], outputs: Port) -> bytes:
    """The board's answer for one output vector (what the gateware sends; the tests' model)."""
    return frame(SYNC_RESULT, encode_elements(values, outputs))


def error_frame(code: int) -> bytes:
    """The board's error answer with ``code``."""
    return frame(SYNC_ERROR, bytes([code]))


def design_id(rtl: Iterable[tuple[str, str]]) -> int:
    """A 32-bit id of a network's Verilog: CRC-32 of each file's name and text, in name order.
    The info frame carries its low 16 bits."""
    crc = 0
    for name, text in sorted(rtl):
        crc = zlib.crc32(name.encode() + b"\0" + text.encode() + b"\0", crc)
    return crc


@dataclass(frozen=True)
class BoardInfo:
    """What the board's info frame says: the interface it computes and its design id (16 bits)."""

    inputs: Port
    outputs: Port
    design_id16: int
    version: int = VERSION

    @classmethod
    def of(cls, iface: Interface, ident: int) -> "BoardInfo":
        return cls(iface.inputs, iface.outputs, ident & 0xFFFF)

    def payload(self) -> bytes:
        """The info payload (:data:`INFO_BYTES` bytes)."""
        def port(p: Port) -> bytes:
            if not (0 < p.count < 1 << 16 and 0 < p.bits < 128):
                raise ValueError(f"a port of {p.count} x {p.bits} bits does not fit the info frame")
            return p.count.to_bytes(2, "little") + bytes([p.bits | (p.signed << 7)])
        return bytes([INFO_MAGIC, self.version]) + port(self.inputs) + port(self.outputs) \
            + self.design_id16.to_bytes(2, "little")

    @classmethod
    def from_payload(cls, payload: bytes) -> "BoardInfo":
        if len(payload) != INFO_BYTES or payload[0] != INFO_MAGIC:
            raise ProtocolError(f"not a jpq-hw info payload: {payload.hex()}")

        def port(b: bytes) -> Port:
            return Port(int.from_bytes(b[:2], "little"), b[2] & 0x7F, bool(b[2] >> 7))
        return cls(port(payload[2:5]), port(payload[5:8]), int.from_bytes(payload[8:10], "little"), payload[1])

    def describe(self) -> str:
        def p(port: Port) -> str:
            return f"{port.count} x {port.bits}-bit {'signed' if port.signed else 'unsigned'}"
        return f"{p(self.inputs)} in, {p(self.outputs)} out, design id {self.design_id16:04x}"


def info_frame(info: BoardInfo) -> bytes:
    """The board's answer to :data:`SYNC_INFO_REQUEST`."""
    return frame(SYNC_INFO, info.payload())


PAYLOAD_BYTES = {SYNC_INFO: lambda out: INFO_BYTES, SYNC_ERROR: lambda out: 1,
                 SYNC_RESULT: lambda out: frame_payload_bytes(out)}
"""Payload length of each board -> host frame, given the design's output port."""


@dataclass(frozen=True)
class Answer:
    """One decoded board -> host frame: its sync byte and payload (CRC checked)."""

    sync: int
    payload: bytes


def decode_answer(data: bytes, outputs: Port) -> Answer:
    """Decode one whole board -> host frame (``data`` is exactly one frame); ProtocolError otherwise."""
    if not data:
        raise ProtocolError("empty frame")
    sync = data[0]
    if sync not in PAYLOAD_BYTES:
        raise ProtocolError(f"unknown sync byte 0x{sync:02x}")
    n = PAYLOAD_BYTES[sync](outputs)
    if len(data) != n + 2:
        raise ProtocolError(f"frame 0x{sync:02x} of {len(data)} bytes, expected {n + 2}")
    payload = data[1:-1]
    if crc8(payload) != data[-1]:
        raise ProtocolError(f"frame 0x{sync:02x}: CRC 0x{data[-1]:02x}, the payload's is 0x{crc8(payload):02x}")
    return Answer(sync, bytes(payload))
