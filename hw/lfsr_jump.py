"""The update LFSR's multi-step next-state network (docs/arithmetic.md section 2).

``draw(s, U)`` steps the 32-bit Galois LFSR ``U`` times and returns the low ``U`` bits. ``U`` is
the runtime update shift, so hardware holds one unrolled XOR network ``A**U`` per allowed ``U``
and a multiplexer picks the one in force. Each output bit of ``A**U`` is the XOR of the input bits
whose column of ``A**U`` has that bit set (:func:`spikeforge.sw.lfsr_spec.jump_columns`).
"""

from __future__ import annotations

from functools import reduce
from operator import xor

from amaranth.hdl import Cat, Const, Module, Signal, Value

from spikeforge.sw.lfsr_spec import jump_columns

__all__ = ["lfsr_jump", "lfsr_step"]


def _jump(state: Value, steps: int) -> Value:
    """``step**steps(state)`` as XOR gates (identity for ``steps == 0``)."""
    cols = jump_columns(steps)
    bits = []
    for out_bit in range(32):
        terms = [state[j] for j in range(32) if (cols[j] >> out_bit) & 1]
        bits.append(reduce(xor, terms) if terms else Const(0, 1))
    return Cat(*bits)


def lfsr_step(state: Value, steps: int) -> Value:
    """``state`` stepped ``steps`` times (a constant count), as one XOR network."""
    return _jump(state, steps)


def lfsr_jump(m: Module, state: Value, select: Value, steps: list[int]) -> Signal:
    """A 32-bit signal equal to ``step**steps[select](state)``; ``select`` indexes ``steps``."""
    out = Signal(32)
    with m.Switch(select):
        for index, count in enumerate(steps):
            with m.Case(index):
                m.d.comb += out.eq(_jump(state, count))
        with m.Default():
            m.d.comb += out.eq(state)
    return out
