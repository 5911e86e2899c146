"""The host command stream of a training step on a :class:`~spikeforge.hw.array.CoreArray`.

A mapped network (``layers``: core indices per layer, as ``Mapping.core_params`` numbers them)
trains one sample with four routed commands (three on a one-layer array); between layers the
array's own links carry the data, so the host sends nothing else. The label goes first: its
answers leave while the forward pass runs, so they cost the step no cycles of their own.
:func:`train_step_stream` gives the packets for one sample (the route word, the command, its
payload) with the answers each packet draws and whether the host must collect them before
sending on;
:func:`stream_template` describes the same stream for a host driver (``mapping.json`` of
``spikeforge generate --network``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from spikeforge.hw.protocol import (
    BACKWARD_ALL,
    LOAD_FORWARD,
    Opcode,
    command,
    route,
    spike_words,
)

__all__ = ["Packet", "forward_stream", "stream_template", "train_step_stream"]


@dataclass(frozen=True)
class Packet:
    """One host packet: its words, the core answering each, and whether to wait for them (and
    the answers still pending) before the next packet."""

    words: tuple[int, ...]
    answers: dict[int, Opcode]
    wait: bool


def _packet(cores: Sequence[int], op: Opcode, arg: int, payload=(), *, wait: bool) -> Packet:
    first = cores[0]
    if list(cores) != list(range(first, first + len(cores))):
        raise ValueError(f"cores {list(cores)} are not contiguous")
    words = (route(first, len(cores)), command(op, arg), *[w & 0xFFFFFFFF for w in payload])
    return Packet(words, dict.fromkeys(cores, op), wait)


def _phases(layers: Sequence[Sequence[int]]):
    everyone = [n for group in layers for n in group]
    return everyone, list(layers[0]), list(layers[-1])


def forward_stream(
    layers: Sequence[Sequence[int]], spikes: Sequence[Sequence[int]], *, streamed: bool = True
) -> list[Packet]:
    """The forward pass of input ``spikes`` ``[T][n_in]``: FORWARD to the cores above the first
    layer (if any; ``wait=False``: they wait for the first layer's spikes), then LOAD_SPIKES with
    :data:`~spikeforge.hw.protocol.LOAD_FORWARD` to the first layer's cores, which run each
    timestep as soon as its spikes are written and answer once the forward pass is done.

    ``streamed=False``, for a host that waits for every packet's answers before the next (the
    serial link's): LOAD_SPIKES to the first layer's cores, then FORWARD to every core."""
    everyone, first, _ = _phases(layers)
    if not streamed:
        return [
            _packet(first, Opcode.LOAD_SPIKES, 0, spike_words(spikes), wait=False),
            _packet(everyone, Opcode.FORWARD, 0, wait=True),
        ]
    above = everyone[len(first) :]
    packets = [_packet(above, Opcode.FORWARD, 0, wait=False)] if above else []
    packets.append(_packet(first, Opcode.LOAD_SPIKES, LOAD_FORWARD, spike_words(spikes), wait=True))
    return packets


def train_step_stream(
    layers: Sequence[Sequence[int]],
    spikes: Sequence[Sequence[int]],
    label: int,
    *,
    update: bool = True,
    streamed: bool = True,
) -> list[Packet]:
    """The packets of one training step: input ``spikes`` ``[T][n_in]`` (0/1) and ``label``.

    SET_LABEL to the last layer's cores, then the forward pass (:func:`forward_stream`: FORWARD
    to the cores above the first layer, if any, then LOAD_SPIKES with FORWARD streamed into it to
    the first layer's cores), then one BACKWARD with update (:data:`BACKWARD_ALL`) to every core:
    each takes its error from its error link, the last layer from its label, and all start in
    the same cycle. SET_LABEL and the upper layers' FORWARD are followed at once by the next
    packet (``wait=False``): the label's answers leave during the forward pass, and the host
    collects them with the forward pass's. A host that waits for every answer (the serial
    link's) takes ``streamed=False`` (:func:`forward_stream`).
    ``update=False`` leaves the update bit out (the gradients stay for a READ; an UPDATE packet
    applies them).
    """
    everyone, _, last = _phases(layers)
    backward = BACKWARD_ALL if update else BACKWARD_ALL & ~1
    return [
        _packet(last, Opcode.SET_LABEL, int(label), wait=False),
        *forward_stream(layers, spikes, streamed=streamed),
        _packet(everyone, Opcode.BACKWARD, backward, wait=True),
    ]


def stream_template(layers: Sequence[Sequence[int]]) -> list[dict[str, Any]]:
    """JSON-able description of :func:`train_step_stream` for a host driver."""
    everyone, first, last = _phases(layers)
    above = everyone[len(first) :]
    rows = [
        ("SET_LABEL", last, None, "arg = the label; its answers are collected with the forward's"),
        *([("FORWARD", above, 0, "")] if above else []),
        (
            "LOAD_SPIKES",
            first,
            LOAD_FORWARD,
            "per timestep: count, then the spiking input indices; FORWARD runs as they arrive",
        ),
        (
            "BACKWARD",
            everyone,
            BACKWARD_ALL,
            (
                f"arg = {BACKWARD_ALL}: update after; error from the error link, the last "
                "layer's from the label"
            ),
        ),
    ]
    out = []
    for n, (name, cores, arg, what) in enumerate(rows):
        op = Opcode[name]
        out.append(
            {
                "packet": n,
                "command": name,
                "cores": [cores[0], cores[-1]],
                "route_word": f"{route(cores[0], len(cores)):#010x}",
                "command_word": f"{command(op, arg):#010x}" if arg is not None else None,
                "payload": what,
                "answers": len(cores),
                "wait_for_answers": name not in ("SET_LABEL", "FORWARD"),
            }
        )
    return out
