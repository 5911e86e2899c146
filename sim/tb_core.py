"""cocotb testbench of the generated core: training steps, bit for bit against the golden model.

Run by :mod:`spikeforge.sim.rtl_runner` under Verilator. The parts stay apart:

* **driver** -- cocotbext-axi ``AxiStreamSource`` on ``s_axis`` (with random idle cycles);
* **monitor** -- cocotbext-axi ``AxiStreamSink`` on ``m_axis`` (with random backpressure), one
  frame per command response;
* **model** -- :class:`~spikeforge.sim.model.CoreModel` (the golden model);
* **checker** -- :func:`~spikeforge.sim.checker.check_step`: every membrane, spike, count, delta,
  propagated error, gradient, updated weight and LFSR state; the first mismatch is reported.

The case comes from the ``SPIKEFORGE_CASE`` environment variable: a JSON file with the core
parameters (``CoreParams.to_dict``), the seed, the number of steps, the input spike density and
the idle/backpressure probability (and ``corrupt``, which falsifies one golden delta on purpose).
"""

from __future__ import annotations

import json
import logging
import os
import random
import struct
from pathlib import Path

import cocotb
import torch
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource

from spikeforge.hw.params import CoreParams
from spikeforge.hw.protocol import MAGIC, Quantity, command, parse_status
from spikeforge.sim.checker import check_step
from spikeforge.sim.model import CoreModel
from spikeforge.sim.session import CoreSession
from spikeforge.sw.config import SnnConfig
from spikeforge.sw.golden import init_weights

READ_BACK = {
    "membranes": Quantity.MEMBRANES,
    "spikes": Quantity.SPIKES,
    "counts": Quantity.COUNTS,
    "deltas": Quantity.DELTAS,
    "eprev": Quantity.EPREV,
}


def load_case() -> tuple[CoreParams, dict]:
    case = json.loads(Path(os.environ["SPIKEFORGE_CASE"]).read_text())
    core = dict(case["core"])
    net = SnnConfig.from_dict(core.pop("net"))
    core.pop("net_hash", None)
    return CoreParams(net=net, **core), case


def pauses(rng: random.Random, probability: float):
    """An endless per-cycle pause pattern: True with ``probability``."""
    while True:
        yield rng.random() < probability


class AxiTransport:
    """Driver and monitor: ``call(op, arg, payload)`` sends one frame, receives one frame."""

    def __init__(self, dut, *, stall: float, seed: int):
        self.source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.clk, dut.rst)
        self.sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.clk, dut.rst)
        for n, bfm in enumerate((self.source, self.sink)):
            bfm.log.setLevel(logging.WARNING)  # not one INFO line per frame
            if stall:
                bfm.set_pause_generator(pauses(random.Random(seed * 2 + n), stall))

    async def call(self, op, arg=0, payload=()):
        words = [command(op, arg), *[w & 0xFFFFFFFF for w in payload]]
        await self.source.send(AxiStreamFrame(struct.pack(f"<{len(words)}I", *words)))
        frame = await self.sink.recv()
        data = list(struct.unpack(f"<{len(frame.tdata) // 4}I", bytes(frame.tdata)))
        echo, status = parse_status(data[-1])
        assert echo == int(op), f"status of opcode {echo:#x} arrived for {int(op):#x}"
        return data[:-1], status


@cocotb.test()
async def train_steps_bit_exact(dut):
    params, case = load_case()
    net, seed = params.net, case["seed"]
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    for _ in range(4):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    session = CoreSession(params, AxiTransport(dut, stall=case["stall"], seed=seed).call)
    assert (await session.info())[0] == MAGIC
    weights = init_weights(net)
    model = CoreModel(params, weights)
    gen = torch.Generator().manual_seed(seed)
    is_output = params.layer == net.n_layers - 1
    await session.write(Quantity.WEIGHTS, weights[params.layer])
    for step in range(case["steps"]):
        x = (torch.rand(1, net.timesteps, net.n_inputs, generator=gen) < case["density"]).long()
        label = int(torch.randint(0, net.n_outputs, (1,), generator=gen))
        lr = net.lr_shift + step % params.lr_range
        ref = model.step(x, label, lr_shift=lr)
        await session.set_lr(lr)
        await session.load_spikes(ref["x"])
        await session.forward()
        if is_output:
            await session.set_label(label)
            await session.backward(update=False)
        else:
            await session.write(Quantity.ERRORS, ref["e"])
            await session.backward(update=False, external_error=True)
        got = {
            name: await session.read(q) for name, q in READ_BACK.items() if name in ref["expected"]
        }
        got["grads"] = await session.read(Quantity.GRADS)
        await session.update()
        got["weights"] = await session.read(Quantity.WEIGHTS)
        got["lfsr"] = await session.read(Quantity.LFSR)
        if case.get("corrupt") and step == 0:  # prove the checker can fail
            ref["expected"]["deltas"][-1, -1] += 1
        check_step(ref["expected"], got, step=step, seed=seed)
