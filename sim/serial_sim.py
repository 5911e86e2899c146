"""A core behind its serial link in Amaranth's simulator, on a line that damages bytes.

:func:`run_serial` elaborates a :class:`~spikeforge.hw.serial_link.SerialLink` in front of
a :class:`~spikeforge.hw.core.SpikingCore` (or a :class:`~spikeforge.hw.array.CoreArray`) and
runs ``script(host)`` with a
:class:`~spikeforge.sim.serial_host.LinkHost` on a :class:`SimLine` port: bytes go to the link's
byte streams one per ``byte_gap`` cycles (a UART's pace, without its bits), and
:class:`LineErrors` flips, drops and repeats bytes at given rates in both directions.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.sim import Simulator

from spikeforge.hw.array import CoreArray
from spikeforge.hw.board import checked_design
from spikeforge.hw.core import SpikingCore
from spikeforge.hw.params import CoreParams
from spikeforge.hw.serial_link import SerialLink
from spikeforge.hw.serial_protocol import END
from spikeforge.sim.serial_host import LinkHost

__all__ = ["LINK_COUNTERS", "LineErrors", "SimLine", "run_serial"]


@dataclass
class LineErrors:
    """Per-byte rates of a flipped bit, a lost byte and a byte received twice; what happened
    is counted in ``counts``."""

    flip: float = 0.0
    drop: float = 0.0
    dup: float = 0.0
    seed: int = 0
    counts: dict = field(default_factory=lambda: {"flip": 0, "drop": 0, "dup": 0})

    def __post_init__(self):
        for name in ("flip", "drop", "dup"):
            rate = getattr(self, name)
            if not 0 <= rate < 1:
                raise ValueError(f"{name} rate must be in [0, 1), not {rate!r}")
        self._rng = random.Random(self.seed)

    def apply(self, data: bytes) -> bytes:
        out = bytearray()
        for b in data:
            r = self._rng.random()
            if r < self.drop:
                self.counts["drop"] += 1
            elif r < self.drop + self.flip:
                self.counts["flip"] += 1
                out.append(b ^ (1 << self._rng.randrange(8)))
            elif r < self.drop + self.flip + self.dup:
                self.counts["dup"] += 1
                out += bytes([b, b])
            else:
                out.append(b)
        return bytes(out)


class SimLine:
    """A :class:`~spikeforge.sim.serial_host.BytePort` on a simulated link's byte streams.
    Time is in cycles; :meth:`collect`, a background process, keeps taking the link's ``tx``
    bytes as they come, as a UART would."""

    def __init__(self, link: SerialLink, errors: LineErrors, *, byte_gap: int = 2):
        self.link, self.errors, self.byte_gap = link, errors, byte_gap
        self.ctx = None
        self.cycle = 0
        self.received = bytearray()

    def clock(self) -> float:
        return self.cycle

    async def _tick(self) -> None:
        await self.ctx.tick()
        self.cycle += 1

    async def write(self, data: bytes) -> None:
        for b in self.errors.apply(data):
            self.ctx.set(self.link.rx.payload, b)
            self.ctx.set(self.link.rx.valid, 1)
            await self._tick()
            self.ctx.set(self.link.rx.valid, 0)
            for _ in range(self.byte_gap - 1):
                await self._tick()

    def _closed(self) -> bool:
        """A frame has closed: an END after a byte that is not END."""
        data = self.received
        return any(b == END and i and data[i - 1] != END for i, b in enumerate(data))

    async def read(self, timeout: float) -> bytes:
        end = self.cycle + timeout
        while self.cycle < end and not self._closed():
            await self._tick()
        got = bytes(self.received)
        self.received.clear()
        return self.errors.apply(got)

    async def collect(self, ctx) -> None:
        ctx.set(self.link.tx.ready, 1)
        while True:
            *_, valid, payload = await ctx.tick().sample(self.link.tx.valid, self.link.tx.payload)
            if valid:
                self.received.append(payload)


LINK_COUNTERS = ("frames", "damaged", "retries", "overflows")


def run_serial(
    design,
    script: Callable[[LinkHost], Awaitable[object]],
    *,
    errors: LineErrors | None = None,
    timeout: int = 20_000,
    retries: int = 8,
    byte_gap: int = 2,
    depth: int = 16,
) -> tuple[object, dict[str, int]]:
    """Run ``script(host)`` against ``design`` (a core's :class:`CoreParams` or an array's
    cores) behind a serial link; return what it returns and the link's counters. The host
    waits ``timeout`` cycles for each answer and tries ``retries`` more times."""
    design = checked_design(design)
    top = Module()
    if isinstance(design, CoreParams):
        top.submodules.link = link = SerialLink(depth=depth)
        top.submodules.core = core = SpikingCore(design)
    else:
        top.submodules.link = link = SerialLink(depth=depth, cores=len(design))
        top.submodules.core = core = CoreArray(design)
    wiring.connect(top, link.cmd, core.cmd)
    wiring.connect(top, core.rsp, link.rsp)
    sim = Simulator(top)
    sim.add_clock(1e-8)
    line = SimLine(link, errors or LineErrors(), byte_gap=byte_gap)
    result = {}

    async def bench(ctx):
        line.ctx = ctx
        host = LinkHost(line, timeout=timeout, retries=retries)
        result["value"] = await script(host)
        result["counters"] = {name: ctx.get(getattr(link, name)) for name in LINK_COUNTERS}

    sim.add_testbench(line.collect, background=True)
    sim.add_testbench(bench)
    sim.run()
    return result["value"], result["counters"]
