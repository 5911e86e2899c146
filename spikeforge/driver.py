"""One Python driver for a core behind the serial link: a board, or a virtual one.

::

    from spikeforge.driver import Board
    with Board.open("serial:///dev/ttyUSB0", params) as board:   # or a virtual board's path
        board.load_weights(w)
        for x, y in zip(samples, labels):
            board.train_step(x, y)
        w = board.read_weights()

:meth:`Board.open` opens the port with pyserial, sends INFO (which also sets the link's
sequence numbers) and checks that the core on the other end is the one ``params`` describe
(its magic word and 64-bit core hash), so weights never go to a differently built core.
Every command has a timeout and retries (:class:`~spikeforge.sim.serial_host.LinkHost`) and
errors name the command (:class:`~spikeforge.sim.session.CoreError`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

import torch

from spikeforge.hw.params import CoreParams
from spikeforge.hw.protocol import MAGIC, Quantity
from spikeforge.hw.serial_protocol import END, FRAME_WORDS
from spikeforge.sim.serial_host import LinkHost
from spikeforge.sim.session import CoreError, CoreSession
from spikeforge.sw.golden import predict_counts

__all__ = ["Board", "SerialPort"]


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
    """A core behind the serial link. Open it with :meth:`open`; close it (or use ``with``)."""

    def __init__(
        self,
        port: SerialPort,
        params: CoreParams,
        *,
        timeout: float,
        retries: int,
        byte_time: float,
        frame_words: int | None,
    ):
        self.params = CoreParams.checked(params)
        self._port = port
        self._loop = asyncio.new_event_loop()
        self.link = LinkHost(port, timeout=timeout, retries=retries, byte_time=byte_time)
        self.session = CoreSession(
            self.params, self.link.call, name=f"core {params.core_hash}", frame_words=frame_words
        )

    @classmethod
    def open(
        cls,
        url: str,
        params: CoreParams,
        *,
        baud: int = 3_000_000,
        timeout: float = 0.5,
        retries: int = 8,
        byte_time: float | None = None,
        frame_words: int | None = FRAME_WORDS,
    ) -> Board:
        """Open ``url`` (``serial:///dev/ttyUSB0``, a device path, or any pyserial URL) and
        check the core: :class:`~spikeforge.sim.session.CoreError` if it is another one.

        ``timeout`` and ``retries`` are per command; ``byte_time`` (seconds a byte takes on
        the line) defaults to the UART's, ``10 / baud`` (a virtual board is slower: its
        ``link_timing``). ``frame_words`` bounds the values one WRITE carries and one READ
        answers (whole rows; ``None``: no bound): on a line that damages bytes, a frame's
        chance to arrive intact falls with its length."""
        port = SerialPort(url, baud=baud)
        byte_time = 10 / baud if byte_time is None else byte_time
        board = cls(
            port,
            params,
            timeout=timeout,
            retries=retries,
            byte_time=byte_time,
            frame_words=frame_words,
        )
        try:
            words = board._run(board.link.open())
            if len(words) != 3 or words[0] != MAGIC:
                raise CoreError(f"{url}: INFO answered {words!r}, not a spikeforge core")
            if _core_hash(words) != params.core_hash:
                raise CoreError(
                    f"{url}: the core there is {_core_hash(words)}, not {params.core_hash}: "
                    f"build and load the bitstream of this config (spikeforge build/program)"
                )
        except BaseException:
            board.close()
            raise
        return board

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
        words = self._run(self.session.info())
        return {
            "magic": f"{words[0]:#010x}",
            "core_hash": _core_hash(words),
            "link": dict(vars(self.link.stats)),
        }

    def load_weights(self, weights: torch.Tensor) -> None:
        """Write the master weights ``[n_out, n_in]``."""
        self._run(self.session.write(Quantity.WEIGHTS, weights))

    def load_state(self, weights: torch.Tensor, lfsr_states: torch.Tensor) -> None:
        """Start training from a known state: master weights, update LFSR states (one per
        neuron) and zero gradient accumulators."""

        async def load():
            await self.session.write(Quantity.WEIGHTS, weights)
            await self.session.write(Quantity.LFSR, lfsr_states)
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


def _core_hash(info: list[int]) -> str:
    """The core hash INFO's words carry (low word first), as :attr:`CoreParams.core_hash`."""
    return f"{info[1] | info[2] << 32:016x}"
