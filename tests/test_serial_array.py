"""A core array behind the serial link (Amaranth simulator): routed packets in frames, one
answer frame per addressed core, exactly once through a line that damages bytes."""

from __future__ import annotations

import pytest
import torch

from spikeforge.codesign.mapping import map_network
from spikeforge.hw.protocol import (
    BACKWARD_ALL,
    ROUTE,
    ArrayRules,
    Opcode,
    Status,
    array_route,
    command,
    parse_status,
    route,
    status_core,
)
from spikeforge.hw.serial_protocol import FrameReader, encode_frame
from spikeforge.sim.array_session import ArraySession
from spikeforge.sim.serial_host import ArrayLink
from spikeforge.sim.serial_sim import LineErrors, run_serial
from spikeforge.sw.config import SnnConfig
from spikeforge.sw.golden import GoldenModel

NET = SnnConfig(layers=(12, 8, 6), timesteps=3)
CORES = tuple(map_network(NET, 3, lanes=2).core_params())  # layer 0 split in two, layer 1


def _samples(steps: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    xs = [(torch.rand(NET.timesteps, 12, generator=gen) < 0.5).long() for _ in range(steps)]
    labels = [int(torch.randint(0, 6, (1,), generator=gen)) for _ in range(steps)]
    return xs, labels


def _golden(xs, labels) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    golden = GoldenModel(NET)
    start = [w.clone() for w in golden.weights]
    for x, y in zip(xs, labels, strict=True):
        golden.train_step(x.unsqueeze(0), labels=torch.tensor([y]))
    return start, golden.weights


def _session(host) -> ArraySession:
    link = ArrayLink(host, len(CORES))
    # the link waits for every packet's answers: the load apart from FORWARD
    return ArraySession(CORES, link.send, link.recv, frame_words=16, streamed=False)


async def _up_to_backward(host, weights, spikes, label: int) -> ArraySession:
    """Open the link (INFO to the array) and run a training step up to its BACKWARD."""
    await host.exchange([array_route(), command(Opcode.INFO)])
    s = _session(host)
    await s.write_weights(weights)
    await s.forward(spikes)
    await s.call(s.layers[-1], Opcode.SET_LABEL, label)
    return s


@pytest.mark.parametrize("rate", [0.0, 2e-3], ids=["clean", "damaged"])
def test_an_array_trains_bit_exact_through_the_link(rate):
    """Every layer's weights equal the golden model's after the steps; on the damaged line
    (flips, drops and repeats at ``rate`` each, both ways) frames and answers are lost and
    sent again, and no broadcast BACKWARD runs twice."""
    xs, labels = _samples(5, seed=3)
    start, expected = _golden(xs, labels)

    async def script(host):
        await host.exchange([array_route(), command(Opcode.INFO)])  # sets the seq
        s = _session(host)
        await s.write_weights(start)
        for x, y in zip(xs, labels, strict=True):
            await s.train_step(x, y)
        return await s.read_weights(), host.stats

    errors = LineErrors(flip=rate, drop=rate, dup=rate, seed=11)
    (weights, stats), counters = run_serial(CORES, script, errors=errors, timeout=8_000, retries=24)
    for got, want in zip(weights, expected, strict=True):
        assert torch.equal(got, want)
    if rate:
        assert sum(errors.counts.values()) > 0
        assert stats.retries > 0 and counters["damaged"] + stats.damaged_answers > 0
    else:
        assert stats.retries == 0 and counters["damaged"] == 0
        assert counters["frames"] == stats.commands


def test_a_retried_broadcast_is_answered_by_every_core_again_and_runs_once():
    """BACKWARD to all three cores, its frame sent twice: six answers with its seq (each core
    twice: the second three from the link's store), and the weights moved one step."""
    xs, labels = _samples(1, seed=4)
    start, expected = _golden(xs, labels)

    async def script(host):
        s = await _up_to_backward(host, start, xs[0], labels[0])
        seq = host.take_seq()
        frame = encode_frame(seq, [route(0, 3), command(Opcode.BACKWARD, BACKWARD_ALL)])
        reader, answers = FrameReader(), []
        for n in (3, 6):
            await host.port.write(frame)
            while len(answers) < n:
                answers += reader.feed(await host.port.read(8_000))
        return seq, answers, await s.read_weights()

    (seq, answers, weights), counters = run_serial(CORES, script)
    assert {got for got, _ in answers} == {seq}
    assert [parse_status(words[-1]) for _, words in answers] == [(Opcode.BACKWARD, Status.OK)] * 6
    cores = [status_core(words[-1]) for _, words in answers]
    assert sorted(cores[:3]) == sorted(cores[3:]) == [0, 1, 2]
    assert counters["retries"] == 1
    for got, want in zip(weights, expected, strict=True):
        assert torch.equal(got, want)


ROUTE_WORDS = [
    ([route(0, 3), command(Opcode.COUNTERS)], 3),
    ([route(1, 2), command(Opcode.COUNTERS)], 2),
    ([route(2), command(Opcode.COUNTERS)], 1),
    ([array_route(), command(Opcode.INFO)], 1),  # the array itself
    ([route(0, 3)], 1),  # a route word alone: the array answers BAD_LENGTH
    ([(ROUTE << 24) | (2 << 12) | 2, command(Opcode.COUNTERS)], 1),  # past the last core
    ([(ROUTE << 24) | (1 << 12), command(Opcode.INFO)], 1),  # count 0, first 1: bad
    ([0x12 << 24 | 1, command(Opcode.COUNTERS)], 1),  # not a route word
]


def test_the_link_expects_the_answers_the_array_sends():
    """For each kind of route word, the link sends as many answer frames as the array's rule
    (:meth:`ArrayRules.answers`) says -- then nothing more (a frame after them is answered
    in turn, so an extra or missing answer would show)."""
    rules = ArrayRules(len(CORES))
    for words, n in ROUTE_WORDS:
        assert rules.answers(words[0], alone=len(words) == 1) == n

    async def script(host):
        got = []
        reader = FrameReader()
        for words, n in ROUTE_WORDS:
            seq = host.take_seq()
            await host.port.write(encode_frame(seq, words))
            frames = []
            while True:  # everything until the line stays quiet
                chunk = await host.port.read(3_000)
                if not chunk:
                    break
                frames += reader.feed(chunk)
            got.append((n, [(s == seq) for s, _ in frames]))
        return got

    got, counters = run_serial(CORES, script)
    for (n, seqs), (words, _) in zip(got, ROUTE_WORDS, strict=True):
        assert seqs == [True] * n, [hex(w) for w in words]
    assert counters["overflows"] == 0


def test_a_damaged_frame_to_the_array_runs_nothing_and_draws_no_answer():
    """A broadcast BACKWARD frame with a flipped CRC bit: no core runs it (the weights stay),
    no answer comes; the next command is answered by every core."""
    xs, labels = _samples(1, seed=6)
    start, _ = _golden(xs, labels)

    async def script(host):
        s = await _up_to_backward(host, start, xs[0], labels[0])
        frame = bytearray(
            encode_frame(host.take_seq(), [route(0, 3), command(Opcode.BACKWARD, BACKWARD_ALL)])
        )
        frame[-2] ^= 0x10
        await host.port.write(bytes(frame))
        got = await host.port.read(6_000)
        counts = await s.call(s.all_cores, Opcode.COUNTERS)
        return got, counts, await s.read_weights()

    (got, counts, weights), counters = run_serial(CORES, script)
    assert got == b""
    assert sorted(counts) == [0, 1, 2]
    assert counters["damaged"] == 1
    for w, w0 in zip(weights, start, strict=True):
        assert torch.equal(w, w0)
