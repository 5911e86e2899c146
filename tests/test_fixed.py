"""Property tests of the integer primitives, with extremes that would wrap without saturation."""

from __future__ import annotations

from fractions import Fraction

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from spikeforge.sw.fixed import leak, sat, sat_add, shr_floor, shr_round, shr_stoch, signed_range

BITS = st.integers(1, 32)
WIDE = st.integers(-(2**40), 2**40)


def _t(x: int) -> torch.Tensor:
    return torch.tensor([x], dtype=torch.int64)


@given(BITS, WIDE)
def test_sat_clamps_to_the_signed_range(bits, x):
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    assert sat(_t(x), bits).item() == min(max(x, lo), hi)


@given(BITS, st.data())
def test_sat_add_of_extremes_never_wraps(bits, data):
    lo, hi = signed_range(bits)
    a = data.draw(st.sampled_from([lo, hi, lo + 1, hi - 1, 0, -1]))
    b = data.draw(st.sampled_from([lo, hi, 1, -1, 0]))
    exact = a + b
    got = sat_add(_t(a), _t(b), bits).item()
    assert got == min(max(exact, lo), hi)
    # the wrapped two's-complement result differs whenever the exact sum leaves the range
    wrapped = ((exact - lo) % 2**bits) + lo
    if exact > hi or exact < lo:
        assert got != wrapped
        assert got == (hi if exact > hi else lo)


@given(WIDE, st.integers(0, 40))
def test_shr_floor_is_floor_division(x, s):
    assert shr_floor(_t(x), s).item() == x // 2**s


@given(WIDE, st.integers(0, 40))
def test_shr_round_is_nearest_ties_up(x, s):
    got = shr_round(_t(x), s).item()
    exact = Fraction(x, 2**s)
    assert abs(got - exact) <= Fraction(1, 2)
    if abs(got - exact) == Fraction(1, 2):
        assert got > exact  # ties toward +inf


@given(st.integers(-(2**20), 2**20), st.integers(0, 8))
def test_shr_stoch_is_unbiased_over_all_draws(x, s):
    r = torch.arange(2**s, dtype=torch.int64)
    total = shr_stoch(torch.full_like(r, x), s, r).sum().item()
    assert total == x  # mean over every r in [0, 2**s) is exactly x / 2**s


@given(st.integers(-(2**20), 2**20), st.integers(1, 8))
def test_small_updates_survive_stochastic_rounding(x, s):
    # nearest rounding loses |x| < 2**(s-1) entirely; stochastic keeps its expectation
    r = torch.arange(2**s, dtype=torch.int64)
    outcomes = shr_stoch(torch.full_like(r, x), s, r)
    if 0 < abs(x) < 2 ** (s - 1):
        assert shr_round(_t(x), s).item() in (0, -0)
        assert outcomes.abs().sum().item() > 0


@given(st.integers(-(2**31), 2**31 - 1), st.integers(1, 16))
def test_leak_shrinks_toward_zero_and_never_overshoots(x, k):
    y = leak(_t(x), k).item()
    assert y == x - (x // 2**k)
    assert abs(y) <= abs(x)
    assert (y >= 0) == (x >= 0) or y == 0


@pytest.mark.parametrize("bad", [0, 49, -3, 2.0, "8"])
def test_signed_range_rejects_bad_widths(bad):
    with pytest.raises(ValueError, match="bits must be an int"):
        signed_range(bad)


@pytest.mark.parametrize("bad", [-1, 63, 1.5])
def test_shifts_reject_bad_amounts(bad):
    with pytest.raises(ValueError, match="shift must be an int"):
        shr_round(_t(1), bad)
