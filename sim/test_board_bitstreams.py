"""The shipped digits example as a bitstream for every board of ``boards/`` (``jpq-hw synth --board``).

Each build is yosys, nextpnr and the packer on the network inside the UART board top, about a
minute; they run two at a time (the tools are single-threaded) and are marked ``slow``
(``pytest -m 'not slow'`` skips them; CI runs them). The iCEstick's HX1K has 1,280 LUT4, a third
of what the example needs: its build must say so with the numbers, and a small network gets its
bitstream instead.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from jpq_hw.boards import known_boards
from jpq_hw.flow import lower_checkpoint
from jpq_hw.ir import random_qnet, save_checkpoint
from jpq_hw.synth.build import SYNTH_REPORT, synth_design

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "digits-mlp.pt"
BUILD = Path(__file__).resolve().parent / "build" / "boards"

pytestmark = [pytest.mark.synth, pytest.mark.slow]


@pytest.fixture(scope="module")
def builds() -> dict[str, tuple[dict | None, str | None]]:
    """Every board's build of the digits example (lowered for its family): board -> (report, error)."""
    designs = {}
    for family in sorted({b.family for b in known_boards().values()}):
        out = BUILD / f"digits-{family}"
        lower_checkpoint(EXAMPLE, out, target=family, n_vectors=20, force=True)
        designs[family] = out

    def one(board):
        try:
            return board.name, (synth_design(designs[board.family], board=board.name)[0], None)
        except Exception as e:  # reported by the test of that board
            return board.name, (None, f"{type(e).__name__}: {e}")

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(one, known_boards().values()))


@pytest.mark.parametrize("name", [n for n, b in known_boards().items() if n != "icestick"])
def test_the_digits_example_gets_a_bitstream(builds, name):
    r, error = builds[name]
    assert error is None, error
    board = known_boards()[name]
    folder = BUILD / f"digits-{board.family}" / "build" / name
    assert json.loads((folder / SYNTH_REPORT).read_text()) == r
    assert r["fits"] is True and r["board"] == name and r["clock_mhz"] == board.clock_mhz
    assert r["fmax_mhz"] > 0 and isinstance(r["meets_timing"], bool)
    bitstream = folder / r["bitstream"]
    assert bitstream.stat().st_size > 30_000 and bitstream.suffix == (".bin" if board.family == "ice40" else ".bit")
    # UART rx and tx on the board's pins, and the oscillator's pin unless it is inside the FPGA (UPduino)
    assert r["cells"]["io"][0] >= (2 if board.clock == "SB_HFOSC" else 3)
    if board.device == "iCE40UP5K":  # the target: the example at 12 MHz or more on the UP5K boards
        assert r["meets_timing"] and r["fmax_mhz"] >= 12


def test_the_icestick_is_too_small_for_the_example_and_says_so(builds):
    r, error = builds["icestick"]
    assert error is None, error
    assert r["fits"] is False and r["bitstream"] is None
    used, capacity = r["does_not_fit"]["lut4"]
    assert capacity == 1280 and used > 3 * capacity


def test_a_small_network_gets_an_icestick_bitstream(tmp_path):
    save_checkpoint(random_qnet([16, 8, 4], density=0.25, weight_bits=4, seed=5), tmp_path / "small.pt")
    lower_checkpoint(tmp_path / "small.pt", tmp_path / "small", n_vectors=10, pipeline=2)
    r, folder = synth_design(tmp_path / "small", board="icestick")
    assert r["fits"] and r["meets_timing"] and (folder / "jpq_net.bin").stat().st_size > 30_000
