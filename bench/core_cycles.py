"""Cycle counts of the default core in Amaranth's simulator, measured by the core's counters.

Prints forward cycles against input spike density (with the documented formula beside the
measurement), the lanes' busy fraction, the cycles of a whole training step per engine, and the
BP and WG cycles against the fraction of neuron groups whose delta is nonzero (the default core
with ``emit_error``, as a hidden layer is built: its external error nonzero in a chosen share of
the groups; the cycle model beside the counters, all in one simulation). Run:
``.venv/bin/python bench/core_cycles.py [--json]``.
"""

from __future__ import annotations

import argparse
import json

import torch

from spikeforge.hw.backward import dense_groups, nonzero_groups
from spikeforge.hw.cycles import step_cycles
from spikeforge.hw.forward import forward_cycles
from spikeforge.hw.params import DEFAULT_CORE_NET, CoreParams
from spikeforge.hw.protocol import Quantity
from spikeforge.sim.amaranth_host import run_core
from spikeforge.sim.session import CoreSession
from spikeforge.sw.golden import GoldenModel, init_weights

GROUP_SHARES = (1.0, 0.75, 0.5, 0.25, 0.125, 0.0)
"""Shares of the neuron groups given a nonzero external error in the backward table."""


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


def errors_at(params: CoreParams, share: float, value: int = 64) -> torch.Tensor:
    """External errors ``e[t][j]``: ``value`` on every lane of the first ``round(share * G)``
    groups, 0 elsewhere."""
    e = torch.zeros(params.timesteps, params.n_out, dtype=torch.int64)
    e[:, : round(share * params.groups) * params.lanes] = value
    return e


def measure_backward(params: CoreParams, spikes: torch.Tensor, errors: list) -> list[dict]:
    """Counters after BACKWARD (external error, no update) for each error of ``errors``, one
    simulation: load, FORWARD, WRITE the error, BACKWARD, COUNTERS per error."""
    weights = init_weights(params.net)[params.layer]

    async def script(host):
        s = CoreSession(params, host.call)
        await s.write(Quantity.WEIGHTS, weights)
        out = []
        for e in errors:
            await s.load_spikes(spikes)
            await s.forward()
            await s.write(Quantity.ERRORS, e)
            await s.backward(update=False, external_error=True)
            out.append(await s.counters())
        return out

    return run_core(params, script)


def backward_table(spikes: torch.Tensor) -> list[dict]:
    """BP and WG cycles (counters and cycle model) against the nonzero-group fraction."""
    params = CoreParams(net=DEFAULT_CORE_NET, lanes=8, emit_error=True)
    active = [int(v) for v in spikes.sum(1)]
    errors = [errors_at(params, share) for share in GROUP_SHARES]
    got = measure_backward(params, spikes, errors)
    dense = step_cycles(params, active, dense_groups(params), update=False)
    rows = []
    for share, e, counters in zip(GROUP_SHARES, errors, got, strict=True):
        golden = GoldenModel(params.net)
        traces = golden.forward(spikes[None])
        golden.backward(traces, e[None])
        nonzero = nonzero_groups(params, traces[0].delta[0])
        model = step_cycles(params, active, nonzero, update=False)
        rows.append(
            {
                "share": share,
                "nonzero_fraction": sum(nonzero) / (params.timesteps * params.groups),
                "K": nonzero,
                **{f"{k}_counter": counters[k] for k in ("bp", "wg", "backward")},
                **{f"{k}_model": model[k] for k in ("bp", "wg", "backward")},
                "bp_vs_dense": counters["bp"] / dense["bp"],
                "wg_vs_dense": counters["wg"] / dense["wg"],
            }
        )
    return rows


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
    golden = GoldenModel(params.net).train_step(spikes_25[None], labels=torch.tensor([0]))
    nonzero_25 = nonzero_groups(params, golden.traces[0].delta[0])
    step = measure(params, spikes_25, train=True)
    print(
        "training step at 25% density: "
        + ", ".join(f"{k} {v}" for k, v in step.items())
        + " (cycle model: "
        + ", ".join(f"{k} {v}" for k, v in step_cycles(params, active_25, nonzero_25).items())
        + ")"
    )
    back = backward_table(spikes_25)
    print(
        "BACKWARD (no update) of the default core with emit_error, 25% input density, external "
        "error on a share of the groups:"
    )
    print("groups nonzero  bp counter  bp model  wg counter  wg model  bp vs dense  wg vs dense")
    for r in back:
        print(
            f"{100 * r['nonzero_fraction']:13.1f}%  {r['bp_counter']:10d}  {r['bp_model']:8d}"
            f"  {r['wg_counter']:10d}  {r['wg_model']:8d}  {100 * r['bp_vs_dense']:10.1f}%"
            f"  {100 * r['wg_vs_dense']:10.1f}%"
        )
    if args.json:
        print(json.dumps({"forward": rows, "training_step": step, "backward": back}))


if __name__ == "__main__":
    main()
