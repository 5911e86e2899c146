"""The board top's Verilog for simulation: :class:`~spikeforge.hw.board.BoardTop` unchanged,
its vendor parts replaced by simulation models.

* **I/O.** :class:`VirtualPlatform` hands out the board's pins as plain top-level ports
  (``clk25``, ``uart_rx``, ``uart_tx``, ``led``), so the I/O buffers are wires.
* **PLL.** :data:`EHXPLLL_MODEL` is a Verilog model of the ECP5's ``EHXPLLL`` with every port
  and parameter :class:`BoardTop` uses: ``CLKOP`` is ``CLKI`` (a cycle simulation has no
  frequencies; the testbench clocks ``clk25`` at the PLL's output period) and ``LOCK`` rises 16
  input cycles after start, so the reset synchronizer releases the core as on the board.

:func:`generate_virtual_board` writes both into one Verilog file with a manifest, for
:func:`spikeforge.sim.rtl_runner.build`. The UART runs at ``clock / divisor`` baud: a small
divisor (default 8) keeps simulated bytes short; the board's UART logic is the same for any
divisor the board could use.
"""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from amaranth.back import verilog
from amaranth.lib import io

from spikeforge.hw.board import BoardTop, Design, checked_design, design_hash
from spikeforge.hw.params import CoreParams
from spikeforge.hw.uart import check_divisor

__all__ = ["EHXPLLL_MODEL", "TOP", "VirtualPlatform", "generate_virtual_board"]

TOP = "spikeforge_board"
"""The virtual board's top module."""

SIM_CLOCK_MHZ = 100.0
"""The PLL output the virtual board's top is built for (the divisor sets the baud rate)."""

EHXPLLL_MODEL = """\
// Simulation model of the ECP5 EHXPLLL (spikeforge virtual board): CLKOP follows CLKI,
// LOCK rises 16 CLKI cycles after start. Parameters are accepted and ignored.
module EHXPLLL #(
    parameter PLLRST_ENA = "DISABLED",
    parameter INTFB_WAKE = "DISABLED",
    parameter STDBY_ENABLE = "DISABLED",
    parameter DPHASE_SOURCE = "DISABLED",
    parameter OUTDIVIDER_MUXA = "DIVA",
    parameter OUTDIVIDER_MUXB = "DIVB",
    parameter OUTDIVIDER_MUXC = "DIVC",
    parameter OUTDIVIDER_MUXD = "DIVD",
    parameter CLKI_DIV = 1,
    parameter CLKOP_ENABLE = "ENABLED",
    parameter CLKOP_DIV = 8,
    parameter CLKOP_CPHASE = 0,
    parameter CLKOP_FPHASE = 0,
    parameter FEEDBK_PATH = "CLKOP",
    parameter CLKFB_DIV = 1
) (
    input CLKI, input CLKFB, input RST, input STDBY,
    input PHASESEL0, input PHASESEL1, input PHASEDIR, input PHASESTEP, input PHASELOADREG,
    input PLLWAKESYNC, input ENCLKOP,
    output CLKOP, output LOCK
);
    reg [4:0] count = 5'd0;
    always @(posedge CLKI) if (!count[4]) count <= count + 5'd1;
    assign CLKOP = CLKI;
    assign LOCK = count[4];
endmodule
"""
"""The ``EHXPLLL`` simulation model (Verilog)."""


class VirtualPlatform:
    """What :class:`BoardTop` asks of a platform, with the pins as top-level ports."""

    default_clk = "clk25"
    default_clk_frequency = 25e6

    def request(self, name: str, number: int = 0, *, dir: str = "-"):
        if dir != "-":
            raise ValueError(f"VirtualPlatform hands out raw ports (dir='-'), not dir={dir!r}")
        if name == "clk25":
            return io.SingleEndedPort(io.IOPort(1, name="clk25"), direction="i")
        if name == "uart":
            return SimpleNamespace(
                rx=io.SingleEndedPort(io.IOPort(1, name="uart_rx"), direction="i"),
                tx=io.SingleEndedPort(io.IOPort(1, name="uart_tx"), direction="o"),
            )
        if name == "led":
            return io.SingleEndedPort(io.IOPort(1, name=f"led_{number}"), direction="o")
        raise ValueError(f"the virtual board has no {name!r} pins")

    def add_clock_constraint(self, clock, frequency) -> None:
        """Timing is not simulated."""


def generate_virtual_board(design: Design, out_dir: Path, *, divisor: int = 8) -> dict:
    """Write the virtual board's Verilog (``out_dir/spikeforge_board.v``: the board top of
    ``design`` -- a core or an array's cores -- and the PLL model) and ``manifest.json``;
    return the manifest (``board_hash`` identifies it)."""
    design = checked_design(design)
    check_divisor(divisor)
    baud = round(SIM_CLOCK_MHZ * 1e6 / divisor)
    top = BoardTop(design, clock_mhz=SIM_CLOCK_MHZ, baud=baud)
    text = verilog.convert(top, name=TOP, platform=VirtualPlatform(), ports=[], emit_src=False)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    vname = f"{TOP}.v"
    (out_dir / vname).write_text(text + "\n" + EHXPLLL_MODEL)
    cores = [design] if isinstance(design, CoreParams) else list(design)
    man: dict[str, Any] = {
        "top": TOP,
        "verilog": vname,
        "board_hash": f"{design_hash(design)}-d{divisor}",
        "cores": [p.to_dict() for p in cores],
        "array": not isinstance(design, CoreParams),
        "design_hash": design_hash(design),
        "clock_mhz": SIM_CLOCK_MHZ,
        "divisor": divisor,
        "baud": baud,
        "ports": {"clock": "clk25", "rx": "uart_rx", "tx": "uart_tx"},
        "versions": {"spikeforge": version("spikeforge"), "amaranth": version("amaranth")},
    }
    (out_dir / "manifest.json").write_text(json.dumps(man, indent=2) + "\n")
    return man
