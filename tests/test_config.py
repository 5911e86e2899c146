"""The config object: derivation, validation messages, immutability, hashing, TOML."""

from __future__ import annotations

import dataclasses

import pytest

from spikeforge.sw.config import ConfigError, SnnConfig


def test_defaults_are_derived_and_concrete():
    cfg = SnnConfig()
    assert cfg.theta == 2 ** (cfg.w_bits - 2)
    assert cfg.v_bits == cfg.w_bits + 8
    assert cfg.bp_shift == cfg.theta.bit_length() - 1
    assert all(v is not None for v in cfg.to_dict().values())


def test_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        SnnConfig().w_bits = 4


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"w_bits": 1}, r"w_bits = 1 is out of range: allowed \[2, 16\]"),
        ({"w_bits": 8, "v_bits": 8}, r"v_bits = 8 is out of range: allowed \[9, 32\]"),
        ({"v_bits": 10, "theta": 600}, r"theta = 600 is out of range: allowed \[1, 511\]"),
        ({"timesteps": 0}, r"timesteps = 0 is out of range"),
        ({"reset": "hard"}, r"reset = 'hard' is not allowed: choose one of subtract, zero"),
        ({"layers": (64,)}, r"layers must be a sequence of at least 2 sizes"),
        ({"layers": (64, 0, 10)}, r"layers\[1\] = 0 is out of range"),
        ({"frac_bits": 4, "lr_shift": 2}, r"lr_shift = 2 is out of range: allowed \[4, 40\]"),
        ({"g_bits": 8, "acc_bits": 6}, r"acc_bits = 6 is out of range: allowed \[8, 48\]"),
        ({"timesteps": 4, "target_hi": 5}, r"target_hi = 5 is out of range: allowed \[1, 4\]"),
        ({"w_bits": 8.0}, r"w_bits must be an int in \[2, 16\], not 8.0"),
        ({"w_bits": True}, r"w_bits must be an int"),
        ({"lfsr_seed": 2**32}, r"lfsr_seed = 4294967296 is out of range"),
    ],
)
def test_invalid_values_name_parameter_value_and_range(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        SnnConfig(**kwargs)


def test_replace_rederives_what_was_not_given():
    cfg = SnnConfig(w_bits=8)
    four = cfg.replace(w_bits=4)
    assert four.theta == 4 and four.v_bits == 12
    pinned = SnnConfig(w_bits=8, theta=100).replace(w_bits=12)
    assert pinned.theta == 100


def test_hash_identifies_the_resolved_config():
    assert SnnConfig().config_hash == SnnConfig().config_hash
    assert SnnConfig(theta=64).config_hash == SnnConfig().config_hash  # same resolved values
    assert SnnConfig(lfsr_seed=9).config_hash != SnnConfig().config_hash
    assert len(SnnConfig().config_hash) == 16


def test_dict_round_trip():
    cfg = SnnConfig(layers=(8, 4, 2), rounding="nearest")
    assert SnnConfig.from_dict(cfg.to_dict()) == cfg


def test_unknown_keys_are_listed():
    with pytest.raises(ConfigError, match=r"unknown config key\(s\) wbits; allowed keys: .*w_bits"):
        SnnConfig.from_dict({"wbits": 8})


def test_toml(tmp_path):
    path = tmp_path / "net.toml"
    path.write_text('[network]\nlayers = [64, 32, 10]\nw_bits = 6\nsurrogate = "triangle"\n')
    cfg = SnnConfig.from_toml(path)
    assert cfg.layers == (64, 32, 10) and cfg.w_bits == 6 and cfg.theta == 16
    bad = tmp_path / "bad.toml"
    bad.write_text("w_bits = [")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        SnnConfig.from_toml(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        SnnConfig.from_toml(tmp_path / "missing.toml")
