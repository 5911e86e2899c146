"""The Amaranth core in Amaranth's simulator, bit-exact against the golden model.

Every case drives the core only through its AXI4-Stream host port and compares, after each of
two training steps, every value each engine produced with the golden model:

* FP: membranes ``u[t][j]``, spikes ``s[t][j]``, spike counts;
* BP: deltas ``delta[t][j]`` and (cores with ``emit_error``) ``e_prev[t][i]``;
* WG: gradient accumulators before the update;
* update: master weights after the update and the row LFSR states.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spikeforge.hw.backward import backward_cycles
from spikeforge.hw.cycles import step_cycles
from spikeforge.hw.forward import forward_cycles
from spikeforge.hw.gradient import gradient_cycles
from spikeforge.hw.params import CoreParams
from spikeforge.hw.protocol import Opcode, Quantity, Status, command
from spikeforge.hw.update import update_cycles
from spikeforge.sim.amaranth_host import run_core, run_cores
from spikeforge.sim.checker import check_step
from spikeforge.sim.model import CoreModel
from spikeforge.sim.session import CoreSession
from spikeforge.sw.config import SnnConfig
from spikeforge.sw.golden import GoldenModel, init_weights

CASES = {
    "base": ({"layers": (8, 4), "timesteps": 4}, {"lanes": 2, "emit_error": True}),
    "p1-zero-triangle": (
        {"layers": (6, 3), "timesteps": 5, "reset": "zero", "surrogate": "triangle"},
        {"lanes": 1, "emit_error": True},
    ),
    "pN-sltt-nearest": (
        {"layers": (7, 4), "timesteps": 3, "bptt": "sltt", "rounding": "nearest"},
        {"lanes": 4, "emit_error": True},
    ),
    "w4-frac0": ({"layers": (8, 4), "timesteps": 4, "w_bits": 4, "frac_bits": 0}, {"lanes": 2}),
    "w16-u0": ({"layers": (5, 4), "timesteps": 3, "w_bits": 16}, {"lanes": 2, "emit_error": True}),
    "t1": ({"layers": (8, 6), "timesteps": 1}, {"lanes": 3, "emit_error": True}),
    "nonsquare-lanes3": (
        {"layers": (12, 6), "timesteps": 4, "surrogate": "triangle", "reset": "zero"},
        {"lanes": 3, "emit_error": True},
    ),
    "saturating-narrow": (
        {
            "layers": (8, 4),
            "timesteps": 6,
            "g_bits": 4,
            "acc_bits": 5,
            "v_bits": 10,
            "err_shift": 5,
        },
        {"lanes": 2, "emit_error": True},
    ),
    "hidden-layer-external-error": (
        {"layers": (6, 8, 4), "timesteps": 4, "reset": "zero"},
        {"layer": 0, "lanes": 4},
    ),
    "output-layer-of-two": (
        {"layers": (6, 8, 4), "timesteps": 4, "surrogate": "triangle"},
        {"layer": 1, "lanes": 2},
    ),
}


def _random_weights(net: SnnConfig, seed: int) -> list[torch.Tensor]:
    """Seed 0: the trainer's initialisation; other seeds: uniform over the whole master range
    (saturating membranes, deltas and updates)."""
    if seed == 0:
        return init_weights(net)
    gen = torch.Generator().manual_seed(seed)
    lo, hi = -(1 << (net.master_bits - 1)), 1 << (net.master_bits - 1)
    return [torch.randint(lo, hi, shape, generator=gen) for shape in net.weight_shapes()]


def _samples(net: SnnConfig, seed: int, steps: int, density: float):
    gen = torch.Generator().manual_seed(1000 + seed)
    xs = (torch.rand(steps, 1, net.timesteps, net.n_inputs, generator=gen) < density).long()
    labels = torch.randint(0, net.n_outputs, (steps, 1), generator=gen)
    return xs, labels


def _expected(params: CoreParams, weights, xs, labels, lr_shifts):
    """Per step: the core's inputs and the golden values of its layer (``CoreModel``)."""
    model = CoreModel(params, weights)
    return [
        model.step(x, int(label[0]), lr_shift=lr)
        for x, label, lr in zip(xs, labels, lr_shifts, strict=True)
    ]


def _run(params: CoreParams, weights, steps, lr_shifts, *, stalls=0):
    is_output = params.layer == params.net.n_layers - 1

    async def script(host):
        s = CoreSession(params, host.call)
        await s.write(Quantity.WEIGHTS, weights[params.layer])
        got = []
        for step, lr in zip(steps, lr_shifts, strict=True):
            out = {}
            await s.set_lr(lr)
            await s.load_spikes(step["x"])
            await s.forward()
            out["fwd_counters"] = await s.counters()
            for name, q in (
                ("membranes", Quantity.MEMBRANES),
                ("spikes", Quantity.SPIKES),
                ("counts", Quantity.COUNTS),
            ):
                out[name] = await s.read(q)
            if is_output:
                await s.set_label(step["label"])
                await s.backward(update=False)
            else:
                await s.write(Quantity.ERRORS, step["e"])
                await s.backward(update=False, external_error=True)
            out["deltas"] = await s.read(Quantity.DELTAS)
            if params.emits_error:
                out["eprev"] = await s.read(Quantity.EPREV)
            out["grads"] = await s.read(Quantity.GRADS)
            await s.update()
            out["bwd_counters"] = await s.counters()
            out["weights"] = await s.read(Quantity.WEIGHTS)
            out["lfsr"] = await s.read(Quantity.LFSR)
            got.append(out)
        return got

    return run_core(params, script, stalls=stalls, seed=7)


def _compare(params, expected, got, seed=0):
    for n, (exp, out) in enumerate(zip(expected, got, strict=True)):
        check_step(exp["expected"], out, step=n, seed=seed)


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("seed", [0, 1])
def test_training_steps_are_bit_exact(case, seed):
    net_kw, core_kw = CASES[case]
    net = SnnConfig(**net_kw)
    params = CoreParams(net=net, **core_kw)
    weights = _random_weights(net, seed)
    xs, labels = _samples(net, seed, steps=2, density=0.5)
    lr_shifts = [net.lr_shift, net.lr_shift + 1 + seed]
    expected = _expected(params, weights, xs, labels, lr_shifts)
    got = _run(params, weights, expected, lr_shifts)
    _compare(params, expected, got, seed)
    # The deltas must not all be zero, or the backward comparison proves little.
    assert any(bool(e["expected"]["deltas"].any()) for e in expected)


def test_bit_exact_under_idle_and_backpressure():
    net = SnnConfig(layers=(8, 4), timesteps=4, surrogate="triangle")
    params = CoreParams(net=net, lanes=2, emit_error=True)
    weights = _random_weights(net, 0)
    xs, labels = _samples(net, 3, steps=2, density=0.5)
    lr = [net.lr_shift] * 2
    expected = _expected(params, weights, xs, labels, lr)
    _compare(params, expected, _run(params, weights, expected, lr, stalls=6))


@pytest.mark.parametrize("case", ["base", "p1-zero-triangle", "nonsquare-lanes3", "w16-u0"])
def test_cycle_counters_follow_the_documented_formulas(case):
    net_kw, core_kw = CASES[case]
    net = SnnConfig(**net_kw)
    params = CoreParams(net=net, **core_kw)
    weights = _random_weights(net, 0)
    xs, labels = _samples(net, 5, steps=1, density=0.4)
    lr = [net.lr_shift]
    expected = _expected(params, weights, xs, labels, lr)
    out = _run(params, weights, expected, lr)[0]
    active = [int(v) for v in xs[0, 0].sum(1)]
    fwd = out["fwd_counters"]
    assert fwd["forward"] == forward_cycles(params, active)
    assert fwd["lanes_busy"] == params.groups * sum(a + 1 for a in active)
    assert out["bwd_counters"]["bp"] == backward_cycles(params)
    assert out["bwd_counters"]["wg"] == gradient_cycles(params, active)
    assert out["bwd_counters"]["update"] == update_cycles(params)
    # BACKWARD ran without the update bit (the update came as its own command).
    model = step_cycles(params, active, update=False)
    assert out["bwd_counters"]["backward"] == model["backward"]
    assert (fwd["forward"], fwd["lanes_busy"]) == (model["forward"], model["lanes_busy"])


def _forward_only(params: CoreParams, spikes: torch.Tensor) -> dict:
    async def script(host):
        s = CoreSession(params, host.call)
        await s.load_spikes(spikes)
        await s.forward()
        return await s.counters()

    return run_core(params, script)


def test_default_core_dense_and_sparse_forward_cycles():
    """Default core (64 x 64, 8 lanes, 8-bit, T = 8): lanes >= 90% busy on dense input, and
    10% input density costs <= 15% of the dense forward cycles."""
    net = SnnConfig(layers=(64, 64), timesteps=8)
    params = CoreParams(net=net, lanes=8)
    dense = torch.ones(8, 64, dtype=torch.int64)
    gen = torch.Generator().manual_seed(0)
    sparse = torch.zeros(8, 64, dtype=torch.int64)
    for t in range(8):  # exactly 10% of 64 inputs (6 or 7) per timestep, 51 of 512 in all
        sparse[t, torch.randperm(64, generator=gen)[: 7 if t < 3 else 6]] = 1
    d = _forward_only(params, dense)
    s = _forward_only(params, sparse)
    assert d["forward"] == forward_cycles(params, [64] * 8)
    assert s["forward"] == forward_cycles(params, [int(v) for v in sparse.sum(1)])
    assert d["lanes_busy"] / d["forward"] >= 0.90
    assert s["forward"] / d["forward"] <= 0.15


def test_bad_commands_answer_with_a_status_and_the_core_keeps_working():
    net = SnnConfig(layers=(8, 4), timesteps=2)
    params = CoreParams(net=net, lanes=2)
    big = 1 << (net.master_bits - 1)

    async def script(host):
        out = {}
        out["opcode"] = (await host.call(0x3F))[1]
        out["quantity"] = (await host.call(Opcode.READ, 12))[1]
        out["write_ro"] = (await host.call(Opcode.WRITE, int(Quantity.MEMBRANES)))[1]
        out["label"] = (await host.call(Opcode.SET_LABEL, 4))[1]
        out["lr"] = (await host.call(Opcode.SET_LR, net.lr_shift + params.lr_range))[1]
        weights = [big + 5] + [-big - 9] + [3] * 30
        out["range"] = (await host.call(Opcode.WRITE, 0, [w & 0xFFFFFFFF for w in weights]))[1]
        out["weights"] = (await host.call(Opcode.READ, 0))[0][:3]
        # index 8 does not exist, and 2 after 5 breaks the ascending order
        out["spikes"] = (await host.call(Opcode.LOAD_SPIKES, 0, [3, 1, 8, 5, 2, 5, 2]))[1]
        out["info"] = await host.call(Opcode.INFO)
        return out

    out = run_core(params, script)
    assert out["opcode"] == Status.BAD_OPCODE
    assert out["quantity"] == Status.BAD_ARG
    assert out["write_ro"] == Status.BAD_ARG
    assert out["label"] == Status.BAD_ARG
    assert out["lr"] == Status.BAD_ARG
    assert out["range"] == Status.OUT_OF_RANGE
    assert out["weights"] == [big - 1, (-big) & 0xFFFFFFFF, 3]
    assert out["spikes"] == Status.OUT_OF_RANGE
    words, status = out["info"]
    assert status == Status.OK
    assert words[1] | (words[2] << 32) == int(params.core_hash, 16)
    assert command(Opcode.INFO) == 0


@st.composite
def core_configs(draw):
    lanes = draw(st.integers(1, 4))
    n_out = lanes * draw(st.integers(1, 3))
    net = SnnConfig(
        layers=(draw(st.integers(1, 9)), n_out),
        timesteps=draw(st.integers(1, 6)),
        w_bits=draw(st.integers(3, 12)),
        frac_bits=draw(st.integers(0, 4)),
        g_bits=draw(st.integers(3, 9)),
        leak_shift=draw(st.integers(1, 4)),
        reset=draw(st.sampled_from(["subtract", "zero"])),
        surrogate=draw(st.sampled_from(["boxcar", "triangle"])),
        bptt=draw(st.sampled_from(["bptt", "sltt"])),
        rounding=draw(st.sampled_from(["nearest", "stochastic"])),
        err_shift=draw(st.integers(0, 5)),
    )
    return CoreParams(net=net, lanes=lanes, emit_error=draw(st.booleans()))


@settings(max_examples=8, deadline=None)
@given(params=core_configs(), seed=st.integers(0, 3), density=st.sampled_from([0.2, 0.6, 1.0]))
def test_random_configs_are_bit_exact(params, seed, density):
    net = params.net
    weights = _random_weights(net, seed)
    xs, labels = _samples(net, seed, steps=2, density=density)
    lr = [net.lr_shift, net.lr_shift + 1]
    expected = _expected(params, weights, xs, labels, lr)
    _compare(params, expected, _run(params, weights, expected, lr))


def test_two_chained_cores_train_a_two_layer_network_bit_exact():
    """Core 0 computes layer 0, core 1 layer 1; the host moves core 0's spikes to core 1 and core
    1's ``W^T . delta`` back to core 0 as its external error, like the multi-core system."""
    net = SnnConfig(layers=(8, 6, 4), timesteps=4, surrogate="triangle")
    cores = [CoreParams(net=net, layer=0, lanes=2), CoreParams(net=net, layer=1, lanes=2)]
    weights = init_weights(net)
    xs, labels = _samples(net, 4, steps=2, density=0.6)
    model = GoldenModel(net, weights)
    expected = [model.train_step(x, labels=y).weights for x, y in zip(xs, labels, strict=True)]

    async def script(hosts):
        s0, s1 = (CoreSession(p, h.call) for p, h in zip(cores, hosts, strict=True))
        await s0.write(Quantity.WEIGHTS, weights[0])
        await s1.write(Quantity.WEIGHTS, weights[1])
        got = []
        for x, y in zip(xs, labels, strict=True):
            await s0.load_spikes(x[0])
            await s0.forward()
            await s1.load_spikes(await s0.read(Quantity.SPIKES))
            await s1.forward()
            await s1.set_label(int(y[0]))
            await s1.backward(update=True)
            await s0.write(Quantity.ERRORS, await s1.read(Quantity.EPREV))
            await s0.backward(update=True, external_error=True)
            got.append([await s0.read(Quantity.WEIGHTS), await s1.read(Quantity.WEIGHTS)])
        return got

    got = run_cores(cores, script)
    for step, (exp, out) in enumerate(zip(expected, got, strict=True)):
        for layer in range(2):
            assert torch.equal(out[layer], exp[layer]), (step, layer)
        assert not torch.equal(exp[0], weights[0])  # the error really reached layer 0


def test_backward_with_update_follows_the_cycle_model():
    net = SnnConfig(layers=(12, 6), timesteps=3, surrogate="triangle")
    params = CoreParams(net=net, lanes=3, emit_error=True)
    spikes = _samples(net, 6, steps=1, density=0.5)[0][0, 0]

    async def script(host):
        s = CoreSession(params, host.call)
        await s.write(Quantity.WEIGHTS, init_weights(net)[0])
        await s.load_spikes(spikes)
        await s.forward()
        await s.set_label(2)
        await s.backward(update=True)
        return await s.counters()

    got = run_core(params, script)
    model = step_cycles(params, [int(v) for v in spikes.sum(1)], update=True)
    assert got == {k: model[k] for k in got}
