"""The host protocol: packets of 32-bit words, one command per packet, one status word per packet.

One definition serves the hardware and the software (the pattern of ``amaranth.lib.crc``): the
word formats are :class:`~amaranth.lib.data.StructLayout` s that the command framer decodes in
hardware and :func:`command`, :func:`route` and :func:`parse_status` encode and decode in Python;
the per-core rules (:class:`CoreRules`: which opcodes, which arguments, how long each packet is)
give the framer its comparisons and give software :meth:`CoreRules.status`, the status a packet
draws, from the same objects. Host software, testbenches and the RTL generator all use this
module; it imports Amaranth's library (for the layouts) but no torch.

**Framing.** A command is exactly one packet: the command word, then its payload, ``last`` on the
final word. The core checks every packet before it executes anything. On any mismatch -- an
unknown opcode, an argument out of range or with reserved bits set, a packet shorter or longer
than the command needs, a spike count or index out of range -- it drains the packet to its
``last`` word, executes nothing, changes no state and answers one status word that says what
was wrong. Command word ``opcode << 24 | arg``; every packet answers with its data words (if any)
and one status word ``opcode << 24 | status << 16`` (the only word with ``last``).

=======  ==============  ========================================================================
opcode   name            arg / payload / response
=======  ==============  ========================================================================
0x00     INFO            arg 0; response: ``MAGIC``, config hash bits 0-31, bits 32-63
0x01     WRITE           arg = quantity | first row << 4; payload = the values of 1 to
                         :meth:`CoreRules.chunk_rows` whole rows from that row on (not past the
                         last row), wire order; nothing is written unless the whole packet is
                         right
0x02     READ            arg = quantity | first row << 4 | rows << 17 (:data:`ReadArg`; rows 0: to
                         the last row; arg = quantity reads it all); response = the values of
                         those rows in wire order
0x03     LOAD_SPIKES     arg 0 or :data:`LOAD_FORWARD`; payload per timestep ``t = 0 .. T-1``: a
                         count ``c <= n_in``, then ``c`` ascending input indices (address
                         events); replaces the spikes only when the whole packet is right (not
                         on cores fed by a spike link). With :data:`LOAD_FORWARD` the core also
                         runs FORWARD on them as they arrive (each event once it is written)
                         and answers once, after the forward pass
0x04     FORWARD         arg 0; run ``T`` timesteps of the forward pass
0x05     SET_LABEL       arg = label; the output error comes from spike counts and this label
0x06     BACKWARD        arg bit 0: apply the update afterwards; bit 1: use the external error
                         (quantity ``errors``, or the error link) instead of the label; bit 2:
                         the error link if the core has one, else the label (so one BACKWARD
                         trains every layer of an array); bits 3-23 zero
0x07     UPDATE          arg 0; apply the accumulated gradients to the weights and clear them
0x08     SET_LR          arg = ``lr_shift`` (``L``) within the core's allowed range
0x09     COUNTERS        arg 0; response: the cycle counters (:data:`COUNTERS` order)
0x0A     ABORT           arg 0; stops the running command (it answers ``ABORTED``), every engine
                         and the core's links; taken even while a command runs
0x0B     SET_TIMEOUT     array only (route to the array itself); payload: the watchdog's cycles
0x0C     LOAD_INPUTS     cores with the rate encoder (``rate_encoder``); arg 0; payload: the
                         sample's key, then the ``n_in`` intensities packed by
                         :func:`input_words`; the core draws the rate-coded spikes with the
                         contract's LFSRs (:func:`spikeforge.sw.encoders.rate_encode`) and loads
                         them as LOAD_SPIKES would
=======  ==============  ========================================================================

Values are two's complement in the low bits of a word, sign-extended to 32 bits on reads. A
value written outside its range is saturated (and written) and the status is ``OUT_OF_RANGE``.

**Core array** (:class:`~spikeforge.hw.array.CoreArray`): every host packet starts with a route
word ``ROUTE << 24 | first << 12 | count`` and carries one core command for cores ``first ..
first + count - 1`` (each word goes to all of them at once); ``count = 0`` (and ``first = 0``)
addresses the array itself (INFO, SET_TIMEOUT). Every addressed core answers each packet with
exactly one response packet; the array writes the core's index into the low 16 bits of the
status word (:func:`status_core`). A packet the array itself rejects (a bad route word, a route
word alone) is answered once by the array, core index :data:`ARRAY_TAG`. A core that does not
take a packet or does not answer within the watchdog's cycles is answered for by the array
with ``TIMEOUT`` and its own late answer is dropped, so one stuck core never blocks the others.
Response packets of different cores never interleave; their order is not fixed, but one core's
answers keep the order of its packets.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from amaranth.lib import data, enum, stream

from spikeforge.hw.params import BUS_BITS

__all__ = [
    "ARRAY_TAG",
    "BACKWARD_ALL",
    "BUS_BITS",
    "COUNTERS",
    "EXECUTED",
    "LOAD_FORWARD",
    "MAGIC",
    "MAX_ARRAY_CORES",
    "QUANTITIES",
    "READ_ROWS_MAX",
    "ROUTE",
    "WRITABLE",
    "ArgRange",
    "ArgRead",
    "ArrayRules",
    "CommandBeat",
    "CommandSpec",
    "CommandWord",
    "CoreRules",
    "Opcode",
    "Payload",
    "Quantity",
    "ReadArg",
    "ResponseBeat",
    "RouteWord",
    "Status",
    "StatusWord",
    "WriteArg",
    "array_route",
    "command",
    "command_signature",
    "input_packing",
    "input_words",
    "opcode_name",
    "parse_status",
    "read_arg",
    "response_signature",
    "route",
    "spike_words",
    "status_core",
    "status_word",
]

MAGIC = 0x5F0C0DE1
"""First word of the INFO response."""
ROUTE = 0xF0
"""Top byte of a core array's route word."""
ARRAY_TAG = 0xFFFF
"""Core index in the status word of a response from the array itself."""
MAX_ARRAY_CORES = 1 << 12
"""Cores a route word can address."""


class Opcode(enum.IntEnum, shape=8):
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
    ABORT = 0x0A
    SET_TIMEOUT = 0x0B
    LOAD_INPUTS = 0x0C


class Status(enum.IntEnum, shape=8):
    """What a packet's status word says (the first problem found, in packet order)."""

    OK = 0
    BAD_OPCODE = 1
    """No such command on this core (or on the array)."""
    BAD_ARG = 2
    """The argument is out of range, or reserved bits are set."""
    OUT_OF_RANGE = 3
    """WRITE: a value was outside its range and was written saturated."""
    BAD_LENGTH = 4
    """The packet is shorter or longer than the command needs (or was abandoned)."""
    BAD_SPIKES = 5
    """LOAD_SPIKES: a count above the core's inputs, or an index out of range or not ascending."""
    ABORTED = 6
    """The command was stopped by ABORT."""
    TIMEOUT = 7
    """Array: the addressed core did not take the packet or answer it within the watchdog."""


EXECUTED = frozenset({Status.OK, Status.OUT_OF_RANGE})
"""Statuses of a packet the core ran (every other status: it changed nothing)."""


def opcode_name(op: int) -> str:
    """``"WRITE"`` for a known opcode, ``"opcode 0x3f"`` for any other."""
    try:
        return Opcode(op).name
    except ValueError:
        return f"opcode {int(op):#04x}"


class Quantity(enum.IntEnum, shape=4):
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
    memory: str
    """The core memory that holds it (a quantity exists on a core that has that memory)."""
    part: str | None = None
    """The field of a lane of a memory with a lane layout (the membrane history's ``u``/``s``,
    :func:`~spikeforge.hw.datapath.membrane_layout`); ``None``: the whole lane."""


QUANTITIES = {
    Quantity.WEIGHTS: QuantityInfo("n_out", "n_in", True, True, "weights"),
    Quantity.MEMBRANES: QuantityInfo("T", "n_out", True, False, "membranes", "u"),
    Quantity.SPIKES: QuantityInfo("T", "n_out", False, False, "membranes", "s"),
    Quantity.DELTAS: QuantityInfo("T", "n_out", True, False, "deltas"),
    Quantity.EPREV: QuantityInfo("T", "n_in", True, False, "eprev"),
    Quantity.GRADS: QuantityInfo("n_out", "n_in", True, True, "grads"),
    Quantity.ERRORS: QuantityInfo("T", "n_out", True, True, "errors"),
    Quantity.LFSR: QuantityInfo("n_out", "1", False, True, "lfsr"),
    Quantity.COUNTS: QuantityInfo("n_out", "1", False, False, "counts"),
}
"""Wire order of every quantity: weights and gradients ``[j][i]`` like ``torch.nn.Linear``,
per-timestep values ``[t][j]`` (or ``[t][i]``), per-neuron values ``[j]``; MEMBRANES and SPIKES
are the two fields of the membrane history's lanes (``part``): SPIKES are the forward engine's own
spike bits, stored beside ``u[t]``. An LFSR state written as 0 (which would never step) becomes
1."""
WRITABLE = tuple(q for q, info in QUANTITIES.items() if info.writable)

COUNTERS = ("forward", "lanes_busy", "bp", "wg", "update", "backward")
"""Cycle counters: the last FORWARD's cycles and cycles with the lanes accumulating or
integrating; the last BACKWARD's BP-engine, WG-engine, update-engine and total cycles."""

# -- word formats (LSB first) ---------------------------------------------------------------------

CommandWord = data.StructLayout({"arg": 24, "opcode": 8})
"""A command word: ``opcode << 24 | arg``."""
WriteArg = data.StructLayout({"quantity": 4, "row": 20})
"""WRITE's argument: the quantity and the first row (outer index) the packet writes."""
ReadArg = data.StructLayout({"quantity": 4, "row": 13, "rows": 7})
"""READ's argument: the quantity, the first row and how many rows (0: to the last row), so a
host on a lossy link reads a large quantity in short answers."""
READ_ROWS_MAX = (1 << 7) - 1
"""The most rows a READ with a row count reads (more with ``rows`` 0: to the last row)."""
RouteWord = data.StructLayout({"count": 12, "first": 12, "tag": 8})
"""A core array's route word: ``ROUTE << 24 | first << 12 | count``."""
StatusWord = data.StructLayout({"core": 16, "status": 8, "opcode": 8})
"""A status word: the command's opcode, its status, and (on an array) the answering core."""

CommandBeat = data.StructLayout({"data": BUS_BITS, "last": 1, "abandon": 1})
"""One word of a command packet on a host stream. ``last`` ends the packet; ``abandon`` (only
with ``last``) ends it as damaged, so the core drops it whatever it holds (the array's router
uses it to close a packet it had to stop delivering; a link layer may use it for a frame that
failed its check). The AXI4-Stream top maps ``tdata``/``tlast`` and leaves ``abandon`` low."""
ResponseBeat = data.StructLayout({"data": BUS_BITS, "last": 1})
"""One word of a response packet."""


def command_signature() -> stream.Signature:
    """The command stream of a host port (into a core or an array)."""
    return stream.Signature(CommandBeat)


def response_signature() -> stream.Signature:
    """The response stream of a host port."""
    return stream.Signature(ResponseBeat)


def _bits(layout: data.StructLayout, fields: Mapping[str, int]) -> int:
    return layout.const(dict(fields)).as_bits()


LOAD_FORWARD = 0b1
"""LOAD_SPIKES's argument that streams the load into FORWARD: the forward pass starts with the
load and runs behind the loader event by event (timestep ``t`` once its count word is taken,
each accumulate once its index is written: :mod:`~spikeforge.hw.host.spikes`), and the packet
is answered once, when the forward pass is done (status ``OK``). A bad payload (``BAD_LENGTH``
/ ``BAD_SPIKES``) stops the forward pass as ABORT would (the core's engines and links and, in
an array, the links on both of its layer boundaries) and draws that status; the banks do not
flip, no weight or learning state changes, and the membranes and counts the stopped pass wrote
are not to be used (cores above, already in FORWARD, wait for spikes until the watchdog answers
``TIMEOUT`` for them and an ABORT brings them back)."""

BACKWARD_ALL = 0b101
"""BACKWARD's argument that trains every core of an array in one packet: the update after, the
error from the core's error link, or from the label on a core without one (the last layer)."""


def command(op: Opcode | int, arg: int = 0) -> int:
    """The command word ``op << 24 | arg``."""
    if not 0 <= int(op) < 1 << 8:
        raise ValueError(f"opcode = {op} is out of range: allowed [0, 255]")
    if not 0 <= arg < 1 << 24:
        raise ValueError(f"arg = {arg} is out of range: allowed [0, {(1 << 24) - 1}]")
    return _bits(CommandWord, {"opcode": int(op), "arg": arg})


def read_arg(q: Quantity | int, first: int = 0, rows: int = 0) -> int:
    """READ's argument (:data:`ReadArg`): ``rows`` rows of ``q`` from row ``first`` (0: to
    the last row)."""
    return _bits(ReadArg, {"quantity": int(q), "row": first, "rows": rows})


def route(first: int, count: int = 1) -> int:
    """The route word for cores ``first .. first + count - 1``."""
    if not 0 <= first < MAX_ARRAY_CORES or not 1 <= count <= MAX_ARRAY_CORES - first:
        raise ValueError(
            f"route to cores {first} .. {first + count - 1} is out of range: allowed "
            f"0 .. {MAX_ARRAY_CORES - 1}, at least one core"
        )
    return _bits(RouteWord, {"tag": ROUTE, "first": first, "count": count})


def array_route() -> int:
    """The route word that addresses the array itself (``count = 0``)."""
    return _bits(RouteWord, {"tag": ROUTE})


def status_word(op: int, status: Status, core: int = 0) -> int:
    """A status word (what a core or the array sends last in a response packet)."""
    return _bits(StatusWord, {"opcode": op, "status": int(status), "core": core})


def status_core(word: int) -> int:
    """Index of the core that sent a status word (:data:`ARRAY_TAG`: the array itself)."""
    return StatusWord.from_bits(word).core


def parse_status(word: int) -> tuple[int, Status]:
    """``(opcode, status)`` of a status word (the opcode echoed as an int: it may be unknown)."""
    view = StatusWord.from_bits(word)
    return view.opcode, Status(view.status)


def spike_words(spikes: Sequence[Sequence[int]]) -> list[int]:
    """LOAD_SPIKES payload from a ``[T][n_in]`` 0/1 spike train: per timestep a count and the
    indices of the inputs that spike, ascending."""
    words = []
    for row in spikes:
        active = [i for i, s in enumerate(row) if s]
        words.append(len(active))
        words.extend(active)
    return words


def input_packing(in_bits: int) -> tuple[int, int]:
    """``(slot_bits, per_word)`` of LOAD_INPUTS: intensities in 8-bit slots (16-bit when
    ``in_bits > 8``), input ``i`` in word ``i // per_word`` at bit ``(i % per_word) * slot``;
    unused bits are zero."""
    slot = 8 if in_bits <= 8 else 16
    return slot, BUS_BITS // slot


def input_words(x: Sequence[int], key: int, in_bits: int) -> list[int]:
    """LOAD_INPUTS payload: the sample's ``key`` (the rate encoder's seed word), then the
    intensities ``x`` (each in ``[0, 2**in_bits)``) packed by :func:`input_packing`."""
    slot, per = input_packing(in_bits)
    if not 0 <= key < 1 << 32:
        raise ValueError(f"key must be in [0, 2**32), not {key}")
    words = [0] * -(-len(x) // per)
    for i, v in enumerate(x):
        if not 0 <= v < 1 << in_bits:
            raise ValueError(f"intensity {i} = {v} is outside [0, 2**{in_bits})")
        words[i // per] |= int(v) << (i % per) * slot
    return [key, *words]


def to_signed(word: int, bits: int = 32) -> int:
    """Two's-complement value of the low ``bits`` of ``word``."""
    word &= (1 << bits) - 1
    return word - (1 << bits) if word >> (bits - 1) else word


def to_words(values: Iterable[int]) -> list[int]:
    """32-bit words of signed values (two's complement)."""
    return [v & 0xFFFFFFFF for v in values]


# -- the rules of one core ------------------------------------------------------------------------
#
# Each rule is one predicate written with operators only, so the same method answers for an int
# in software and builds the comparison in hardware when given an Amaranth value.


def _any(terms: Iterable[Any]) -> Any:
    terms = list(terms)
    return functools.reduce(operator.or_, terms) if terms else False


@dataclass(frozen=True)
class ArgRange:
    """The argument must lie in ``lo .. hi``."""

    lo: int
    hi: int

    def ok(self, arg: Any) -> Any:
        return (arg <= self.hi) if self.lo == 0 else (arg >= self.lo) & (arg <= self.hi)


@dataclass(frozen=True)
class ArgRead:
    """READ: quantity ``arg & 0xF`` readable, first row below its row count, and the rows
    (:data:`ReadArg`; 0: to the last row) not past its last row."""

    rows: tuple[tuple[int, int], ...]
    """``(quantity, rows)`` of every readable quantity."""

    def ok(self, arg: Any) -> Any:
        return self.head_ok(arg) & self.span_ok(arg)

    def head_ok(self, arg: Any) -> Any:
        """The quantity is readable and the first row below its row count."""
        q, row = arg & 0xF, (arg >> 4) & 0x1FFF
        return _any((q == quantity) & (row < rows) for quantity, rows in self.rows)

    def span_ok(self, arg: Any) -> Any:
        """The rows asked for end at or before the quantity's last row (the one check that
        needs an adder: a core checks it a cycle after :meth:`head_ok`)."""
        q, row, count = arg & 0xF, (arg >> 4) & 0x1FFF, arg >> 17
        return _any((q == quantity) & (row + count <= rows) for quantity, rows in self.rows)


@dataclass(frozen=True)
class ArgWrite:
    """WRITE: quantity ``arg & 0xF`` writable, first row ``arg >> 4`` below its row count."""

    rows: tuple[tuple[int, int], ...]
    """``(quantity, rows)`` of every writable quantity."""

    def ok(self, arg: Any) -> Any:
        q, row = arg & 0xF, arg >> 4
        return _any((q == quantity) & (row < rows) for quantity, rows in self.rows)


class Payload(enum.Enum):
    """What follows a command word in its packet."""

    NONE = "none"
    VALUES = "values"
    """WRITE: the values of 1 to :meth:`CoreRules.chunk_rows` whole rows."""
    SPIKES = "spikes"
    """LOAD_SPIKES: per timestep a count and its indices."""
    INPUTS = "inputs"
    """LOAD_INPUTS: a key and the packed intensities."""


@dataclass(frozen=True)
class CommandSpec:
    """One command of a core: its argument rule and its payload."""

    arg: ArgRange | ArgRead | ArgWrite
    payload: Payload = Payload.NONE


ZERO = ArgRange(0, 0)


@dataclass(frozen=True)
class CoreRules:
    """What one core accepts: its commands, argument ranges and packet lengths.

    Built from a core's parameters by :meth:`of`. The hardware framer takes its comparisons from
    :attr:`commands` (each rule's ``ok`` applied to the argument signal); :meth:`status` is the
    same check in software, for hosts and testbenches.

    Attributes
    ----------
    timesteps, n_in : int
        ``T`` and the core's inputs (the LOAD_SPIKES limits).
    shapes : mapping of Quantity to (outer, inner)
        Every readable quantity's wire shape.
    widths : mapping of Quantity to int
        Bits of every writable quantity's values (a written value saturates to them).
    write_buffer : int
        Values the core stages before it commits a WRITE (one packet holds at most this many).
    in_bits : int
        Bits of an intensity LOAD_INPUTS takes (0: the core has no rate encoder).
    commands : mapping of Opcode to CommandSpec
    """

    timesteps: int
    n_in: int
    shapes: Mapping[Quantity, tuple[int, int]]
    widths: Mapping[Quantity, int]
    write_buffer: int
    in_bits: int
    commands: Mapping[Opcode, CommandSpec] = field(repr=False)

    @classmethod
    def of(cls, params: Any) -> CoreRules:
        """The rules of the core ``params`` (a :class:`~spikeforge.hw.params.CoreParams`),
        computed once per distinct core."""
        return _core_rules(params)

    @classmethod
    def _build(cls, params: Any) -> CoreRules:
        sizes = {"n_out": params.n_out, "n_in": params.n_in, "T": params.timesteps, "1": 1}
        memories = params.memory_map
        shapes = {
            q: (sizes[info.outer], sizes[info.inner])
            for q, info in QUANTITIES.items()
            if info.memory in memories
        }
        commands = {
            Opcode.INFO: CommandSpec(ZERO),
            Opcode.WRITE: CommandSpec(
                ArgWrite(tuple((int(q), shapes[q][0]) for q in WRITABLE if q in shapes)),
                Payload.VALUES,
            ),
            Opcode.READ: CommandSpec(
                ArgRead(tuple((int(q), shape[0]) for q, shape in shapes.items()))
            ),
            Opcode.FORWARD: CommandSpec(ZERO),
            Opcode.SET_LABEL: CommandSpec(ArgRange(0, params.layer_neurons - 1)),
            Opcode.BACKWARD: CommandSpec(ArgRange(0, 7)),
            Opcode.UPDATE: CommandSpec(ZERO),
            Opcode.SET_LR: CommandSpec(ArgRange(params.lr_min, params.lr_max)),
            Opcode.COUNTERS: CommandSpec(ZERO),
            Opcode.ABORT: CommandSpec(ZERO),
        }
        if not params.spikes_in:  # a core fed by a spike link takes its spikes from the link
            commands[Opcode.LOAD_SPIKES] = CommandSpec(ArgRange(0, LOAD_FORWARD), Payload.SPIKES)
        if params.rate_encoder:
            commands[Opcode.LOAD_INPUTS] = CommandSpec(ZERO, Payload.INPUTS)
        return cls(
            timesteps=params.timesteps,
            n_in=params.n_in,
            shapes=shapes,
            widths={q: memories[QUANTITIES[q].memory].width for q in WRITABLE if q in shapes},
            write_buffer=params.write_buffer,
            in_bits=params.net.in_bits if params.rate_encoder else 0,
            commands=dict(sorted(commands.items())),
        )

    @property
    def writable(self) -> tuple[Quantity, ...]:
        """The writable quantities this core has (:data:`WRITABLE` less the absent ones: no
        GRADS on a core with fused gradients)."""
        return tuple(q for q in WRITABLE if q in self.shapes)

    def chunk_rows(self, q: Quantity) -> int:
        """The most rows of ``q`` one WRITE packet carries (the staging buffer's rows)."""
        outer, inner = self.shapes[q]
        return min(outer, self.write_buffer // inner)

    def write_chunks(
        self, q: Quantity, values: Sequence[int], *, max_rows: int | None = None
    ) -> list[tuple[int, list[int]]]:
        """``(arg, payload)`` of every WRITE packet that writes all values of ``q`` (given in
        wire order): :meth:`chunk_rows` rows each, or ``max_rows`` if fewer (short packets
        for a lossy link)."""
        outer, inner = self.shapes[q]
        if len(values) != outer * inner:
            raise ValueError(f"{q.name} has {outer * inner} values, not {len(values)}")
        rows = self._rows(self.chunk_rows(q), max_rows)
        return [
            (int(q) | row << 4, to_words(values[row * inner : (row + rows) * inner]))
            for row in range(0, outer, rows)
        ]

    def read_chunks(self, q: Quantity, *, max_rows: int | None = None) -> list[tuple[int, int]]:
        """``(arg, rows)`` of the READs that read all of ``q`` in order: one READ, or one per
        ``max_rows`` rows (at most :data:`READ_ROWS_MAX`)."""
        outer, _ = self.shapes[q]
        if max_rows is None:
            return [(int(q), outer)]
        rows = self._rows(min(outer, READ_ROWS_MAX), max_rows)
        return [
            (read_arg(q, row, min(rows, outer - row)), min(rows, outer - row))
            for row in range(0, outer, rows)
        ]

    @staticmethod
    def _rows(most: int, max_rows: int | None) -> int:
        if max_rows is None:
            return most
        if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
            raise ValueError(f"max_rows must be an int >= 1, not {max_rows!r}")
        return min(most, max_rows)

    def status(self, words: Sequence[int], *, abandoned: bool = False) -> Status:
        """The status the core answers to the packet ``words`` (``abandoned``: it ended with
        the ``abandon`` flag), checked in the order the core checks it."""
        if not words:
            raise ValueError("a packet has at least one word")
        word = CommandWord.from_bits(words[0] & 0xFFFFFFFF)
        op, arg, payload = word.opcode, word.arg, list(words[1:])
        if abandoned:
            return Status.BAD_LENGTH
        spec = self.commands.get(op)
        if spec is None:
            return Status.BAD_OPCODE
        if not spec.arg.ok(arg):
            return Status.BAD_ARG
        if spec.payload is Payload.VALUES:
            return self._write_status(Quantity(arg & 0xF), arg >> 4, payload)
        if spec.payload is Payload.SPIKES:
            return self._spikes_status(payload)
        if spec.payload is Payload.INPUTS:
            return self._inputs_status(payload)
        return Status.BAD_LENGTH if payload else Status.OK

    @property
    def input_words(self) -> int:
        """Intensity words of a LOAD_INPUTS packet (after its key word)."""
        return -(-self.n_in // input_packing(self.in_bits)[1])

    def input_reserved(self, last: bool) -> int:
        """Bits that must be zero in an intensity word of LOAD_INPUTS (``last``: the final
        word, whose slots past ``n_in`` are unused): above ``in_bits`` in every slot."""
        slot, per = input_packing(self.in_bits)
        used = self.n_in - (self.input_words - 1) * per if last else per
        mask = 0
        for k in range(per):
            keep = ((1 << self.in_bits) - 1) if k < used else 0
            mask |= (((1 << slot) - 1) & ~keep) << k * slot
        return mask

    def _inputs_status(self, payload: list[int]) -> Status:
        n = self.input_words
        if len(payload) < 2:  # the key alone, or nothing
            return Status.BAD_LENGTH
        for w, word in enumerate(payload[1:]):
            last_word, last_beat = w == n - 1, w == len(payload) - 2
            if word & 0xFFFFFFFF & self.input_reserved(last_word):
                return Status.BAD_SPIKES
            if last_word != last_beat:
                return Status.BAD_LENGTH
        return Status.OK

    def _write_status(self, q: Quantity, row: int, payload: list[int]) -> Status:
        outer, inner = self.shapes[q]
        rows, rest = divmod(len(payload), inner)
        if rest or not 1 <= rows <= min(self.chunk_rows(q), outer - row):
            return Status.BAD_LENGTH
        if q == Quantity.LFSR:
            clipped = any(v & 0xFFFFFFFF == 0 for v in payload)
        else:
            lo, hi = self.value_range(q)
            clipped = any(not lo <= to_signed(v) <= hi for v in payload)
        return Status.OUT_OF_RANGE if clipped else Status.OK

    def _spikes_status(self, payload: list[int]) -> Status:
        pos = 0
        for _ in range(self.timesteps):
            if pos == len(payload):
                return Status.BAD_LENGTH
            count = payload[pos] & 0xFFFFFFFF
            pos += 1
            if count > self.n_in:  # reserved bits set, or more spikes than inputs
                return Status.BAD_SPIKES
            prev = -1
            for _ in range(count):
                if pos == len(payload):
                    return Status.BAD_LENGTH
                index = payload[pos] & 0xFFFFFFFF
                pos += 1
                if index >= self.n_in or index <= prev:
                    return Status.BAD_SPIKES
                prev = index
        return Status.BAD_LENGTH if pos != len(payload) else Status.OK

    def value_range(self, q: Quantity) -> tuple[int, int]:
        """Signed range a written value of ``q`` is saturated to."""
        bits = self.widths[q]
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


@functools.cache
def _core_rules(params: Any) -> CoreRules:
    return CoreRules._build(params)


@dataclass(frozen=True)
class ArrayRules:
    """What an array's router accepts itself: route words and the array's own commands."""

    cores: int
    commands: Mapping[Opcode, CommandSpec] = field(
        default_factory=lambda: {
            Opcode.INFO: CommandSpec(ZERO),
            Opcode.SET_TIMEOUT: CommandSpec(ZERO, Payload.VALUES),
        }
    )

    def targets(self, word: int) -> range | None:
        """The cores a route word addresses (empty: the array itself); ``None``: a bad word."""
        view = RouteWord.from_bits(word & 0xFFFFFFFF)
        if view.tag != ROUTE:
            return None
        if view.count == 0:
            return range(0) if view.first == 0 else None
        if view.first + view.count > self.cores:
            return None
        return range(view.first, view.first + view.count)

    def answers(self, word: int, *, alone: bool = False) -> int:
        """How many answer packets a packet that starts with route word ``word`` draws (``alone``:
        the route word is the whole packet): one from each core it addresses, else one from the
        array itself."""
        targets = self.targets(word)
        return len(targets) if targets and not alone else 1

    def status(self, words: Sequence[int]) -> Status | None:
        """The array's own answer to a packet, or ``None`` when the packet goes to cores."""
        targets = self.targets(words[0])
        if targets is None:
            return Status.BAD_ARG
        if len(words) == 1:
            return Status.BAD_LENGTH
        if targets:
            return None
        word = CommandWord.from_bits(words[1] & 0xFFFFFFFF)
        spec = self.commands.get(word.opcode)
        if spec is None:
            return Status.BAD_OPCODE
        if not spec.arg.ok(word.arg):
            return Status.BAD_ARG
        need = 1 if spec.payload is Payload.VALUES else 0
        return Status.OK if len(words) == 2 + need else Status.BAD_LENGTH
