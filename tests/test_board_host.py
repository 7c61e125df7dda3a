"""``jpq-hw run`` and the host side (:mod:`jpq_hw.board.host`) against a model of the board top.

:class:`ModelBoard` speaks the protocol of :mod:`jpq_hw.board.protocol` at the far end of a
pseudo-terminal, in a thread, so the host's real path runs: the sub-command's parser
(``add_run_parser``), pyserial, the framing, the comparison. It can misbehave on purpose: stay
silent, run another design, corrupt an answer, report checksum errors, compute a wrong output. (The
gateware itself answers the same command in ``sim/test_board_top.py``.)
"""

from __future__ import annotations

import hashlib
import json
import os
import select
import shutil
import threading
import tty
from pathlib import Path

import numpy as np
import pytest

from jpq_hw.board import protocol as P
from jpq_hw.cli import main as run_main
from jpq_hw.board.host import SerialTransport, run_vectors
from jpq_hw.design_folder import Interface, Port, write_vectors
from jpq_hw.ir import load_checkpoint
from jpq_hw.reference import run_reference

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "digits-mlp.pt"


class ModelBoard(threading.Thread):
    """The board top's protocol in Python behind a pty; ``compute(x) -> y``. ``faults``: ``silent``,
    ``other-design``, ``corrupt-first`` (the first result's CRC flipped), ``checksum-always`` (every
    vector answered with ERR_CHECKSUM), ``off-by-one@K`` (vector K's y[0] + 1)."""

    def __init__(self, iface: Interface, ident: int, compute, faults=()):
        super().__init__(daemon=True)
        self.iface, self.compute, self.faults = iface, compute, set(faults)
        self.info = P.BoardInfo.of(iface, ident ^ (0x1234 if "other-design" in self.faults else 0))
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.port = os.ttyname(self.slave)
        self.vectors = 0
        self.stop = threading.Event()

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.join(2)
        os.close(self.master)
        os.close(self.slave)

    def _bytes(self):
        while not self.stop.is_set():
            if select.select([self.master], [], [], 0.02)[0]:
                try:
                    data = os.read(self.master, 4096)
                except OSError:
                    continue
                yield from data

    def run(self):
        n = P.frame_payload_bytes(self.iface.inputs)
        stream = self._bytes()
        for byte in stream:
            if "silent" in self.faults:
                continue
            if byte == P.SYNC_INFO_REQUEST:
                os.write(self.master, P.info_frame(self.info))
            elif byte == P.SYNC_VECTOR:
                payload = bytes(next(stream) for _ in range(n))
                crc = next(stream)
                k = self.vectors
                self.vectors += 1
                if crc != P.crc8(payload) or "checksum-always" in self.faults:
                    os.write(self.master, P.error_frame(P.ERR_CHECKSUM))
                    continue
                y = list(self.compute(P.decode_elements(payload, self.iface.inputs)))
                if f"off-by-one@{k}" in self.faults:
                    y[0] += 1
                answer = bytearray(P.result_frame(y, self.iface.outputs))
                if "corrupt-first" in self.faults and k == 0:
                    answer[-1] ^= 0x5A
                os.write(self.master, bytes(answer))


@pytest.fixture
def digits_design(tmp_path):
    """A design folder with the digits example's interface and vectors (the model computes it; no
    lowering needed): report.json recording the checkpoint, rtl/, tb/vectors.json."""
    qnet = load_checkpoint(EXAMPLE)
    rng = np.random.default_rng(0)
    x = rng.integers(qnet.input.lo, qnet.input.hi + 1, size=(6, 64))
    y = run_reference(qnet, x).reshape(len(x), -1)
    out = tmp_path / "design"
    (out / "rtl").mkdir(parents=True)
    (out / "tb").mkdir()
    (out / "rtl" / "jpq_net.v").write_text("module jpq_net(input [319:0] x, output [159:0] y); endmodule\n")
    iface = Interface("jpq_net", Port(64, qnet.input.bits, qnet.input.signed), Port(10, 16, True))
    report = iface.to_report() | {"checkpoint": {"path": str(EXAMPLE),
                                                 "sha256": hashlib.sha256(EXAMPLE.read_bytes()).hexdigest()}}
    (out / "report.json").write_text(json.dumps(report))
    write_vectors(out, x, y)
    ident = P.design_id([("jpq_net.v", (out / "rtl" / "jpq_net.v").read_text())])
    compute = lambda v: run_reference(qnet, np.array([v]))[0].tolist()  # noqa: E731
    return out, iface, ident, compute, qnet


def cli(args, capsys):
    rc = run_main(["run", *map(str, args)])
    out, err = capsys.readouterr()
    return rc, out, err


def one_line_error(err: str, *needles: str) -> None:
    assert err.startswith("jpq-hw: error: ") and err.strip().count("\n") == 0, err
    for n in needles:
        assert n in err, err


def test_run_design_vectors(digits_design, capsys):
    design, iface, ident, compute, _ = digits_design
    with ModelBoard(iface, ident, compute) as board:
        rc, out, err = cli([design, "--port", board.port, "--board", "icebreaker"], capsys)
    assert rc == 0, err
    assert out.startswith("6 vectors (tb/vectors.json) on ") and "all outputs equal the reference" in out
    assert board.vectors == 6


def test_run_inputs_npy_with_the_recorded_checkpoint(digits_design, tmp_path, capsys):
    design, iface, ident, compute, qnet = digits_design
    x = np.random.default_rng(5).integers(0, qnet.input.hi + 1, size=(3, 8, 8))
    np.save(tmp_path / "in.npy", x)
    with ModelBoard(iface, ident, compute) as board:
        rc, out, err = cli([design, tmp_path / "in.npy", "--port", board.port, "-o", tmp_path / "y.npy"], capsys)
    assert rc == 0, err
    assert "3 vectors" in out
    saved = np.load(tmp_path / "y.npy")
    assert saved.dtype == np.int64 and np.array_equal(saved, run_reference(qnet, x.reshape(3, 64)))


def test_mismatch_is_counted_and_the_first_named(digits_design, tmp_path, capsys):
    design, iface, ident, compute, _ = digits_design
    with ModelBoard(iface, ident, compute, faults={"off-by-one@2", "off-by-one@4"}) as board:
        rc, out, err = cli([design, "--port", board.port, "-o", tmp_path / "y.npy"], capsys)
    assert rc == 2
    want = json.loads((design / "tb" / "vectors.json").read_text())["y"][2][0]
    one_line_error(err, "2 of 6 vectors differ from the reference",
                   f"the first: vector 2, y[0] = {want + 1} on the board, {want} in the reference")
    assert np.load(tmp_path / "y.npy")[2, 0] == want + 1  # the outputs are saved all the same


def test_no_board_answers(digits_design, capsys):
    design, iface, ident, compute, _ = digits_design
    with ModelBoard(iface, ident, compute, faults={"silent"}) as board:
        rc, out, err = cli([design, "--port", board.port, "--timeout", "0.3"], capsys)
    assert rc == 2
    one_line_error(err, f"no answer from the board on {board.port} to the info request within 0.3 s",
                   "bitstream", "115200 baud", "wiring")


def test_serial_port_that_does_not_exist(digits_design, capsys):
    design = digits_design[0]
    rc, out, err = cli([design, "--port", "/dev/ttyUSB-jpq-missing"], capsys)
    assert rc == 2
    one_line_error(err, "serial port /dev/ttyUSB-jpq-missing does not exist")


def test_board_runs_another_design(digits_design, capsys):
    design, iface, ident, compute, _ = digits_design
    with ModelBoard(iface, ident, compute, faults={"other-design"}) as board:
        rc, out, err = cli([design, "--port", board.port], capsys)
    assert rc == 2
    one_line_error(err, "runs another design", f"design id {(ident ^ 0x1234) & 0xFFFF:04x}",
                   f"this folder's: 64 x {iface.inputs.bits}-bit unsigned in, 10 x 16-bit signed out, "
                   f"design id {ident & 0xFFFF:04x}")


def test_a_corrupted_answer_is_sent_again(digits_design):
    design, iface, ident, compute, _ = digits_design
    d = json.loads((design / "tb" / "vectors.json").read_text())
    with ModelBoard(iface, ident, compute, faults={"corrupt-first"}) as board:
        t = SerialTransport(board.port)
        try:
            y = run_vectors(t, iface, d["x"][:3], design_id=ident, timeout=1.0)
        finally:
            t.close()
    assert y == d["y"][:3]
    assert board.vectors == 4  # vector 0 twice


def test_checksum_errors_that_persist(digits_design, capsys):
    design, iface, ident, compute, _ = digits_design
    with ModelBoard(iface, ident, compute, faults={"checksum-always"}) as board:
        rc, out, err = cli([design, "--port", board.port], capsys)
    assert rc == 2
    one_line_error(err, "vector 0: 3 tries went wrong on the line",
                   "the board reported: the vector's checksum was wrong on arrival")


def test_inputs_without_a_checkpoint(digits_design, tmp_path, capsys):
    design = digits_design[0]
    report = json.loads((design / "report.json").read_text())
    report["checkpoint"] = {"path": str(tmp_path / "gone.pt"), "sha256": "0"}
    (design / "report.json").write_text(json.dumps(report))
    np.save(tmp_path / "in.npy", np.zeros((1, 64), dtype=np.int64))
    rc, out, err = cli([design, tmp_path / "in.npy", "--port", "/dev/null"], capsys)
    assert rc == 2
    one_line_error(err, "give --checkpoint FILE", "gone.pt")


def test_bad_flags(digits_design, tmp_path, capsys):
    design = digits_design[0]
    rc, out, err = cli([design, "--port", "/dev/null", "--board", "no-such-board"], capsys)
    one_line_error(err, "unknown board 'no-such-board'")
    rc, out, err = cli([tmp_path, "--port", "/dev/null"], capsys)
    one_line_error(err, "is not a design folder of jpq-hw lower")
    shutil.rmtree(design / "rtl")
    rc, out, err = cli([design, "--port", "/dev/null"], capsys)
    one_line_error(err, "holds no Verilog")
