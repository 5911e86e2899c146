"""cocotb testbench: an ABORT writes nothing (docs/core.md, "ABORT": "nothing in flight is
written afterwards").

The regression (``tb_core``) never sends ABORT; the fuzz testbench does, but recovers by running
BACKWARD again before it reads anything, so a write an ABORT lets through into the deltas or
``e_prev`` goes unseen. Mutation testing (``sim/mutate.py``) found that hole: a pipeline valid
bit set instead of cleared by ABORT in the backward engine passed both. Here, per seed: one
training step as the regression runs it, every quantity read back, an ABORT on the idle core,
a pause of :data:`SETTLE` cycles (the engines' pipelines are shorter), and every quantity read
again: all must be unchanged. The case (``SPIKEFORGE_CASE``) is ``tb_core``'s.
"""

from __future__ import annotations

import cocotb
from cocotb.triggers import ClockCycles

from spikeforge.hw.params import CoreParams
from spikeforge.hw.protocol import Quantity
from spikeforge.sim.harness import AxiTransport, Outcome, case_timeout_ms, load_case, start
from spikeforge.sim.scenario import READ_BACK, backward, first_step
from spikeforge.sim.session import CoreSession

SETTLE = 64
"""Cycles waited after the ABORT's answer before reading again."""


async def _read_all(s: CoreSession, names: list[str]) -> dict:
    quantities = {**READ_BACK, "grads": Quantity.GRADS, "weights": Quantity.WEIGHTS,
                  "lfsr": Quantity.LFSR}  # fmt: skip
    return {n: await s.read(quantities[n]) for n in names}


@cocotb.test(timeout_time=case_timeout_ms({"steps": 5.0}), timeout_unit="ms")
async def abort_writes_nothing(dut):
    case = load_case()
    params = CoreParams.from_dict(case["core"])
    net = params.net
    await start(dut)
    async with Outcome(case, dut) as outcome:
        transport = AxiTransport(dut, stall=case["stall"], seed=case["seed"])
        s = CoreSession(params, transport.call)
        ref = await first_step(s, seed=case["seed"], density=case["density"])
        await s.set_lr(net.lr_shift)
        await s.load_spikes(ref["x"])
        await s.forward()
        await backward(s, ref)
        await s.update()
        grads = [] if params.fused_grads else ["grads"]  # a fused core keeps none
        names = [n for n in READ_BACK if n in ref["expected"]] + [*grads, "weights", "lfsr"]
        before = await _read_all(s, names)
        await s.abort()
        await ClockCycles(dut.clk, SETTLE)
        after = await _read_all(s, names)
        for n in names:
            if not before[n].equal(after[n]):
                diff = (before[n] != after[n]).nonzero().tolist()
                raise AssertionError(f"ABORT changed {n} at {diff[:4]} (of {len(diff)} values)")
        outcome.info["quantities"] = names
