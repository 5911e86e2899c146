"""The digits dataset: offline, fixed stratified split, integer intensities, quantization."""

from __future__ import annotations

import pytest
import torch

from spikeforge.sw.config import SnnConfig
from spikeforge.sw.data import load_dataset
from spikeforge.sw.encoders import encode, quantize
from spikeforge.sw.sources import SOURCES


def test_digits_split_is_fixed_and_stratified():
    ds = load_dataset("digits")
    assert (len(ds.x_train), len(ds.x_test)) == (1437, 360)
    assert ds.n_features == 64 and ds.n_classes == 10 and ds.x_max == 16
    assert ds.x_train.dtype == torch.int64 and int(ds.x_train.max()) == 16
    whole = torch.bincount(torch.cat([ds.y_train, ds.y_test]), minlength=10).double()
    test = torch.bincount(ds.y_test, minlength=10).double()
    assert torch.allclose(test / test.sum(), whole / whole.sum(), atol=0.01)
    again = load_dataset("digits")
    assert torch.equal(again.x_test, ds.x_test) and torch.equal(again.y_train, ds.y_train)


def test_unknown_dataset():
    with pytest.raises(ValueError, match="dataset 'mnist' is unknown: choose one of digits"):
        load_dataset("mnist")
    assert "digits" in SOURCES


def test_quantize_maps_the_range_and_rounds_half_up():
    q = quantize(torch.arange(17), 16, 8)
    assert q[0] == 0 and q[-1] == 255 and q[8] == 128  # 127.5 rounds up
    assert (q[1:] >= q[:-1]).all()
    with pytest.raises(ValueError, match=r"intensities must lie in \[0, 16\]"):
        quantize(torch.tensor([17]), 16, 8)
    with pytest.raises(TypeError):
        quantize(torch.tensor([0.5]), 16, 8)


def test_rate_code_density_follows_intensity():
    cfg = SnnConfig(layers=(3, 2), timesteps=256)
    x = torch.tensor([[0, 128, 255]])
    spikes = encode(x, torch.tensor([11]), cfg)
    assert spikes.shape == (1, 256, 3)
    rates = spikes.double().mean(1)[0]
    assert rates[0] == 0
    assert abs(rates[1] - 0.5) < 0.1 and rates[2] > 0.95


def test_direct_code_passes_intensities():
    cfg = SnnConfig(layers=(3, 2), encoder="direct")
    x = torch.tensor([[0, 7, 255]])
    assert torch.equal(encode(x, torch.tensor([0]), cfg), x)
