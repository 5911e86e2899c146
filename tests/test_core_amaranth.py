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

from spikeforge.hw.array_cycles import load_avail
from spikeforge.hw.backward import backward_cycles, nonzero_groups
from spikeforge.hw.cycles import step_cycles
from spikeforge.hw.forward import forward_cycles
from spikeforge.hw.gradient import gradient_cycles
from spikeforge.hw.params import CoreParams
from spikeforge.hw.protocol import Opcode, Quantity, Status, command
from spikeforge.hw.update import update_cycles
from spikeforge.sim.amaranth_host import run_core, run_cores
from spikeforge.sim.matrix import AMARANTH, CONFIGS
from spikeforge.sim.model import CoreModel
from spikeforge.sim.network import NetworkSession
from spikeforge.sim.scenario import train_and_check
from spikeforge.sim.session import CoreSession
from spikeforge.sim.stimulus import samples, weights_for_seed
from spikeforge.sw.config import ConfigError, SnnConfig
from spikeforge.sw.golden import GoldenModel, init_weights

CASES = {name: CONFIGS[name] for name in AMARANTH}


def _train(params: CoreParams, seed: int, *, steps=2, density=0.5, stalls=0) -> list[dict]:
    """``train_and_check`` (the Verilator testbench's scenario) in Amaranth's simulator; returns
    the golden values of every step."""

    async def script(host):
        return await train_and_check(
            CoreSession(params, host.call), seed=seed, steps=steps, density=density
        )

    return run_core(params, script, stalls=stalls, seed=7)


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("seed", [0, 1])
def test_training_steps_are_bit_exact(case, seed):
    net_kw, core_kw = CASES[case]
    params = CoreParams(net=SnnConfig(**net_kw), **core_kw)
    expected = _train(params, seed)
    # The deltas must not all be zero, or the backward comparison proves little.
    assert any(bool(e["expected"]["deltas"].any()) for e in expected)


def test_bit_exact_under_idle_and_backpressure():
    net = SnnConfig(layers=(8, 4), timesteps=4, surrogate="triangle")
    params = CoreParams(net=net, lanes=2, emit_error=True)
    _train(params, 3, stalls=6)


def _counters(params: CoreParams, x, label: int, e) -> tuple[dict, dict]:
    """Counters after FORWARD, and after BACKWARD (no update bit) + UPDATE."""

    async def script(host):
        s = CoreSession(params, host.call)
        await s.write(Quantity.WEIGHTS, weights_for_seed(params.net, 0)[params.layer])
        await s.load_spikes(x)
        await s.forward()
        fwd = await s.counters()
        if params.layer == params.net.n_layers - 1:
            await s.set_label(label)
            await s.backward(update=False)
        else:
            await s.write(Quantity.ERRORS, e)
            await s.backward(update=False, external_error=True)
        await s.update()
        return fwd, await s.counters()

    return run_core(params, script)


@pytest.mark.parametrize("case", ["base", "p1-zero-triangle", "nonsquare-lanes3", "w16-u0"])
def test_cycle_counters_follow_the_documented_formulas(case):
    net_kw, core_kw = CASES[case]
    net = SnnConfig(**net_kw)
    params = CoreParams(net=net, **core_kw)
    xs, labels = samples(net, 5, steps=1, density=0.4)
    ref = CoreModel(params, weights_for_seed(net, 0)).step(xs[0], int(labels[0, 0]))
    fwd, bwd = _counters(params, ref["x"], ref["label"], ref["e"])
    active = [int(v) for v in xs[0, 0].sum(1)]
    nonzero = ref["nonzero"]
    assert fwd["forward"] == forward_cycles(params, active)
    assert fwd["lanes_busy"] == params.groups * sum(a + 1 for a in active)
    assert bwd["bp"] == backward_cycles(params, nonzero)
    assert bwd["wg"] == gradient_cycles(params, active, nonzero)
    assert bwd["update"] == update_cycles(params)
    # BACKWARD ran without the update bit (the update came as its own command).
    model = step_cycles(params, active, nonzero, update=False)
    assert bwd["backward"] == model["backward"]
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
        # index 8 does not exist (and 2 after 5 would break the ascending order)
        out["spikes"] = (await host.call(Opcode.LOAD_SPIKES, 0, [3, 1, 8, 5, 2, 5, 2]))[1]
        out["order"] = (await host.call(Opcode.LOAD_SPIKES, 0, [2, 5, 2, 0]))[1]
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
    assert out["spikes"] == out["order"] == Status.BAD_SPIKES
    words, status = out["info"]
    assert status == Status.OK
    assert words[1] | (words[2] << 32) == int(params.core_hash, 16)
    assert command(Opcode.INFO) == 0


def _streamed_forwards(params: CoreParams, weights, xs, stalls: int = 0) -> list:
    """LOAD_SPIKES with ``LOAD_FORWARD`` for each sample of ``xs``, then a plain FORWARD on
    the bank just loaded: the membranes and the FORWARD counter after each."""

    async def script(host):
        s = CoreSession(params, host.call)
        await s.write(Quantity.WEIGHTS, weights[0])
        out = []
        for x in xs:
            await s.load_forward(x[0])
            out.append((await s.read(Quantity.MEMBRANES), (await s.counters())["forward"]))
        await s.forward()
        out.append((await s.read(Quantity.MEMBRANES), (await s.counters())["forward"]))
        return out

    return run_core(params, script, stalls=stalls, seed=5)


def test_a_forward_pass_streamed_into_its_load_is_exact_and_takes_the_modelled_cycles():
    """LOAD_SPIKES with ``LOAD_FORWARD`` on a lone core: the FP engine starts with the load and
    runs timestep ``t`` once its header is written, each accumulate once its event is; the
    membranes equal the golden model's and the FORWARD counter equals ``forward_cycles`` with
    the load's header and event times (``load_avail``). Twice (both banks), then a plain
    FORWARD on the bank just loaded. With the words back to back the load never holds the
    engine up; with idle cycles between them (the engine then waits for single events, each
    read a cycle after its write: the read-during-write checks run) it does, and stays exact."""
    net = SnnConfig(layers=(8, 8), timesteps=6)
    params = CoreParams(net=net, lanes=2)
    weights = weights_for_seed(net, 1)
    xs, _ = samples(net, 3, steps=2, density=0.5)
    got = _streamed_forwards(params, weights, xs)
    plain = []
    for n, (membranes, cycles) in enumerate(got):
        x = xs[min(n, len(xs) - 1)]
        golden = GoldenModel(net, weights).forward(x)[0]
        assert torch.equal(membranes, golden.u[0]), n
        active = [int(v) for v in x[0].sum(1)]
        timing = load_avail(x[0].tolist()) if n < len(xs) else (None, None)
        assert cycles == forward_cycles(params, active, *timing), n
        plain.append(forward_cycles(params, active))
    assert [c for _, c in got] == plain  # the engine is slower than the load: it never waits
    stalled = _streamed_forwards(params, weights, xs, stalls=6)
    for n, (membranes, _) in enumerate(stalled):
        golden = GoldenModel(net, weights).forward(xs[min(n, len(xs) - 1)])[0]
        assert torch.equal(membranes, golden.u[0]), n
    assert all(a > b for (_, a), b in zip(stalled[:-1], plain, strict=False))  # it waited
    assert stalled[-1][1] == plain[-1]


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
    _train(params, seed, density=density)


def _train_network(cores: list[CoreParams], weights) -> list[list[torch.Tensor]]:
    """Two training steps of ``cores`` (host: ``NetworkSession``) against the golden model;
    asserts every layer's weights equal after each step and returns the golden weights."""
    net = cores[0].net
    xs, labels = samples(net, 4, steps=2, density=0.6)
    model = GoldenModel(net, weights)
    expected = [model.train_step(x, labels=y).weights for x, y in zip(xs, labels, strict=True)]

    async def script(hosts):
        host = NetworkSession([CoreSession(p, h.call) for p, h in zip(cores, hosts, strict=True)])
        await host.write_weights(weights)
        got = []
        for x, y in zip(xs, labels, strict=True):
            await host.train_step(x[0], int(y[0]))
            got.append(await host.read_weights())
        return got

    got = run_cores(cores, script)
    for step, (exp, out) in enumerate(zip(expected, got, strict=True)):
        for layer in range(net.n_layers):
            assert torch.equal(out[layer], exp[layer]), (step, layer)
    return expected


def test_two_chained_cores_train_a_two_layer_network_bit_exact():
    """Core 0 computes layer 0, core 1 layer 1; the host moves core 0's spikes to core 1 and core
    1's ``W^T . delta`` back to core 0 as its external error, like the multi-core system."""
    net = SnnConfig(layers=(8, 6, 4), timesteps=4, surrogate="triangle")
    cores = [CoreParams(net=net, layer=0, lanes=2), CoreParams(net=net, layer=1, lanes=2)]
    weights = init_weights(net)
    expected = _train_network(cores, weights)
    for exp in expected:
        assert not torch.equal(exp[0], weights[0])  # the error really reached layer 0


def test_backward_with_update_follows_the_cycle_model():
    net = SnnConfig(layers=(12, 6), timesteps=3, surrogate="triangle")
    params = CoreParams(net=net, lanes=3, emit_error=True)
    spikes = samples(net, 6, steps=1, density=0.5)[0][0, 0]

    async def script(host):
        s = CoreSession(params, host.call)
        await s.write(Quantity.WEIGHTS, init_weights(net)[0])
        await s.load_spikes(spikes)
        await s.forward()
        await s.set_label(2)
        await s.backward(update=True)
        return await s.counters()

    got = run_core(params, script)
    golden = GoldenModel(net, init_weights(net)).train_step(spikes[None], labels=torch.tensor([2]))
    nonzero = nonzero_groups(params, golden.traces[0].delta[0])
    model = step_cycles(params, [int(v) for v in spikes.sum(1)], nonzero, update=True)
    assert got == {k: model[k] for k in got}


def test_a_network_with_split_layers_trains_bit_exact_on_five_cores():
    """Layers 0 and 1 are split across two cores each by output neurons: the host sends a
    layer's concatenated spikes to every core of the next layer and sums the split layer's exact
    partial ``W^T . delta`` before rounding and saturating once."""
    net = SnnConfig(layers=(6, 8, 6, 4), timesteps=4, surrogate="triangle")
    cores = [
        CoreParams(net=net, layer=0, lanes=2, neurons=(0, 4)),
        CoreParams(net=net, layer=0, lanes=4, neurons=(4, 8)),
        CoreParams(net=net, layer=1, lanes=1, neurons=(0, 2)),
        CoreParams(net=net, layer=1, lanes=2, neurons=(2, 6)),
        CoreParams(net=net, layer=2, lanes=2),
    ]
    weights = weights_for_seed(net, 1)
    expected = _train_network(cores, weights)
    assert not torch.equal(expected[0][0], weights[0])  # the error reached layer 0


@pytest.mark.parametrize(
    ("core", "message"),
    [
        ({"neurons": (4, 4)}, "neurons stop = 4 is out of range"),
        ({"neurons": (0, 9)}, "neurons stop = 9 is out of range"),
        ({"neurons": 3}, "neurons must be a"),
        ({"neurons": (1, 6), "lanes": 2}, "lanes = 2 does not divide the layer's 5 neurons"),
    ],
)
def test_bad_neuron_slices_are_rejected(core, message):
    net = SnnConfig(layers=(6, 8, 4), timesteps=2)
    with pytest.raises((ConfigError, TypeError), match=message):
        CoreParams(net=net, layer=0, **{"lanes": 1, **core})


def _errors_for(params: CoreParams, pattern: list[int], value: int) -> torch.Tensor:
    """External errors ``e[t][j]`` with ``pattern[t]`` nonzero groups: groups ``(3k + t) % G``,
    one lane each (lane ``t % P``), so the lists are out of order and a group is nonzero by any
    one of its lanes."""
    P, G = params.lanes, params.groups
    e = torch.zeros(params.timesteps, params.n_out, dtype=torch.int64)
    for t, k in enumerate(pattern):
        for n in range(k):
            e[t, ((3 * n + t) % G) * P + t % P] = value
    return e


def test_bp_and_wg_skip_the_zero_delta_groups_exactly():
    """An external-error core (every delta equals its error: an all-wide boxcar, no temporal
    term) through samples whose nonzero groups per timestep go from all (``K[t] = G``) to none
    (``K[t] = 0``), without an update in between: every delta, ``e_prev`` (written, as zeros, also
    where ``K[t] = 0`` after a dense sample left nonzero values there) and the gradients summed
    over the samples bit-exact, and the BP and WG counters on the cycle model at each density."""
    base = SnnConfig(layers=(10, 8), timesteps=4)
    net = SnnConfig(
        layers=(10, 8), timesteps=4, bptt="sltt", surrogate_shift=base.v_bits - 2, g_bits=12
    )
    params = CoreParams(net=net, lanes=2, emit_error=True)
    G = params.groups
    assert G == 4
    patterns = [[G] * 4, [0, 2, 0, 1], [0] * 4, [1, 3, G, 0]]
    xs, _ = samples(net, 3, steps=len(patterns), density=0.6)
    weights = weights_for_seed(net, 0)
    golden = GoldenModel(net, weights)
    wanted = []
    for n, pattern in enumerate(patterns):
        x = xs[n, 0]
        e = _errors_for(params, pattern, 300 - 200 * (n % 2))
        traces = golden.forward(x[None])
        golden.backward(traces, e[None])
        delta = traces[0].delta[0]
        assert nonzero_groups(params, delta) == pattern  # the densities are the intended ones
        active = [int(v) for v in x.sum(1)]
        wanted.append(
            {
                "x": x,
                "e": e,
                "cycles": step_cycles(params, active, pattern, update=False),
                "deltas": delta,
                "eprev": traces[0].e_prev[0],
                "grads": golden.grad_acc[0].clone(),
            }
        )
    assert wanted[0]["eprev"].any()  # a dense sample leaves nonzero e_prev behind

    async def script(host):
        s = CoreSession(params, host.call)
        await s.write(Quantity.WEIGHTS, weights[0])
        got = []
        for want in wanted:
            await s.load_spikes(want["x"])
            await s.forward()
            await s.write(Quantity.ERRORS, want["e"])
            await s.backward(update=False, external_error=True)
            got.append(
                {
                    "cycles": await s.counters(),
                    **{q: await s.read(getattr(Quantity, q.upper())) for q in ("deltas", "eprev")},
                    "grads": await s.read(Quantity.GRADS),
                }
            )
        return got

    for n, (got, want) in enumerate(zip(run_core(params, script), wanted, strict=True)):
        for q in ("deltas", "eprev", "grads"):
            assert torch.equal(got[q], want[q]), (n, q)
        for key in ("bp", "wg", "backward"):
            assert got["cycles"][key] == want["cycles"][key], (n, key)
    dense, empty = wanted[0]["cycles"], wanted[2]["cycles"]
    assert empty["bp"] < dense["bp"] and empty["wg"] < dense["wg"]


def test_nonzero_groups_counts_a_cores_slice_and_the_formulas_take_it():
    net = SnnConfig(layers=(6, 8), timesteps=3)
    core = CoreParams(net=net, lanes=2, neurons=(2, 8), emit_error=True)  # groups 2-3 4-5 6-7
    delta = [
        [5, 5, 0, 0, 0, 0, 0, 0],  # only neurons outside the slice
        [0, 0, 0, -1, 0, 0, 7, 0],  # one lane of groups 0 and 2
        [0, 0, 1, 1, 1, 1, 1, 1],
    ]
    assert nonzero_groups(core, delta) == [0, 2, 3]
    assert nonzero_groups(core, torch.tensor(delta)) == [0, 2, 3]
    G, n_in = core.groups, core.n_in
    dense = backward_cycles(core, [G] * 3)
    # Each timestep issues n_in * max(1, K[t]) error tokens instead of n_in * G.
    assert dense - backward_cycles(core, [0, 2, 3]) == n_in * ((G - 1) + (G - 2) + 0)
    active = [2, 0, 4]
    assert gradient_cycles(core, active, [0, 2, 3]) < gradient_cycles(core, active, [G] * 3)
    with pytest.raises(ValueError, match="nonzero must have 3 entries in \\[0, 3\\]"):
        backward_cycles(core, [0, 4, 1])
    with pytest.raises(ValueError, match="nonzero must have 3 entries"):
        step_cycles(core, active, [1, 1])
    with pytest.raises(ValueError, match="delta must have 3 timesteps"):
        nonzero_groups(core, delta[:2])
