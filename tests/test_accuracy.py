"""Accuracy on the real digits data: the figures the project promises (slow: a few minutes)."""

from __future__ import annotations

import pytest

from spikeforge.sw.config import SnnConfig
from spikeforge.sw.data import load_dataset
from spikeforge.sw.train import train_float, train_int

pytestmark = pytest.mark.slow


def test_float_reference_reaches_97_percent():
    res = train_float(SnnConfig(), load_dataset("digits"), epochs=20)
    assert res.test_accuracy >= 0.97, res.history


def test_int_8bit_batch1_on_chip_training_reaches_96_percent():
    cfg = SnnConfig(w_bits=8, batch_size=1)
    res = train_int(cfg, load_dataset("digits"), epochs=20)
    assert res.test_accuracy >= 0.96, res.history
