"""cocotb testbench of one generated core: training steps, bit for bit against the golden model.

Run by :mod:`spikeforge.sim.rtl_runner` under Verilator, one seed per simulator process. The
parts stay apart:

* **driver** and **monitor** -- :class:`~spikeforge.sim.harness.AxiTransport` (cocotbext-axi,
  random idle cycles on ``s_axis``, random backpressure on ``m_axis``);
* **model** -- :class:`~spikeforge.sim.model.CoreModel` (the golden model);
* **checker** -- :func:`~spikeforge.sim.checker.check_step`: every membrane, spike, count, delta,
  propagated error, gradient, updated weight and LFSR state; the first mismatch is reported.

The scenario is :func:`~spikeforge.sim.scenario.train_and_check`. The case
(``SPIKEFORGE_CASE``) holds the core parameters (``CoreParams.to_dict``), the seed (it picks the
initial weights and the samples, see :mod:`spikeforge.sim.stimulus`), the number of steps, the
input spike density, the idle/backpressure probability ``stall`` and ``corrupt`` (which
falsifies one golden delta on purpose); with ``record``, every answer packet is written to
``answers.json`` beside the result (to compare with the fast transactors, ``sim/tb_fast.py``).
"""

from __future__ import annotations

import json
from pathlib import Path

import cocotb

from spikeforge.hw.params import CoreParams
from spikeforge.sim.harness import AxiTransport, Outcome, case_timeout_ms, load_case, start
from spikeforge.sim.scenario import train_and_check
from spikeforge.sim.session import CoreSession


# About 10x the simulated time a step takes on the largest matrix core under 30% stalls.
@cocotb.test(timeout_time=case_timeout_ms({"steps": 5.0}), timeout_unit="ms")
async def train_steps_bit_exact(dut):
    case = load_case()
    params = CoreParams.from_dict(case["core"])
    await start(dut)
    async with Outcome(case, dut) as outcome:
        transport = AxiTransport(dut, stall=case["stall"], seed=case["seed"])
        if case.get("record"):
            outcome.on_exit(lambda: _record(case, transport.answers))
        await train_and_check(
            CoreSession(params, transport.call),
            seed=case["seed"],
            steps=case["steps"],
            density=case["density"],
            corrupt=bool(case.get("corrupt")),
            on_step=lambda n, lr: outcome.info.update(
                steps_done=n, lr_shifts=[*outcome.info.get("lr_shifts", []), lr]
            ),
        )


def _record(case: dict, answers: list[list[int]]) -> None:
    Path(case["result"]).with_name("answers.json").write_text(json.dumps(answers))
