"""The core's host protocol: 32-bit words on AXI4-Stream, commands in, responses out.

Pure Python (no amaranth, no torch): the RTL generator, the testbenches and host software all
encode and decode through this one module.

Command word: ``opcode << 24 | arg`` (``arg`` 24 bits), followed by the command's payload
words on ``s_axis``. Every command answers on ``m_axis`` with its data words (if any) and then
one status word ``opcode << 24 | status << 16``, the only word with ``tlast`` set.

=======  ==============  ===================================================================
opcode   name            arg / payload / response
=======  ==============  ===================================================================
0x00     INFO            response: ``MAGIC``, config hash bits 0-31, bits 32-63
0x01     WRITE           arg = quantity; payload = its values in :data:`QUANTITIES` order
0x02     READ            arg = quantity; response = its values in that order
0x03     LOAD_SPIKES     payload per timestep ``t = 0 .. T-1``: a count ``c``, then ``c`` input
                         indices (address-event representation)
0x04     FORWARD         run ``T`` timesteps of the forward pass
0x05     SET_LABEL       arg = label; the output error comes from spike counts and this label
0x06     BACKWARD        arg bit 0: apply the update afterwards; bit 1: use the external error
                         (quantity ``errors``) instead of the label
0x07     UPDATE          apply the accumulated gradients to the weights and clear them
0x08     SET_LR          arg = ``lr_shift`` (``L``) within the core's allowed range
0x09     COUNTERS        response: the cycle counters (:data:`COUNTERS` order)
=======  ==============  ===================================================================

Values are two's complement in the low bits of a word, sign-extended to 32 bits on reads. A
value written outside its range is saturated and the status says ``OUT_OF_RANGE``.

**Core array** (:class:`~spikeforge.hw.array.CoreArray`): every host packet (``tlast`` on its
last word) starts with a route word ``ROUTE << 24 | first << 12 | count`` and carries one core
command for cores ``first .. first + count - 1`` (each word goes to all of them at once). Each
of those cores answers with its own response packet; the array sets the low 16 bits of its
status word to the core's index (:func:`status_core`). Response packets of different cores
never interleave, but their order is not fixed. A bad route word is answered by the array
itself: ``BAD_ARG`` with core index :data:`ARRAY_TAG`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "ARRAY_TAG",
    "COUNTERS",
    "MAGIC",
    "MAX_ARRAY_CORES",
    "QUANTITIES",
    "ROUTE",
    "Opcode",
    "Quantity",
    "Status",
    "command",
    "parse_status",
    "route",
    "spike_words",
    "status_core",
]

MAGIC = 0x5F0C0DE1
"""First word of the INFO response."""
ROUTE = 0xF0
"""Top byte of a core array's route word."""
ARRAY_TAG = 0xFFFF
"""Core index in the status word of a response from the array itself."""
MAX_ARRAY_CORES = 1 << 12
"""Cores a route word can address."""


class Opcode(enum.IntEnum):
    INFO = 0x00
    WRITE = 0x01
    READ = 0x02
    LOAD_SPIKES = 0x03
    FORWARD = 0x04
    SET_LABEL = 0x05
    BACKWARD = 0x06
    UPDATE = 0x07
    SET_LR = 0x08
    COUNTERS = 0x09


class Status(enum.IntEnum):
    OK = 0
    BAD_OPCODE = 1
    BAD_ARG = 2
    OUT_OF_RANGE = 3


class Quantity(enum.IntEnum):
    """Readable (and some writable) state; index order in the table below."""

    WEIGHTS = 0
    MEMBRANES = 1
    SPIKES = 2
    DELTAS = 3
    EPREV = 4
    GRADS = 5
    ERRORS = 6
    LFSR = 7
    COUNTS = 8


@dataclass(frozen=True)
class QuantityInfo:
    """How a quantity is laid out on the wire: ``outer`` x ``inner`` values, row-major."""

    outer: str
    inner: str
    signed: bool
    writable: bool


QUANTITIES = {
    Quantity.WEIGHTS: QuantityInfo("n_out", "n_in", True, True),
    Quantity.MEMBRANES: QuantityInfo("T", "n_out", True, False),
    Quantity.SPIKES: QuantityInfo("T", "n_out", False, False),
    Quantity.DELTAS: QuantityInfo("T", "n_out", True, False),
    Quantity.EPREV: QuantityInfo("T", "n_in", True, False),
    Quantity.GRADS: QuantityInfo("n_out", "n_in", True, True),
    Quantity.ERRORS: QuantityInfo("T", "n_out", True, True),
    Quantity.LFSR: QuantityInfo("n_out", "1", False, True),
    Quantity.COUNTS: QuantityInfo("n_out", "1", False, False),
}
"""Wire order of every quantity: weights and gradients ``[j][i]`` like ``torch.nn.Linear``,
per-timestep values ``[t][j]`` (or ``[t][i]``), per-neuron values ``[j]``."""

COUNTERS = ("forward", "lanes_busy", "bp", "wg", "update", "backward")
"""Cycle counters: the last FORWARD's cycles and cycles with the lanes accumulating or
integrating; the last BACKWARD's BP-engine, WG-engine, update-engine and total cycles."""


def command(op: Opcode, arg: int = 0) -> int:
    """The command word ``op << 24 | arg``."""
    if not 0 <= arg < 1 << 24:
        raise ValueError(f"arg = {arg} is out of range: allowed [0, {(1 << 24) - 1}]")
    return (int(op) << 24) | arg


def spike_words(spikes: Sequence[Sequence[int]]) -> list[int]:
    """LOAD_SPIKES payload from a ``[T][n_in]`` 0/1 spike train: per timestep a count and the
    indices of the inputs that spike, ascending."""
    words = []
    for row in spikes:
        active = [i for i, s in enumerate(row) if s]
        words.append(len(active))
        words.extend(active)
    return words


def route(first: int, count: int = 1) -> int:
    """The route word for cores ``first .. first + count - 1``."""
    if not 0 <= first < MAX_ARRAY_CORES or not 1 <= count <= MAX_ARRAY_CORES - first:
        raise ValueError(
            f"route to cores {first} .. {first + count - 1} is out of range: allowed "
            f"0 .. {MAX_ARRAY_CORES - 1}, at least one core"
        )
    return ROUTE << 24 | first << 12 | count


def status_core(word: int) -> int:
    """Index of the core that sent a status word (:data:`ARRAY_TAG`: the array itself)."""
    return word & 0xFFFF


def parse_status(word: int) -> tuple[int, Status]:
    """``(opcode, status)`` of a status word (the opcode echoed as an int: it may be unknown)."""
    return (word >> 24) & 0xFF, Status((word >> 16) & 0xFF)


def to_signed(word: int, bits: int = 32) -> int:
    """Two's-complement value of the low ``bits`` of ``word``."""
    word &= (1 << bits) - 1
    return word - (1 << bits) if word >> (bits - 1) else word


def to_words(values: Iterable[int]) -> list[int]:
    """32-bit words of signed values (two's complement)."""
    return [v & 0xFFFFFFFF for v in values]
