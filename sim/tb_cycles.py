"""cocotb testbench: the cycle counters (COUNTERS) of one generated core, exactly.

The regression (``tb_core``) checks every value the core computes but never reads its cycle
counters; the Amaranth-simulator tests compare them with the cycle model, not the generated
Verilog. Mutation testing (``sim/mutate.py``) found that hole: a counter cleared to 1, or never
cleared, passed the regression. Here, per seed: one training step as the regression runs it,
with COUNTERS read after FORWARD (``forward``, ``lanes_busy``) and after BACKWARD (without
the update bit) and UPDATE (``bp``, ``wg``, ``update``, ``backward``), each compared with
:func:`~spikeforge.hw.cycles.step_cycles`; then FORWARD again, which must clear ``forward`` and
``lanes_busy`` and count them anew. The case (``SPIKEFORGE_CASE``) is ``tb_core``'s.
"""

from __future__ import annotations

import cocotb

from spikeforge.hw.cycles import step_cycles
from spikeforge.hw.params import CoreParams
from spikeforge.sim.harness import AxiTransport, Outcome, case_timeout_ms, load_case, start
from spikeforge.sim.scenario import backward, first_step
from spikeforge.sim.session import CoreSession


def _check(got: dict[str, int], want: dict[str, int], keys: tuple[str, ...], when: str) -> None:
    for key in keys:
        if got[key] != want[key]:
            raise AssertionError(
                f"cycle counter {key} after {when}: expected {want[key]}, got {got[key]}"
            )


@cocotb.test(timeout_time=case_timeout_ms({"steps": 5.0}), timeout_unit="ms")
async def cycle_counters_follow_the_cycle_model(dut):
    case = load_case()
    params = CoreParams.from_dict(case["core"])
    net = params.net
    await start(dut)
    async with Outcome(case, dut) as outcome:
        transport = AxiTransport(dut, stall=case["stall"], seed=case["seed"])
        s = CoreSession(params, transport.call)
        ref = await first_step(s, seed=case["seed"], density=case["density"])
        active = [int(v) for v in ref["x"].sum(1)]
        want = step_cycles(params, active, ref["nonzero"], update=False)
        await s.set_lr(net.lr_shift)
        await s.load_spikes(ref["x"])
        await s.forward()
        _check(await s.counters(), want, ("forward", "lanes_busy"), "FORWARD")
        await backward(s, ref)
        await s.update()
        got = await s.counters()
        upd = step_cycles(params, active, ref["nonzero"])["update"]
        _check(got, {**want, "update": upd},
               ("forward", "lanes_busy", "bp", "wg", "update", "backward"), "UPDATE")  # fmt: skip
        await s.load_spikes(ref["x"])
        await s.forward()
        _check(await s.counters(), want, ("forward", "lanes_busy"), "a second FORWARD")
        outcome.info["counters"] = got
