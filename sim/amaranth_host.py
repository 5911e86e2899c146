"""Drive a :class:`SpikingCore` (or an array) in Amaranth's simulator through its host port.

The async stream helpers live here, in one place: :func:`stream_put` offers one word on the
``cmd`` stream (optionally after idle cycles), :func:`stream_get` takes one from ``rsp``
(optionally with backpressure cycles first). :class:`SimHost` turns protocol commands into word
sequences and returns ``(data_words, status)``; :func:`run_core` runs an async script against a
freshly elaborated core and returns what the script returns.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Sequence

from amaranth.hdl import Module
from amaranth.sim import Simulator

from spikeforge.hw.core import SpikingCore
from spikeforge.hw.params import CoreParams
from spikeforge.hw.protocol import Opcode, Status, command, parse_status

DEADLINE = 200_000
"""Cycles a :class:`SimHost` waits for the core to take a word or to answer one, by default."""


async def _wait(ctx, signal, deadline: int, what: str) -> tuple:
    """Tick until ``signal`` is high at a clock edge; the values sampled there. Raises
    :class:`TimeoutError` naming ``what`` after ``deadline`` cycles."""
    for _ in range(deadline):
        *_, value = await ctx.tick().sample(signal)
        if value:
            return
    raise TimeoutError(f"{what} within {deadline} cycles")


async def stream_put(
    ctx,
    dut,
    word: int,
    idle: int = 0,
    last: int = 0,
    deadline: int = DEADLINE,
    *,
    abandon: int = 0,
) -> None:
    """Offer ``word`` (with ``last`` and ``abandon``) on ``cmd`` after ``idle`` cycles with
    ``valid`` low; :class:`TimeoutError` if the core does not take it within ``deadline``."""
    for _ in range(idle):
        await ctx.tick()
    ctx.set(dut.cmd.payload, {"data": word, "last": last, "abandon": abandon})
    ctx.set(dut.cmd.valid, 1)
    await _wait(ctx, dut.cmd.ready, deadline, f"the core did not take word {word:#010x}")
    ctx.set(dut.cmd.valid, 0)


async def stream_get(ctx, dut, stall: int = 0, deadline: int = DEADLINE) -> tuple[int, int]:
    """Take one ``(data, last)`` from ``rsp`` after ``stall`` cycles with ``ready`` low;
    :class:`TimeoutError` if none comes within ``deadline`` cycles."""
    ctx.set(dut.rsp.ready, 0)
    for _ in range(stall):
        await ctx.tick()
    ctx.set(dut.rsp.ready, 1)
    for _ in range(deadline):
        *_, valid, beat = await ctx.tick().sample(dut.rsp.valid, dut.rsp.payload)
        if valid:
            ctx.set(dut.rsp.ready, 0)
            return beat.data, beat.last
    ctx.set(dut.rsp.ready, 0)
    raise TimeoutError(f"no answer word within {deadline} cycles")


class SimHost:
    """Protocol-level access to the simulated core; ``stalls`` > 0 inserts random idle and
    backpressure cycles (up to that many) before words. Every wait for the core (to take a word,
    to answer one) gives up after ``deadline`` cycles with :class:`TimeoutError`."""

    def __init__(self, ctx, dut, *, stalls: int = 0, seed: int = 0, deadline: int = DEADLINE):
        self.ctx, self.dut = ctx, dut
        self.stalls = stalls
        self.deadline = deadline
        self.rng = random.Random(seed)

    def _gap(self) -> int:
        return self.rng.randint(0, self.stalls) if self.stalls else 0

    async def send(self, words: Sequence[int]) -> None:
        """One packet on ``s_axis``, ``tlast`` on its last word."""
        for n, word in enumerate(words):
            last = int(n == len(words) - 1)
            await stream_put(
                self.ctx, self.dut, word & 0xFFFFFFFF, self._gap(), last, self.deadline
            )

    async def recv(self) -> list[int]:
        """One response packet from ``m_axis`` (up to and with its ``tlast`` word)."""
        data = []
        while True:
            word, last = await stream_get(self.ctx, self.dut, self._gap(), self.deadline)
            data.append(word)
            if last:
                return data

    async def wait(self, cycles: int) -> None:
        """Let ``cycles`` clock cycles pass."""
        for _ in range(cycles):
            await self.ctx.tick()

    async def call(
        self, op: Opcode | int, arg: int = 0, payload: list[int] = ()
    ) -> tuple[list, Status]:
        await self.send([command(op, arg), *payload])
        *data, word = await self.recv()
        echo, status = parse_status(word)
        assert echo == int(op), f"status of opcode {echo:#x} arrived for {int(op):#x}"
        return data, status


def run_cores(
    params: Sequence[CoreParams],
    script: Callable[[list[SimHost]], Awaitable[object]],
    *,
    stalls: int = 0,
    seed: int = 0,
    vcd: str | None = None,
    host_deadline: int = DEADLINE,
) -> object:
    """Elaborate several cores side by side (one clock), run ``script(hosts)``, return its
    result. The host chains them: e.g. one core's spikes become the next core's input. Each
    host waits at most ``host_deadline`` cycles for a core to take or answer a word."""
    top = Module()
    duts = []
    for n, p in enumerate(params):
        dut = SpikingCore(p)
        top.submodules[f"core{n}"] = dut
        duts.append(dut)
    sim = Simulator(top)
    sim.add_clock(1e-8)
    result = {}

    async def bench(ctx):
        hosts = [
            SimHost(ctx, d, stalls=stalls, seed=seed + n, deadline=host_deadline)
            for n, d in enumerate(duts)
        ]
        result["value"] = await script(hosts)

    sim.add_testbench(bench)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
    return result["value"]


def run_array(
    cores: Sequence[CoreParams],
    script: Callable[[SimHost], Awaitable[object]],
    *,
    stalls: int = 0,
    seed: int = 0,
    deadline: int | None = None,
    link_stall: int = 0,
    host_deadline: int = DEADLINE,
) -> object:
    """Elaborate a :class:`~spikeforge.hw.array.CoreArray` of ``cores`` (with ``link_stall``
    gates on its links), run ``script(host)`` (``host.send``/``host.recv`` packets on its one
    port), return its result. ``deadline`` (cycles) fails the run instead of letting a stuck
    array hang the test; the host waits at most ``host_deadline`` cycles for each word."""
    from spikeforge.hw.array import CoreArray

    dut = CoreArray(cores, link_stall=link_stall)
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    result = {}

    async def bench(ctx):
        host = SimHost(ctx, dut, stalls=stalls, seed=seed, deadline=host_deadline)
        result["value"] = await script(host)

    async def watchdog(ctx):
        for _ in range(deadline):
            await ctx.tick()
        raise TimeoutError(f"the array gave no result within {deadline} cycles")

    sim.add_testbench(bench)
    if deadline is not None:
        sim.add_testbench(watchdog, background=True)
    sim.run()
    return result["value"]


def run_core(
    params: CoreParams,
    script: Callable[[SimHost], Awaitable[object]],
    *,
    stalls: int = 0,
    seed: int = 0,
    vcd: str | None = None,
    host_deadline: int = DEADLINE,
) -> object:
    """Elaborate a core, run ``script(host)`` in Amaranth's simulator, return its result."""

    async def one(hosts):
        return await script(hosts[0])

    return run_cores([params], one, stalls=stalls, seed=seed, vcd=vcd, host_deadline=host_deadline)
