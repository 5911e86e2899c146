"""The array's host side in Amaranth's simulator: its own commands, the watchdog, ABORT.

Every packet must draw exactly one answer from every core it addresses (or one from the array),
a stuck core must never block the others, and after a TIMEOUT or an ABORT the array must train
bit-exactly again.
"""

from __future__ import annotations

import torch

from spikeforge.codesign.mapping import map_network
from spikeforge.hw.array import array_hash
from spikeforge.hw.protocol import (
    ARRAY_TAG,
    MAGIC,
    Opcode,
    Quantity,
    Status,
    array_route,
    command,
    parse_status,
    route,
    spike_words,
    status_core,
)
from spikeforge.hw.router import default_timeout
from spikeforge.sim.amaranth_host import run_array
from spikeforge.sim.array_session import ArraySession
from spikeforge.sim.fuzz import FuzzConfig, fuzz_array
from spikeforge.sim.session import CoreTimeout
from spikeforge.sim.stimulus import samples, weights_for_seed
from spikeforge.sw.config import SnnConfig
from spikeforge.sw.golden import GoldenModel

NET = SnnConfig(layers=(8, 12, 4), timesteps=3)
CORES = map_network(NET, 3, lanes=4).core_params()
DEADLINE = 20_000


def _run(script, host_deadline=DEADLINE, **kw):
    return run_array(CORES, script, host_deadline=host_deadline, deadline=400_000, **kw)


def _answer(words):
    return status_core(words[-1]), *parse_status(words[-1])


def test_the_array_answers_info_and_takes_a_new_timeout():
    async def script(host):
        out = []
        for words in (
            [array_route(), command(Opcode.INFO)],
            [array_route(), command(Opcode.SET_TIMEOUT), 1234],
            [array_route(), command(Opcode.INFO)],
            [array_route(), command(Opcode.SET_TIMEOUT)],  # no payload
            [array_route(), command(Opcode.SET_TIMEOUT, 1), 5],
            [array_route(), command(Opcode.UPDATE)],
        ):
            await host.send(words)
            out.append(await host.recv())
        return out

    info, set_ok, info2, short, arg, unknown = _run(script)
    assert info[:4] == [MAGIC, *_hash_words(), 3] and info[4] == default_timeout(CORES)
    assert _answer(info) == (ARRAY_TAG, Opcode.INFO, Status.OK)
    assert _answer(set_ok) == (ARRAY_TAG, Opcode.SET_TIMEOUT, Status.OK)
    assert info2[4] == 1234
    assert _answer(short)[2] == Status.BAD_LENGTH
    assert _answer(arg)[2] == Status.BAD_ARG
    assert _answer(unknown) == (ARRAY_TAG, Opcode.UPDATE, Status.BAD_OPCODE)


def _hash_words():
    h = int(array_hash(CORES), 16)
    return [h & 0xFFFFFFFF, h >> 32]


def test_a_core_cut_off_inside_a_packet_gets_it_closed_and_changes_nothing():
    """With a one-cycle watchdog, a LOAD_SPIKES packet is given up at the first cycle one of
    its words waits for the core: the array answers TIMEOUT, and before the core's next packet
    it closes the broken one with an ``abandon`` word. The core's spikes stay those loaded
    before."""
    x = samples(NET, 2, steps=1, density=0.5)[0][0]
    other = torch.ones_like(x[0])
    golden = GoldenModel(NET, weights_for_seed(NET, 2))
    expected = [tr.s[0] for tr in golden.forward(x)]
    layer0 = [n for n, p in enumerate(CORES) if p.layer == 0]

    async def script(host):
        s = ArraySession(CORES, host.send, host.recv)
        await s.write_weights(golden.weights)
        await s.call(layer0, Opcode.LOAD_SPIKES, 0, spike_words(x[0].tolist()))
        await s.set_timeout(1)
        await host.send(
            [
                route(layer0[0], len(layer0)),
                command(Opcode.LOAD_SPIKES),
                *spike_words(other.tolist()),
            ]
        )
        cut = [await host.recv() for _ in layer0]
        await s.set_timeout(default_timeout(CORES))
        await s.call(s.all_cores, Opcode.FORWARD)  # preceded by the closing words
        return cut, await s.read_layer(len(s.layers) - 1, Quantity.SPIKES)

    cut, spikes = _run(script)
    assert sorted(_answer(w) for w in cut) == [
        (n, Opcode.LOAD_SPIKES, Status.TIMEOUT) for n in layer0
    ]
    assert torch.equal(spikes, expected[-1])


def test_a_silent_core_is_cut_off_mid_answer_and_the_rest_is_dropped():
    """A two-cycle watchdog ends a READ whose words stop coming (the core's response FIFO
    refills slower than the host takes it) with a TIMEOUT status word; the core's late words are
    dropped and its next answer is its own again."""

    async def script(host):
        s = ArraySession(CORES, host.send, host.recv)
        await s.set_timeout(2)
        await host.send([route(0), command(Opcode.READ, int(Quantity.WEIGHTS))])
        read = await host.recv()
        await s.set_timeout(0)  # off
        await host.send([route(0), command(Opcode.INFO)])
        return read, await host.recv()

    read, info = _run(script, stalls=0)
    assert _answer(read) == (0, Opcode.READ, Status.TIMEOUT)
    assert _answer(info) == (0, Opcode.INFO, Status.OK) and info[0] == MAGIC


def test_abort_mid_forward_clears_the_links_and_the_step_trains_bit_exact():
    xs, labels = samples(NET, 4, steps=1, density=0.6)
    golden = GoldenModel(NET, weights_for_seed(NET, 4))
    expected = golden.train_step(xs[0], labels=labels[0]).weights

    async def script(host):
        s = ArraySession(CORES, host.send, host.recv)
        await s.write_weights(weights_for_seed(NET, 4))
        layer0 = s.layers[0]
        await s.call(layer0, Opcode.LOAD_SPIKES, 0, spike_words(xs[0][0].tolist()))
        await s.post(s.all_cores, Opcode.FORWARD)
        await host.wait(40)  # layer 0 has sent some spikes down the links
        interrupted = await s.abort()
        await s.call(s.all_cores, Opcode.FORWARD)
        await s.call(s.layers[-1], Opcode.SET_LABEL, int(labels[0, 0]))
        await s.post(s.layers[-1], Opcode.BACKWARD, 1)
        await s.post(s.layers[0], Opcode.BACKWARD, 3)
        await s.collect(dict.fromkeys(s.all_cores, Opcode.BACKWARD))
        return interrupted, await s.read_weights()

    interrupted, weights = _run(script)
    assert Status.ABORTED in interrupted.values()
    for got, want in zip(weights, expected, strict=True):
        assert torch.equal(got, want)


def test_a_short_array_fuzz_run_in_the_amaranth_simulator():
    cfg = FuzzConfig(packets=120, seed=3, check_every=3, watchdog=0.3)

    async def script(host):
        return await fuzz_array(CORES, host.send, host.recv, host.wait, cfg)

    report = _run(script)
    assert report.total >= 120 and report.mismatches == 0 and report.steps >= 4


def test_sessions_name_the_core_and_the_command_when_no_answer_comes():
    """Core 2 (the last layer) runs FORWARD alone and waits forever for spikes: with the
    watchdog off the host's deadline ends the wait, with it on the array's TIMEOUT does; both
    raise CoreTimeout naming the core and the command, and ABORT brings the core back."""

    async def script(host):
        s = ArraySession(CORES, host.send, host.recv)
        errors, interrupted = [], []
        for cycles in (0, 300):
            await s.set_timeout(cycles)
            try:
                await s.core(2).forward()
            except CoreTimeout as exc:
                errors.append(str(exc))
            interrupted.append(await s.abort([2]))
        await s.core(2).info()
        return errors, interrupted

    errors, interrupted = _run(script, host_deadline=2_000)
    assert errors[0] == "core 2: FORWARD(arg=0) got no answer: no answer word within 2000 cycles"
    assert errors[1].startswith("core 2: FORWARD(arg=0) answered TIMEOUT")
    assert interrupted == [{2: Status.ABORTED}, {}]  # after TIMEOUT the late answer is dropped
