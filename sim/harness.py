"""The parts every cocotb testbench of spikeforge shares.

* :class:`AxiTransport` -- driver (cocotbext-axi ``AxiStreamSource`` on ``<prefix>s_axis``,
  random idle cycles) and monitor (``AxiStreamSink`` on ``<prefix>m_axis``, random
  backpressure) behind the transport interface of :class:`~spikeforge.sim.session.CoreSession`;
  every answer is awaited with a deadline (:data:`ANSWER_DEADLINE` cycles by default);
* :func:`start` -- clock (``CLOCK_NS``) and reset;
* :func:`arm_fast` and :func:`play_fast` -- the fast transactors (:mod:`~spikeforge.sim.fast_tb`):
  settings onto the wrapper's ports, then one run of the stream in ``cmd.hex``;
* :class:`Outcome` -- writes ``result.json`` (pass/fail, the first-mismatch message, simulated
  cycles, wall seconds) whether the test passes or fails, for the runner's summary.
"""

from __future__ import annotations

import json
import logging
import os
import random
import struct
import time
from pathlib import Path
from typing import Any

from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.triggers import ClockCycles, RisingEdge, SimTimeoutError, Timer, with_timeout
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource

from spikeforge.hw.protocol import command, parse_status
from spikeforge.sim import fast_tb

__all__ = [
    "ANSWER_DEADLINE",
    "CLOCK_NS",
    "AxiTransport",
    "Outcome",
    "arm_fast",
    "case_timeout_ms",
    "load_case",
    "pauses",
    "play_fast",
    "start",
]

CLOCK_NS = 10
"""Clock period of every testbench (100 MHz), so ``cycles = sim_ns / CLOCK_NS``."""
ANSWER_DEADLINE = 2_000_000
"""Cycles a host waits for one answer packet by default (20 ms simulated; the longest command
of any testbench takes under 1% of that)."""


def load_case() -> dict[str, Any]:
    """The case the runner wrote (``SPIKEFORGE_CASE`` names its JSON file)."""
    return json.loads(Path(os.environ["SPIKEFORGE_CASE"]).read_text())


def case_timeout_ms(per_unit_ms: dict[str, float], base_ms: float = 2.0) -> float | None:
    """A simulated-time limit for the case the runner wrote, so a core that stops answering
    fails the test instead of hanging it: ``base_ms + sum(case[key] * ms)`` over ``per_unit_ms``
    (``None`` outside a run, when there is no case). A ``None`` count counts as 1000."""
    if "SPIKEFORGE_CASE" not in os.environ:
        return None
    case = load_case()
    return base_ms + sum((case.get(k) or 1000) * ms for k, ms in per_unit_ms.items())


def pauses(rng: random.Random, probability: float):
    """An endless per-cycle pause pattern: True with ``probability``."""
    while True:
        yield rng.random() < probability


class AxiTransport:
    """``call(op, arg, payload)`` sends one command frame and receives its response frame;
    ``recv`` raises :class:`TimeoutError` after ``deadline`` cycles without an answer."""

    def __init__(
        self, dut, *, stall: float, seed: int, prefix: str = "", deadline: int = ANSWER_DEADLINE
    ):
        self.clk = dut.clk
        self.answers: list[list[int]] = []
        """Every answer packet received, in order (to compare one transport with another)."""
        self.deadline = deadline
        self.source = AxiStreamSource(
            AxiStreamBus.from_prefix(dut, f"{prefix}s_axis"), dut.clk, dut.rst
        )
        self.sink = AxiStreamSink(
            AxiStreamBus.from_prefix(dut, f"{prefix}m_axis"), dut.clk, dut.rst
        )
        for n, bfm in enumerate((self.source, self.sink)):
            bfm.log.setLevel(logging.WARNING)  # not one INFO line per frame
            if stall:
                bfm.set_pause_generator(pauses(random.Random(seed * 2 + n), stall))

    async def send(self, words) -> None:
        """One packet (``tlast`` on its last word); returns once it is queued."""
        words = [w & 0xFFFFFFFF for w in words]
        await self.source.send(AxiStreamFrame(struct.pack(f"<{len(words)}I", *words)))

    async def recv(self) -> list[int]:
        """One response packet (:class:`TimeoutError` after ``deadline`` cycles)."""
        try:
            frame = await with_timeout(self.sink.recv(), self.deadline * CLOCK_NS, "ns")
        except SimTimeoutError as exc:
            raise TimeoutError(f"no answer within {self.deadline} cycles") from exc
        words = list(struct.unpack(f"<{len(frame.tdata) // 4}I", bytes(frame.tdata)))
        self.answers.append(words)
        return words

    async def wait(self, cycles: int) -> None:
        """Let ``cycles`` clock cycles pass."""
        if cycles:
            await ClockCycles(self.clk, cycles)

    async def call(self, op, arg=0, payload=()):
        await self.send([command(op, arg), *payload])
        data = await self.recv()
        echo, status = parse_status(data[-1])
        assert echo == int(op), f"status of opcode {echo:#x} arrived for {int(op):#x}"
        return data[:-1], status


async def start(dut) -> None:
    """Start the clock and hold reset for four cycles."""
    Clock(dut.clk, CLOCK_NS, unit="ns").start()
    dut.rst.value = 1
    for _ in range(4):
        await RisingEdge(dut.clk)
    dut.rst.value = 0


async def arm_fast(dut, *, stall: float, seed: int, deadline: int = ANSWER_DEADLINE) -> None:
    """Put a fast-transactor wrapper into its fast mode with ``stall`` idle and backpressure
    probabilities, its generators seeded by ``seed`` and ``deadline`` quiet cycles."""
    settings = fast_tb.FastSettings(idle=stall, backpressure=stall, seed=seed, deadline=deadline)
    dut.fast.value = 1
    dut.fast_idle.value = settings.idle
    dut.fast_bp.value = settings.backpressure
    dut.fast_seed.value = settings.seed
    dut.fast_deadline.value = settings.deadline
    dut.fast_start.value = 0
    await Timer(1, "ns")


async def play_fast(dut, folder: Path) -> tuple[dict[str, Any], list[list[int]]]:
    """Play ``folder/cmd.hex`` on an armed wrapper (:func:`arm_fast`) and wait for
    ``fast_done`` (bounded by the wrapper's deadline and the test's time limit). Returns the
    figures for ``result.json`` -- ``cycles``, ``run_seconds``, ``command_words``,
    ``answer_words``, ``stopped`` -- and the captured answer packets."""
    t0 = time.perf_counter()
    dut.fast_start.value = 1
    await RisingEdge(dut.fast_done)
    run_seconds = time.perf_counter() - t0
    status = fast_tb.read_status(folder / "fast.txt")
    figures = {
        "cycles": status["cycles"],
        "run_seconds": run_seconds,
        "command_words": status["commands"],
        "answer_words": status["answers"],
        "stopped": status["reason"],
    }
    return figures, fast_tb.read_answers(folder / "rsp.hex")


class Outcome:
    """``async with Outcome(case, dut) as out:`` -- records the result of the body in
    ``result.json``; ``out.info`` takes extra figures. A design built with the read-during-write
    checks (:mod:`~spikeforge.hw.rw_check`) adds its count of checked accesses, ``rw_checked``
    (a violation stops the simulation with the assertion's message instead)."""

    def __init__(self, case: dict[str, Any], dut=None):
        self.path = Path(case["result"])
        self.info: dict[str, Any] = {}
        self._dut = dut
        self._on_exit: list[Any] = []

    def on_exit(self, hook) -> None:
        """Call ``hook()`` when the body ends, passed or failed (before ``result.json``)."""
        self._on_exit.append(hook)

    async def __aenter__(self) -> Outcome:
        self._t0, self._ns0 = time.perf_counter(), get_sim_time("ns")
        return self

    async def __aexit__(self, kind, exc, tb) -> bool:
        for hook in self._on_exit:
            hook()
        ns = get_sim_time("ns") - self._ns0
        cycles = int(ns // CLOCK_NS)
        if exc is None:
            message = ""
        elif type(exc).__name__ == "CancelledError":  # cocotb cancels a test at its time limit
            message = (
                f"timed out: no result after {cycles} cycles (the test's simulated-time limit)"
            )
        else:
            message = f"{type(exc).__name__}: {exc}"
        result = {
            "passed": exc is None,
            "message": message,
            "cycles": cycles,
            "seconds": time.perf_counter() - self._t0,
            **self.info,
        }
        if self._dut is not None and hasattr(self._dut, "rw_checked"):
            result["rw_checked"] = int(self._dut.rw_checked.value)
        self.path.write_text(json.dumps(result, indent=2))
        return False
