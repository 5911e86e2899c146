"""Host-side session with one core: tensors in, protocol words out, and back.

Transport-agnostic: give it any ``async call(op, arg, payload) -> (data_words, status)`` (the
Amaranth simulator's host in the tests, a cocotb AXI-Stream driver, a real device). Every
method checks the status word and raises :class:`CoreError` with the command name otherwise.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import torch

from spikeforge.hw.host import quantity_layout
from spikeforge.hw.params import CoreParams
from spikeforge.hw.protocol import (
    COUNTERS,
    QUANTITIES,
    Opcode,
    Quantity,
    Status,
    spike_words,
    to_signed,
    to_words,
)

__all__ = ["CoreError", "CoreSession"]

Call = Callable[[Opcode, int, Sequence[int]], Awaitable[tuple[list[int], Status]]]


class CoreError(RuntimeError):
    """A command answered with a status other than OK."""


class CoreSession:
    """Typed commands for one core.

    Parameters
    ----------
    params : CoreParams
    call : async callable ``(op, arg, payload) -> (words, status)``
    """

    def __init__(self, params: CoreParams, call: Call):
        self.params = params
        self._call = call

    async def _ok(self, op: Opcode, arg: int = 0, payload: Sequence[int] = ()) -> list[int]:
        words, status = await self._call(op, arg, list(payload))
        if status != Status.OK:
            raise CoreError(f"{op.name}(arg={arg}) answered {status.name}")
        return words

    def shape(self, q: Quantity) -> tuple[int, int]:
        lay = quantity_layout(self.params, q)
        return lay[0], lay[3]

    async def info(self) -> list[int]:
        return await self._ok(Opcode.INFO)

    async def write(self, q: Quantity, values: torch.Tensor) -> None:
        """Write a quantity (shape as :meth:`shape`, e.g. master weights ``[n_out, n_in]``)."""
        flat = [int(v) for v in values.reshape(-1).tolist()]
        await self._ok(Opcode.WRITE, int(q), to_words(flat))

    async def read(self, q: Quantity) -> torch.Tensor:
        words = await self._ok(Opcode.READ, int(q))
        outer, inner = self.shape(q)
        if len(words) != outer * inner:
            raise CoreError(f"READ {q.name} returned {len(words)} words, not {outer * inner}")
        values = [to_signed(w) for w in words] if QUANTITIES[q].signed else words
        out = torch.tensor(values, dtype=torch.int64).reshape(outer, inner)
        return out.reshape(outer) if QUANTITIES[q].inner == "1" else out

    async def load_spikes(self, spikes: torch.Tensor) -> None:
        """``spikes`` ``[T, n_in]`` of 0/1."""
        await self._ok(Opcode.LOAD_SPIKES, 0, spike_words(spikes.tolist()))

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

    async def counters(self) -> dict[str, int]:
        words = await self._ok(Opcode.COUNTERS)
        return dict(zip(COUNTERS, words, strict=True))
