"""cocotb testbench of the generated core: the golden model's training step, bit for bit.

Run by :mod:`spikeforge.sim.rtl_runner` under Verilator. The driver and monitor are
cocotbext-axi's ``AxiStreamSource`` (commands on ``s_axis``) and ``AxiStreamSink`` (responses on
``m_axis``); the model is the golden model; :class:`~spikeforge.sim.session.CoreSession` turns
both into typed commands, and the checker compares every value.

The case comes from the ``SPIKEFORGE_CASE`` environment variable: a JSON file with the core
parameters (``CoreParams.to_dict``), the weight seed and the number of training steps.
"""

from __future__ import annotations

import json
import logging
import os
import struct
from pathlib import Path

import cocotb
import torch
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource

from spikeforge.hw.params import CoreParams
from spikeforge.hw.protocol import MAGIC, Quantity, command, parse_status
from spikeforge.sim.session import CoreSession
from spikeforge.sw.config import SnnConfig
from spikeforge.sw.golden import GoldenModel, init_weights


def load_case() -> tuple[CoreParams, dict]:
    case = json.loads(Path(os.environ["SPIKEFORGE_CASE"]).read_text())
    core = dict(case["core"])
    net = SnnConfig.from_dict(core.pop("net"))
    core.pop("net_hash", None)
    return CoreParams(net=net, **core), case


class AxiTransport:
    """``call(op, arg, payload)`` over cocotbext-axi: one frame out, one frame back."""

    def __init__(self, dut):
        self.source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.clk, dut.rst)
        self.sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.clk, dut.rst)
        for bfm in (self.source, self.sink):
            bfm.log.setLevel(logging.WARNING)  # not one INFO line per frame

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
    net = params.net
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    for _ in range(4):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    session = CoreSession(params, AxiTransport(dut).call)
    weights = init_weights(net)
    model = GoldenModel(net, weights)
    gen = torch.Generator().manual_seed(case["seed"])
    await session.write(Quantity.WEIGHTS, weights[params.layer])
    for step in range(case["steps"]):
        x = (torch.rand(1, net.timesteps, net.n_inputs, generator=gen) < 0.5).long()
        label = torch.randint(0, net.n_outputs, (1,), generator=gen)
        res = model.train_step(x, labels=label)
        tr = res.traces[params.layer]
        await session.load_spikes(tr.x[0])
        await session.forward()
        await session.set_label(int(label[0]))
        await session.backward(update=True)
        for q, expected in (
            (Quantity.MEMBRANES, tr.u[0]),
            (Quantity.DELTAS, tr.delta[0]),
            (Quantity.WEIGHTS, res.weights[params.layer]),
        ):
            got = await session.read(q)
            assert torch.equal(got, expected), f"step {step}: {q.name} differs"
    assert (await session.info())[0] == MAGIC
