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
Answers with another number (late answers to an earlier try) are skipped. Behind an array,
:class:`ArrayLink` expects one answer per addressed core (:meth:`LinkHost.exchange`).
:class:`LinkStats` counts what happened.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from spikeforge.hw.protocol import (
    ArrayRules,
    CommandWord,
    Opcode,
    Status,
    command,
    opcode_name,
    parse_status,
    status_core,
)
from spikeforge.hw.serial_protocol import SEQ_MODULO, FrameReader, encode_frame

__all__ = ["ArrayLink", "BytePort", "LinkHost", "LinkStats"]


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
        words = [command(op, arg), *payload]
        (answer,) = await self.exchange(words, what=f"{opcode_name(op)}(arg={arg})")
        *data, word = answer
        echo, status = parse_status(word)
        if echo != int(op):
            raise RuntimeError(f"{opcode_name(op)}: the answer is for opcode {echo:#x}")
        return data, status

    async def exchange(
        self, words: Sequence[int], *, answers: int = 1, what: str = "the command"
    ) -> list[list[int]]:
        """Send one packet and return its ``answers`` answer packets (behind an array, one
        from each addressed core, told apart by the core index in their status words: a retry
        keeps those that came and waits for the rest); ``what`` names it in errors."""
        if isinstance(answers, bool) or not isinstance(answers, int) or answers < 1:
            raise ValueError(f"answers must be an int >= 1, not {answers!r}")
        seq = self.take_seq()
        frame = encode_frame(seq, words)
        self.stats.commands += 1
        got: dict[int, list[int]] = {}
        for attempt in range(self.retries + 1):
            if attempt:
                self.stats.retries += 1
            await self.port.write(frame)
            self.stats.frames_sent += 1
            wait = self.timeout + self.byte_time * len(frame)
            await self._answers(seq, answers, got, wait)
            if len(got) == answers:
                return list(got.values())
        raise TimeoutError(
            f"{what} got {len(got)} of {answers} intact answers (seq {seq}) in "
            f"{self.retries + 1} tries (timeout {self.timeout} each, more for long frames)"
        )

    async def _answers(self, seq: int, answers: int, got: dict, wait: float) -> None:
        """Add the answers with ``seq`` that come within ``wait`` (longer while bytes come) to
        ``got``, keyed by core, until ``answers`` are in. A damaged answer ends the wait at once
        when it was the only one expected (the command is sent again); with more, the others
        may still be on their way and the wait runs on."""
        end = self.port.clock() + wait
        while len(got) < answers and (left := end - self.port.clock()) > 0:
            damaged = self._reader.damaged
            chunk = await self.port.read(left)
            if chunk:  # the line is busy: an answer may be on its way
                end = max(end, self.port.clock() + self.timeout)
            for got_seq, words in self._reader.feed(chunk):
                if got_seq != seq:
                    self.stats.stale_answers += 1
                    continue
                key = status_core(words[-1]) if answers > 1 else 0
                got.setdefault(key, words)
            self.stats.damaged_answers += self._reader.damaged - damaged
            if answers == 1 and self._reader.damaged > damaged and not got:
                return


class ArrayLink:
    """An array's host packets over a :class:`LinkHost`: the ``send``/``recv`` pair
    :class:`~spikeforge.sim.array_session.ArraySession` takes. ``send`` exchanges the packet
    and keeps its answers (as many as :meth:`~spikeforge.hw.protocol.ArrayRules.answers`
    says); ``recv`` hands them out in turn."""

    def __init__(self, host: LinkHost, cores: int):
        self.host = host
        self.rules = ArrayRules(cores)
        self._answers: deque[list[int]] = deque()

    async def send(self, words: Sequence[int]) -> None:
        answers = self.rules.answers(words[0], alone=len(words) == 1)
        targets = self.rules.targets(words[0])
        where = "the array" if not targets else f"cores {targets.start}..{targets.stop - 1}"
        op = opcode_name(CommandWord.from_bits(words[1]).opcode) if len(words) > 1 else "?"
        got = await self.host.exchange(words, answers=answers, what=f"{op} to {where}")
        self._answers.extend(got)

    async def recv(self) -> list[int]:
        if not self._answers:
            raise TimeoutError("no answer is owed: every answer of the last packet was taken")
        return self._answers.popleft()
