"""The LFSR: maximal period, vectorized draws equal to the step-by-step reference, seeding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spikeforge.sw.lfsr import TAPS, Lfsr32, draws, lowbias32, seed_state, step_matrix

STATES = st.integers(1, 2**32 - 1)


def _matpow(a: np.ndarray, n: int) -> np.ndarray:
    result = np.eye(32, dtype=np.int64)
    while n:
        if n & 1:
            result = (result @ a) & 1
        a = (a @ a) & 1
        n >>= 1
    return result


def test_period_is_maximal():
    """A^(2^32-1) = I and A^((2^32-1)/p) != I for every prime p | 2^32-1: one cycle of all
    non-zero states."""
    a = step_matrix()
    order = 2**32 - 1
    eye = np.eye(32, dtype=np.int64)
    assert np.array_equal(_matpow(a, order), eye)
    for p in (3, 5, 17, 257, 65537):
        assert order % p == 0
        assert not np.array_equal(_matpow(a, order // p), eye)


@given(STATES)
def test_step_matrix_matches_step(state):
    bits = np.array([(state >> i) & 1 for i in range(32)])
    nxt = (step_matrix() @ bits) & 1
    lfsr = Lfsr32(state)
    lfsr.step()
    assert int(sum(int(b) << i for i, b in enumerate(nxt))) == lfsr.state


def test_step_is_the_documented_galois_form():
    lfsr = Lfsr32(1)
    assert lfsr.step() == TAPS  # lsb set: shift out, then toggle the taps
    assert lfsr.step() == TAPS >> 1 ^ TAPS  # 0x80200003 has its lsb set too
    lfsr = Lfsr32(2)
    assert lfsr.step() == 1


@settings(max_examples=50, deadline=None)
@given(st.lists(STATES, min_size=1, max_size=5), st.integers(0, 9), st.integers(1, 32))
def test_vectorized_draws_equal_step_by_step(states, count, bits):
    values, nxt = draws(torch.tensor(states, dtype=torch.int64), count, bits)
    for n, s in enumerate(states):
        ref = Lfsr32(s)
        expect = [ref.draw(bits) for _ in range(count)]
        assert values[n].tolist() == expect
        assert nxt[n].item() == ref.state


def test_extreme_states():
    # all-ones and single-bit states: int64 holds 32-bit states without sign trouble
    states = torch.tensor([2**32 - 1, 2**31, 1], dtype=torch.int64)
    values, nxt = draws(states, 3, 32)
    for n, s in enumerate(states.tolist()):
        ref = Lfsr32(s)
        assert values[n].tolist() == [ref.draw(32) for _ in range(3)]
        assert 0 < nxt[n].item() < 2**32


@given(st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=4))
def test_seed_state_matches_the_hash_chain_and_is_never_zero(words):
    h = 0
    for w in words:
        h = lowbias32(h ^ w)
    got = seed_state(*words).item()
    assert got == (h or 1)
    assert 0 < got < 2**32


def test_seed_state_broadcasts():
    grid = seed_state(7, torch.arange(3).reshape(3, 1), torch.arange(4).reshape(1, 4))
    assert grid.shape == (3, 4)
    assert grid[2, 3].item() == seed_state(7, 2, 3).item()
    assert len(set(grid.flatten().tolist())) == 12


@pytest.mark.parametrize("bad", [0, 2**32, -5])
def test_lfsr_rejects_bad_states(bad):
    with pytest.raises(ValueError, match="state must be"):
        Lfsr32(bad)


def test_seed_words_are_range_checked():
    with pytest.raises(ValueError, match="seed words"):
        seed_state(-1)
