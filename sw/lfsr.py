"""The 32-bit Galois LFSR that drives every random choice hardware must reproduce.

Contract (docs/arithmetic.md, section 2)::

    step(s) = (s >> 1) ^ (TAPS if s & 1 else 0)          TAPS = 0x80200003
    draw(s, b): s <- step^b(s); return s & (2**b - 1)    (b steps, then the low b bits)

``TAPS`` is the right-shifting Galois form of x^32 + x^22 + x^2 + x + 1, a primitive polynomial,
so every non-zero state lies on one cycle of length 2**32 - 1 (``tests/test_lfsr.py`` proves it
from the step matrix). Hardware implements ``b`` steps as one unrolled XOR network per cycle.

Seeds are formed on the host by :func:`seed_state`, a chain of the ``lowbias32`` integer hash,
and are loaded into (or baked into) the hardware; the all-zero state is mapped to 1.

:func:`draws` evaluates many independent LFSR streams at once with precomputed GF(2) jump
matrices, so the golden model stays vectorized and still matches the step-by-step LFSR.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from .lfsr_spec import MASK32, TAPS, lowbias32

__all__ = ["MASK32", "TAPS", "Lfsr32", "draws", "lowbias32", "seed_state", "step_matrix"]


def _lowbias32_np(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.uint64) & np.uint64(MASK32)
    x ^= x >> np.uint64(16)
    x = (x * np.uint64(0x7FEB352D)) & np.uint64(MASK32)
    x ^= x >> np.uint64(15)
    x = (x * np.uint64(0x846CA68B)) & np.uint64(MASK32)
    x ^= x >> np.uint64(16)
    return x


def seed_state(*words: int | np.ndarray | torch.Tensor) -> torch.Tensor:
    """Seed state from a tuple of words: ``h = 0; h = lowbias32(h ^ w) for w in words``.

    Words broadcast (ints, arrays or tensors of non-negative integers < 2**32); a zero result
    becomes 1 because the all-zero state is the LFSR's fixed point. Returns ``int64``.
    """
    h = np.zeros((), dtype=np.uint64)
    for w in words:
        arr = w.numpy() if isinstance(w, torch.Tensor) else np.asarray(w)
        if arr.size and (arr.min() < 0 or arr.max() > MASK32):
            raise ValueError(f"seed words must lie in [0, 2**32 - 1], not {arr!r}")
        h = _lowbias32_np(h ^ arr.astype(np.uint64))
    h = np.where(h == 0, np.uint64(1), h)
    return torch.from_numpy(np.ascontiguousarray(h.astype(np.int64)))


class Lfsr32:
    """Step-by-step reference LFSR (what a hardware engineer reads; tests compare to it)."""

    def __init__(self, state: int):
        if not isinstance(state, int) or not 0 < state <= MASK32:
            raise ValueError(f"state must be an int in [1, 2**32 - 1], not {state!r}")
        self.state = state

    def step(self) -> int:
        s = self.state
        self.state = (s >> 1) ^ (TAPS if s & 1 else 0)
        return self.state

    def draw(self, bits: int) -> int:
        """Step ``bits`` times, return the low ``bits`` bits of the state."""
        for _ in range(bits):
            self.step()
        return self.state & ((1 << bits) - 1)


def step_matrix() -> np.ndarray:
    """The 32x32 GF(2) matrix ``A`` with ``bits(step(s)) = A @ bits(s) mod 2``."""
    a = np.zeros((32, 32), dtype=np.int64)
    for i in range(31):
        a[i, i + 1] = 1
    for i in range(32):
        if (TAPS >> i) & 1:
            a[i, 0] ^= 1
    return a


def _matpow_gf2(a: np.ndarray, n: int) -> np.ndarray:
    result = np.eye(a.shape[0], dtype=np.int64)
    base = a.copy()
    while n:
        if n & 1:
            result = (result @ base) & 1
        base = (base @ base) & 1
        n >>= 1
    return result


def _columns(m: np.ndarray) -> np.ndarray:
    """Column ``j`` of a GF(2) matrix packed as an integer: the image of state ``1 << j``."""
    return (m << np.arange(32, dtype=np.int64).reshape(32, 1)).sum(0)


def _byte_tables(cols: np.ndarray) -> np.ndarray:
    """``table[..., p, v]`` = XOR of the columns ``8p + q`` for the set bits ``q`` of byte ``v``."""
    table = np.zeros((*cols.shape[:-1], 4, 256), dtype=np.int64)
    for p in range(4):
        for v in range(1, 256):
            low = (v & -v).bit_length() - 1
            table[..., p, v] = table[..., p, v & (v - 1)] ^ cols[..., 8 * p + low]
    return table


@lru_cache(maxsize=64)
def _jump_tables(bits: int, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Byte tables of ``A**(bits*(k+1))`` for each draw ``k``, and of ``A**(bits*count)``.

    A linear map of the state is the XOR of its columns at the set bits, so a jump is four
    table look-ups (one per state byte) and three XORs.
    """
    jump = _matpow_gf2(step_matrix(), bits)
    cols = np.empty((count, 32), dtype=np.int64)
    cur = np.eye(32, dtype=np.int64)
    for k in range(count):
        cur = (jump @ cur) & 1
        cols[k] = _columns(cur)
    return torch.from_numpy(_byte_tables(cols)), torch.from_numpy(_byte_tables(_columns(cur)))


def _apply(table: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
    out = None
    for p in range(4):
        part = table[..., p, (states >> (8 * p)) & 0xFF]
        out = part if out is None else out ^ part
    return out


def draws(states: torch.Tensor, count: int, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` successive ``draw(s, bits)`` for every LFSR state in ``states``.

    Returns ``(values, next_states)`` with ``values.shape == states.shape + (count,)``; identical
    to calling :meth:`Lfsr32.draw` ``count`` times on each state.
    """
    if not isinstance(bits, int) or not 1 <= bits <= 32:
        raise ValueError(f"bits must be an int in [1, 32], not {bits!r}")
    if not isinstance(count, int) or count < 0:
        raise ValueError(f"count must be a non-negative int, not {count!r}")
    tables, final = _jump_tables(bits, count)
    values = _apply(tables, states).movedim(0, -1) & ((1 << bits) - 1)
    return values, _apply(final, states)
