"""cocotb testbench: a network trained on a generated :class:`~spikeforge.hw.array.CoreArray`.

The testbench is the host: one cocotbext-axi driver and monitor on the array's one port
(:class:`~spikeforge.sim.harness.AxiTransport`, random idle cycles on ``s_axis`` and random
backpressure on ``m_axis``), :class:`~spikeforge.sim.array_session.ArraySession` for the
routed commands. Spikes and errors move between cores on the array's links. The parts:

* **model** -- :class:`~spikeforge.sw.golden.GoldenModel` trained on the same samples;
* **checker** -- after every checked step, every core's every quantity equals the golden
  model's (:func:`~spikeforge.sim.checker.check_cores`): membranes, spikes, counts, deltas, the
  error it emitted and the error its link brought, then the master weights and LFSR states
  after the update; with ``grads`` the step's BACKWARD leaves the update out, the gradient
  accumulators are compared, and an UPDATE packet follows (that step's cycles are not
  measured: ``None``).

Measured per step (``step_cycles`` in ``result.json``): cycles from the first word of the step's
LOAD_SPIKES packet to the last BACKWARD answer (with the update). Before the first step, one
inference pass on the first sample (LOAD_SPIKES and FORWARD; ``infer_cycles``): from its first
word to the last FORWARD answer. The training step that follows computes the same forward pass
again.

Case keys: ``cores`` (``CoreParams.to_dict`` per core, in core order), ``steps``, ``seed``
(weights, samples and stall patterns, as :mod:`spikeforge.sim.stimulus`), ``density``,
``stall``, ``kilo_synapse_passes`` (the array's synapses times the passes over them -- the
weight write, each step and each check -- over 1000: the simulated-time limit grows with it),
``check_every`` (check after every ``check_every`` steps, and after the last),
``every_quantity`` (False: the weights only), ``grads`` (see the checker).
"""

from __future__ import annotations

import cocotb
from cocotb.simtime import get_sim_time

from spikeforge.hw.params import CoreParams
from spikeforge.sim.array_session import ArraySession
from spikeforge.sim.checker import AFTER_UPDATE, BEFORE_UPDATE, check_cores, check_step
from spikeforge.sim.harness import (
    CLOCK_NS,
    AxiTransport,
    Outcome,
    case_timeout_ms,
    load_case,
    start,
)
from spikeforge.sim.model import core_expected
from spikeforge.sim.stimulus import samples, weights_for_seed
from spikeforge.sw.golden import GoldenModel


# Generous: 2 ms per step covers a 20-core array of 256-neuron layers with stalls ~10x over;
# 10 cycles per synapse and pass covers 784-256-10 on two cores (about 3 measured).
@cocotb.test(
    timeout_time=case_timeout_ms({"steps": 2.0, "kilo_synapse_passes": 0.1}, base_ms=5.0),
    timeout_unit="ms",
)
async def array_training_bit_exact(dut):
    case = load_case()
    cores = [CoreParams.from_dict(c) for c in case["cores"]]
    net, seed = cores[0].net, case["seed"]
    await start(dut)
    async with Outcome(case, dut) as outcome:
        port = AxiTransport(dut, stall=case["stall"], seed=seed)
        host = ArraySession(cores, port.send, port.recv)
        weights = weights_for_seed(net, seed)
        golden = GoldenModel(net, weights)
        await host.write_weights(weights)
        xs, labels = samples(net, seed, steps=case["steps"], density=case["density"])
        t0 = get_sim_time("ns")
        await host.forward(xs[0][0])
        outcome.info["infer_cycles"] = int((get_sim_time("ns") - t0) // CLOCK_NS)
        step_cycles = []
        fused = any(p.fused_grads for p in cores)  # no GRADS to read between the phases
        sessions = [host.core(n) for n in range(len(cores))]
        for step, (x, y) in enumerate(zip(xs, labels, strict=True)):
            before = [w.clone() for w in golden.weights]
            res = golden.train_step(x, labels=y)
            checked = not ((step + 1) % case["check_every"] and step + 1 != case["steps"])
            split = checked and case["every_quantity"] and case["grads"] and not fused
            t0 = get_sim_time("ns")
            await host.train_step(x[0], int(y[0]), update=not split)
            step_cycles.append(None if split else int((get_sim_time("ns") - t0) // CLOCK_NS))
            if not checked:
                continue
            expected = [core_expected(p, res, golden, before, errors=p.errors_in) for p in cores]
            if case["every_quantity"]:
                names = [k for k in BEFORE_UPDATE if split or k != "grads"]
                await check_cores(sessions, expected, names, step=step, seed=seed)
                if split:
                    await host.update()
                await check_cores(sessions, expected, AFTER_UPDATE, step=step, seed=seed)
            else:
                got = await host.read_weights()
                for layer, (exp, val) in enumerate(zip(res.weights, got, strict=True)):
                    where = f", layer {layer}"
                    check_step(
                        {"weights": exp}, {"weights": val}, step=step, seed=seed, where=where
                    )
        outcome.info["step_cycles"] = step_cycles
        outcome.info["counters"] = {str(k): v for k, v in (await host.counters()).items()}
