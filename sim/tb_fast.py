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
from pathlib import Path

import cocotb

from spikeforge.hw.params import CoreParams
from spikeforge.sim import fast_tb
from spikeforge.sim.harness import Outcome, arm_fast, case_timeout_ms, load_case, play_fast
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
    await arm_fast(dut, stall=case["stall"], seed=case["seed"])
    async with Outcome(case, dut) as outcome:
        figures, answers = await play_fast(dut, folder)
        outcome.info.update(figures)
        if case.get("record"):
            (folder / "answers.json").write_text(json.dumps(answers))
        replay = Replayer(plan.packets, answers, f"the wrapper stopped: {figures['stopped']}")
        await train_and_check(
            CoreSession(params, replay.call),
            corrupt=bool(case.get("corrupt")),
            on_step=lambda n, lr: outcome.info.update(
                steps_done=n, lr_shifts=[*outcome.info.get("lr_shifts", []), lr]
            ),
            **scenario,
        )
        assert replay.complete, f"{len(plan.packets) - replay.done} planned commands unchecked"
