"""Integer primitives of the numeric contract (docs/arithmetic.md, section 1).

Every function takes and returns ``torch.int64`` tensors (or Python ints where noted) and never
converts to floating point. Widths are two's-complement bit counts including the sign bit.

=====================  ====================================================================
``sat(x, bits)``        clamp to ``[-2**(bits-1), 2**(bits-1) - 1]``
``sat_add(a, b, bits)`` ``sat(a + b, bits)``; the sum is formed exactly in 64 bits first
``shr_floor(x, s)``     ``floor(x / 2**s)``: arithmetic right shift
``shr_round(x, s)``     ``floor((x + 2**(s-1)) / 2**s)``: nearest, ties toward +inf
``shr_stoch(x, s, r)``  ``floor((x + r) / 2**s)`` with ``r`` uniform in ``[0, 2**s)``
``leak(x, k)``          ``x - (x >> k)``: multiply by ``1 - 2**-k`` rounded toward +inf
=====================  ====================================================================
"""

from __future__ import annotations

import torch

__all__ = [
    "leak",
    "sat",
    "sat_add",
    "shr_floor",
    "shr_round",
    "shr_stoch",
    "signed_range",
]

MAX_BITS = 48
"""Widest integer the contract uses; int64 holds every intermediate sum of such values."""


def signed_range(bits: int) -> tuple[int, int]:
    """``(min, max)`` of a ``bits``-wide two's-complement integer."""
    if not isinstance(bits, int) or not 1 <= bits <= MAX_BITS:
        raise ValueError(f"bits must be an int in [1, {MAX_BITS}], not {bits!r}")
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def sat(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Saturate ``x`` to a signed ``bits``-wide integer (never wraps)."""
    lo, hi = signed_range(bits)
    return x.clamp(lo, hi)


def sat_add(a: torch.Tensor, b: torch.Tensor, bits: int) -> torch.Tensor:
    """Saturating add: the exact sum, then :func:`sat`."""
    return sat(a + b, bits)


def _check_shift(s: int) -> None:
    if not isinstance(s, int) or not 0 <= s < 63:
        raise ValueError(f"shift must be an int in [0, 62], not {s!r}")


def shr_floor(x: torch.Tensor, s: int) -> torch.Tensor:
    """Arithmetic right shift: ``floor(x / 2**s)`` (rounds toward -inf)."""
    _check_shift(s)
    return x >> s


def shr_round(x: torch.Tensor, s: int) -> torch.Tensor:
    """Nearest, ties toward +inf: ``(x + 2**(s-1)) >> s``, and ``x`` when ``s == 0``."""
    _check_shift(s)
    if s == 0:
        return x
    return (x + (1 << (s - 1))) >> s


def shr_stoch(x: torch.Tensor, s: int, r: torch.Tensor) -> torch.Tensor:
    """Stochastic right shift ``(x + r) >> s`` with ``r`` in ``[0, 2**s)``.

    Unbiased: ``E[(x + r) >> s] = x / 2**s`` when ``r`` is uniform, so updates smaller than one
    LSB survive on average instead of vanishing.
    """
    _check_shift(s)
    return (x + r) >> s


def leak(x: torch.Tensor, k: int) -> torch.Tensor:
    """Leak by ``beta = 1 - 2**-k``: ``x - (x >> k)`` with an arithmetic shift."""
    _check_shift(k)
    return x - (x >> k)
