"""The host command stream of a training step on the array (codesign/host_stream.py)."""

from __future__ import annotations

import pytest

from spikeforge.codesign.host_stream import train_step_stream
from spikeforge.hw.protocol import (
    BACKWARD_ALL,
    LOAD_FORWARD,
    Opcode,
    command,
    route,
    spike_words,
)


def test_a_training_step_is_four_packets_with_the_answers_they_draw():
    layers = [[0, 1], [2, 3], [4]]
    spikes = [[0, 1, 1], [1, 0, 0]]
    stream = train_step_stream(layers, spikes, 3)
    assert [p.words[:2] for p in stream] == [
        (route(4), command(Opcode.SET_LABEL, 3)),
        (route(2, 3), command(Opcode.FORWARD)),
        (route(0, 2), command(Opcode.LOAD_SPIKES, LOAD_FORWARD)),
        (route(0, 5), command(Opcode.BACKWARD, BACKWARD_ALL)),
    ]
    assert list(stream[2].words[2:]) == spike_words(spikes) == [2, 1, 2, 1, 0]
    # the label and FORWARD are followed at once: their answers come with the load's
    assert [p.wait for p in stream] == [False, False, True, True]
    assert stream[0].answers == {4: Opcode.SET_LABEL}
    assert stream[1].answers == dict.fromkeys(range(2, 5), Opcode.FORWARD)
    assert stream[2].answers == dict.fromkeys(range(2), Opcode.LOAD_SPIKES)


def test_a_one_layer_array_waits_for_its_backward():
    stream = train_step_stream([[0, 1]], [[1]], 0)
    assert stream[1].words[1] == command(Opcode.LOAD_SPIKES, LOAD_FORWARD)
    assert len(stream) == 3  # no FORWARD packet: the load runs it
    assert [p.words[1] >> 24 for p in stream][-1] == Opcode.BACKWARD
    assert stream[-1].wait and stream[-1].answers == {0: Opcode.BACKWARD, 1: Opcode.BACKWARD}


def test_cores_of_a_packet_must_be_contiguous():
    with pytest.raises(ValueError, match=r"cores \[0, 2\] are not contiguous"):
        train_step_stream([[0, 2], [1]], [[1]], 0)


def test_a_host_that_waits_for_every_answer_loads_then_forwards():
    """``streamed=False`` (the serial link, the fast testbench: stop and wait): LOAD_SPIKES to
    the first layer, then FORWARD to every core -- no packet waits on one sent after it."""
    layers = [[0, 1], [2, 3], [4]]
    stream = train_step_stream(layers, [[0, 1, 1]], 3, streamed=False)
    assert [p.words[:2] for p in stream[:3]] == [
        (route(4), command(Opcode.SET_LABEL, 3)),
        (route(0, 2), command(Opcode.LOAD_SPIKES)),
        (route(0, 5), command(Opcode.FORWARD)),
    ]
    assert len(stream) == 4
