"""READ SPIKES returns the forward engine's own spike bits (issue 16), not a recomputation.

The forward engine decides ``s[t] = [u[t] >= theta]`` once and writes it beside ``u[t]`` in the
membrane history (``hw.datapath.membrane_layout``). Here that stored bit is flipped behind the
engine's back: READ SPIKES must follow the flip (one value changes, at that place) while READ
MEMBRANES does not -- a read path that compared the membrane with theta again would not notice.
"""

from __future__ import annotations

import torch
from amaranth.hdl import Module
from amaranth.sim import Simulator

from spikeforge.hw.core import SpikingCore
from spikeforge.hw.params import CoreParams
from spikeforge.hw.protocol import Quantity
from spikeforge.sim.amaranth_host import SimHost
from spikeforge.sim.session import CoreSession
from spikeforge.sim.stimulus import weights_for_seed
from spikeforge.sw.config import SnnConfig

PARAMS = CoreParams(net=SnnConfig(layers=(8, 6), timesteps=4), lanes=3)


class _Probed(SpikingCore):
    """A core that keeps a handle on its membrane history memory for the testbench."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        self.membranes = m.submodules["mem_membranes"]
        return m


def _run(script):
    top = Module()
    top.submodules.core = dut = _Probed(PARAMS)
    sim = Simulator(top)
    sim.add_clock(1e-8)
    out = {}

    async def bench(ctx):
        out["value"] = await script(ctx, dut, CoreSession(PARAMS, SimHost(ctx, dut).call))

    sim.add_testbench(bench)
    sim.run()
    return out["value"]


def test_read_spikes_returns_the_stored_spike_bit_not_a_comparison():
    p, vb = PARAMS, PARAMS.net.v_bits
    lane_bits = vb + 1
    t, j = 2, 4  # group j // P, lane j % P
    addr, lane = t * p.groups + j // p.lanes, j % p.lanes
    bit = lane * lane_bits + vb  # the s field of that lane

    async def script(ctx, dut, session):
        generator = torch.Generator().manual_seed(3)
        spikes = (torch.rand(p.timesteps, p.n_in, generator=generator) < 0.6).to(torch.int64)
        await session.write(Quantity.WEIGHTS, weights_for_seed(p.net, 3)[0])
        await session.load_spikes(spikes)
        await session.forward()
        before = await session.read(Quantity.SPIKES), await session.read(Quantity.MEMBRANES)
        word = ctx.get(dut.membranes.data[addr])
        ctx.set(dut.membranes.data[addr], word ^ (1 << bit))
        after = await session.read(Quantity.SPIKES), await session.read(Quantity.MEMBRANES)
        return before, after

    (s0, u0), (s1, u1) = _run(script)
    theta = PARAMS.net.theta
    assert torch.equal(s0, (u0 >= theta).to(s0.dtype))  # as the engine decided them
    assert 0 < int(s0.sum()) < s0.numel()  # some spikes, some silences: the flip is visible
    flipped = torch.zeros_like(s0)
    flipped[t, j] = 1
    assert torch.equal(s1, s0 ^ flipped)  # exactly the stored bit changed what READ returns
    assert torch.equal(u1, u0)  # the membrane is untouched
