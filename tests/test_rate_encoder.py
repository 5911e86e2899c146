"""The on-chip rate encoder (LOAD_INPUTS): bit-exact with ``sw.encoders.rate_encode``.

The encoder alone in Amaranth's simulator: every event and header it writes, and its cycles
against :func:`~spikeforge.hw.host.encoder.encode_cycles`; then a whole core: LOAD_INPUTS and
FORWARD give the golden model's membranes, a wrong packet draws the rules' status and keeps
the spikes loaded before.
"""

from __future__ import annotations

import random

import pytest
import torch
from amaranth.sim import Simulator

from spikeforge.hw.host.encoder import RateEncoder, encode_cycles
from spikeforge.hw.params import CoreParams
from spikeforge.hw.protocol import (
    CoreRules,
    Opcode,
    Quantity,
    Status,
    command,
    input_words,
)
from spikeforge.sim.amaranth_host import run_core
from spikeforge.sim.session import CoreSession
from spikeforge.sw.config import ConfigError, SnnConfig
from spikeforge.sw.encoders import rate_encode
from spikeforge.sw.golden import GoldenModel


def _core(n_in: int, in_bits: int, timesteps: int) -> CoreParams:
    net = SnnConfig(layers=(n_in, 4), timesteps=timesteps, in_bits=in_bits, encoder_seed=77)
    return CoreParams(net=net, lanes=2, rate_encoder=True)


def _encode(params: CoreParams, x: list[int], key: int):
    """Run the encoder on one packet: ``(events per timestep, cycles from start to done)``."""
    dut = RateEncoder(params)
    T, n_in = params.timesteps, params.n_in
    words = input_words(x, key, params.net.in_bits)
    out = {}

    async def bench(ctx):
        ctx.set(dut.spare, 1)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        cycles, events, heads = 1, {}, {}
        pending = list(enumerate(words))
        while True:
            if pending:
                n, word = pending[0]
                ctx.set(dut.beat.valid, 1)
                ctx.set(dut.beat.payload, {"data": word, "last": n == len(words) - 1})
            else:
                ctx.set(dut.beat.valid, 0)
            done, status = ctx.get(dut.done), ctx.get(dut.status)
            if ctx.get(dut.ev_wen):
                events[ctx.get(dut.ev_waddr)] = ctx.get(dut.ev_wdata)
            if ctx.get(dut.hdr_wen):
                heads[ctx.get(dut.hdr_waddr)] = ctx.get(dut.hdr_wdata)
            took = pending and ctx.get(dut.beat.ready)
            await ctx.tick()
            if took:
                pending.pop(0)
            if done:
                out["status"] = Status(status)
                break
            cycles += 1
        out["cycles"] = cycles
        pb = params.event_ptr_bits
        out["spikes"] = []
        for t in range(T):
            head = heads[T + t]  # the spare bank
            start, count = head & ((1 << pb) - 1), head >> pb
            row = [0] * n_in
            for p in range(start, start + count):
                row[events[T * n_in + p]] = 1
            out["spikes"].append(row)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return out


@pytest.mark.parametrize(
    ("n_in", "in_bits", "timesteps"), [(6, 8, 3), (9, 5, 2), (5, 12, 4), (1, 8, 2)]
)
def test_the_encoder_draws_the_spikes_rate_encode_draws(n_in, in_bits, timesteps):
    params = _core(n_in, in_bits, timesteps)
    rng = random.Random(n_in * in_bits)
    for _ in range(3):
        x = [rng.randrange(1 << in_bits) for _ in range(n_in)]
        key = rng.getrandbits(32)
        got = _encode(params, x, key)
        want = rate_encode(torch.tensor([x]), torch.tensor([key]), params.net)[0]
        assert got["status"] == Status.OK
        assert got["spikes"] == want.tolist()
        assert got["cycles"] == encode_cycles(params)


def test_a_falsified_encoder_seed_draws_other_spikes():
    """The comparison above can fail: the same packet under another encoder seed differs."""
    params = _core(16, 8, 4)
    x, key = [128] * 16, 5
    other = SnnConfig(layers=(16, 4), timesteps=4, encoder_seed=78)
    want = rate_encode(torch.tensor([x]), torch.tensor([key]), other)[0]
    assert _encode(params, x, key)["spikes"] != want.tolist()


def test_a_core_loads_inputs_and_forwards_as_the_golden_model():
    params = _core(6, 8, 3)
    net, rules = params.net, CoreRules.of(params)
    x = torch.tensor([[10, 200, 255, 0, 90, 130], [250, 5, 60, 255, 255, 1]])
    keys = torch.tensor([3, 1 << 31])
    weights = torch.tensor([[30, -12, 25, 7, -3, 40]] * 4) // torch.tensor([[1], [2], [3], [4]])
    golden = GoldenModel(net, [weights]).forward(rate_encode(x, keys, net))[0]

    async def script(host):
        s = CoreSession(params, host.call)
        await s.write(Quantity.WEIGHTS, weights)
        got = []
        for n in range(2):
            await s.load_inputs(x[n], int(keys[n]))
            await s.forward()
            got.append(await s.read(Quantity.MEMBRANES))
        words = input_words(x[0].tolist(), 3, net.in_bits)
        bad = [
            [command(Opcode.LOAD_INPUTS), *words[:-1]],  # short
            [command(Opcode.LOAD_INPUTS), *words, 0],  # long
            [command(Opcode.LOAD_INPUTS), words[0]],  # the key alone
            [command(Opcode.LOAD_INPUTS), words[0], words[1], words[2] | 1 << 20],  # reserved
        ]
        statuses = [(await host.call(p[0] >> 24, 0, p[1:]))[1] for p in bad]
        await s.forward()  # still the second sample's spikes
        return got, statuses, await s.read(Quantity.MEMBRANES), bad

    got, statuses, after, bad = run_core(params, script, host_deadline=5_000)
    for n in range(2):
        assert torch.equal(got[n], golden.u[n])
    assert statuses == [rules.status(p) for p in bad]
    assert statuses == [Status.BAD_LENGTH] * 3 + [Status.BAD_SPIKES]
    assert torch.equal(after, golden.u[1])


def test_rate_encoder_needs_a_core_that_loads_rate_coded_spikes():
    net = SnnConfig(layers=(6, 4, 2), timesteps=3)
    with pytest.raises(ConfigError, match="rate_encoder needs a core that loads"):
        CoreParams(net=net, layer=1, lanes=2, linked=True, rate_encoder=True)
    with pytest.raises(ConfigError, match="rate_encoder must be true or false"):
        CoreParams(net=net, lanes=2, rate_encoder=1)
    assert Opcode.LOAD_INPUTS not in CoreRules.of(CoreParams(net=net, lanes=2)).commands
