"""The hazards of issue 14, each as a scenario a new user hits in the simulator.

Every test drives the core or the array only through its host port, with raw packets, and uses
only what the protocol had before the fix (the new opcodes as plain numbers), so the same file
shows the failure before the change and the fix after it:

* a WRITE one payload word too long ran that word as a new command;
* a WRITE one word short took the next packet's INFO as its last weight, answered OK and put
  every later answer out of step;
* ``tlast`` was ignored (both of the above);
* LOAD_SPIKES accepted counts up to 2**24 (and waited for that many indices);
* a short LOAD_SPIKES packet overwrote the loaded spikes;
* a packet holding only a route word was never answered;
* a core that stopped answering blocked the array's router, and so every other core;
* nothing brought a busy core back except reset.

Each host wait has a deadline (``HOST_DEADLINE`` cycles), so a hang fails the test instead of
hanging it.
"""

from __future__ import annotations

import torch

from spikeforge.hw.params import CoreParams
from spikeforge.hw.protocol import (
    MAGIC,
    ROUTE,
    Opcode,
    Quantity,
    Status,
    command,
    parse_status,
    route,
    spike_words,
    status_core,
)
from spikeforge.sim.amaranth_host import run_array, run_core
from spikeforge.sim.session import CoreSession
from spikeforge.sw.config import SnnConfig
from spikeforge.sw.golden import GoldenModel

HOST_DEADLINE = 3_000
"""Cycles the host waits for a word to be taken or answered (every command here needs < 300)."""
ABORT = 0x0A
"""Opcode of ABORT (a plain number: the protocol before the fix has no name for it)."""
SET_TIMEOUT = 0x0B
"""Opcode of the array's SET_TIMEOUT command."""

NET = SnnConfig(layers=(8, 4), timesteps=2)
CORE = CoreParams(net=NET, lanes=2)
WEIGHTS = [(7 * n) % 50 - 25 for n in range(4 * 8)]
"""32 master weights, none of them zero (a zero written by mistake shows)."""


def _status(words: list[int]) -> tuple[int, Status]:
    return parse_status(words[-1])


def _run(script):
    return run_core(CORE, script, host_deadline=HOST_DEADLINE)


async def _info_answers(host) -> list[int]:
    """Send INFO and return its answer packet (it must be INFO's)."""
    await host.send([command(Opcode.INFO)])
    words = await host.recv()
    assert _status(words) == (Opcode.INFO, Status.OK), words
    assert words[0] == MAGIC
    return words


def test_a_write_one_word_too_long_does_not_run_the_extra_word():
    async def script(host):
        extra = command(Opcode.SET_LABEL, 3)
        await host.send([command(Opcode.WRITE, Quantity.WEIGHTS), *WEIGHTS, extra])
        answer = await host.recv()
        info = await _info_answers(host)
        weights = await CoreSession(CORE, host.call).read(Quantity.WEIGHTS)
        return answer, info, weights

    answer, _, weights = _run(script)
    assert len(answer) == 1
    op, status = _status(answer)
    assert op == Opcode.WRITE and status != Status.OK  # rejected, not split into two commands
    assert not weights.any()  # a rejected WRITE writes no value at all


def test_a_write_one_word_short_writes_nothing_and_the_next_packet_is_parsed():
    async def script(host):
        await host.send([command(Opcode.WRITE, Quantity.WEIGHTS), *WEIGHTS[:-1]])
        answer = await host.recv()
        await _info_answers(host)  # before: swallowed as the 32nd weight, never answered
        weights = await CoreSession(CORE, host.call).read(Quantity.WEIGHTS)
        return answer, weights

    answer, weights = _run(script)
    op, status = _status(answer)
    assert op == Opcode.WRITE and status != Status.OK
    assert not weights.any()


def test_load_spikes_rejects_a_count_beyond_the_inputs():
    async def script(host):
        answers = []
        for count in ((1 << 24) - 1, NET.layers[0] + 1):
            await host.send([command(Opcode.LOAD_SPIKES), count, *range(NET.layers[0])])
            answers.append(await host.recv())
            await _info_answers(host)
        return answers

    for answer in _run(script):
        assert len(answer) == 1
        op, status = _status(answer)
        assert op == Opcode.LOAD_SPIKES and status != Status.OK


def test_a_short_load_spikes_keeps_the_loaded_spikes():
    x = torch.tensor([[1, 0, 1, 1, 0, 0, 1, 0], [0, 1, 1, 0, 1, 0, 0, 1]])
    weights = torch.tensor(WEIGHTS).reshape(4, 8)

    async def script(host):
        s = CoreSession(CORE, host.call)
        await s.write(Quantity.WEIGHTS, weights)
        await s.load_spikes(x)
        other = spike_words(torch.ones(2, 8, dtype=torch.int64).tolist())
        await host.send([command(Opcode.LOAD_SPIKES), *other[:-3]])  # three indices short
        answer = await host.recv()
        await s.forward()
        return answer, await s.read(Quantity.MEMBRANES)

    answer, membranes = _run(script)
    assert _status(answer)[1] != Status.OK
    expected = GoldenModel(NET, [weights]).forward(x.unsqueeze(0))[0].u[0]
    assert torch.equal(membranes, expected)  # the forward pass ran on the spikes loaded first


# -- the array ----------------------------------------------------------------------------------

ARRAY_NET = SnnConfig(layers=(4, 4, 2), timesteps=2)
ARRAY = [
    CoreParams(net=ARRAY_NET, layer=0, lanes=2, linked=True),
    CoreParams(net=ARRAY_NET, layer=1, lanes=2, linked=True),
]


def _run_array(script):
    return run_array(ARRAY, script, host_deadline=HOST_DEADLINE, deadline=100_000)


async def _set_timeout(host, cycles: int) -> None:
    """The array's watchdog to ``cycles`` (its answer is read, whatever it is)."""
    await host.send([ROUTE << 24, command(SET_TIMEOUT), cycles])
    await host.recv()


def test_a_route_only_packet_gets_exactly_one_answer():
    async def script(host):
        await host.send([route(0, 2)])
        answer = await host.recv()
        await host.send([route(1), command(Opcode.INFO)])
        return answer, await host.recv()

    answer, info = _run_array(script)
    assert len(answer) == 1 and _status(answer)[1] != Status.OK
    assert _status(info) == (Opcode.INFO, Status.OK) and status_core(info[-1]) == 1


def test_a_stuck_core_does_not_block_the_others():
    """Core 1 (layer 1) runs FORWARD alone and waits forever for layer 0's spikes. Packets to
    it must not block a packet to core 0; each packet still gets one answer per core."""

    async def script(host):
        await _set_timeout(host, 500)
        await host.send([route(1), command(Opcode.FORWARD)])
        await host.send([route(1), command(Opcode.INFO)])
        await host.send([route(0), command(Opcode.INFO)])
        return [await host.recv() for _ in range(3)]

    answers = _run_array(script)
    by_core: dict[int, list] = {}
    for words in answers:
        by_core.setdefault(status_core(words[-1]), []).append(_status(words))
    assert by_core[0] == [(Opcode.INFO, Status.OK)]
    assert sorted(op for op, _ in by_core[1]) == [Opcode.INFO, Opcode.FORWARD]
    assert all(status != Status.OK for _, status in by_core[1])


def test_abort_brings_a_stuck_core_back():
    async def script(host):
        await host.send([route(1), command(Opcode.FORWARD)])
        await host.send([route(1), command(ABORT)])
        answers = [await host.recv() for _ in range(2)]
        await host.send([route(1), command(Opcode.INFO)])
        return answers, await host.recv()

    answers, info = _run_array(script)
    statuses = sorted(_status(words) for words in answers)
    assert statuses[0][0] == Opcode.FORWARD and statuses[0][1] != Status.OK
    assert statuses[1] == (ABORT, Status.OK)
    assert all(status_core(words[-1]) == 1 for words in answers)
    assert _status(info) == (Opcode.INFO, Status.OK)


def test_abort_stops_a_running_forward_and_the_core_keeps_working():
    net = SnnConfig(layers=(32, 8), timesteps=8)
    params = CoreParams(net=net, lanes=2)

    async def script(host):
        s = CoreSession(params, host.call)
        await s.load_spikes(torch.ones(8, 32, dtype=torch.int64))
        await host.send([command(Opcode.FORWARD)])  # about 1,100 cycles
        await host.send([command(ABORT)])
        answers = [await host.recv() for _ in range(2)]
        await _info_answers(host)
        await s.forward()  # runs to the end again
        return answers, await s.counters()

    answers, counters = run_core(params, script, host_deadline=HOST_DEADLINE)
    assert [_status(words)[0] for words in answers] == [Opcode.FORWARD, ABORT]
    assert _status(answers[0])[1] != Status.OK  # interrupted
    assert _status(answers[1])[1] == Status.OK
    assert counters["forward"] > 1000
