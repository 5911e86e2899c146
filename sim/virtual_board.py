"""A virtual board on a pseudo-terminal: the driver and pyserial open it like a real one.

:class:`VirtualBoard` runs the core behind its :class:`~spikeforge.hw.serial_link.SerialLink` in
Amaranth's simulator, in a thread, and connects the link's byte streams to the master side of
a pseudo-terminal; :attr:`VirtualBoard.path` is the other side, a serial device path for
:meth:`spikeforge.driver.Board.open`. Bytes cross at ``byte_gap`` cycles each (a UART's pace,
without its bits); :class:`~spikeforge.sim.serial_sim.LineErrors` damages them on the way in
and out. This is the Amaranth simulator's board; the Verilator one (the board top's Verilog,
its UART pins on the pty) is still to come.
"""

from __future__ import annotations

import contextlib
import os
import threading
import tty

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.sim import Simulator

from spikeforge.hw.core import SpikingCore
from spikeforge.hw.params import CoreParams
from spikeforge.hw.serial_link import SerialLink
from spikeforge.sim.serial_sim import LINK_COUNTERS, LineErrors

__all__ = ["VirtualBoard"]


class VirtualBoard:
    """A core behind the serial link on a pseudo-terminal (use it as a context manager)."""

    byte_time = 0.01
    """Seconds a byte may take through the simulated link (a few thousand cycles a second, a
    dozen cycles a byte, with margin), for :meth:`spikeforge.driver.Board.open`."""

    def __init__(self, params: CoreParams, *, errors: LineErrors | None = None, byte_gap: int = 2):
        self.params = CoreParams.checked(params)
        self.errors = errors or LineErrors()
        self.byte_gap = byte_gap
        self._master, slave = os.openpty()
        tty.setraw(slave)
        self.path = os.ttyname(slave)
        self._slave = slave
        os.set_blocking(self._master, False)
        self._stop = threading.Event()
        self.counters: dict[str, int] = {}
        self.cycles = 0
        self.bytes_in = self.bytes_out = 0
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="virtual-board", daemon=True)

    def __enter__(self) -> VirtualBoard:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)
        if self.error is not None:
            raise RuntimeError("the virtual board's simulation failed") from self.error

    def _read_host(self) -> bytes:
        try:
            return os.read(self._master, 4096)
        except (BlockingIOError, OSError):
            return b""

    def _run(self) -> None:
        top = Module()
        top.submodules.link = link = SerialLink()
        top.submodules.core = core = SpikingCore(self.params)
        wiring.connect(top, link.cmd, core.cmd)
        wiring.connect(top, core.rsp, link.rsp)
        sim = Simulator(top)
        sim.add_clock(1e-8)

        async def bench(ctx):
            ctx.set(link.tx.ready, 1)
            inbox = bytearray()
            outbox = bytearray()
            gap = 0
            while not self._stop.is_set():
                if not inbox:
                    got = self._read_host()
                    self.bytes_in += len(got)
                    inbox += self.errors.apply(got)
                if inbox and gap == 0:
                    ctx.set(link.rx.payload, inbox.pop(0))
                    ctx.set(link.rx.valid, 1)
                    gap = self.byte_gap
                *_, valid, byte = await ctx.tick().sample(link.tx.valid, link.tx.payload)
                ctx.set(link.rx.valid, 0)
                self.cycles += 1
                gap = max(0, gap - 1)
                if valid:
                    outbox.append(byte)
                    self.bytes_out += 1
                if outbox and (not valid or len(outbox) >= 64):
                    os.write(self._master, self.errors.apply(bytes(outbox)))
                    outbox.clear()
            self.counters = {name: ctx.get(getattr(link, name)) for name in LINK_COUNTERS}

        sim.add_testbench(bench)
        try:
            sim.run()
        except BaseException as exc:  # reported by close()
            self.error = exc
