"""The host's end of the serial link: commands as frames, retries, answers by sequence number.

:class:`LinkHost` speaks :mod:`spikeforge.hw.serial_protocol` over any byte port -- an object
with ``async write(data: bytes)``, ``async read(timeout) -> bytes`` and ``clock()`` (time in
the port's own unit: seconds on a serial port, cycles in a simulator; ``read`` returns once a
frame's closing ``END`` came, or what came by ``timeout``, possibly nothing).
:meth:`LinkHost.call` has the ``(op, arg, payload) -> (words, status)`` shape every
:class:`~spikeforge.sim.session.CoreSession` takes, so the same session code runs over a link
as over a simulator's host port.

A command is sent with a new sequence number and sent again, the same bytes, while no intact
answer with that number comes in time: ``timeout`` plus ``byte_time`` per byte of the frame
(its time on the line), extended by ``timeout`` whenever bytes arrive (a long answer streaming
in); after ``retries`` more tries the call raises :class:`TimeoutError` naming the command.
Answers with another number (late answers to an earlier try) are skipped.
:class:`LinkStats` counts what happened.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from spikeforge.hw.protocol import Opcode, Status, command, opcode_name, parse_status
from spikeforge.hw.serial_protocol import SEQ_MODULO, FrameReader, encode_frame

__all__ = ["BytePort", "LinkHost", "LinkStats"]


class BytePort(Protocol):
    async def write(self, data: bytes) -> None: ...

    async def read(self, timeout: float) -> bytes: ...

    def clock(self) -> float: ...


@dataclass
class LinkStats:
    commands: int = 0
    frames_sent: int = 0
    retries: int = 0
    damaged_answers: int = 0
    stale_answers: int = 0


class LinkHost:
    """Commands over a :class:`BytePort`, each answered exactly once.

    Parameters
    ----------
    port : BytePort
    timeout : float
        How long to wait for an answer before sending the command again (the port's unit; longer
        than the slowest command takes, or a slow command is merely answered twice).
    retries : int
        Tries after the first, per command.
    byte_time : float
        Time a byte takes on the line (10 / baud on a UART), added per byte of a frame.
    seq : int
        The first command's sequence number. Start every session with a read-only command
        (:meth:`open` sends INFO): it sets the chip's last number to this host's.
    """

    def __init__(
        self,
        port: BytePort,
        *,
        timeout: float,
        retries: int = 8,
        seq: int = 0,
        byte_time: float = 0.0,
    ):
        if not timeout > 0:
            raise ValueError(f"timeout must be > 0, not {timeout!r}")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retries must be an int >= 0, not {retries!r}")
        if not byte_time >= 0:
            raise ValueError(f"byte_time must be >= 0, not {byte_time!r}")
        self.port, self.timeout, self.retries = port, timeout, retries
        self.byte_time = byte_time
        self._seq = seq % SEQ_MODULO
        self._reader = FrameReader()
        self.stats = LinkStats()

    async def open(self) -> list[int]:
        """INFO: synchronises the sequence numbers; returns INFO's words."""
        words, status = await self.call(Opcode.INFO)
        if status != Status.OK:
            raise RuntimeError(f"INFO answered {status.name}")
        return words

    def take_seq(self) -> int:
        """The next sequence number, used up (for a frame sent by hand)."""
        seq = self._seq
        self._seq = (seq + 1) % SEQ_MODULO
        return seq

    async def call(
        self, op: Opcode | int, arg: int = 0, payload: Sequence[int] = ()
    ) -> tuple[list[int], Status]:
        seq = self.take_seq()
        frame = encode_frame(seq, [command(op, arg), *payload])
        self.stats.commands += 1
        for attempt in range(self.retries + 1):
            if attempt:
                self.stats.retries += 1
            await self.port.write(frame)
            self.stats.frames_sent += 1
            answer = await self._answer(seq, self.timeout + self.byte_time * len(frame))
            if answer is not None:
                *data, word = answer
                echo, status = parse_status(word)
                if echo != int(op):
                    raise RuntimeError(
                        f"{opcode_name(op)}: the answer with seq {seq} is for opcode {echo:#x}"
                    )
                return data, status
        raise TimeoutError(
            f"{opcode_name(op)}(arg={arg}) got no intact answer (seq {seq}) in "
            f"{self.retries + 1} tries (timeout {self.timeout} each, more for long frames)"
        )

    async def _answer(self, seq: int, wait: float) -> list[int] | None:
        end = self.port.clock() + wait
        while (left := end - self.port.clock()) > 0:
            damaged = self._reader.damaged
            found = None
            chunk = await self.port.read(left)
            if chunk:  # the line is busy: an answer may be on its way
                end = max(end, self.port.clock() + self.timeout)
            for got_seq, words in self._reader.feed(chunk):
                if got_seq == seq and found is None:
                    found = words
                else:
                    self.stats.stale_answers += 1
            self.stats.damaged_answers += self._reader.damaged - damaged
            if found is not None:
                return found
            if self._reader.damaged > damaged:  # an answer came, damaged: send again now
                return None
        return None
