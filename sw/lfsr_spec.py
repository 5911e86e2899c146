"""The LFSR of the numeric contract in plain Python integers (no numpy, no torch).

docs/arithmetic.md section 2::

    step(s) = (s >> 1) ^ (TAPS if s & 1 else 0)          TAPS = 0x80200003
    draw(s, b): s <- step^b(s); return s & (2**b - 1)

This module is the one definition both sides read: :mod:`spikeforge.sw.lfsr` vectorizes it for
the golden model, and the RTL generator (which must not import torch) builds its unrolled XOR
networks from :func:`jump_columns` and its seed memories from :func:`seed_word`.
"""

from __future__ import annotations

__all__ = ["MASK32", "TAPS", "jump_columns", "lowbias32", "seed_word", "step"]

TAPS = 0x80200003
MASK32 = 0xFFFFFFFF


def lowbias32(x: int) -> int:
    """The ``lowbias32`` 32-bit integer hash (C. Wellons), used only to derive seeds."""
    x &= MASK32
    x ^= x >> 16
    x = (x * 0x7FEB352D) & MASK32
    x ^= x >> 15
    x = (x * 0x846CA68B) & MASK32
    x ^= x >> 16
    return x


def seed_word(*words: int) -> int:
    """``h = 0; h = lowbias32(h ^ w)`` for each word; a zero result becomes 1."""
    h = 0
    for w in words:
        if not 0 <= w <= MASK32:
            raise ValueError(f"seed words must lie in [0, 2**32 - 1], not {w!r}")
        h = lowbias32(h ^ w)
    return h or 1


def step(s: int) -> int:
    """One step of the right-shifting Galois LFSR."""
    return (s >> 1) ^ (TAPS if s & 1 else 0)


def jump_columns(steps: int) -> list[int]:
    """Column ``j`` of ``A**steps`` (the image of state ``1 << j`` after ``steps`` steps).

    The map is linear over GF(2), so ``step^steps(s)`` is the XOR of the columns at the set bits
    of ``s``: hardware turns each output bit into an XOR of the input bits whose column has it.
    """
    cols = []
    for j in range(32):
        s = 1 << j
        for _ in range(steps):
            s = step(s)
        cols.append(s)
    return cols
