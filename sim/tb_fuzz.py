"""cocotb testbench: the host port of a generated core or array, fuzzed while it trains.

The scenario is :mod:`spikeforge.sim.fuzz` (stimulus, model and checker); the driver and
monitor are cocotbext-axi on the AXI4-Stream top (:class:`~spikeforge.sim.harness.AxiTransport`,
random idle cycles on ``s_axis`` and random backpressure on ``m_axis``).

Case keys: ``cores`` (``CoreParams.to_dict`` per core; one core: the core top, several: the
array top), ``fuzz`` (:class:`~spikeforge.sim.fuzz.FuzzConfig` fields), ``stall``. The run's
report (packets per class, answers per status, ABORTs, steps, checkpoints, packets per second)
goes to ``result.json``. A first, short test shows the host's deadline: a FORWARD awaited for
5 cycles raises :class:`~spikeforge.sim.session.CoreTimeout` naming the core and the command.
"""

from __future__ import annotations

import cocotb

from spikeforge.hw.params import CoreParams
from spikeforge.sim.array_session import ArraySession
from spikeforge.sim.fuzz import FuzzConfig, fuzz_array, fuzz_core
from spikeforge.sim.harness import AxiTransport, Outcome, case_timeout_ms, load_case, start
from spikeforge.sim.session import CoreSession, CoreTimeout


@cocotb.test(timeout_time=1, timeout_unit="ms")
async def a_host_deadline_names_the_core_and_the_command(dut):
    cores = [CoreParams.from_dict(c) for c in load_case()["cores"]]
    await start(dut)
    port = AxiTransport(dut, stall=0.0, seed=0, deadline=5)
    if len(cores) == 1:
        session = CoreSession(cores[0], port.call, name="core 0")
    else:
        session = ArraySession(cores, port.send, port.recv).core(0)
    try:
        await session.forward()
    except CoreTimeout as exc:
        assert "core 0: FORWARD(arg=0) got no answer: no answer within 5 cycles" in str(exc)
    else:
        raise AssertionError("a FORWARD answered within 5 cycles")


# A packet costs a few hundred cycles on average (a training step's FORWARD and BACKWARD); the
# limit allows 1 ms simulated (100,000 cycles) per packet.
@cocotb.test(timeout_time=case_timeout_ms({"packets": 1.0}, base_ms=20.0), timeout_unit="ms")
async def fuzz_host_port(dut):
    case = load_case()
    cores = [CoreParams.from_dict(c) for c in case["cores"]]
    cfg = FuzzConfig(**case["fuzz"])
    await start(dut)
    async with Outcome(case, dut) as outcome:
        port = AxiTransport(dut, stall=case["stall"], seed=cfg.seed)
        if len(cores) == 1:
            report = await fuzz_core(cores[0], port.send, port.recv, port.wait, cfg)
        else:
            report = await fuzz_array(cores, port.send, port.recv, port.wait, cfg)
        outcome.info.update(report.to_dict())
