"""Plan a host's command stream ahead of the simulation, then check the answers afterwards.

The fast transactors (:mod:`~spikeforge.sim.fast_tb`) play a command stream that is fixed
before the simulation starts. A scenario that only *checks* what the core answers -- it never
chooses its next command from an answer -- is run twice over the same code:

1. a **planning pass** over a :class:`Recorder`: every command packet is recorded and answered
   at once with placeholder words of the length the core's answer will have (its status OK), so
   the scenario runs through with its checks off;
2. the simulation plays the recorded packets and captures the core's answer packets;
3. a **checking pass** over a :class:`Replayer`: the scenario runs again with its checks on; each
   command must equal the planned one (:class:`PlanDiverged` otherwise: the scenario did depend
   on an answer) and is answered with the core's captured answer.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from spikeforge.hw.protocol import (
    COUNTERS,
    MAGIC,
    ArrayRules,
    CoreRules,
    Opcode,
    ReadArg,
    Status,
    command,
    opcode_name,
    parse_status,
    status_word,
)

__all__ = ["ArrayRecorder", "ArrayReplayer", "PlanDiverged", "Recorder", "Replayer"]


class PlanDiverged(RuntimeError):
    """The checking pass sent a command the planning pass did not."""


class Recorder:
    """Transport of the planning pass for one core with ``params``: ``packets`` holds every
    command packet sent, in order."""

    def __init__(self, params):
        self.rules = CoreRules.of(params)
        self.packets: list[list[int]] = []

    async def call(self, op, arg=0, payload=()):
        self.packets.append([command(op, arg), *(int(w) & 0xFFFFFFFF for w in payload)])
        return self.placeholder(op, arg), Status.OK

    def placeholder(self, op, arg: int) -> list[int]:
        """Words of the length the core answers ``op(arg)`` with (INFO starts with MAGIC)."""
        if op == Opcode.INFO:
            return [MAGIC, 0, 0]
        if op == Opcode.COUNTERS:
            return [0] * len(COUNTERS)
        if op == Opcode.READ:
            read = ReadArg.from_bits(arg)
            outer, inner = self.rules.shapes[read.quantity]
            rows = int(read.rows) or outer - int(read.row)
            return [0] * (rows * inner)
        return []


class Replayer:
    """Transport of the checking pass: answers the planned ``packets`` with ``answers`` (the
    core's answer packets, status word last); ``stopped`` says why answers may run out."""

    def __init__(
        self, packets: Sequence[Sequence[int]], answers: Sequence[Sequence[int]], stopped: str
    ):
        self.packets, self.answers, self.stopped = packets, answers, stopped
        self.done = 0

    async def call(self, op, arg=0, payload=()):
        n = self.done
        words = [command(op, arg), *(int(w) & 0xFFFFFFFF for w in payload)]
        if n >= len(self.packets) or list(self.packets[n]) != words:
            planned = _describe(self.packets[n]) if n < len(self.packets) else "the end"
            raise PlanDiverged(f"command {n}: {_describe(words)} was sent; the plan has {planned}")
        if n >= len(self.answers):
            raise TimeoutError(f"no answer to command {n}, {_describe(words)} ({self.stopped})")
        self.done += 1
        answer = self.answers[n]
        echo, status = parse_status(answer[-1])
        if echo != int(op):
            raise PlanDiverged(f"command {n}: the answer's status echoes opcode {echo:#x}")
        return list(answer[:-1]), status

    @property
    def complete(self) -> bool:
        """Every planned command was checked."""
        return self.done == len(self.packets)


def _describe(words: Sequence[int]) -> str:
    return f"{opcode_name(words[0] >> 24)}(arg={words[0] & 0xFFFFFF:#x}, {len(words) - 1} words)"


class ArrayRecorder:
    """``send``/``recv`` of the planning pass for an array of ``cores`` (an
    :class:`~spikeforge.sim.array_session.ArraySession`'s transport): ``packets`` holds every
    host packet with the number of answer packets it draws; each addressed core answers with
    :meth:`Recorder.placeholder` words and its status (the array itself: a bare status)."""

    def __init__(self, cores):
        self.rules = ArrayRules(len(cores))
        self.cores = [Recorder(p) for p in cores]
        self.packets: list[tuple[list[int], int]] = []
        self._answers: deque[list[int]] = deque()

    async def send(self, words) -> None:
        words = [int(w) & 0xFFFFFFFF for w in words]
        targets = self.rules.targets(words[0])
        if targets is None or len(words) < 2:
            raise PlanDiverged(f"packet {len(self.packets)} is not a routed command: {words[:2]}")
        op, arg = words[1] >> 24, words[1] & 0xFFFFFF
        for n in targets:
            body = self.cores[n].placeholder(op, arg)
            self._answers.append([*body, status_word(op, Status.OK, core=n)])
        if not targets:
            self._answers.append([status_word(op, Status.OK)])
        self.packets.append((words, self.rules.answers(words[0])))

    async def recv(self) -> list[int]:
        if not self._answers:
            raise PlanDiverged("the scenario waits for an answer no packet draws")
        return self._answers.popleft()


class ArrayReplayer:
    """``send``/``recv`` of the checking pass for an array: each packet sent must be the
    planned one; ``recv`` gives the captured answer packets in the order the array sent them."""

    def __init__(
        self,
        packets: Sequence[tuple[Sequence[int], int]],
        answers: Sequence[Sequence[int]],
        stopped: str,
    ):
        self.packets, self.answers, self.stopped = packets, answers, stopped
        self.sent = self.received = 0

    async def send(self, words) -> None:
        n = self.sent
        words = [int(w) & 0xFFFFFFFF for w in words]
        planned = list(self.packets[n][0]) if n < len(self.packets) else None
        if planned != words:
            what = _describe(planned[1:]) if planned else "the end"
            raise PlanDiverged(f"packet {n}: {_describe(words[1:])} was sent; the plan has {what}")
        self.sent += 1

    async def recv(self) -> list[int]:
        if self.received >= len(self.answers):
            raise TimeoutError(f"no answer packet {self.received} ({self.stopped})")
        self.received += 1
        return list(self.answers[self.received - 1])

    @property
    def complete(self) -> bool:
        """Every planned packet was sent and every captured answer taken."""
        return self.sent == len(self.packets) and self.received == len(self.answers)
