"""A core or a core array on an ECP5 board: the board clock through the PLL, the serial link
on the UART pins.

:class:`BoardTop` is what ``spikeforge build --board`` turns into a bitstream::

    clk25 -> EHXPLLL -> sync (clock_hz; reset until the PLL locks)
    uart.rx -> UartRx -> SerialLink -> SpikingCore | CoreArray -> SerialLink -> UartTx -> uart.tx

The design is one :class:`~spikeforge.hw.params.CoreParams` (a core) or a sequence of them (a
:class:`~spikeforge.hw.array.CoreArray`, its packets routed; the link sends each core's answer
in its own frame); :func:`design_hash` names either, as its INFO answer does.

LEDs (for bring-up): 0 blinks at ~1.5 Hz (the PLL runs), 1 toggles with every intact frame,
2 is on once a damaged frame came, 3 once a frame was dropped for want of room, 7 is the
PLL's lock.

:func:`ecp5_pll` chooses the PLL's dividers within the ECP5 family data sheet's limits (phase
detector 3.125-400 MHz, VCO 400-800 MHz, output at most 400 MHz).
:data:`BOARDS` names the boards and their amaranth-boards platforms.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from amaranth.hdl import ClockDomain, ClockSignal, Elaboratable, Instance, Module, Signal
from amaranth.lib import io, wiring
from amaranth.lib.cdc import ResetSynchronizer

from spikeforge.hw.array import CoreArray, array_hash, layer_groups
from spikeforge.hw.core import SpikingCore
from spikeforge.hw.params import CoreParams
from spikeforge.hw.protocol import MAX_ARRAY_CORES
from spikeforge.hw.serial_link import SerialLink
from spikeforge.hw.uart import UartRx, UartTx, check_divisor
from spikeforge.sw.config import ConfigError

__all__ = [
    "BOARDS",
    "Board",
    "BoardTop",
    "Design",
    "PllConfig",
    "board",
    "checked_design",
    "design_hash",
    "ecp5_pll",
    "uart_divisor",
]

PFD_MHZ = (3.125, 400.0)
VCO_MHZ = (400.0, 800.0)
OUT_MAX_MHZ = 400.0


Design = CoreParams | tuple[CoreParams, ...]
"""What a board carries: one core, or the cores of an array (in core order)."""


def checked_design(design) -> Design:
    """``design`` as a :data:`Design`: a :class:`CoreParams` checked, or a sequence of them as
    a tuple (checked as an array's cores by :func:`~spikeforge.hw.array.layer_groups`)."""
    if isinstance(design, CoreParams):
        return CoreParams.checked(design)
    if isinstance(design, (str, bytes)) or not hasattr(design, "__iter__"):
        raise TypeError(f"a design is a CoreParams or a sequence of them, not {design!r}")
    cores = tuple(design)
    layer_groups(cores, linked=True)
    if len(cores) > MAX_ARRAY_CORES:
        raise ConfigError(f"an array holds at most {MAX_ARRAY_CORES} cores, not {len(cores)}")
    return cores


def design_hash(design: Design) -> str:
    """The hash a design's INFO answers: the core's hash, or the array's
    (:func:`~spikeforge.hw.array.array_hash`)."""
    return design.core_hash if isinstance(design, CoreParams) else array_hash(design)


@dataclass(frozen=True)
class Board:
    """A board: its name and its amaranth-boards platform."""

    name: str
    module: str
    platform: str

    def platform_class(self):
        return getattr(importlib.import_module(self.module), self.platform)


BOARDS: dict[str, Board] = {
    b.name: b
    for b in (
        Board("ulx3s-12f", "amaranth_boards.ulx3s", "ULX3S_12F_Platform"),
        Board("ulx3s-25f", "amaranth_boards.ulx3s", "ULX3S_25F_Platform"),
        Board("ulx3s-45f", "amaranth_boards.ulx3s", "ULX3S_45F_Platform"),
        Board("ulx3s-85f", "amaranth_boards.ulx3s", "ULX3S_85F_Platform"),
    )
}


def board(name: str) -> Board:
    """The board called ``name``; a :class:`~spikeforge.sw.config.ConfigError` listing the
    known ones otherwise."""
    if name not in BOARDS:
        raise ConfigError(f"unknown board {name!r}: known boards are {', '.join(BOARDS)}")
    return BOARDS[name]


@dataclass(frozen=True)
class PllConfig:
    """``fout = fin / clki_div * clkfb_div`` (feedback from CLKOP), ``vco = fout * clkop_div``."""

    fin_mhz: float
    clki_div: int
    clkfb_div: int
    clkop_div: int

    @property
    def fout_mhz(self) -> float:
        return self.fin_mhz / self.clki_div * self.clkfb_div

    @property
    def vco_mhz(self) -> float:
        return self.fout_mhz * self.clkop_div


def ecp5_pll(fin_mhz: float, fout_mhz: float) -> PllConfig:
    """The dividers that bring ``fin_mhz`` closest to ``fout_mhz`` within the PLL's limits
    (ties: the higher VCO, which jitters less). :class:`~spikeforge.sw.config.ConfigError` if
    no setting is within 1%."""
    if not 0 < fout_mhz <= OUT_MAX_MHZ:
        raise ConfigError(f"the PLL's output must be in (0, {OUT_MAX_MHZ:g}] MHz, not {fout_mhz}")
    best = None
    for clki in range(1, 129):
        pfd = fin_mhz / clki
        if not PFD_MHZ[0] <= pfd <= PFD_MHZ[1]:
            continue
        for clkfb in range(1, 81):
            out = pfd * clkfb
            for clkop in range(1, 129):
                if not VCO_MHZ[0] <= out * clkop <= VCO_MHZ[1]:
                    continue
                key = (abs(out - fout_mhz), -out * clkop)
                if best is None or key < best[0]:
                    best = key, PllConfig(fin_mhz, clki, clkfb, clkop)
    if best is None or best[0][0] > 0.01 * fout_mhz:
        raise ConfigError(f"the ECP5 PLL cannot make {fout_mhz} MHz from {fin_mhz} MHz within 1%")
    return best[1]


def uart_divisor(clock_hz: float, baud: int) -> int:
    """Clock cycles per bit for ``baud`` from ``clock_hz``; a
    :class:`~spikeforge.sw.config.ConfigError` if the rate would be more than 2% off."""
    if not isinstance(baud, int) or isinstance(baud, bool) or baud <= 0:
        raise ConfigError(f"baud must be a positive int, not {baud!r}")
    divisor = check_divisor(round(clock_hz / baud))
    error = abs(clock_hz / divisor - baud) / baud
    if error > 0.02:
        raise ConfigError(
            f"{baud} baud from a {clock_hz / 1e6:g} MHz clock is {error:.1%} off "
            f"(divisor {divisor}); choose a clock or baud rate within 2%"
        )
    return divisor


class BoardTop(Elaboratable):
    """One core or a core array behind the serial link, on a board's clock and UART pins.

    Parameters
    ----------
    design : CoreParams or sequence of CoreParams
        One core, or an array's cores (:func:`checked_design`).
    clock_mhz : float
        The core's clock, made by the PLL from the board's clock.
    baud : int
        The UART's rate (the divisor is the PLL's clock over it, rounded; at most 2% off).
    """

    def __init__(self, design, *, clock_mhz: float = 100.0, baud: int = 3_000_000):
        self.design = checked_design(design)
        uart_divisor(clock_mhz * 1e6, baud)  # fails early on a rate the clock cannot make
        self.clock_mhz, self.baud = clock_mhz, baud
        self.pll: PllConfig | None = None

    def divisor(self, clock_hz: float) -> int:
        """The UART's clock cycles per bit (:func:`uart_divisor`)."""
        return uart_divisor(clock_hz, self.baud)

    def elaborate(self, platform):
        m = Module()
        m.submodules.clk_in = clk_in = io.Buffer(
            "i", platform.request(platform.default_clk, dir="-")
        )
        fin_mhz = platform.default_clk_frequency / 1e6
        self.pll = pll = ecp5_pll(fin_mhz, self.clock_mhz)
        clock_hz = pll.fout_mhz * 1e6
        m.domains.sync = ClockDomain("sync")
        clk = Signal()  # the PLL's output, constrained for nextpnr
        locked = Signal()
        m.submodules.pll = Instance(
            "EHXPLLL",
            a_FREQUENCY_PIN_CLKI=f"{fin_mhz:g}",
            a_FREQUENCY_PIN_CLKOP=f"{pll.fout_mhz:g}",
            a_ICP_CURRENT="12",
            a_LPF_RESISTOR="8",
            a_MFG_ENABLE_FILTEROPAMP="1",
            a_MFG_GMCREF_SEL="2",
            p_PLLRST_ENA="DISABLED",
            p_INTFB_WAKE="DISABLED",
            p_STDBY_ENABLE="DISABLED",
            p_DPHASE_SOURCE="DISABLED",
            p_OUTDIVIDER_MUXA="DIVA",
            p_OUTDIVIDER_MUXB="DIVB",
            p_OUTDIVIDER_MUXC="DIVC",
            p_OUTDIVIDER_MUXD="DIVD",
            p_CLKI_DIV=pll.clki_div,
            p_CLKOP_ENABLE="ENABLED",
            p_CLKOP_DIV=pll.clkop_div,
            p_CLKOP_CPHASE=pll.clkop_div - 1,
            p_CLKOP_FPHASE=0,
            p_FEEDBK_PATH="CLKOP",
            p_CLKFB_DIV=pll.clkfb_div,
            i_RST=0,
            i_STDBY=0,
            i_CLKI=clk_in.i,
            o_CLKOP=clk,
            i_CLKFB=clk,
            i_PHASESEL0=0,
            i_PHASESEL1=0,
            i_PHASEDIR=1,
            i_PHASESTEP=1,
            i_PHASELOADREG=1,
            i_PLLWAKESYNC=0,
            i_ENCLKOP=0,
            o_LOCK=locked,
        )
        m.d.comb += ClockSignal("sync").eq(clk)
        platform.add_clock_constraint(clk, clock_hz)
        m.submodules.reset = ResetSynchronizer(~locked, domain="sync")

        divisor = self.divisor(clock_hz)
        uart = platform.request("uart", 0, dir="-")
        m.submodules.uart_rx_pin = rx_pin = io.Buffer("i", uart.rx)
        m.submodules.uart_tx_pin = tx_pin = io.Buffer("o", uart.tx)
        m.submodules.uart_rx = rx = UartRx(divisor=divisor)
        m.submodules.uart_tx = tx = UartTx(divisor=divisor)
        if isinstance(self.design, CoreParams):
            m.submodules.link = link = SerialLink()
            m.submodules.core = core = SpikingCore(self.design)
        else:
            m.submodules.link = link = SerialLink(cores=len(self.design))
            m.submodules.core = core = CoreArray(self.design)
        m.d.comb += [rx.rx.eq(rx_pin.i), tx_pin.o.eq(tx.tx)]
        wiring.connect(m, rx.o, link.rx)
        wiring.connect(m, link.tx, tx.i)
        wiring.connect(m, link.cmd, core.cmd)
        wiring.connect(m, core.rsp, link.rsp)

        leds = []
        for n in range(8):
            m.submodules[f"led{n}"] = led = io.Buffer("o", platform.request("led", n, dir="-"))
            leds.append(led)
        period = max(2, int(clock_hz / 3))
        blink = Signal(range(period))
        heartbeat = Signal()
        with m.If(blink == 0):
            m.d.sync += [blink.eq(period - 1), heartbeat.eq(~heartbeat)]
        with m.Else():
            m.d.sync += blink.eq(blink - 1)
        m.d.comb += [
            leds[0].o.eq(heartbeat),
            leds[1].o.eq(link.frames[0]),
            leds[2].o.eq(link.damaged != 0),
            leds[3].o.eq(link.overflows != 0),
            leds[7].o.eq(locked),
        ]
        return m
