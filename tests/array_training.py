"""Training steps on a linked core array under the Amaranth host, checked against the golden
model: shared by the array tests."""

from __future__ import annotations

import torch

from spikeforge.sim.amaranth_host import run_array
from spikeforge.sim.array_session import ArraySession
from spikeforge.sim.stimulus import samples
from spikeforge.sw.golden import GoldenModel

DEADLINE = 400_000
"""Cycles after which a run fails instead of hanging (the longest test needs ~15k)."""


def train_on_array(
    cores, weights, *, steps: int, stalls: int, density: float = 0.6, link_stall: int = 0
):
    """``steps`` training steps on the array against the golden model; returns what the script
    returned after each step (weights, counters)."""
    net = cores[0].net
    xs, labels = samples(net, 4, steps=steps, density=density)
    model = GoldenModel(net, weights)
    expected = [model.train_step(x, labels=y) for x, y in zip(xs, labels, strict=True)]

    async def script(host):
        s = ArraySession(cores, host.send, host.recv)
        await s.write_weights(weights)
        out = []
        for x, y in zip(xs, labels, strict=True):
            await s.train_step(x[0], int(y[0]))
            out.append((await s.read_weights(), await s.counters()))
        return out

    got = run_array(cores, script, stalls=stalls, deadline=DEADLINE, link_stall=link_stall)
    for step, (exp, (w, _)) in enumerate(zip(expected, got, strict=True)):
        for layer in range(net.n_layers):
            assert torch.equal(w[layer], exp.weights[layer]), (step, layer)
    return expected, got
