"""An 8N1 UART: bytes as :mod:`amaranth.lib.stream` streams, one pin each way.

``divisor`` is the clock cycles per bit (the clock over the baud rate, rounded: at 100 MHz,
3 Mbaud is 33 and a bit 1% fast -- within the ±2% an 8N1 receiver that samples mid-bit
tolerates with the other end exact).

* :class:`UartTx` sends a byte as a start bit (0), 8 data bits LSB first and a stop bit (1):
  ``10 * divisor`` cycles a byte; ``i.ready`` is high while the line is idle.
* :class:`UartRx` synchronises the pin (two flip-flops), finds a start bit's falling edge,
  checks it is still low half a bit later and samples every bit in its middle. A byte whose
  stop bit reads 0 is not delivered and pulses ``framing_error``; a byte the reader did not
  take before the next one arrived pulses ``overrun`` (the link has no flow control: what
  the reader misses is lost, and a frame check above catches it). Latency: the byte is on
  ``o`` 9.5 bit times after its start bit's edge (+ 2 cycles of synchroniser).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from spikeforge.sw.config import ConfigError

__all__ = ["UartRx", "UartTx", "check_divisor"]


def check_divisor(divisor: int) -> int:
    """``divisor`` (clock cycles per bit) if it is an int >= 4, else a
    :class:`~spikeforge.sw.config.ConfigError`."""
    if isinstance(divisor, bool) or not isinstance(divisor, int) or divisor < 4:
        raise ConfigError(f"divisor (clock cycles per bit) must be an int >= 4, not {divisor!r}")
    return divisor


class UartTx(wiring.Component):
    """Bytes from ``i`` out on ``tx`` (idle high)."""

    def __init__(self, *, divisor: int):
        self._divisor = check_divisor(divisor)
        super().__init__({"i": In(stream.Signature(8)), "tx": Out(1, init=1)})

    def elaborate(self, platform):
        m = Module()
        shift = Signal(10, init=0x3FF)  # stop bit, data, start bit: sent LSB first
        bits = Signal(range(11))
        timer = Signal(range(self._divisor))
        m.d.comb += [self.i.ready.eq(bits == 0), self.tx.eq(shift[0])]
        with m.If(bits == 0):
            with m.If(self.i.valid):
                m.d.sync += [
                    shift.eq(Cat(0, self.i.payload, 1)),
                    bits.eq(10),
                    timer.eq(self._divisor - 1),
                ]
        with m.Elif(timer == 0):
            m.d.sync += [shift.eq(Cat(shift[1:], 1)), bits.eq(bits - 1)]
            m.d.sync += timer.eq(self._divisor - 1)
        with m.Else():
            m.d.sync += timer.eq(timer - 1)
        return m


class UartRx(wiring.Component):
    """Bytes from the ``rx`` pin to ``o``; ``framing_error`` and ``overrun`` pulse per byte."""

    def __init__(self, *, divisor: int):
        self._divisor = check_divisor(divisor)
        super().__init__(
            {
                "rx": In(1, init=1),
                "o": Out(stream.Signature(8)),
                "framing_error": Out(1),
                "overrun": Out(1),
            }
        )

    def elaborate(self, platform):
        m = Module()
        d = self._divisor
        pin = Signal(init=1)
        m.submodules.sync = FFSynchronizer(self.rx, pin, init=1)
        timer = Signal(range(d))
        data = Signal(8)
        bit = Signal(range(9))
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(~pin):
                    m.d.sync += timer.eq(d // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(pin):  # a glitch, not a start bit
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += [timer.eq(d - 1), bit.eq(0)]
                    m.next = "DATA"
            with m.State("DATA"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    m.d.sync += [data.eq(Cat(data[1:], pin)), bit.eq(bit + 1), timer.eq(d - 1)]
                    with m.If(bit == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    with m.If(~pin):
                        m.d.comb += self.framing_error.eq(1)
                    with m.Else():
                        m.d.comb += self.overrun.eq(self.o.valid & ~self.o.ready)
                        m.d.sync += [self.o.payload.eq(data), self.o.valid.eq(1)]
                    m.next = "WAIT_IDLE"
            with m.State("WAIT_IDLE"):  # a stop bit of 0 (a break): wait for the line
                with m.If(pin):
                    m.next = "IDLE"
        return m
