"""Bad packets for fuzzing a host port, each with the answer it must draw.

:class:`BadPackets` mutates the packets a host really sends (a training step's WRITE chunks,
LOAD_SPIKES, commands) into every kind of wrong packet and predicts each one's status with
:meth:`~spikeforge.hw.protocol.CoreRules.status` -- the same rule objects the hardware framer is
built from. It keeps only packets the core must reject, so a fuzz run's valid training steps
alone decide every weight. :class:`BadRoutes` does the same one level up, for an array's
router (:class:`~spikeforge.hw.protocol.ArrayRules`).

Kinds (:data:`CORE_KINDS`): an unknown ``opcode``; a known opcode with a bad ``arg``; a
``truncated`` or ``extended`` packet; a ``bitflip`` anywhere; a LOAD_SPIKES with a wrong
``count`` or a bad ``index``; a packet ``split`` into several by a stray ``last``; two packets
``merged`` into one; a lone ``word``.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from spikeforge.hw.protocol import (
    EXECUTED,
    ArgRange,
    ArgRead,
    ArgWrite,
    ArrayRules,
    CommandWord,
    CoreRules,
    Opcode,
    Payload,
    Status,
    array_route,
    command,
    route,
)

__all__ = ["ARRAY_KINDS", "CORE_KINDS", "BadItem", "BadPackets", "BadRoutes"]

CORE_KINDS = (
    "opcode",
    "arg",
    "truncated",
    "extended",
    "bitflip",
    "count",
    "index",
    "split",
    "merged",
    "word",
)
ARRAY_KINDS = ("route", "route_only", "inner", "array_cmd", "split")
DRAWS = 200
"""Attempts to draw an item of one kind before :class:`BadPackets` gives up on it."""


@dataclass(frozen=True)
class BadItem:
    """Frames (packets on the wire) of one bad item and what each must draw.

    ``answers[k]``: for a core, the status of frame ``k``; for an array, ``{core: status}``
    (core :data:`~spikeforge.hw.protocol.ARRAY_TAG` for the array's own answer)."""

    kind: str
    frames: tuple[tuple[int, ...], ...]
    answers: tuple


def _word(rng: random.Random) -> int:
    return rng.choice([0, 1, rng.getrandbits(8), rng.getrandbits(24), rng.getrandbits(32)])


class BadPackets:
    """Draw bad packets for one core.

    Parameters
    ----------
    rules : CoreRules
        The core's rules (what it must answer).
    rng : random.Random
    """

    def __init__(self, rules: CoreRules, rng: random.Random):
        self.rules = rules
        self.rng = rng

    def draw(self, valid: Sequence[Sequence[int]], kind: str | None = None) -> BadItem:
        """One bad item made from the ``valid`` packets (each a list of words)."""
        kinds = [kind] if kind else list(CORE_KINDS)
        for _ in range(DRAWS):
            k = self.rng.choice(kinds)
            frames = getattr(self, f"_{k}")([list(p) for p in valid])
            if frames is None:
                continue
            statuses = tuple(self.rules.status(f) for f in frames)
            if all(s not in EXECUTED for s in statuses):
                return BadItem(k, tuple(tuple(f) for f in frames), statuses)
        raise RuntimeError(f"no bad packet of kind {kinds} from {len(valid)} valid packets")

    # -- the kinds: each returns frames (or None when it does not apply) -------------------------
    def _opcode(self, valid):
        rng = self.rng
        op = rng.choice([o for o in range(256) if o not in self.rules.commands])
        return [[command(op, rng.getrandbits(24)), *[_word(rng) for _ in range(rng.randint(0, 3))]]]

    def _arg(self, valid):
        rng = self.rng
        op, spec = rng.choice(list(self.rules.commands.items()))
        rule = spec.arg
        if isinstance(rule, ArgRange):
            choices = [v for v in (rule.lo - 1, rule.hi + 1, rng.randrange(1 << 24)) if v >= 0]
            arg = rng.choice([v for v in choices if v < 1 << 24])
        elif isinstance(rule, ArgRead):
            q, rows = rng.choice(rule.rows)
            arg = rng.choice(
                [
                    rng.choice([v for v in range(16) if v not in dict(rule.rows)] or [q]),
                    q | rng.randint(rows, (1 << 13) - 1) << 4,  # first row past the last
                    q | rng.randrange(rows) << 4 | rng.randint(rows + 1, 127) << 17,  # too many
                ]
            )
        elif isinstance(rule, ArgWrite):
            q, rows = rng.choice(rule.rows)
            arg = q | rng.randint(rows, (1 << 20) - 1) << 4
            if rng.random() < 0.3:
                arg = rng.choice([v for v in range(16) if v not in dict(rule.rows)])
        else:
            raise AssertionError(f"no bad argument for {rule!r}")
        tail = [_word(rng) for _ in range(rng.randint(0, 2))]
        if spec.payload is not Payload.NONE:
            same = [p for p in valid if CommandWord.from_bits(p[0]).opcode == op]
            tail = same[0][1:] if same and rng.random() < 0.5 else tail
        return [[command(op, arg & 0xFFFFFF), *tail]]

    def _truncated(self, valid):
        long = [p for p in valid if len(p) > 1]
        if not long:
            return None
        p = self.rng.choice(long)
        return [p[: self.rng.randint(1, len(p) - 1)]]

    def _extended(self, valid):
        p = self.rng.choice(valid)
        return [p + [_word(self.rng) for _ in range(self.rng.randint(1, 4))]]

    def _bitflip(self, valid):
        p = list(self.rng.choice(valid))
        n = self.rng.randrange(len(p))
        p[n] ^= 1 << self.rng.randrange(32)
        return [p]

    def _spikes(self, valid):
        return [p for p in valid if CommandWord.from_bits(p[0]).opcode == Opcode.LOAD_SPIKES]

    def _count(self, valid):
        loads = self._spikes(valid)
        if not loads:
            return None
        p = list(self.rng.choice(loads))
        counts, pos = [], 1
        while pos < len(p):
            counts.append(pos)
            pos += 1 + p[pos]
        at = self.rng.choice(counts)
        n_in = self.rules.n_in
        p[at] = self.rng.choice(
            [p[at] + 1, max(0, p[at] - 1), n_in + 1, (1 << 24) - 1, p[at] | 1 << 24]
        )
        return [p]

    def _index(self, valid):
        loads = [p for p in self._spikes(valid) if any(p[1:])]
        if not loads:
            return None
        p = list(self.rng.choice(loads))
        indices, pos = [], 1
        while pos < len(p):
            indices.extend(range(pos + 1, pos + 1 + p[pos]))
            pos += 1 + p[pos]
        if not indices:
            return None
        at = self.rng.choice(indices)
        prev = p[at - 1] if at - 1 in indices else None
        choices = [self.rules.n_in, self.rng.randrange(self.rules.n_in, 1 << 32)]
        if prev is not None:
            choices += [prev, max(0, prev - 1)]  # repeated or descending
        p[at] = self.rng.choice(choices)
        return [p]

    def _split(self, valid):
        long = [p for p in valid if len(p) > 1]
        if not long:
            return None
        p = self.rng.choice(long)
        cuts = sorted(self.rng.sample(range(1, len(p)), min(len(p) - 1, self.rng.randint(1, 3))))
        return [p[a:b] for a, b in zip([0, *cuts], [*cuts, len(p)], strict=True)]

    def _merged(self, valid):
        a, b = self.rng.choice(valid), self.rng.choice(valid)
        return [a + b]

    def _word(self, valid):
        return [[_word(self.rng)]]


class BadRoutes:
    """Draw bad packets for an array: bad route words, a route word alone, bad inner packets to
    a range of cores, bad commands to the array itself, and packets split by a stray ``last``.

    Parameters
    ----------
    rules : ArrayRules
    cores : sequence of CoreRules
        Every core's rules, in core order.
    rng : random.Random
    """

    def __init__(self, rules: ArrayRules, cores: Sequence[CoreRules], rng: random.Random):
        self.rules, self.cores, self.rng = rules, list(cores), rng
        self._per_core = [BadPackets(r, rng) for r in self.cores]

    def answers(self, frame: Sequence[int]) -> dict[int, Status] | None:
        """What every addressee answers to ``frame``; ``None`` if some core would run it."""
        own = self.rules.status(frame)
        if own is not None:
            return {0xFFFF: own}
        statuses = {n: self.cores[n].status(frame[1:]) for n in self.rules.targets(frame[0])}
        return None if any(s in EXECUTED for s in statuses.values()) else statuses

    def draw(self, valid: Sequence[Sequence[int]], kind: str | None = None) -> BadItem:
        """One bad item; ``valid``: routed packets the host really sends."""
        kinds = [kind] if kind else list(ARRAY_KINDS)
        for _ in range(DRAWS):
            k = self.rng.choice(kinds)
            frames = getattr(self, f"_{k}")([list(p) for p in valid])
            if frames is None:
                continue
            answers = [self.answers(f) for f in frames]
            if all(a is not None for a in answers):
                return BadItem(k, tuple(tuple(f) for f in frames), tuple(answers))
        raise RuntimeError(f"no bad array packet of kind {kinds}")

    def _route(self, valid):
        rng, C = self.rng, self.rules.cores
        tag = rng.choice([rng.randrange(256), 0xF0])
        first, count = rng.choice([(rng.randrange(1, 4096), 0), (rng.randrange(C), C + 1)])
        first = min(first, 4095)
        p = rng.choice(valid)
        return [[tag << 24 | first << 12 | min(count, 4095), *p[1:]]]

    def _route_only(self, valid):
        return [[self.rng.choice([route(0, self.rules.cores), array_route(), route(0)])]]

    def _inner(self, valid):
        C = self.rules.cores
        first = self.rng.randrange(C)
        count = self.rng.randint(1, C - first)
        inner = [p[1:] for p in valid if len(p) > 1]
        item = self._per_core[first].draw(inner)
        return [[route(first, count), *f] for f in item.frames]

    def _array_cmd(self, valid):
        rng = self.rng
        op = rng.choice([Opcode.INFO, Opcode.SET_TIMEOUT, rng.randrange(256)])
        arg = rng.choice([0, rng.getrandbits(24)])
        tail = [_word(rng) for _ in range(rng.choice([0, 2, 3]))]
        return [[array_route(), command(op, arg), *tail]]

    def _split(self, valid):
        p = self.rng.choice([p for p in valid if len(p) > 2] or valid)
        if len(p) < 3:
            return None
        cut = self.rng.randrange(2, len(p))
        return [p[:cut], p[cut:]]
