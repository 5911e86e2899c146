"""Cores with fused gradients (``CoreParams.fused_grads``): no gradient memory, no WG engine.

The update engine forms every accumulator from the delta history and the input mask it builds
from the event memory; these tests run such cores in Amaranth's simulator bit-exact against the
golden model (which does not change), compare the cycle counters with the formulas, and check
the refusals: GRADS on the wire, options that cannot work, host flows that need GRADS.
"""

from __future__ import annotations

import asyncio

import pytest
import torch
from array_training import train_on_array

from spikeforge.hw.array import layer_groups
from spikeforge.hw.array_cycles import array_step_cycles
from spikeforge.hw.backward import backward_cycles
from spikeforge.hw.cycles import step_cycles
from spikeforge.hw.forward import forward_cycles
from spikeforge.hw.params import CoreParams
from spikeforge.hw.protocol import Opcode, Quantity, Status, read_arg
from spikeforge.hw.update import update_cycles
from spikeforge.sim.amaranth_host import run_core
from spikeforge.sim.array_session import ArraySession
from spikeforge.sim.checker import Mismatch
from spikeforge.sim.data_parallel_rtl import data_parallel, read_grads, write_grads
from spikeforge.sim.matrix import CONFIGS, core_params
from spikeforge.sim.model import CoreModel
from spikeforge.sim.scenario import backward, train_and_check
from spikeforge.sim.session import CoreSession
from spikeforge.sim.stimulus import samples, weights_for_seed
from spikeforge.sw.config import ConfigError, SnnConfig

FUSED = [name for name in CONFIGS if name.startswith("fused-")]


def _train(params: CoreParams, seed: int, *, corrupt: bool = False, density=0.5) -> list[dict]:
    async def script(host):
        return await train_and_check(
            CoreSession(params, host.call), seed=seed, steps=2, density=density, corrupt=corrupt
        )

    return run_core(params, script, seed=7)


def test_a_fused_core_has_no_gradient_memory_but_a_mask():
    plain = CoreParams(net=SnnConfig(layers=(8, 4), timesteps=4), lanes=2)
    fused = CoreParams(net=plain.net, lanes=2, fused_grads=True)
    assert "grads" in plain.memory_map and "mask" not in plain.memory_map
    assert "grads" not in fused.memory_map
    mask = fused.memory_map["mask"]
    assert (mask.depth, mask.width, mask.lanes) == (8, 4, 1)
    assert fused.memory_map["deltas"].read_ports == 1  # no WG engine beside BP
    assert fused.to_dict()["fused_grads"] is True and "fused_grads" not in plain.to_dict()
    assert CoreParams.from_dict(fused.to_dict()).to_dict() == fused.to_dict()
    assert fused.core_hash != plain.core_hash


@pytest.mark.parametrize("case", FUSED)
@pytest.mark.parametrize("seed", [0, 1])
def test_fused_training_steps_are_bit_exact(case, seed):
    refs = _train(core_params(case), seed)
    assert any(bool(r["expected"]["deltas"].any()) for r in refs)
    assert "grads" not in refs[0]["expected"]


def test_fused_dense_input_is_bit_exact():
    """Every input spikes every timestep: the mask build's forwarding of words in flight."""
    _train(core_params("fused-saturating"), 2, density=1.0)


def test_bit_exact_where_the_accumulation_order_matters():
    """Dense input to a hidden layer with narrow accumulators: the deltas change sign over
    time and the accumulators saturate, so summing ``t = 0 .. T-1`` instead of the golden
    ``T-1 .. 0`` gives other gradients and (``U = 0`` at ``lr_shift = frac_bits``) other
    weights: a core that summed upward fails here (checked by hand with that mutant)."""
    params = core_params("fused-hidden-saturating")
    net = params.net
    lo, hi = -(1 << (net.acc_bits - 1)), (1 << (net.acc_bits - 1)) - 1
    differs = 0
    for ref in _train(params, 3, density=1.0):
        x, d = ref["x"], ref["expected"]["deltas"]
        up = torch.zeros(params.n_out, params.n_in, dtype=torch.int64)
        down = torch.zeros_like(up)
        for t in range(net.timesteps):
            up = (up + d[t][:, None] * x[t][None, :]).clamp(lo, hi)
            down = (down + d[-1 - t][:, None] * x[-1 - t][None, :]).clamp(lo, hi)
        differs += int((up != down).sum())
    assert differs


def test_a_falsified_value_fails_the_fused_check():
    with pytest.raises(Mismatch, match="deltas"):
        _train(core_params("fused-saturating"), 0, corrupt=True)


@pytest.mark.parametrize("case", ["fused-saturating", "fused-hidden-sltt-nearest"])
def test_fused_cycle_counters_follow_the_formulas(case):
    params = core_params(case)
    net = params.net
    xs, labels = samples(net, 5, steps=1, density=0.4)
    ref = CoreModel(params, weights_for_seed(net, 0)).step(xs[0], int(labels[0, 0]))

    async def script(host):
        s = CoreSession(params, host.call)
        await s.write(Quantity.WEIGHTS, weights_for_seed(net, 0)[params.layer])
        await s.load_spikes(ref["x"])
        await s.forward()
        if params.layer == net.n_layers - 1:
            await s.set_label(ref["label"])
            await s.backward(update=True)
        else:
            await s.write(Quantity.ERRORS, ref["e"])
            await s.backward(update=True, external_error=True)
        return await s.counters()

    got = run_core(params, script)
    active = [int(v) for v in ref["x"].sum(1)]
    model = step_cycles(params, active, ref["nonzero"])
    assert got["wg"] == model["wg"] == 0
    assert got["bp"] == backward_cycles(params, ref["nonzero"])
    assert got["update"] == update_cycles(params, active)
    assert got["forward"] == forward_cycles(params, active)
    assert got["backward"] == model["backward"]
    assert update_cycles(params) == update_cycles(params, [params.n_in] * net.timesteps)


def test_grads_are_refused_on_the_wire():
    params = core_params("fused-saturating")

    async def script(host):
        read = (await host.call(Opcode.READ, read_arg(Quantity.GRADS)))[1]
        write = (await host.call(Opcode.WRITE, int(Quantity.GRADS), [0] * params.n_in))[1]
        weights = (await host.call(Opcode.READ, read_arg(Quantity.WEIGHTS)))[1]
        return read, write, weights

    assert run_core(params, script) == (Status.BAD_ARG, Status.BAD_ARG, Status.OK)


def test_fused_options_that_cannot_work_are_refused():
    net = SnnConfig(layers=(8, 4), timesteps=4)
    with pytest.raises(ConfigError, match="fused_grads must be true or false"):
        CoreParams(net=net, lanes=2, fused_grads=1)
    with pytest.raises(ConfigError, match="batch_size = 1"):
        CoreParams(net=SnnConfig(layers=(8, 4), timesteps=4, batch_size=4), fused_grads=True)
    with pytest.raises(ConfigError, match="timesteps = 65"):
        CoreParams(net=SnnConfig(layers=(8, 4), timesteps=65), lanes=2, fused_grads=True)


def test_a_fused_network_on_linked_cores_is_bit_exact_and_follows_the_array_cycle_model():
    """Three layers on four linked cores with fused gradients (one layer split): every weight
    after every step bit-exact, and every core's BACKWARD counter (BP, no WG, the update with
    its mask build) as the array cycle model says."""
    net = SnnConfig(layers=(6, 8, 6, 4), timesteps=4, surrogate="triangle")
    slices = ((0, 2, (0, 4)), (0, 4, (4, 8)), (1, 2, None), (2, 2, None))
    cores = [
        CoreParams(net=net, layer=la, lanes=ln, neurons=nr, linked=True, fused_grads=True)
        for la, ln, nr in slices
    ]
    expected, got = train_on_array(cores, weights_for_seed(net, 1), steps=2, stalls=0)
    for res, (_, counters) in zip(expected, got, strict=True):
        spikes = [res.traces[0].x[0].tolist()] + [tr.s[0].tolist() for tr in res.traces]
        deltas = [tr.delta[0].tolist() for tr in res.traces]
        cycles = array_step_cycles(cores, layer_groups(cores), spikes, deltas)
        assert [counters[n]["backward"] for n in range(len(cores))] == cycles.backward
        assert [counters[n]["forward"] for n in range(len(cores))] == cycles.forward
        assert all(counters[n]["wg"] == 0 for n in range(len(cores)))


def test_host_flows_that_need_grads_refuse_fused_cores():
    net = SnnConfig(layers=(6, 8, 4), timesteps=4)
    cores = [
        CoreParams(net=net, layer=0, lanes=2, linked=True, fused_grads=True),
        CoreParams(net=net, layer=1, lanes=2, linked=True),
    ]

    async def never(*args):
        raise AssertionError("nothing may be sent")

    session = ArraySession(cores, never, never)
    x = torch.zeros(4, 1, 6, dtype=torch.int64)
    y = torch.zeros(4, dtype=torch.int64)
    for flow in (
        data_parallel(session, x, y, workers=1, per_shard=1, batches=1),
        read_grads(session),
        write_grads(session, [torch.zeros(8, 6), torch.zeros(4, 8)]),
    ):
        with pytest.raises(ConfigError, match=r"core\(s\) 0 have fused_grads = true"):
            asyncio.run(flow)


@pytest.mark.rtl
def test_a_fused_core_under_verilator_is_bit_exact_and_a_falsified_value_fails():
    """The Verilated core on the order-sensitive sample (the CI matrix runs this config's three
    seeds with every protocol check); a falsified golden value must fail the same build."""
    from pathlib import Path

    from spikeforge.sim.regress import run_config

    name = "fused-hidden-saturating"
    folder = Path(__file__).resolve().parents[1] / "build" / "rtl" / "test_fused"
    kw = {"fast": True, "checks": False, "waves_on_failure": False}
    good = run_config(name, core_params(name), folder, seeds=[3], density=1.0, **kw)
    assert good.passed, good.report()
    bad = run_config(name, core_params(name), folder, seeds=[3], steps=1, corrupt=True, **kw)
    assert not bad.passed
    assert "step 0, seed 3: first mismatch in deltas" in bad.runs[0][1].message


def test_the_update_uses_the_forward_spikes_after_a_load_in_between():
    """BACKWARD without the update, LOAD_SPIKES of the next sample (it flips the event banks),
    then UPDATE: the mask still comes from the spikes FORWARD used."""
    params = core_params("fused-saturating")
    net = params.net
    weights = weights_for_seed(net, 0)
    xs, labels = samples(net, 0, steps=2, density=0.5)
    ref = CoreModel(params, weights).step(xs[0], int(labels[0, 0]), lr_shift=net.lr_shift)

    async def script(host):
        s = CoreSession(params, host.call)
        await s.write(Quantity.WEIGHTS, weights[params.layer])
        await s.set_lr(net.lr_shift)
        await s.load_spikes(ref["x"])
        await s.forward()
        await backward(s, ref)
        await s.load_spikes(xs[1][0])
        await s.update()
        return await s.read(Quantity.WEIGHTS)

    got = run_core(params, script)
    assert not torch.equal(ref["x"], xs[1][0])
    assert torch.equal(got, ref["expected"]["weights"])
