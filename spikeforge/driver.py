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
from spikeforge.hw.serial_protocol import END
from spikeforge.sim.serial_host import LinkHost
from spikeforge.sim.session import CoreError, CoreSession
from spikeforge.sw.golden import predict

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
        end = time.monotonic() + timeout
        got = bytearray()
        while time.monotonic() < end:
            chunk = self._ser.read(max(1, self._ser.in_waiting))
            got += chunk
            closed = any(b == END and i and got[i - 1] != END for i, b in enumerate(got))
            if closed:
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
    ):
        self.params = CoreParams.checked(params)
        self._port = port
        self._loop = asyncio.new_event_loop()
        self.link = LinkHost(port, timeout=timeout, retries=retries, byte_time=byte_time)
        self.session = CoreSession(self.params, self.link.call, name=f"core {params.core_hash}")

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
    ) -> Board:
        """Open ``url`` (``serial:///dev/ttyUSB0``, a device path, or any pyserial URL) and
        check the core: :class:`~spikeforge.sim.session.CoreError` if it is another one.
        ``byte_time`` (seconds a byte takes on the line) defaults to the UART's, ``10 / baud``
        (a virtual board is slower: ``VirtualBoard.byte_time``)."""
        port = SerialPort(url, baud=baud)
        byte_time = 10 / baud if byte_time is None else byte_time
        board = cls(port, params, timeout=timeout, retries=retries, byte_time=byte_time)
        try:
            words = board._run(board.link.open())
            want = int(params.core_hash, 16)
            if len(words) != 3 or words[0] != MAGIC:
                raise CoreError(f"{url}: INFO answered {words!r}, not a spikeforge core")
            if words[1] | words[2] << 32 != want:
                got = f"{words[1] | words[2] << 32:016x}"
                raise CoreError(
                    f"{url}: the core there is {got}, not {params.core_hash}: build and load "
                    f"the bitstream of this config (spikeforge build/program)"
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

    def train_step(self, spikes: torch.Tensor, label: int) -> None:
        """One training sample (``[T, n_in]`` 0/1 spikes) with the update."""

        async def step():
            await self.session.load_spikes(spikes)
            await self.session.forward()
            await self.session.set_label(int(label))
            await self.session.backward(update=True)

        self._run(step())

    def train(self, samples: Iterable[torch.Tensor], labels: Iterable[int]) -> int:
        """Train on each sample in turn; the number trained."""
        n = 0
        for spikes, label in zip(samples, labels, strict=True):
            self.train_step(spikes, label)
            n += 1
        return n

    def predict(self, spikes: torch.Tensor) -> int:
        """The class for ``spikes`` by the contract's rule (:func:`spikeforge.sw.golden.predict`:
        most output spikes, ties to the larger last membrane, then the lowest index)."""

        async def run():
            await self.session.load_spikes(spikes)
            await self.session.forward()
            out = await self.session.read(Quantity.SPIKES)
            return out, await self.session.read(Quantity.MEMBRANES)

        out, membranes = self._run(run())
        return int(predict(self.params.net, out.unsqueeze(0), membranes.unsqueeze(0))[0])
