"""cocotb testbench: the virtual board -- the board top's Verilog with its UART pins on a
pseudo-terminal, for as long as the host keeps it open.

Top: :data:`~spikeforge.hw.virtual_board.TOP` (:func:`~spikeforge.hw.virtual_board.
generate_virtual_board`). The bench clocks ``clk25`` at the PLL's output period, opens a
pseudo-terminal and writes its device path to ``case["ready"]``; then it carries bytes between
the pseudo-terminal and the pins through cocotbext-uart's ``UartSource`` (``uart_rx``) and
``UartSink`` (``uart_tx``) at the build's baud rate, damaging them on the way in and out with
:class:`~spikeforge.sim.serial_sim.LineErrors` (``case["errors"]``, seeded per direction).

The bench polls the pseudo-terminal every ``case["poll_cycles"]`` cycles. It stops when the
file ``case["stop"]`` appears, when the process that started it is gone, or after
``case["max_seconds"]`` of wall time; ``result.json`` then holds the cycles, the bytes each
way and the damage done.
"""

from __future__ import annotations

import json
import logging
import os
import time
import tty
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import Timer
from cocotbext.uart import UartSink, UartSource

from spikeforge.sim.harness import CLOCK_NS, Outcome, load_case
from spikeforge.sim.serial_sim import LineErrors


class PtyEnd:
    """The simulator's end of a pseudo-terminal: non-blocking reads, buffered writes."""

    def __init__(self):
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self.slave)
        self._out = bytearray()

    def read(self) -> bytes:
        try:
            return os.read(self.master, 4096)
        except (BlockingIOError, OSError):  # nothing there (OSError: no host opened it yet)
            return b""

    def write(self, data: bytes) -> None:
        self._out += data
        while self._out:
            try:
                n = os.write(self.master, self._out)
            except BlockingIOError:  # the host is not reading: keep the rest for later
                return
            del self._out[:n]

    def close(self) -> None:
        for fd in (self.master, self.slave):
            os.close(fd)


@cocotb.test()
async def virtual_board(dut):
    case = load_case()
    baud, poll = case["baud"], case["poll_cycles"]
    if 1e9 / baud != int(1e9 / baud):
        raise ValueError(f"{baud} baud is not a whole number of ns per bit")
    Clock(dut.clk25, CLOCK_NS, unit="ns").start()
    source = UartSource(dut.uart_rx, baud=baud)
    sink = UartSink(dut.uart_tx, baud=baud)
    for part in (source, sink):  # they log every byte at INFO
        part.log.setLevel(logging.WARNING)
    errors = case["errors"]
    to_chip = LineErrors(**{**errors, "seed": errors.get("seed", 0) * 2})
    to_host = LineErrors(**{**errors, "seed": errors.get("seed", 0) * 2 + 1})
    stop, parent = Path(case["stop"]), os.getppid()
    deadline = time.monotonic() + case["max_seconds"]
    wait = Timer(poll * CLOCK_NS, unit="ns")
    pty = PtyEnd()
    Path(case["ready"]).write_text(json.dumps({"path": pty.path, "pid": os.getpid()}))
    bytes_in = bytes_out = 0
    async with Outcome(case, dut) as outcome:
        try:
            while not stop.exists() and os.getppid() == parent and time.monotonic() < deadline:
                got = pty.read()
                if got:
                    bytes_in += len(got)
                    source.write_nowait(to_chip.apply(got))
                out = bytes(sink.read_nowait()) if not sink.empty() else b""
                bytes_out += len(out)
                pty.write(to_host.apply(out))  # also what the host was not ready for before
                await wait  # one timer, not a trigger per clock edge as ClockCycles
        finally:
            pty.close()
            outcome.info.update(
                bytes_in=bytes_in,
                bytes_out=bytes_out,
                to_chip=to_chip.counts,
                to_host=to_host.counts,
                stopped_by="stop file" if stop.exists() else "deadline or parent gone",
            )
