"""The Randman source: deterministic, one spike per input, timing carries the class, trainable."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from spikeforge.cli import main
from spikeforge.sw.config import ConfigError
from spikeforge.sw.data import load_dataset
from spikeforge.sw.randman import (
    DEFAULTS,
    bin_spike_times,
    make_randman,
    randman_spike_times,
)
from spikeforge.sw.sources import SOURCES

SMALL = {"n_classes": 3, "n_inputs": 5, "dim_manifold": 2, "n_samples": 7, "alpha": 2.0}


def test_same_seed_same_data_other_seed_other_data():
    a, ya = make_randman(timesteps=8, seed=3, **SMALL)
    b, yb = make_randman(timesteps=8, seed=3, **SMALL)
    c, _ = make_randman(timesteps=8, seed=4, **SMALL)
    assert torch.equal(a, b) and torch.equal(ya, yb)
    assert not torch.equal(a, c)


def test_manifolds_do_not_depend_on_the_sample_count():
    one_d = {**SMALL, "n_classes": 2, "dim_manifold": 1}
    few, _ = randman_spike_times(**one_d, seed=5)
    many, _ = randman_spike_times(**{**one_d, "n_samples": 50}, seed=5)
    # class 0's first 7 points are the same draws on the same manifold: the per-class
    # normalization (increasing, affine) keeps their order on every input
    assert np.array_equal(few[:7].argsort(0), many[:7].argsort(0))
    assert not np.array_equal(few[:7], many[:7])
    other, _ = randman_spike_times(**{**one_d, "n_samples": 50}, seed=6)
    assert not np.array_equal(few[:7].argsort(0), other[:7].argsort(0))


def test_shapes_labels_and_one_spike_per_input():
    x, y = make_randman(timesteps=6, seed=0, **SMALL)
    assert x.shape == (21, 6, 5) and x.dtype == torch.int64
    assert torch.equal(y, torch.tensor([0] * 7 + [1] * 7 + [2] * 7))
    assert set(x.unique().tolist()) == {0, 1}
    assert torch.equal(x.sum(1), torch.ones(21, 5, dtype=torch.int64))


def test_times_span_zero_to_one_per_class_and_input():
    times, _ = randman_spike_times(seed=1, **SMALL)
    per_class = times.reshape(3, 7, 5)
    assert np.all(per_class.min(1) == 0.0) and np.all(per_class.max(1) == 1.0)


def test_binning_rule_on_hand_computed_times():
    # t = min(floor(T u), T - 1) with T = 4
    times = np.array([[0.0, 0.2499, 0.25, 0.5, 0.74, 0.99, 1.0]])
    x = bin_spike_times(times, 4)
    assert x.argmax(1).tolist() == [[0, 0, 1, 2, 2, 3, 3]]
    assert torch.equal(bin_spike_times(times, 1), torch.ones(1, 1, 7, dtype=torch.int64))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"n_classes": 1}, r"n_classes = 1 is out of range: allowed \[2, 1024\]"),
        ({"n_inputs": 0}, r"n_inputs = 0 is out of range"),
        ({"dim_manifold": 2.0}, r"dim_manifold must be an int in \[1, 8\], not 2.0"),
        ({"n_samples": 0}, r"n_samples = 0 is out of range"),
        ({"n_basis": 1}, r"n_basis = 1 is out of range: allowed \[2, 1000\]"),
        ({"alpha": 0.0}, r"alpha = 0.0 is out of range: it must be finite and > 0"),
        ({"alpha": float("nan")}, r"alpha = nan is out of range"),
        ({"alpha": "2"}, r"alpha must be a positive number, not '2'"),
        ({"seed": -1}, r"seed must be a non-negative int, not -1"),
        ({"timesteps": 0}, r"timesteps = 0 is out of range: allowed \[1, 256\]"),
    ],
)
def test_bad_parameters_are_refused(change, message):
    kw = {"timesteps": 4, "seed": 0, **SMALL, **change}
    with pytest.raises(ConfigError, match=message):
        make_randman(**kw)


def test_times_outside_the_unit_interval_are_refused():
    with pytest.raises(ConfigError, match=r"spike times must lie in \[0, 1\]"):
        bin_spike_times(np.array([[0.5, 1.5]]), 4)
    with pytest.raises(ConfigError, match="spike times must be"):
        bin_spike_times(np.zeros(3), 4)


def test_source_loads_with_its_documented_split():
    assert SOURCES["randman"].temporal and SOURCES["randman"].path == "none"
    with pytest.raises(ConfigError, match="give the timesteps"):
        load_dataset("randman")
    ds = load_dataset("randman", timesteps=16)
    n = DEFAULTS["n_classes"] * DEFAULTS["n_samples"]
    assert (len(ds.y_train), len(ds.y_test)) == (0.8 * n, 0.2 * n)
    assert ds.timesteps == 16 and ds.n_features == DEFAULTS["n_inputs"] and ds.x_max == 1
    assert torch.bincount(ds.y_test).tolist() == [20] * 10
    assert torch.equal(ds.x_train, load_dataset("randman", timesteps=16).x_train)


def test_timing_carries_the_class_and_counts_do_not():
    ds = load_dataset("randman", timesteps=16)
    counts = ds.x_train.sum(1)
    assert torch.equal(counts, torch.ones_like(counts))  # every sample's counts are the same
    times_tr, times_te = ds.x_train.argmax(1).float(), ds.x_test.argmax(1).float()
    nearest = ds.y_train[torch.cdist(times_te, times_tr).argmin(1)]
    accuracy = float((nearest == ds.y_test).float().mean())
    assert accuracy > 0.9  # chance: 0.1


def test_cli_trains_on_randman(tmp_path, capsys):
    args = ["train", "--dataset", "randman", "--encoder", "spikes", "--timesteps", "8"]
    args += ["--layers", "20,16,10", "--epochs", "1", "--out", str(tmp_path), "--no-progress"]
    assert main([*args, "--json"]) == 0
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["dataset"] == "randman" and result["epochs"] == 1
    assert result["config"]["encoder"] == "spikes" and result["config"]["timesteps"] == 8
    assert 0.0 <= result["test_accuracy"] <= 1.0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == result
