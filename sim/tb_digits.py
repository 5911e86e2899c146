"""cocotb testbench: the digits network trained on the generated Verilog, sample by sample.

Top: a :class:`~spikeforge.hw.rack.CoreRack` with one core per layer; the testbench is the host
(:class:`~spikeforge.sim.network.NetworkSession`) and drives every core's port through
cocotbext-axi with random idle cycles and backpressure. The parts:

* **driver/monitor** -- one :class:`~spikeforge.sim.harness.AxiTransport` per core;
* **model** -- :class:`~spikeforge.sw.golden.GoldenModel` trained on the same samples, in the
  integer trainer's order and encoding (``epoch_samples``, batch size 1);
* **checker** -- after every sample, every quantity of every core equals the golden model's
  (:func:`~spikeforge.sim.checker.check_cores`): membranes, spikes, counts, deltas, the error
  written to the hidden core and the error the output core emitted, the gradient accumulators
  (BACKWARD without the update bit, then UPDATE), the master weights and LFSR states; then
  every test sample is predicted on the chip -- the output core's spike COUNTS and last
  membrane row through the contract's arg-max (:func:`~spikeforge.sw.golden.predict_counts`)
  -- and must equal the golden model's prediction.

Case keys: ``net`` (``SnnConfig.to_dict``), ``cores`` (``CoreParams.to_dict`` per layer),
``samples`` (training samples), ``test_samples`` (``null``: the whole test split), ``stall``,
``seed`` (of the stall patterns).
"""

from __future__ import annotations

import cocotb
import torch

from spikeforge.hw.params import CoreParams
from spikeforge.sim.checker import AFTER_UPDATE, BEFORE_UPDATE, Mismatch, check_cores
from spikeforge.sim.harness import AxiTransport, Outcome, case_timeout_ms, load_case, start
from spikeforge.sim.model import core_expected
from spikeforge.sim.network import NetworkSession
from spikeforge.sim.session import CoreSession
from spikeforge.sw.data import load_dataset
from spikeforge.sw.encoders import quantize
from spikeforge.sw.golden import GoldenModel
from spikeforge.sw.train import epoch_samples, eval_inputs


# About 10x the simulated time per training sample (0.23 ms) and per test sample (0.05 ms).
@cocotb.test(timeout_time=case_timeout_ms({"samples": 2.5, "test_samples": 0.5}), timeout_unit="ms")
async def digits_training_bit_exact(dut):
    case = load_case()
    cores = [CoreParams.from_dict(c) for c in case["cores"]]
    net, seed = cores[0].net, case["seed"]
    await start(dut)
    async with Outcome(case, dut) as outcome:
        host = NetworkSession(
            [
                CoreSession(
                    p, AxiTransport(dut, stall=case["stall"], seed=seed + n, prefix=f"c{n}_").call
                )
                for n, p in enumerate(cores)
            ]
        )
        ds = load_dataset("digits")
        x_in, y = epoch_samples(net, quantize(ds.x_train, ds.x_max, net.in_bits), ds.y_train, 0)
        golden = GoldenModel(net)
        await host.write_weights(golden.weights)
        sessions = [s for group in host.layers for s in group]
        last = net.n_layers - 1
        for k in range(case["samples"]):
            before = [w.clone() for w in golden.weights]
            res = golden.train_step(x_in[k : k + 1], y[k : k + 1])
            expected = [
                core_expected(s.params, res, golden, before, errors=s.params.layer != last)
                for s in sessions
            ]
            await host.train_step(x_in[k], int(y[k]), update=False)
            await check_cores(sessions, expected, BEFORE_UPDATE, step=k, seed=seed)
            await host.update()
            await check_cores(sessions, expected, AFTER_UPDATE, step=k, seed=seed)
            outcome.info["samples_done"] = k + 1
            if (k + 1) % 10 == 0:
                dut._log.info("trained %d samples: every value equals the golden model's", k + 1)
        changed = [
            not torch.equal(w, w0)
            for w, w0 in zip(golden.weights, GoldenModel(net).weights, strict=True)
        ]
        outcome.info["layers_changed"] = changed

        n_test = case["test_samples"] or len(ds.x_test)
        x_te = eval_inputs(net, quantize(ds.x_test[:n_test], ds.x_max, net.in_bits))
        want = golden.predict(x_te)
        hits = 0
        for i in range(n_test):
            got = await host.predict(x_te[i])
            if got != int(want[i]):
                raise Mismatch(
                    f"test sample {i}, seed {seed}: the RTL predicts {got}, the golden model "
                    f"{int(want[i])}"
                )
            hits += int(got == int(ds.y_test[i]))
            if (i + 1) % 60 == 0:
                dut._log.info("predicted %d test samples like the golden model", i + 1)
        outcome.info.update(test_samples=n_test, test_accuracy=hits / n_test)
