"""The serial protocol of the board top (:mod:`jpq_hw.board.protocol`): no simulator.

CRC-8 against its published check value and its algebra, element encoding round trips for every
port shape (hypothesis), corrupted frames always caught, the info payload round trip, and the
design id's dependence on the Verilog.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jpq_hw.board import protocol as P
from jpq_hw.design_folder import Interface, Port


def test_crc8_check_value():
    assert P.crc8(b"123456789") == 0xF4  # CRC-8/SMBUS's check value
    assert P.crc8(b"") == 0


@given(st.binary(max_size=64))
def test_crc8_of_data_and_its_crc_is_zero(data):
    assert P.crc8(data + bytes([P.crc8(data)])) == 0


@st.composite
def port_and_values(draw):
    bits = draw(st.integers(1, 24))
    signed = draw(st.booleans())
    count = draw(st.integers(1, 12))
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    values = draw(st.lists(st.integers(lo, hi), min_size=count, max_size=count))
    return Port(count, bits, signed), values


@given(port_and_values())
def test_elements_round_trip(pv):
    port, values = pv
    payload = P.encode_elements(values, port)
    assert len(payload) == P.frame_payload_bytes(port) == port.count * ((port.bits + 7) // 8)
    assert P.decode_elements(payload, port) == values


def test_element_layout():
    assert P.encode_elements([-1, 5, -300], Port(3, 12, True)) == bytes([0xFF, 0xFF, 5, 0, 0xD4, 0xFE])
    assert P.encode_elements([31, 0], Port(2, 5, False)) == bytes([31, 0])
    assert P.vector_frame([1, 2], Port(2, 8, False)) == bytes([P.SYNC_VECTOR, 1, 2, P.crc8(b"\x01\x02")])


def test_out_of_range_and_bad_extension():
    with pytest.raises(ValueError, match="does not fit 5-bit unsigned"):
        P.encode_elements([32], Port(1, 5, False))
    with pytest.raises(ValueError, match="does not fit 4-bit signed"):
        P.encode_elements([-9], Port(1, 4, True))
    with pytest.raises(P.ProtocolError, match="not a 5-bit unsigned"):
        P.decode_elements(bytes([0x20]), Port(1, 5, False))
    with pytest.raises(P.ProtocolError, match="not a 12-bit signed"):
        P.decode_elements(bytes([0xFF, 0x08]), Port(1, 12, True))  # bit 11 set, bits 12..15 clear
    with pytest.raises(P.ProtocolError, match="payload of 1 bytes"):
        P.decode_elements(b"\x00", Port(2, 8, False))


@settings(max_examples=200)
@given(port_and_values(), st.data())
def test_any_one_corrupted_byte_is_caught(pv, data):
    port, values = pv
    frame = bytearray(P.result_frame(values, port))
    assert P.decode_answer(bytes(frame), port) == P.Answer(P.SYNC_RESULT, P.encode_elements(values, port))
    where = data.draw(st.integers(1, len(frame) - 1))  # a payload or CRC byte (a burst of <= 8 bits)
    frame[where] ^= data.draw(st.integers(1, 255))
    with pytest.raises(P.ProtocolError):
        P.decode_answer(bytes(frame), port)


def test_answer_framing_errors():
    out = Port(2, 8, False)
    with pytest.raises(P.ProtocolError, match="unknown sync byte 0x00"):
        P.decode_answer(b"\x00\x01\x02\x03", out)
    with pytest.raises(P.ProtocolError, match="expected 4"):
        P.decode_answer(P.result_frame([1, 2], out)[:-1], out)
    assert P.decode_answer(P.error_frame(P.ERR_CHECKSUM), out) == P.Answer(P.SYNC_ERROR, bytes([P.ERR_CHECKSUM]))


@given(st.integers(1, 65535), st.integers(1, 127), st.booleans(), st.integers(1, 65535), st.integers(1, 127),
       st.booleans(), st.integers(0, 2**32 - 1))
def test_info_round_trip(n_in, b_in, s_in, n_out, b_out, s_out, ident):
    iface = Interface("t", Port(n_in, b_in, s_in), Port(n_out, b_out, s_out))
    info = P.BoardInfo.of(iface, ident)
    frame = P.info_frame(info)
    assert len(frame) == P.INFO_BYTES + 2
    a = P.decode_answer(frame, iface.outputs)
    assert a.sync == P.SYNC_INFO
    assert P.BoardInfo.from_payload(a.payload) == info
    assert info.design_id16 == ident & 0xFFFF


def test_info_refuses_what_it_cannot_state():
    with pytest.raises(ValueError, match="does not fit the info frame"):
        P.BoardInfo(Port(70000, 8, False), Port(1, 8, False), 0).payload()
    with pytest.raises(P.ProtocolError, match="not a jpq-hw info payload"):
        P.BoardInfo.from_payload(b"X" + bytes(9))


def test_design_id_follows_the_verilog():
    a = P.design_id([("net.v", "module net; endmodule\n")])
    assert a == P.design_id([("net.v", "module net; endmodule\n")])
    assert a != P.design_id([("net.v", "module net;  endmodule\n")])
    assert a != P.design_id([("other.v", "module net; endmodule\n")])
    assert P.design_id([("a.v", "x"), ("b.v", "y")]) == P.design_id([("b.v", "y"), ("a.v", "x")])
