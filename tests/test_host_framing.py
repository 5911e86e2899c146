"""A core's host port in Amaranth's simulator: framing, atomic rejects and ABORT.

The reference is a naive model (the ``amaranth.lib.fifo`` tests' pattern): every packet's status
comes from :meth:`~spikeforge.hw.protocol.CoreRules.status`, and the core's state is what only the
accepted WRITE and LOAD_SPIKES packets wrote -- a rejected packet changes nothing.
"""

from __future__ import annotations

import random

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spikeforge.hw.params import CoreParams
from spikeforge.hw.protocol import (
    EXECUTED,
    QUANTITIES,
    WRITABLE,
    CoreRules,
    Opcode,
    Quantity,
    Status,
    command,
    parse_status,
    spike_words,
    to_signed,
)
from spikeforge.sim.amaranth_host import run_core, stream_put
from spikeforge.sim.fuzz import FuzzConfig, fuzz_core
from spikeforge.sim.fuzz_packets import CORE_KINDS, BadPackets
from spikeforge.sim.session import CoreSession
from spikeforge.sw.config import SnnConfig
from spikeforge.sw.golden import GoldenModel

NET = SnnConfig(layers=(6, 4), timesteps=3, w_bits=6, frac_bits=2)
CORE = CoreParams(net=NET, lanes=2, emit_error=True, write_buffer=12)
RULES = CoreRules.of(CORE)
DEADLINE = 5_000


class NaiveCore:
    """The writable quantities and the loaded spikes, changed only by accepted packets."""

    def __init__(self):
        self.values = {q: [0] * (RULES.shapes[q][0] * RULES.shapes[q][1]) for q in WRITABLE}
        self.values[Quantity.LFSR] = CORE.lfsr_seeds()
        self.spikes = [[0] * NET.layers[0] for _ in range(NET.timesteps)]

    def apply(self, words: list[int], status: Status) -> None:
        if status not in EXECUTED:
            return
        op, arg = words[0] >> 24, words[0] & 0xFFFFFF
        if op == Opcode.WRITE:
            q, row = Quantity(arg & 0xF), arg >> 4
            inner = RULES.shapes[q][1]
            for n, word in enumerate(words[1:]):
                if q == Quantity.LFSR:
                    value = word or 1
                else:
                    lo, hi = RULES.value_range(q)
                    value = min(max(to_signed(word), lo), hi)
                self.values[q][row * inner + n] = value
        elif op == Opcode.LOAD_SPIKES:
            rows, pos = [], 1
            for _ in range(NET.timesteps):
                count = words[pos]
                active = set(words[pos + 1 : pos + 1 + count])
                rows.append([int(i in active) for i in range(NET.layers[0])])
                pos += 1 + count
            self.spikes = rows


def _valid_packets(rng: random.Random) -> list[list[int]]:
    """Right packets: WRITE chunks of every writable quantity, LOAD_SPIKES, a few commands."""
    packets = []
    for q in WRITABLE:
        outer, inner = RULES.shapes[q]
        lo, hi = (1, 1 << 31) if q == Quantity.LFSR else RULES.value_range(q)
        values = [rng.randint(lo - 2, hi + 2) for _ in range(outer * inner)]
        packets += [[command(Opcode.WRITE, a), *p] for a, p in RULES.write_chunks(q, values)]
    spikes = [[int(rng.random() < 0.5) for _ in range(NET.layers[0])] for _ in range(3)]
    packets.append([command(Opcode.LOAD_SPIKES), *spike_words(spikes)])
    packets += [[command(Opcode.SET_LABEL, 1)], [command(Opcode.INFO)]]
    return packets


def _exchange(packets: list[tuple[list[int], bool]]):
    """Send every ``(words, abandon)``; then read every writable quantity and run FORWARD."""

    async def script(host):
        answers = []
        for words, abandon in packets:
            for n, word in enumerate(words):
                last = n == len(words) - 1
                await stream_put(
                    host.ctx,
                    host.dut,
                    word & 0xFFFFFFFF,
                    0,
                    int(last),
                    DEADLINE,
                    abandon=int(last and abandon),
                )
            answers.append(await host.recv())
        s = CoreSession(CORE, host.call)
        state = {q: (await s.read(q)).reshape(-1).tolist() for q in WRITABLE}
        await s.forward()
        return answers, state, await s.read(Quantity.MEMBRANES)

    return run_core(CORE, script, host_deadline=DEADLINE)


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 10_000), count=st.integers(8, 24))
def test_every_packet_draws_the_models_status_and_only_accepted_ones_change_state(seed, count):
    rng = random.Random(seed)
    bad = BadPackets(RULES, rng)
    valid = _valid_packets(rng)
    sent: list[tuple[list[int], bool]] = []
    while len(sent) < count:
        pick = rng.random()
        if pick < 0.35:
            sent.append((rng.choice(valid), False))
        elif pick < 0.45:
            sent.append((rng.choice(valid), True))  # the same packet, abandoned
        else:
            sent += [(list(f), False) for f in bad.draw(valid, rng.choice(CORE_KINDS)).frames]
    answers, state, membranes = _exchange(sent)
    model = NaiveCore()
    for (words, abandon), answer in zip(sent, answers, strict=True):
        status = RULES.status(words, abandoned=abandon)
        assert parse_status(answer[-1]) == (words[0] >> 24, status), (words, abandon)
        extra = 3 if status == Status.OK and words[0] >> 24 == Opcode.INFO else 0
        assert len(answer) == 1 + extra
        model.apply(words, status)
    for q in WRITABLE:
        unsigned = not QUANTITIES[q].signed
        want = [v & 0xFFFFFFFF for v in model.values[q]] if unsigned else model.values[q]
        assert state[q] == want, q
    weights = torch.tensor(model.values[Quantity.WEIGHTS]).reshape(4, 6)
    golden = GoldenModel(NET, [weights]).forward(torch.tensor([model.spikes]))[0]
    assert torch.equal(membranes, golden.u[0])  # the spikes of the last accepted LOAD_SPIKES


def test_a_write_larger_than_the_buffer_goes_in_whole_row_packets():
    values = torch.arange(24).reshape(4, 6) - 12
    assert len(RULES.write_chunks(Quantity.WEIGHTS, values.reshape(-1).tolist())) == 2

    async def script(host):
        s = CoreSession(CORE, host.call)
        await s.write(Quantity.WEIGHTS, values)
        return await s.read(Quantity.WEIGHTS)

    assert torch.equal(run_core(CORE, script, host_deadline=DEADLINE), values)


def test_abort_during_a_read_ends_it_and_answers_in_order():
    async def script(host):
        await host.send([command(Opcode.READ, int(Quantity.WEIGHTS))])
        await host.wait(30)  # the response FIFO fills, the READ waits for room
        await host.send([command(Opcode.ABORT)])
        read = await host.recv()
        abort = await host.recv()
        await host.send([command(Opcode.ABORT)])  # idle: just OK
        return read, abort, await host.recv()

    read, abort, idle = run_core(CORE, script, host_deadline=DEADLINE)
    # The ABORT arrives while the 24-value READ waits for the host to take its answer: the
    # values already read, then the READ's ABORTED, then ABORT's OK.
    assert parse_status(read[-1]) == (Opcode.READ, Status.ABORTED)
    assert 0 < len(read) - 1 < 24
    assert parse_status(abort[-1]) == (Opcode.ABORT, Status.OK)
    assert parse_status(idle[-1]) == (Opcode.ABORT, Status.OK)


def test_abort_mid_backward_then_the_recovery_trains_bit_exact():
    """BACKWARD with update stopped by ABORT answers ABORTED; writing back the step's weights,
    zero gradients and LFSR states and running BACKWARD again gives the golden model's step."""
    net = SnnConfig(layers=(16, 8), timesteps=4, surrogate="triangle")
    params = CoreParams(net=net, lanes=2, emit_error=True)
    gen = torch.Generator().manual_seed(3)
    x = (torch.rand(1, 4, 16, generator=gen) < 0.6).long()
    golden = GoldenModel(net)
    before = golden.state_dict()
    expected = golden.train_step(x, labels=torch.tensor([5])).weights[0]

    async def script(host):
        s = CoreSession(params, host.call)
        await s.write(Quantity.WEIGHTS, before["weights"][0])
        await s.load_spikes(x[0])
        await s.forward()
        await s.set_label(5)
        await host.send([command(Opcode.BACKWARD, 1)])
        await host.wait(400)  # the BP engine's error phase
        await host.send([command(Opcode.ABORT)])
        answers = [parse_status((await host.recv())[-1]) for _ in range(2)]
        await s.write(Quantity.WEIGHTS, before["weights"][0])
        await s.write(Quantity.GRADS, torch.zeros_like(before["weights"][0]))
        await s.write(Quantity.LFSR, before["lfsr_states"][0])
        await s.backward(update=True)
        return answers, await s.read(Quantity.WEIGHTS)

    answers, weights = run_core(params, script, host_deadline=20_000)
    assert answers == [(Opcode.BACKWARD, Status.ABORTED), (Opcode.ABORT, Status.OK)]
    assert torch.equal(weights, expected)


def test_a_short_fuzz_run_in_the_amaranth_simulator():
    """The Verilator fuzz testbench's scenario, a few packets of every kind, on a hidden-layer
    core whose WRITEs need several packets: every answer and the final weights are right."""
    net = SnnConfig(layers=(12, 8, 4), timesteps=3, surrogate="triangle")
    params = CoreParams(net=net, layer=0, lanes=4, emit_error=True, write_buffer=16)
    cfg = FuzzConfig(packets=150, seed=5, check_every=3)

    async def script(host):
        return await fuzz_core(params, host.send, host.recv, host.wait, cfg)

    report = run_core(params, script, host_deadline=20_000)
    assert report.total >= 150 and report.mismatches == 0
    assert report.steps >= 5 and report.checkpoints >= 2
    bad = sum(n for k, n in report.packets.items() if k in CORE_KINDS)
    assert bad > 20


def test_a_packet_sent_while_a_command_runs_waits_its_turn():
    """The framer holds the first word of a packet that arrives during FORWARD (its other words
    wait on the stream) and runs it afterwards: answers in packet order, a WRITE intact."""
    values = torch.arange(24).reshape(4, 6) - 7

    async def script(host):
        s = CoreSession(CORE, host.call)
        await s.load_spikes(torch.ones(3, 6, dtype=torch.int64))
        await host.send([command(Opcode.FORWARD)])
        first, payload = RULES.write_chunks(Quantity.WEIGHTS, values.reshape(-1).tolist())[0]
        await host.send([command(Opcode.WRITE, first), *payload])  # held, then staged
        await host.send([command(Opcode.INFO)])
        answers = [parse_status((await host.recv())[-1]) for _ in range(3)]
        return answers, await s.read(Quantity.WEIGHTS)

    answers, weights = run_core(CORE, script, host_deadline=DEADLINE)
    assert answers == [
        (Opcode.FORWARD, Status.OK),
        (Opcode.WRITE, Status.OK),
        (Opcode.INFO, Status.OK),
    ]
    assert torch.equal(weights[:2], values[:2])  # the first packet's two rows


def test_reads_and_writes_of_a_few_rows_at_a_time():
    """READ by row ranges (the rows asked for, in order) and WRITE packets of fewer rows than
    the buffer holds (only those rows written); a WRITE that ends inside a row writes nothing."""
    values = torch.arange(24).reshape(4, 6) - 12

    async def script(host):
        s = CoreSession(CORE, host.call, frame_words=7)  # one row of 6 per packet
        await s.write(Quantity.WEIGHTS, values)
        rows = (await host.call(Opcode.READ, int(Quantity.WEIGHTS) | 1 << 4 | 2 << 17))[0]
        tail = (await host.call(Opcode.READ, int(Quantity.WEIGHTS) | 3 << 4))[0]
        ragged = await host.call(Opcode.WRITE, int(Quantity.WEIGHTS) | 1 << 4, [5] * 8)
        return rows, tail, ragged[1], await s.read(Quantity.WEIGHTS)

    rows, tail, ragged, after = run_core(CORE, script, host_deadline=DEADLINE)
    assert [to_signed(w) for w in rows] == values[1:3].reshape(-1).tolist()
    assert [to_signed(w) for w in tail] == values[3].tolist()
    assert ragged == Status.BAD_LENGTH
    assert torch.equal(after, values)
