"""One Python driver for a core or a core array behind the serial link: a board, or a virtual
one.

::

    from spikeforge.driver import Board
    with Board.open("serial:///dev/ttyUSB0", params) as board:   # or a virtual board's path
        board.load_weights(w)
        for x, y in zip(samples, labels):
            board.train_step(x, y)
        w = board.read_weights()

:meth:`Board.open` opens the port with pyserial, sends INFO (which also sets the link's
sequence numbers) and checks that the design on the other end is the one given -- a core's
:class:`~spikeforge.hw.params.CoreParams`, or an array's cores, whose board is an
:class:`ArrayBoard` -- by its magic word and 64-bit hash, so weights never go to a differently
built chip. Every command has a timeout and retries
(:class:`~spikeforge.sim.serial_host.LinkHost`) and errors name the command
(:class:`~spikeforge.sim.session.CoreError`). :meth:`Board.load_network` and
:meth:`Board.network_weights` take and give the weights of every layer on either kind of board.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence

import torch

from spikeforge.hw.board import Design, checked_design, design_hash
from spikeforge.hw.params import CoreParams
from spikeforge.hw.protocol import (
    MAGIC,
    Opcode,
    Quantity,
    Status,
    array_route,
    command,
    parse_status,
)
from spikeforge.hw.serial_protocol import END, FRAME_WORDS
from spikeforge.sim.array_session import ArraySession
from spikeforge.sim.serial_host import ArrayLink, LinkHost
from spikeforge.sim.session import CoreError, CoreSession
from spikeforge.sw.golden import predict_counts

__all__ = ["ArrayBoard", "Board", "SerialPort"]


class SerialPort:
    """A :class:`~spikeforge.sim.serial_host.BytePort` over pyserial (time in seconds)."""

    def __init__(self, url: str, *, baud: int):
        import serial

        path = url.removeprefix("serial://")
        try:
            self._ser = serial.serial_for_url(path, baudrate=baud, timeout=0.01)
        except (serial.SerialException, ValueError) as exc:
            raise CoreError(f"cannot open {url}: {exc}") from exc

    def clock(self) -> float:
        return time.monotonic()

    async def write(self, data: bytes) -> None:
        self._ser.write(data)

    async def read(self, timeout: float) -> bytes:
        """What arrives until a frame closes (an ``END`` after a frame byte) or ``timeout``."""
        end = time.monotonic() + timeout
        got = bytearray()
        while time.monotonic() < end:
            chunk = self._ser.read(max(1, self._ser.in_waiting))
            before = got[-1:] or bytes([END])  # the byte before the chunk's first
            got += chunk
            if any(b == END and a != END for a, b in zip(before + chunk, chunk, strict=False)):
                break
        return bytes(got)

    def close(self) -> None:
        self._ser.close()


class Board:
    """A core behind the serial link. Open it with :meth:`open` (which gives an
    :class:`ArrayBoard` for an array's cores); close it (or use ``with``)."""

    def __init__(
        self,
        port: SerialPort,
        design: Design,
        *,
        timeout: float,
        retries: int,
        byte_time: float,
        frame_words: int | None,
    ):
        self.design = checked_design(design)
        self._port = port
        self._loop = asyncio.new_event_loop()
        self.link = LinkHost(port, timeout=timeout, retries=retries, byte_time=byte_time)
        self._attach(frame_words)

    def _attach(self, frame_words: int | None) -> None:
        """The session the commands go through."""
        self.params = self.design
        self.session = CoreSession(
            self.params,
            self.link.call,
            name=f"core {self.params.core_hash}",
            frame_words=frame_words,
        )

    @property
    def net(self):
        """The network the board trains (:class:`~spikeforge.sw.config.SnnConfig`)."""
        return self.params.net

    @property
    def rate_encoder(self) -> bool:
        """The board draws the rate-coded spikes itself (send intensities and keys)."""
        return self.params.rate_encoder

    @classmethod
    def open(
        cls,
        url: str,
        design,
        *,
        baud: int = 3_000_000,
        timeout: float = 0.5,
        retries: int = 8,
        byte_time: float | None = None,
        frame_words: int | None = FRAME_WORDS,
    ) -> Board:
        """Open ``url`` (``serial:///dev/ttyUSB0``, a device path, or any pyserial URL) and
        check the design there: :class:`~spikeforge.sim.session.CoreError` if it is another.

        ``design`` is a core's :class:`~spikeforge.hw.params.CoreParams` (a :class:`Board`) or
        an array's cores in core order (an :class:`ArrayBoard`). ``timeout`` and ``retries``
        are per command; ``byte_time`` (seconds a byte takes on the line) defaults to the
        UART's, ``10 / baud`` (a virtual board is slower: its ``link_timing``).
        ``frame_words`` bounds the values one WRITE carries and one READ answers (whole rows;
        ``None``: no bound): on a line that damages bytes, a frame's chance to arrive intact
        falls with its length."""
        design = checked_design(design)
        kind = Board if isinstance(design, CoreParams) else ArrayBoard
        port = SerialPort(url, baud=baud)
        byte_time = 10 / baud if byte_time is None else byte_time
        board = kind(
            port,
            design,
            timeout=timeout,
            retries=retries,
            byte_time=byte_time,
            frame_words=frame_words,
        )
        try:
            words = board._run(board._info())
            if len(words) < 3 or words[0] != MAGIC:
                raise CoreError(f"{url}: INFO answered {words!r}, not spikeforge")
            want = design_hash(design)
            if _core_hash(words) != want:
                raise CoreError(
                    f"{url}: the design there is {_core_hash(words)}, not {want}: build and "
                    f"load the bitstream of this design (spikeforge build/program)"
                )
        except BaseException:
            board.close()
            raise
        return board

    async def _info(self) -> list[int]:
        """INFO (the first command of a session: it sets the link's sequence numbers)."""
        words, status = await self.link.call(Opcode.INFO)
        if status != Status.OK:
            raise CoreError(
                f"INFO answered {status.name}: not a single core there (an array answers "
                f"BAD_ARG to a packet without a route word: open it with the array's cores)"
            )
        return words

    def _run(self, coro):
        return self._loop.run_until_complete(coro)

    def __enter__(self) -> Board:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._port.close()
        self._loop.close()

    def info(self) -> dict[str, object]:
        """What the board says of itself (INFO) and what the link has counted so far."""
        words = self._run(self._info())
        return {
            "magic": f"{words[0]:#010x}",
            "hash": _core_hash(words),
            **self._info_fields(words),
            "link": dict(vars(self.link.stats)),
        }

    @staticmethod
    def _info_fields(words: list[int]) -> dict[str, object]:
        """What else the design's INFO words say (an array: its cores and watchdog)."""
        return {}

    def load_network(
        self, weights: Sequence[torch.Tensor], lfsr_states: Sequence[torch.Tensor]
    ) -> None:
        """:meth:`load_state` with one tensor per weight layer (here: one)."""
        if len(weights) != 1 or len(lfsr_states) != 1:
            raise ValueError(f"a core trains one layer, not {len(weights)}")
        self.load_state(weights[0], lfsr_states[0])

    def network_weights(self) -> list[torch.Tensor]:
        """The master weights of every layer (here: one)."""
        return [self.read_weights()]

    def load_weights(self, weights: torch.Tensor) -> None:
        """Write the master weights ``[n_out, n_in]``."""
        self._run(self.session.write(Quantity.WEIGHTS, weights))

    def load_state(self, weights: torch.Tensor, lfsr_states: torch.Tensor) -> None:
        """Start training from a known state: master weights, update LFSR states (one per
        neuron) and zero gradient accumulators."""

        async def load():
            await self.session.write(Quantity.WEIGHTS, weights)
            await self.session.write(Quantity.LFSR, lfsr_states)
            if not self.session.params.fused_grads:  # a fused core keeps no accumulators
                await self.session.write(Quantity.GRADS, torch.zeros_like(weights))

        self._run(load())

    def set_lr(self, lr_shift: int) -> None:
        """The learning-rate shift of the following updates."""
        self._run(self.session.set_lr(lr_shift))

    def read_weights(self) -> torch.Tensor:
        return self._run(self.session.read(Quantity.WEIGHTS))

    def read(self, quantity: Quantity) -> torch.Tensor:
        return self._run(self.session.read(quantity))

    async def _load(self, sample: torch.Tensor, key: int | None) -> None:
        if sample.dim() == 1:  # intensities: the core's rate encoder draws the spikes
            if key is None:
                raise ValueError("intensities need the sample's key (the rate encoder's seed)")
            await self.session.load_inputs(sample, key)
        else:
            await self.session.load_spikes(sample)

    def train_step(self, sample: torch.Tensor, label: int, *, key: int | None = None) -> None:
        """One training sample with the update: ``[T, n_in]`` 0/1 spikes, or (a core with the
        rate encoder) ``[n_in]`` intensities and the sample's ``key``."""

        async def step():
            await self._load(sample, key)
            await self.session.forward()
            await self.session.set_label(int(label))
            await self.session.backward(update=True)

        self._run(step())

    def train(self, samples: Iterable[torch.Tensor], labels: Iterable[int]) -> int:
        """Train on each spike train in turn; the number trained."""
        n = 0
        for spikes, label in zip(samples, labels, strict=True):
            self.train_step(spikes, label)
            n += 1
        return n

    def predict(self, sample: torch.Tensor, *, key: int | None = None) -> int:
        """The class for ``sample`` (as :meth:`train_step` takes it) by the contract's rule
        (:func:`spikeforge.sw.golden.predict`: most output spikes, ties to the larger last
        membrane, then the lowest index), from two short answers: the spike counts and the
        last timestep's membranes."""
        last = self.params.timesteps - 1

        async def run():
            await self._load(sample, key)
            await self.session.forward()
            counts = await self.session.read(Quantity.COUNTS)
            return counts, await self.session.read_rows(Quantity.MEMBRANES, last, 1)

        counts, u_last = self._run(run())
        return int(predict_counts(self.params.net, counts.unsqueeze(0), u_last)[0])


class ArrayBoard(Board):
    """A core array behind the serial link (open it with :meth:`Board.open` and the array's
    cores). Packets are routed (:class:`~spikeforge.sim.array_session.ArraySession`); each
    addressed core answers in its own frame (:class:`~spikeforge.sim.serial_host.ArrayLink`).
    Weights and LFSR states go per layer, as lists."""

    def _attach(self, frame_words: int | None) -> None:
        self.cores: tuple[CoreParams, ...] = self.design
        self.params = self.cores[0]
        self._array_link = ArrayLink(self.link, len(self.cores))
        self.session = ArraySession(
            self.cores,
            self._array_link.send,
            self._array_link.recv,
            frame_words=frame_words,
            streamed=False,  # the link waits for every packet's answers
        )

    @property
    def rate_encoder(self) -> bool:
        return False

    async def _info(self) -> list[int]:
        words = [array_route(), command(Opcode.INFO)]
        (answer,) = await self.link.exchange(words, what="INFO to the array")
        *data, word = answer
        echo, status = parse_status(word)
        if echo != Opcode.INFO or status != Status.OK:
            raise CoreError(
                f"INFO to the array answered {status.name} for opcode {echo:#x}: not an array "
                f"there (a single core takes the route word for a command: open it with its "
                f"CoreParams)"
            )
        return data

    @staticmethod
    def _info_fields(words: list[int]) -> dict[str, object]:
        return {"cores": words[3], "watchdog_cycles": words[4]}

    def load_weights(self, weights: Sequence[torch.Tensor]) -> None:
        """Write every layer's master weights (one ``[n_out, n_in]`` tensor per layer)."""
        self._run(self.session.write_weights(weights))

    def load_state(
        self, weights: Sequence[torch.Tensor], lfsr_states: Sequence[torch.Tensor]
    ) -> None:
        """Start training from a known state, per layer: master weights, update LFSR states
        and zero gradient accumulators, each core its slice."""

        async def load():
            for group, w, lfsr in zip(self.session.layers, weights, lfsr_states, strict=True):
                for n in group:
                    rows = slice(*self.cores[n].neuron_range)
                    core = self.session.core(n)
                    await core.write(Quantity.WEIGHTS, w[rows])
                    await core.write(Quantity.LFSR, lfsr[rows])
                    if not self.cores[n].fused_grads:  # no accumulators to clear
                        await core.write(Quantity.GRADS, torch.zeros_like(w[rows]))

        self._run(load())

    def load_network(
        self, weights: Sequence[torch.Tensor], lfsr_states: Sequence[torch.Tensor]
    ) -> None:
        self.load_state(weights, lfsr_states)

    def set_lr(self, lr_shift: int) -> None:
        self._run(self.session.set_lr(lr_shift))

    def read_weights(self) -> list[torch.Tensor]:
        """Every layer's master weights, its cores' slices joined."""
        return self._run(self.session.read_weights())

    def network_weights(self) -> list[torch.Tensor]:
        return self.read_weights()

    def read(self, quantity: Quantity, layer: int = -1) -> torch.Tensor:
        """A quantity of a whole layer (default: the last), its cores' values joined."""
        return self._run(self.session.read_layer(layer % len(self.session.layers), quantity))

    def train_step(self, sample: torch.Tensor, label: int, *, key: int | None = None) -> None:
        """One training sample with the update: ``[T, n_in]`` 0/1 spikes to the first layer,
        then the routed packets of :func:`~spikeforge.codesign.host_stream.train_step_stream`."""
        self._spikes(sample, key)
        self._run(self.session.train_step(sample, int(label)))

    def predict(self, sample: torch.Tensor, *, key: int | None = None) -> int:
        """The class for ``sample`` by the contract's rule, from the last layer's spike counts
        and last membranes (two short answers per core)."""
        self._spikes(sample, key)
        last = self.params.timesteps - 1

        async def run():
            await self.session.forward(sample)
            counts, u_last = [], []
            for n in self.session.layers[-1]:
                core = self.session.core(n)
                counts.append(await core.read(Quantity.COUNTS))
                u_last.append(await core.read_rows(Quantity.MEMBRANES, last, 1))
            return torch.cat(counts), torch.cat(u_last, 1)

        counts, u_last = self._run(run())
        return int(predict_counts(self.net, counts.unsqueeze(0), u_last)[0])

    @staticmethod
    def _spikes(sample: torch.Tensor, key: int | None) -> None:
        if sample.dim() != 2 or key is not None:
            raise ValueError(
                "an array takes each sample as [T, n_in] spikes (no on-chip rate encoder yet)"
            )


def _core_hash(info: list[int]) -> str:
    """The core hash INFO's words carry (low word first), as :attr:`CoreParams.core_hash`."""
    return f"{info[1] | info[2] << 32:016x}"
