"""Host-side session with a :class:`~spikeforge.hw.array.CoreArray`: one port, routed packets.

Transport-agnostic like :class:`~spikeforge.sim.session.CoreSession`: give it ``send(words)``
(one packet, ``tlast`` on the last word) and ``recv() -> words`` (one response packet; it raises
:class:`TimeoutError` when its deadline passes). Each routed command is answered by every core
it went to; the session collects the packets by the core index in their status word and checks
every status: an error names the core and the command, a ``TIMEOUT`` answer from the array's
watchdog or a deadline raises :class:`~spikeforge.sim.session.CoreTimeout`.

A training step is four host packets: FORWARD to the cores above the first layer, LOAD_SPIKES
with the forward pass streamed into it (``LOAD_FORWARD``) to the first layer's cores, SET_LABEL
to the last layer's cores, and BACKWARD (with update) to every core -- the last layer from its
label, the others from the error link (three packets on a one-layer array). Spikes and errors
travel between cores on the array's own links; the host carries no data between layers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import torch

from spikeforge.codesign.host_stream import forward_stream, train_step_stream
from spikeforge.hw.array import layer_groups
from spikeforge.hw.params import CoreParams
from spikeforge.hw.protocol import (
    Opcode,
    Quantity,
    Status,
    array_route,
    command,
    parse_status,
    route,
    status_core,
)
from spikeforge.sim.network import last_layer_class
from spikeforge.sim.session import CoreError, CoreSession, CoreTimeout, check_answer

__all__ = ["ArraySession"]

Send = Callable[[list[int]], Awaitable[None]]
Recv = Callable[[], Awaitable[list[int]]]


class ArraySession:
    """Typed access to every core of an array and whole-network training steps.

    Parameters
    ----------
    cores : sequence of CoreParams
        The array's cores in core order (as given to :class:`~spikeforge.hw.array.CoreArray`).
    send, recv : async callables
        One host packet out; one response packet in.
    frame_words : int, optional
        Bounds the values of one WRITE or READ packet of :meth:`core`'s sessions (whole rows;
        :class:`~spikeforge.sim.session.CoreSession`): short packets for a lossy link.
    streamed : bool
        The input load streamed into the forward pass (default); False for a ``send`` that
        waits for the packet's answers (the serial link's): LOAD_SPIKES, then FORWARD
        (:func:`~spikeforge.codesign.host_stream.forward_stream`).
    """

    def __init__(
        self,
        cores: Sequence[CoreParams],
        send: Send,
        recv: Recv,
        *,
        frame_words: int | None = None,
        streamed: bool = True,
    ):
        self.cores = tuple(cores)
        self.frame_words = frame_words
        self.streamed = streamed
        self.layers = layer_groups(self.cores, linked=True)
        self.net = self.cores[0].net
        self._send, self._recv = send, recv

    # -- packets ---------------------------------------------------------------------------------
    async def post(self, cores: Sequence[int], op: Opcode, arg: int = 0, payload=()) -> None:
        """Send one command to the contiguous cores ``cores`` without waiting for answers."""
        first, count = cores[0], len(cores)
        if list(cores) != list(range(first, first + count)):
            raise ValueError(f"cores {list(cores)} are not contiguous")
        words = [route(first, count), command(op, arg), *[w & 0xFFFFFFFF for w in payload]]
        await self._send(words)

    async def _next(self, waiting_for: str) -> tuple[int, int, Status, list[int]]:
        """The next answer packet: ``(core, echoed opcode, status, data words)``; a deadline
        that passes raises :class:`CoreTimeout` naming ``waiting_for``."""
        try:
            words = await self._recv()
        except TimeoutError as exc:
            raise CoreTimeout(f"no answer from {waiting_for}: {exc}") from exc
        if not words:
            raise CoreError("empty response packet")
        echo, status = parse_status(words[-1])
        return status_core(words[-1]), echo, status, words[:-1]

    async def collect(
        self, expect: dict[int, Opcode] | dict[int, list[Opcode]]
    ) -> dict[int, list[int]]:
        """One response packet from each core of ``expect`` (any order), or one per opcode of a
        core's list (in that order: one core's answers keep the order of its packets); the data
        words of each core's last answer."""
        queues = {n: [op] if isinstance(op, Opcode) else list(op) for n, op in expect.items()}
        out: dict[int, list[int]] = {}
        while any(queues.values()):
            missing = ", ".join(f"core {n} ({q[0].name})" for n, q in queues.items() if q)
            core, echo, status, words = await self._next(missing)
            if not queues.get(core):
                raise CoreError(f"unexpected response from core {core:#x} ({status.name})")
            op = queues[core].pop(0)
            if echo != int(op):
                raise CoreError(f"core {core}: the answer to {op.name} echoes opcode {echo:#x}")
            check_answer(f"core {core}", op, 0, status)
            out[core] = words
        return out

    async def call(self, cores: Sequence[int], op: Opcode, arg: int = 0, payload=()):
        """Send one command to ``cores`` and collect their answers."""
        await self.post(cores, op, arg, payload)
        return await self.collect(dict.fromkeys(cores, op))

    def core(self, n: int) -> CoreSession:
        """A :class:`CoreSession` for core ``n`` alone (reads, writes, counters)."""

        async def call(op, arg, payload):
            await self.post([n], op, arg, payload)
            words = await self._recv()
            echo, status = parse_status(words[-1])
            if status_core(words[-1]) != n or echo != int(op):
                raise CoreError(f"expected the answer of core {n} to {Opcode(op).name}")
            return words[:-1], status

        return CoreSession(self.cores[n], call, name=f"core {n}", frame_words=self.frame_words)

    async def abort(self, cores: Sequence[int] | None = None) -> dict[int, Status]:
        """ABORT ``cores`` (default: all) and collect every answer up to ABORT's own.

        Returns the status each core's interrupted command answered (``ABORTED``, or ``OK`` if
        it finished first; absent: nothing was running). The aborted commands' answers must not
        have been collected yet: the caller posts a command, then aborts it.
        """
        cores = self.all_cores if cores is None else list(cores)
        await self.post(cores, Opcode.ABORT)
        interrupted: dict[int, Status] = {}
        done: set[int] = set()
        while len(done) < len(cores):
            missing = ", ".join(f"core {n} (ABORT)" for n in cores if n not in done)
            core, echo, status, _ = await self._next(missing)
            if core not in cores or core in done:
                raise CoreError(f"unexpected response from core {core:#x} ({status.name})")
            if echo == Opcode.ABORT:
                check_answer(f"core {core}", Opcode.ABORT, 0, status)
                done.add(core)
            else:
                interrupted[core] = status
        return interrupted

    async def set_timeout(self, cycles: int) -> None:
        """The array's watchdog: answer ``TIMEOUT`` for a core silent for ``cycles`` (0: off)."""
        if not 0 <= cycles < 1 << 32:
            raise ValueError(f"cycles = {cycles} is out of range: allowed [0, {(1 << 32) - 1}]")
        await self._send([array_route(), command(Opcode.SET_TIMEOUT), cycles])
        words = await self._recv()
        echo, status = parse_status(words[-1])
        if echo != Opcode.SET_TIMEOUT:
            raise CoreError(f"the array answered opcode {echo:#x} to SET_TIMEOUT")
        check_answer("the array", Opcode.SET_TIMEOUT, 0, status)

    # -- network ---------------------------------------------------------------------------------
    @property
    def all_cores(self) -> list[int]:
        return list(range(len(self.cores)))

    async def write_weights(self, weights: Sequence[torch.Tensor]) -> None:
        for group, w in zip(self.layers, weights, strict=True):
            for n in group:
                p = self.cores[n]
                await self.core(n).write(
                    Quantity.WEIGHTS, w[p.neuron_offset : p.neuron_offset + p.n_out]
                )

    async def read_layer(self, layer: int, q: Quantity) -> torch.Tensor:
        """A per-neuron quantity of a whole layer, its cores' values concatenated."""
        dim = 0 if q in (Quantity.WEIGHTS, Quantity.GRADS, Quantity.LFSR) else 1
        return torch.cat([await self.core(n).read(q) for n in self.layers[layer]], dim)

    async def read_weights(self) -> list[torch.Tensor]:
        return [await self.read_layer(layer, Quantity.WEIGHTS) for layer in range(len(self.layers))]

    async def forward(self, x: torch.Tensor) -> None:
        """Input spikes ``x`` ``[T, n_in]`` to the first layer and the forward pass on every core
        (the packets of :func:`~spikeforge.codesign.host_stream.forward_stream`: FORWARD to the
        cores above the first layer, then LOAD_SPIKES with the forward pass streamed into it).

        A bad load is still reported (its status raises
        :class:`~spikeforge.sim.session.CoreError`); the forward pass that ran beside it changed
        no weight or learning state."""
        pending: dict[int, list[Opcode]] = {}
        for packet in forward_stream(self.layers, x.tolist(), streamed=self.streamed):
            await self._send(list(packet.words))
            for n, op in packet.answers.items():
                pending.setdefault(n, []).append(op)
        await self.collect(pending)

    async def train_step(self, x: torch.Tensor, label: int, *, update: bool = True) -> None:
        """Forward, the output error from ``label``, backward and (``update``) the update on
        every core (the packets of :func:`~spikeforge.codesign.host_stream.train_step_stream`)."""
        pending: dict[int, list[Opcode]] = {}
        stream = train_step_stream(
            self.layers, x.tolist(), int(label), update=update, streamed=self.streamed
        )
        for packet in stream:
            await self._send(list(packet.words))
            for n, op in packet.answers.items():
                pending.setdefault(n, []).append(op)
            if packet.wait:
                await self.collect(pending)
                pending = {}

    async def predict(self, x: torch.Tensor) -> int:
        """The class the network predicts for ``x``, from the last layer's spike COUNTS and
        last membrane row (:func:`~spikeforge.sim.network.last_layer_class`)."""
        await self.forward(x)
        return await last_layer_class(self.net, [self.core(n) for n in self.layers[-1]])

    async def update(self) -> None:
        """UPDATE on every core: apply and clear the accumulated gradients."""
        await self.call(self.all_cores, Opcode.UPDATE)

    async def set_lr(self, lr_shift: int) -> None:
        await self.call(self.all_cores, Opcode.SET_LR, int(lr_shift))

    async def counters(self) -> dict[int, dict[str, int]]:
        return {n: await self.core(n).counters() for n in self.all_cores}
