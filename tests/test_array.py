"""The multi-core array in Amaranth's simulator: linked cores, their spike and error links and
the one host port, against the golden model (every weight of every layer after every step)."""

from __future__ import annotations

import pytest
import torch
from array_training import DEADLINE, train_on_array

from spikeforge.codesign.mapping import map_network
from spikeforge.hw.array import layer_groups
from spikeforge.hw.array_cycles import array_step_cycles
from spikeforge.hw.backward import nonzero_groups
from spikeforge.hw.forward import forward_cycles
from spikeforge.hw.params import CoreParams
from spikeforge.hw.protocol import (
    ARRAY_TAG,
    LOAD_FORWARD,
    ROUTE,
    Opcode,
    Quantity,
    Status,
    command,
    parse_status,
    route,
    status_core,
)
from spikeforge.sim.amaranth_host import run_array
from spikeforge.sim.array_session import ArraySession
from spikeforge.sim.stimulus import samples, weights_for_seed
from spikeforge.sw.config import SnnConfig
from spikeforge.sw.golden import GoldenModel


def _linked(net: SnnConfig, *slices: tuple[int, int, tuple[int, int] | None]) -> list[CoreParams]:
    return [
        CoreParams(net=net, layer=layer, lanes=lanes, neurons=neurons, linked=True)
        for layer, lanes, neurons in slices
    ]


def test_a_split_network_trains_bit_exact_on_five_linked_cores():
    """Layers 0 and 1 split over two cores each (different lane counts): spikes merge and fan
    out on the links, split partial sums are reduced once; random idle and backpressure on the
    host port."""
    net = SnnConfig(layers=(6, 8, 6, 4), timesteps=4, surrogate="triangle")
    cores = _linked(
        net, (0, 2, (0, 4)), (0, 4, (4, 8)), (1, 1, (0, 2)), (1, 2, (2, 6)), (2, 2, None)
    )
    expected, _ = train_on_array(cores, weights_for_seed(net, 1), steps=2, stalls=2)
    assert not torch.equal(expected[0].weights[0], weights_for_seed(net, 1)[0])


@pytest.mark.parametrize("link_stall", [4, 12])
def test_links_under_random_stalls_lose_and_duplicate_nothing(link_stall):
    """Every link blocked on a pseudo-random 25% or 75% of the cycles (both ends of every merge
    and reduction): still bit-exact, only slower than the cycle model's stall-free figure."""
    net = SnnConfig(layers=(6, 8, 6, 4), timesteps=4, surrogate="triangle")
    cores = _linked(
        net, (0, 2, (0, 4)), (0, 4, (4, 8)), (1, 1, (0, 2)), (1, 2, (2, 6)), (2, 2, None)
    )
    expected, got = train_on_array(
        cores, weights_for_seed(net, 2), steps=2, stalls=1, link_stall=link_stall
    )
    for result, (_, counters) in zip(expected, got, strict=True):
        free = array_step_cycles(cores, layer_groups(cores), _spikes(result), _deltas(result))
        slower = [counters[n]["forward"] > free.forward[n] for n in range(1, len(cores))]
        assert any(slower)  # the gates really stalled the links


def test_layers_integrate_at_the_same_time():
    """The forward pass of three linked layers takes less than the layers one after another:
    layer l+1 integrates timestep t while layer l integrates t+1."""
    net = SnnConfig(layers=(16, 16, 16, 8), timesteps=6, surrogate="triangle")
    cores = _linked(net, (0, 4, None), (1, 4, None), (2, 4, None))
    expected, got = train_on_array(cores, weights_for_seed(net, 1), steps=1, stalls=0, density=0.5)
    counters = got[0][1]
    traces = expected[0].traces
    alone = [forward_cycles(p, [int(v) for v in traces[p.layer].x[0].sum(1)]) for p in cores]
    together = max(c["forward"] for c in counters.values())
    assert together < sum(alone) * 0.8, (together, alone)


def test_a_bad_route_word_is_answered_by_the_array_itself():
    net = SnnConfig(layers=(4, 4, 2), timesteps=2)
    cores = _linked(net, (0, 2, None), (1, 2, None))

    async def script(host):
        answers = []
        # a wrong top byte; no cores but not the array (first = 1); cores past the array
        for header in [0x12 << 24 | 1, ROUTE << 24 | 1 << 12, ROUTE << 24 | 1 << 12 | 2]:
            await host.send([header, command(Opcode.INFO)])
            answers.append(await host.recv())
        await host.send([route(1), command(Opcode.INFO)])  # the array still works
        answers.append(await host.recv())
        return answers

    *bad, info = run_array(cores, script, deadline=DEADLINE)
    for words, top in zip(bad, [0x12, ROUTE, ROUTE], strict=True):
        assert len(words) == 1
        assert parse_status(words[0]) == (top, Status.BAD_ARG)
        assert status_core(words[0]) == ARRAY_TAG
    assert status_core(info[-1]) == 1 and len(info) == 4


def test_a_broadcast_command_is_answered_once_by_every_core():
    net = SnnConfig(layers=(4, 4, 4, 2), timesteps=2)
    cores = _linked(net, (0, 2, (0, 2)), (0, 2, (2, 4)), (1, 2, None), (2, 2, None))

    async def script(host):
        s = ArraySession(cores, host.send, host.recv)
        return await s.call(s.all_cores, Opcode.INFO)

    answers = run_array(cores, script, stalls=3, deadline=DEADLINE)
    assert sorted(answers) == [0, 1, 2, 3]
    for n, words in answers.items():
        assert words[1] | words[2] << 32 == int(cores[n].core_hash, 16)


async def _learning_state(s: ArraySession) -> list:
    """The weights and LFSR states of layers 0 and 1, layer by layer."""
    return [await s.read_layer(n, q) for n in (0, 1) for q in (Quantity.WEIGHTS, Quantity.LFSR)]


def test_a_bad_load_before_forward_is_reported_and_changes_no_learning_state():
    """FORWARD follows LOAD_SPIKES without waiting for its answers: a bad payload (an index
    ``>= n_in``) is still answered ``BAD_SPIKES`` by every first-layer core, the FORWARD that
    runs on the previous spikes answers ``OK`` everywhere, no weight or LFSR state changes, and
    the next training step is bit-exact again."""
    net = SnnConfig(layers=(4, 4, 2), timesteps=2, surrogate="triangle")
    cores = _linked(net, (0, 2, (0, 2)), (0, 2, (2, 4)), (1, 2, None))
    weights = weights_for_seed(net, 3)
    xs, labels = samples(net, 5, steps=2, density=0.6)
    golden = GoldenModel(net, weights)
    expected = [golden.train_step(x, labels=y) for x, y in zip(xs, labels, strict=True)]

    async def script(host):
        s = ArraySession(cores, host.send, host.recv)
        await s.write_weights(weights)
        await s.train_step(xs[0][0], int(labels[0][0]))
        before = await _learning_state(s)
        await s.post([0, 1], Opcode.LOAD_SPIKES, 0, [1, 4, 0])  # index 4 of 4 inputs
        await s.post([0, 1, 2], Opcode.FORWARD)
        answers = []
        for _ in range(5):
            word = (await host.recv())[-1]
            answers.append((status_core(word), *parse_status(word)))
        after = await _learning_state(s)
        await s.train_step(xs[1][0], int(labels[1][0]))
        return answers, before, after, await s.read_weights()

    answers, before, after, final = run_array(cores, script, deadline=DEADLINE)
    assert sorted(answers) == sorted(
        [
            (0, Opcode.LOAD_SPIKES, Status.BAD_SPIKES),
            (0, Opcode.FORWARD, Status.OK),
            (1, Opcode.LOAD_SPIKES, Status.BAD_SPIKES),
            (1, Opcode.FORWARD, Status.OK),
            (2, Opcode.FORWARD, Status.OK),
        ]
    )
    for n in (0, 1):  # one core's answers keep the order of its packets
        mine = [op for core, op, _ in answers if core == n]
        assert mine == [Opcode.LOAD_SPIKES, Opcode.FORWARD]
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))
    for layer in range(2):
        assert torch.equal(final[layer], expected[1].weights[layer]), layer


def test_a_bad_streamed_load_stops_its_forward_pass_and_leaves_no_spike_on_a_link():
    """LOAD_SPIKES with the forward pass streamed into it (``LOAD_FORWARD``) and a bad index in
    its last timestep: the first layer has run (and sent spikes of) the timesteps before it;
    every first-layer core answers ``BAD_SPIKES`` once, no weight or LFSR state changes, and
    the next training step -- the layer above reading the link again -- is bit-exact."""
    net = SnnConfig(layers=(4, 4, 2), timesteps=8, surrogate="triangle")
    cores = _linked(net, (0, 2, (0, 2)), (0, 2, (2, 4)), (1, 2, None))
    weights = weights_for_seed(net, 3)
    xs, labels = samples(net, 5, steps=2, density=0.6)
    golden = GoldenModel(net, weights)
    expected = [golden.train_step(x, labels=y) for x, y in zip(xs, labels, strict=True)]
    bad = [4, 0, 1, 2, 3] * 7 + [1, 4]  # seven full timesteps, then index 4 of 4 inputs

    async def script(host):
        s = ArraySession(cores, host.send, host.recv)
        await s.write_weights(weights)
        await s.train_step(xs[0][0], int(labels[0][0]))
        before = await _learning_state(s)
        await s.post([0, 1], Opcode.LOAD_SPIKES, LOAD_FORWARD, bad)
        answers = []
        for _ in range(2):
            word = (await host.recv())[-1]
            answers.append((status_core(word), *parse_status(word)))
        after = await _learning_state(s)
        await s.train_step(xs[1][0], int(labels[1][0]))
        return answers, before, after, await s.read_weights()

    answers, before, after, final = run_array(cores, script, deadline=DEADLINE)
    assert sorted(answers) == [
        (0, Opcode.LOAD_SPIKES, Status.BAD_SPIKES),
        (1, Opcode.LOAD_SPIKES, Status.BAD_SPIKES),
    ]
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))
    for layer in range(2):
        assert torch.equal(final[layer], expected[1].weights[layer]), layer


def test_answers_waiting_together_leave_back_to_back():
    """The response merger locks the next packet in the cycle the last word of the one before
    leaves: four cores' one-word answers to one broadcast take four consecutive cycles (the
    cycle model's ``ANSWER_CYCLES = 1``), each core once, lowest first."""
    net = SnnConfig(layers=(4, 4, 4, 2), timesteps=2)
    cores = _linked(net, (0, 2, (0, 2)), (0, 2, (2, 4)), (1, 2, None), (2, 2, None))

    async def script(host):
        ctx, dut = host.ctx, host.dut
        await host.send([route(0, 4), command(Opcode.SET_LR, cores[0].lr_min)])
        ctx.set(dut.rsp.ready, 1)
        seen = []
        for cycle in range(200):
            *_, valid, beat = await ctx.tick().sample(dut.rsp.valid, dut.rsp.payload)
            if valid:
                seen.append((cycle, beat.data, beat.last))
        return seen

    seen = run_array(cores, script, deadline=DEADLINE)
    assert [status_core(d) for _, d, _ in seen] == [0, 1, 2, 3]
    assert all(last and parse_status(d) == (Opcode.SET_LR, Status.OK) for _, d, last in seen)
    first = seen[0][0]
    assert [c for c, _, _ in seen] == [first, first + 1, first + 2, first + 3]


@pytest.mark.parametrize(
    ("order", "message"),
    [
        ([1, 0, 2], "listed layer by layer"),
        ([0, 2], "cores cover 2 of 4 neurons"),
    ],
)
def test_array_cores_must_tile_each_layer_in_order(order, message):
    net = SnnConfig(layers=(4, 4, 2), timesteps=2)
    all_cores = _linked(net, (0, 2, (0, 2)), (0, 2, (2, 4)), (1, 2, None))
    with pytest.raises(ValueError, match=message):  # CoreArray's own check
        layer_groups([all_cores[n] for n in order], linked=True)


def test_array_cores_must_be_linked():
    net = SnnConfig(layers=(4, 4, 2), timesteps=2)
    with pytest.raises(ValueError, match=r"cores\[0\] must be linked"):
        layer_groups(
            [CoreParams(net=net, lanes=2), CoreParams(net=net, layer=1, lanes=2)], linked=True
        )


def _spikes(result) -> list:
    """``[x, s_0, s_1, ...]`` of one golden training step, as the cycle model takes them."""
    return [result.traces[0].x[0].tolist()] + [tr.s[0].tolist() for tr in result.traces]


def _deltas(result) -> list:
    """Every layer's deltas of one golden training step (what the BP and WG engines skip by)."""
    return [tr.delta[0].tolist() for tr in result.traces]


@pytest.mark.parametrize(
    ("layers", "timesteps", "cores", "lanes"),
    [
        ((16, 16, 16, 8), 6, 3, 4),  # one core per layer: layer pipelining only
        ((6, 8, 6, 4), 4, 5, 2),  # split layers: merged spikes, reduced errors
        ((16, 32, 16, 8), 4, 6, 4),  # a layer split in three
        ((8, 64, 24, 4), 3, 4, 8),  # slices of 2 and 1 lane groups: the faster one's error
        # FIFO fills while the reducer waits for the slower one, and its BP engine pauses
    ],
)
def test_the_cycle_model_predicts_every_cores_counters(layers, timesteps, cores, lanes):
    """The array cycle model gives every core's FORWARD and BACKWARD counter exactly: links,
    waiting for spikes and errors, merges and reductions included."""
    net = SnnConfig(layers=layers, timesteps=timesteps, surrogate="triangle")
    params = map_network(net, cores, lanes=lanes).core_params()
    expected, got = train_on_array(params, weights_for_seed(net, 1), steps=1, stalls=0)
    model = array_step_cycles(
        params, layer_groups(params), _spikes(expected[0]), _deltas(expected[0])
    )
    ks = [nonzero_groups(p, _deltas(expected[0])[p.layer]) for p in params]
    assert any(0 < k < p.groups for p, row in zip(params, ks, strict=True) for k in row) or all(
        p.groups == 1 for p in params
    )
    counters = got[0][1]
    assert [counters[n]["forward"] for n in range(cores)] == model.forward
    assert [counters[n]["backward"] for n in range(cores)] == model.backward
