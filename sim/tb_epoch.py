"""cocotb testbench: a whole epoch of the digits network on a core array, through the fast
transactors (:mod:`spikeforge.sim.epoch` is the scenario).

The design is the array inside ``spikeforge_fast_tb`` (:mod:`~spikeforge.sim.fast_tb`). The
test plans the epoch's packets (:class:`~spikeforge.sim.plan.ArrayRecorder`; the golden model
trains beside it and gives the expected weights and predictions),
writes ``cmd.hex``, lets the wrapper play it with ``stall`` idle and backpressure cycles,
then checks the captured answers (:class:`~spikeforge.sim.plan.ArrayReplayer`): every weight
at the checkpoints and at the end, every test prediction. ``result.json`` gets the wrapper's
cycle count, the simulated run's seconds (``run_seconds``) and the epoch's figures.

Case keys: ``cores`` (``CoreParams.to_dict`` per core), ``samples``, ``test_samples``
(``null``: all), ``checkpoints``, ``stall``, ``seed`` (of the idle/backpressure generators).
"""

from __future__ import annotations

import time
from pathlib import Path

import cocotb

from spikeforge.hw.params import CoreParams
from spikeforge.sim import fast_tb
from spikeforge.sim.array_session import ArraySession
from spikeforge.sim.epoch import train_epoch
from spikeforge.sim.harness import Outcome, arm_fast, case_timeout_ms, load_case, play_fast
from spikeforge.sim.plan import ArrayRecorder, ArrayReplayer


# About 10x the simulated time per training sample (0.23 ms) and per test sample (0.05 ms).
@cocotb.test(timeout_time=case_timeout_ms({"samples": 2.5, "test_samples": 0.5}), timeout_unit="ms")
async def digits_epoch_bit_exact(dut):
    case = load_case()
    cores = [CoreParams.from_dict(c) for c in case["cores"]]
    folder = Path(case["result"]).parent
    scenario = {
        "samples": case["samples"],
        "test_samples": case["test_samples"],
        "checkpoints": case["checkpoints"],
    }
    t0 = time.perf_counter()
    plan = ArrayRecorder(cores)
    planned = await train_epoch(
        ArraySession(cores, plan.send, plan.recv, streamed=False), **scenario
    )
    fast_tb.write_commands(folder / "cmd.hex", plan.packets)
    plan_seconds = time.perf_counter() - t0
    await arm_fast(dut, stall=case["stall"], seed=case["seed"])
    async with Outcome(case, dut) as outcome:
        figures, answers = await play_fast(dut, folder)
        outcome.info.update(figures, plan_seconds=plan_seconds, packets=len(plan.packets))
        replay = ArrayReplayer(plan.packets, answers, f"the wrapper stopped: {figures['stopped']}")
        t0 = time.perf_counter()
        await train_epoch(
            ArraySession(cores, replay.send, replay.recv, streamed=False),
            expected=planned["expected"],
            info=outcome.info.update,
            **scenario,
        )
        outcome.info["check_seconds"] = time.perf_counter() - t0
        assert replay.complete, (
            f"{len(plan.packets) - replay.sent} packets and "
            f"{len(answers) - replay.received} answers unchecked"
        )
