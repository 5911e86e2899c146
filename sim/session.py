"""Host-side session with one core: tensors in, protocol words out, and back.

Transport-agnostic: give it any ``async call(op, arg, payload) -> (data_words, status)`` (the
Amaranth simulator's host in the tests, a cocotb AXI-Stream driver, a real device). Every
method checks the status word and raises :class:`CoreError` naming the core and the command
otherwise. A transport gives every wait a deadline and raises :class:`TimeoutError` when it
passes; the session turns that (and a ``TIMEOUT`` answer from an array's watchdog) into
:class:`CoreTimeout`, again naming the core and the command.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import torch

from spikeforge.hw.host import quantity_layout
from spikeforge.hw.params import CoreParams
from spikeforge.hw.protocol import (
    COUNTERS,
    LOAD_FORWARD,
    QUANTITIES,
    READ_ROWS_MAX,
    CoreRules,
    Opcode,
    Quantity,
    Status,
    input_words,
    opcode_name,
    read_arg,
    spike_words,
    to_signed,
)

__all__ = ["CoreError", "CoreSession", "CoreTimeout", "check_answer"]

Call = Callable[[Opcode, int, Sequence[int]], Awaitable[tuple[list[int], Status]]]


class CoreError(RuntimeError):
    """A command answered with a status other than OK (``status``; ``None``: a malformed
    answer)."""

    def __init__(self, message: str, status: Status | None = None):
        super().__init__(message)
        self.status = status


class CoreTimeout(CoreError, TimeoutError):
    """No answer in time: the host's deadline passed, or an array's watchdog answered
    ``TIMEOUT`` for the core."""


def check_answer(who: str, op: Opcode | int, arg: int, status: Status) -> None:
    """Raise :class:`CoreError` (:class:`CoreTimeout` for ``TIMEOUT``) unless ``status`` is OK;
    the message names ``who`` (e.g. ``"core 3"``) and the command."""
    if status == Status.OK:
        return
    name = opcode_name(op)
    kind = CoreTimeout if status == Status.TIMEOUT else CoreError
    why = " (the array's watchdog: no answer in time)" if status == Status.TIMEOUT else ""
    raise kind(f"{who}: {name}(arg={arg}) answered {status.name}{why}", status)


class CoreSession:
    """Typed commands for one core.

    Parameters
    ----------
    params : CoreParams
    call : async callable ``(op, arg, payload) -> (words, status)``
    name : str
        How errors name the core (``"core 3"`` on an array).
    frame_words : int, optional
        The most values one WRITE carries or one READ answers (whole rows, at least one):
        short packets for a lossy link, where a long one would rarely arrive intact. ``None``:
        as many as the core takes (WRITE: its staging buffer; READ: the whole quantity).
    """

    def __init__(
        self, params: CoreParams, call: Call, *, name: str = "core", frame_words: int | None = None
    ):
        self.params = params
        self.rules = CoreRules.of(params)
        self.name = name
        if frame_words is not None and (
            isinstance(frame_words, bool) or not isinstance(frame_words, int) or frame_words < 1
        ):
            raise ValueError(f"frame_words must be an int >= 1 or None, not {frame_words!r}")
        self.frame_words = frame_words
        self._call = call

    def _max_rows(self, q: Quantity) -> int | None:
        if self.frame_words is None:
            return None
        return max(1, self.frame_words // self.shape(q)[1])

    async def _ok(self, op: Opcode, arg: int = 0, payload: Sequence[int] = ()) -> list[int]:
        try:
            words, status = await self._call(op, arg, list(payload))
        except TimeoutError as exc:
            raise CoreTimeout(f"{self.name}: {op.name}(arg={arg}) got no answer: {exc}") from exc
        check_answer(self.name, op, arg, status)
        return words

    def shape(self, q: Quantity) -> tuple[int, int]:
        lay = quantity_layout(self.params, q)
        return lay[0], lay[3]

    async def info(self) -> list[int]:
        return await self._ok(Opcode.INFO)

    async def write(self, q: Quantity, values: torch.Tensor) -> None:
        """Write a quantity (shape as :meth:`shape`, e.g. master weights ``[n_out, n_in]``), in
        as many WRITE packets as the core's staging buffer needs (each one all or nothing)."""
        flat = [int(v) for v in values.reshape(-1).tolist()]
        for arg, payload in self.rules.write_chunks(q, flat, max_rows=self._max_rows(q)):
            await self._ok(Opcode.WRITE, arg, payload)

    async def read(self, q: Quantity) -> torch.Tensor:
        """All values of ``q`` (in one READ, or in READs of ``frame_words`` values)."""
        parts = [
            await self._read(q, arg, rows)
            for arg, rows in self.rules.read_chunks(q, max_rows=self._max_rows(q))
        ]
        out = torch.cat(parts)
        return out.reshape(-1) if QUANTITIES[q].inner == "1" else out

    async def read_rows(self, q: Quantity, first: int, rows: int) -> torch.Tensor:
        """Rows ``first .. first + rows - 1`` of ``q`` (one READ; at most ``READ_ROWS_MAX``)."""
        outer, _ = self.shape(q)
        if not (first >= 0 and 1 <= rows <= READ_ROWS_MAX and first + rows <= outer):
            raise ValueError(f"rows {first}..{first + rows - 1} of {q.name}: it has {outer}")
        return await self._read(q, read_arg(q, first, rows), rows)

    async def _read(self, q: Quantity, arg: int, rows: int) -> torch.Tensor:
        """One READ of ``rows`` rows of ``q``: ``[rows, inner]`` values."""
        inner = self.shape(q)[1]
        words = await self._ok(Opcode.READ, arg)
        if len(words) != rows * inner:
            raise CoreError(
                f"{self.name}: READ {q.name} (arg {arg:#x}) returned {len(words)} words, "
                f"not {rows * inner}"
            )
        values = [to_signed(w) for w in words] if QUANTITIES[q].signed else words
        return torch.tensor(values, dtype=torch.int64).reshape(rows, inner)

    async def load_spikes(self, spikes: torch.Tensor) -> None:
        """``spikes`` ``[T, n_in]`` of 0/1."""
        await self._ok(Opcode.LOAD_SPIKES, 0, spike_words(spikes.tolist()))

    async def load_forward(self, spikes: torch.Tensor) -> None:
        """``spikes`` ``[T, n_in]`` of 0/1, with the forward pass streamed into the load
        (LOAD_SPIKES with :data:`~spikeforge.hw.protocol.LOAD_FORWARD`: one answer after it)."""
        await self._ok(Opcode.LOAD_SPIKES, LOAD_FORWARD, spike_words(spikes.tolist()))

    async def load_inputs(self, x: torch.Tensor, key: int) -> None:
        """``x`` ``[n_in]`` intensities (each in ``[0, 2**in_bits)``) of the sample with
        ``key``: the core's rate encoder draws the spikes (a core with ``rate_encoder``)."""
        if not self.params.rate_encoder:
            raise CoreError(f"{self.name} has no rate encoder: load spikes (LOAD_SPIKES)")
        words = input_words(x.tolist(), int(key), self.params.net.in_bits)
        await self._ok(Opcode.LOAD_INPUTS, 0, words)

    async def forward(self) -> None:
        await self._ok(Opcode.FORWARD)

    async def set_label(self, label: int) -> None:
        await self._ok(Opcode.SET_LABEL, int(label))

    async def set_lr(self, lr_shift: int) -> None:
        await self._ok(Opcode.SET_LR, int(lr_shift))

    async def backward(self, *, update: bool, external_error: bool = False) -> None:
        await self._ok(Opcode.BACKWARD, int(update) | (int(external_error) << 1))

    async def update(self) -> None:
        await self._ok(Opcode.UPDATE)

    async def abort(self) -> None:
        """ABORT: the core's engines and links back to idle (docs/core.md, "ABORT")."""
        await self._ok(Opcode.ABORT)

    async def counters(self) -> dict[str, int]:
        words = await self._ok(Opcode.COUNTERS)
        return dict(zip(COUNTERS, words, strict=True))
