"""Cycle counts of the default core in Amaranth's simulator, measured by the core's counters.

Prints forward cycles against input spike density (with the documented formula beside the
measurement), the lanes' busy fraction, and the cycles of a whole training step per engine.
Run: ``.venv/bin/python bench/core_cycles.py [--json]``.
"""

from __future__ import annotations

import argparse
import json

import torch

from spikeforge.hw.cycles import step_cycles
from spikeforge.hw.forward import forward_cycles
from spikeforge.hw.params import DEFAULT_CORE_NET, CoreParams
from spikeforge.hw.protocol import Quantity
from spikeforge.sim.amaranth_host import run_core
from spikeforge.sim.session import CoreSession
from spikeforge.sw.golden import init_weights


def spikes_at(density: float, seed: int, t: int, n: int) -> torch.Tensor:
    """Exactly round(density * n) active inputs per timestep, at random positions."""
    gen = torch.Generator().manual_seed(seed)
    out = torch.zeros(t, n, dtype=torch.int64)
    k = round(density * n)
    for step in range(t):
        out[step, torch.randperm(n, generator=gen)[:k]] = 1
    return out


def measure(params: CoreParams, spikes: torch.Tensor, *, train: bool) -> dict:
    weights = init_weights(params.net)[params.layer]

    async def script(host):
        s = CoreSession(params, host.call)
        await s.write(Quantity.WEIGHTS, weights)
        await s.load_spikes(spikes)
        await s.forward()
        fwd = await s.counters()
        if not train:
            return fwd
        await s.set_label(0)
        await s.backward(update=True)
        bwd = await s.counters()
        return {**bwd, "forward": fwd["forward"], "lanes_busy": fwd["lanes_busy"]}

    return run_core(params, script)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print a JSON summary as last line")
    args = parser.parse_args()
    params = CoreParams(net=DEFAULT_CORE_NET, lanes=8)
    t, n = params.timesteps, params.n_in
    rows = []
    print(f"default core: {n} inputs, {params.n_out} neurons, {params.lanes} lanes, T = {t}")
    print("density  active  forward  formula  lanes busy  vs dense")
    dense = None
    for density in (1.0, 0.5, 0.25, 0.1, 0.05, 0.0):
        spikes = spikes_at(density, 0, t, n)
        c = measure(params, spikes, train=False)
        active = [int(v) for v in spikes.sum(1)]
        dense = dense or c["forward"]
        row = {
            "density": density,
            "active": sum(active),
            "forward": c["forward"],
            "formula": forward_cycles(params, active),
            "lanes_busy": c["lanes_busy"] / c["forward"],
            "vs_dense": c["forward"] / dense,
        }
        rows.append(row)
        print(
            f"{density:7.2f}  {row['active']:6d}  {row['forward']:7d}  {row['formula']:7d}"
            f"  {100 * row['lanes_busy']:9.1f}%  {100 * row['vs_dense']:7.1f}%"
        )
    spikes_25 = spikes_at(0.25, 1, t, n)
    active_25 = [int(v) for v in spikes_25.sum(1)]
    step = measure(params, spikes_25, train=True)
    print(
        "training step at 25% density: "
        + ", ".join(f"{k} {v}" for k, v in step.items())
        + " (cycle model: "
        + ", ".join(f"{k} {v}" for k, v in step_cycles(params, active_25).items())
        + ")"
    )
    if args.json:
        print(json.dumps({"forward": rows, "training_step": step}))


if __name__ == "__main__":
    main()
