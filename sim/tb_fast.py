"""cocotb testbench of one core through the fast transactors: the same training scenario as
``tb_core``, bit for bit against the golden model, with no Python per clock edge.

The design is the core inside ``spikeforge_fast_tb`` (:mod:`~spikeforge.sim.fast_tb`). The test

1. runs :func:`~spikeforge.sim.scenario.train_and_check` over a
   :class:`~spikeforge.sim.plan.Recorder` (checks off) and writes its packets to ``cmd.hex``;
2. sets the wrapper's idle and backpressure rates (``stall`` each), its generators' seed and
   deadline, raises ``fast_start`` and waits for ``fast_done`` (the wrapper makes its own clock);
3. reads the answers (``rsp.hex``) and runs the scenario again over a
   :class:`~spikeforge.sim.plan.Replayer`, every value checked as ``tb_core`` checks it.

``result.json`` gets the wrapper's cycle count (``cycles``: from the first command word to the
last answer word), the seconds the simulated run took (``run_seconds``, without the two Python
passes), the stream's size and why it stopped; ``record`` writes ``answers.json`` as
``tb_core`` does.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import cocotb
from cocotb.triggers import RisingEdge, Timer

from spikeforge.hw.params import CoreParams
from spikeforge.sim import fast_tb
from spikeforge.sim.harness import ANSWER_DEADLINE, Outcome, case_timeout_ms, load_case
from spikeforge.sim.plan import Recorder, Replayer
from spikeforge.sim.scenario import train_and_check
from spikeforge.sim.session import CoreSession


@cocotb.test(timeout_time=case_timeout_ms({"steps": 5.0}), timeout_unit="ms")
async def train_steps_bit_exact_fast(dut):
    case = load_case()
    params = CoreParams.from_dict(case["core"])
    folder = Path(case["result"]).parent
    scenario = {"seed": case["seed"], "steps": case["steps"], "density": case["density"]}
    plan = Recorder(params)
    await train_and_check(CoreSession(params, plan.call), checks=False, **scenario)
    fast_tb.write_commands(folder / "cmd.hex", [(words, 1) for words in plan.packets])
    settings = fast_tb.FastSettings(
        idle=case["stall"], backpressure=case["stall"], seed=case["seed"], deadline=ANSWER_DEADLINE
    )
    dut.fast.value = 1
    dut.fast_idle.value = settings.idle
    dut.fast_bp.value = settings.backpressure
    dut.fast_seed.value = settings.seed
    dut.fast_deadline.value = settings.deadline
    dut.fast_start.value = 0
    await Timer(1, "ns")
    async with Outcome(case, dut) as outcome:
        t0 = time.perf_counter()
        dut.fast_start.value = 1
        await RisingEdge(dut.fast_done)
        run_seconds = time.perf_counter() - t0
        status = fast_tb.read_status(folder / "fast.txt")
        answers = fast_tb.read_answers(folder / "rsp.hex")
        outcome.info.update(
            cycles=status["cycles"],
            run_seconds=run_seconds,
            command_words=status["commands"],
            answer_words=status["answers"],
            stopped=status["reason"],
        )
        if case.get("record"):
            (folder / "answers.json").write_text(json.dumps(answers))
        replay = Replayer(plan.packets, answers, f"the wrapper stopped: {status['reason']}")
        await train_and_check(
            CoreSession(params, replay.call),
            corrupt=bool(case.get("corrupt")),
            on_step=lambda n, lr: outcome.info.update(
                steps_done=n, lr_shifts=[*outcome.info.get("lr_shifts", []), lr]
            ),
            **scenario,
        )
        assert replay.complete, f"{len(plan.packets) - replay.done} planned commands unchecked"
