"""cocotb testbench: the host port of a generated core or array, fuzzed while it trains.

The scenario is :mod:`spikeforge.sim.fuzz` (stimulus, model and checker); the driver and
monitor are cocotbext-axi on the AXI4-Stream top (:class:`~spikeforge.sim.harness.AxiTransport`,
random idle cycles on ``s_axis`` and random backpressure on ``m_axis``).

Case keys: ``cores`` (``CoreParams.to_dict`` per core; one core: the core top, several: the
array top), ``fuzz`` (:class:`~spikeforge.sim.fuzz.FuzzConfig` fields), ``stall``. The run's
report (packets per class, answers per status, ABORTs, steps, checkpoints, packets per second)
goes to ``result.json``.
"""

from __future__ import annotations

import cocotb

from spikeforge.hw.params import CoreParams
from spikeforge.sim.fuzz import FuzzConfig, fuzz_array, fuzz_core
from spikeforge.sim.harness import AxiTransport, Outcome, case_timeout_ms, load_case, start


# A packet costs a few hundred cycles on average (a training step's FORWARD and BACKWARD); the
# limit allows 1 ms simulated (100,000 cycles) per packet.
@cocotb.test(timeout_time=case_timeout_ms({"packets": 1.0}, base_ms=20.0), timeout_unit="ms")
async def fuzz_host_port(dut):
    case = load_case()
    cores = [CoreParams.from_dict(c) for c in case["cores"]]
    cfg = FuzzConfig(**case["fuzz"])
    await start(dut)
    async with Outcome(case) as outcome:
        port = AxiTransport(dut, stall=case["stall"], seed=cfg.seed)
        if len(cores) == 1:
            report = await fuzz_core(cores[0], port.send, port.recv, port.wait, cfg)
        else:
            report = await fuzz_array(cores, port.send, port.recv, port.wait, cfg)
        outcome.info.update(report.to_dict())
