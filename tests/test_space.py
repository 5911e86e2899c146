"""The declared design spaces: built-ins, TOML files and the errors bad input gets."""

from __future__ import annotations

import pytest

from spikeforge.codesign.evaluate import train_entry
from spikeforge.codesign.mapping import map_network
from spikeforge.codesign.search import fmax_routers
from spikeforge.codesign.space import (
    BUILTIN_SPACES,
    DesignSpace,
    load_space,
    point_config,
    point_id,
)
from spikeforge.sw import sources
from spikeforge.sw.config import ConfigError
from spikeforge.sw.sources import DEFAULT_DATASET


def test_the_small_space_has_24_mappable_points_over_1_to_4_cores_and_4_to_16_bits():
    space = load_space("small")
    grid = space.grid()
    assert len(grid) == space.grid_size == space.n_trials == 24
    assert {p["cores"] for p in grid} == {1, 2, 3, 4}
    assert {p["w_bits"] for p in grid} == {4, 8, 16}
    assert len({point_id(space, p) for p in grid}) == 24
    for p in grid:
        net = point_config(space, p)
        assert net.w_bits == p["w_bits"] and net.bptt == p["bptt"]
        assert map_network(net, p["cores"], lanes=p["lanes"]).cores == p["cores"]


def test_the_full_space_sweeps_every_dimension_with_nsga2():
    space = load_space("full")
    assert space.sampler == "nsga2"
    assert set(space.dimensions) == {
        "cores",
        "lanes",
        "w_bits",
        "v_bits",
        "g_bits",
        "timesteps",
        "bptt",
        "rounding",
        "surrogate",
    }
    assert space.n_trials == BUILTIN_SPACES["full"]["trials"]


def test_a_point_id_changes_with_the_training_budget():
    a = load_space("small")
    b = DesignSpace.from_dict({**BUILTIN_SPACES["small"], "training": {"epochs": 5}})
    p = a.grid()[0]
    assert point_id(a, p) != point_id(b, p)


def test_a_space_file_is_read_and_unset_dimensions_take_the_defaults(tmp_path):
    f = tmp_path / "mine.toml"
    f.write_text(
        'sampler = "grid"\n[network]\nlayers = [64, 10]\n[dimensions]\ncores = [1, 2]\n'
        'v_bits = ["auto", 20]\n'
    )
    space = load_space(f)
    assert space.name == "mine" and space.grid_size == 4
    p = space.grid()[-1]
    assert p == {**p, "cores": 2, "v_bits": 20, "w_bits": 8, "timesteps": 8, "lanes": 8}
    assert point_config(space, p).v_bits == 20


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[dimensions]\nw_bits = [4, 40]\n",
            r"dimensions.w_bits value = 40 is out of range: allowed \[2, 16\]",
        ),
        (
            "[dimensions]\nbptt = ['bptt', 'tbptt']\n",
            "'tbptt' is not allowed: choose from bptt, sltt",
        ),
        ("[dimensions]\nwbits = [4]\n", "unknown key.*wbits.*allowed: bptt, cores"),
        ("[dimensions]\ncores = []\n", "dimensions.cores must be a non-empty list"),
        ("[dimensions]\ncores = [2, 2]\n", "lists a value twice"),
        ("sampler = 'random'\n", "sampler = 'random' is not allowed: choose one of grid, nsga2"),
        ("[network]\nw_bits = 8\n", r"w_bits are design dimensions"),
        ("[network]\nlayers = [64]\n", "layers must be a sequence of at least 2"),
        ("[training]\nepochs = 0\n", r"training.epochs = 0 is out of range: allowed \[1, 1000\]"),
        ("[hardware]\ndevice = '12k'\n", "hardware.device = '12k' is not allowed"),
        ("[hardware]\nsynth = 'yes'\n", "hardware.synth must be true or false"),
        ("[hardware]\nrouters = 'router2'\n", "hardware.routers must be a list of distinct"),
        ("[hardware]\nrouters = []\n", "hardware.routers must be a list"),
        ("[hardware]\nrouters = ['router1', 'router1']\n", "distinct routers of router1"),
        ("[hardware]\nrouters = ['router3']\n", r"\['router3'\]"),
        ("trials = 0\n", r"trials = 0 is out of range"),
        (
            "[training]\ndataset = 'mnist'\n",
            r"\[training\]: dataset: dataset 'mnist' is unknown: choose one of digits, ",
        ),
        (
            "[training]\ndataset = 'digits:/nowhere'\n",
            "dataset 'digits' is bundled and takes no path",
        ),
        ("[training]\ndataset = 3\n", "a dataset is NAME or NAME:PATH, not 3"),
        ("[training]\ndataset = ''\n", "a dataset is NAME or NAME:PATH, not ''"),
        (
            "[network]\nencoder = 'spikes'\n[training]\ndataset = 'breast_cancer'\n",
            r"'breast_cancer' is intensities, but encoder = \"spikes\" under \[network\] takes",
        ),
    ],
)
def test_bad_space_files_fail_early_naming_the_value(tmp_path, text, message):
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_space(f)


def test_an_unknown_space_name_says_what_is_allowed():
    with pytest.raises(ConfigError, match=r"neither a built-in space \(small, full\) nor an"):
        load_space("medium")


def test_the_dataset_is_digits_unless_named_and_part_of_the_point_and_its_cache_entry(tmp_path):
    small = load_space("small")
    assert small.dataset == DEFAULT_DATASET == "digits"
    assert small.budget["dataset"] == "digits"  # in every point id and training task key
    other = small.with_dataset("breast_cancer")
    (tmp_path / "table.csv").write_text("")
    mine = small.with_dataset("digits").training | {"dataset": f"digits:{tmp_path}"}
    p = small.grid()[0]
    assert point_id(small, p) != point_id(other, p)
    net = point_config(small, p)
    entries = {
        train_entry(tmp_path, net, budget).name
        for budget in (small.budget, other.budget, mine, {**mine, "dataset": "digits:x"})
    }
    assert len(entries) == 4  # another source or another path: another entry
    assert train_entry(tmp_path, net, {"epochs": 10}) == train_entry(tmp_path, net, small.budget)
    assert "-breast_cancer-" in train_entry(tmp_path, net, other.budget).name
    with pytest.raises(ConfigError, match="space 'small' \\[training\\]: dataset: dataset 'x' is"):
        small.with_dataset("x")


def test_a_spike_train_source_needs_the_spikes_encoder_fixed_under_network(tmp_path, monkeypatch):
    events = sources.Source("events", "a spike-train source", "nowhere:load", temporal=True)
    monkeypatch.setitem(sources.SOURCES, "events", events)
    space = {"network": {"layers": [64, 10]}, "training": {"dataset": "events"}}
    with pytest.raises(ConfigError, match=r"dataset 'events' is spike trains: set encoder = "):
        DesignSpace.from_dict(space)
    space["network"]["encoder"] = "spikes"
    assert DesignSpace.from_dict(space).dataset == "events"


def test_a_relative_dataset_path_is_read_from_the_space_files_folder(tmp_path, monkeypatch):
    (tmp_path / "spaces" / "data").mkdir(parents=True)
    f = tmp_path / "spaces" / "mine.toml"
    f.write_text("[network]\nencoder = 'spikes'\n[training]\ndataset = 'nmnist:data'\n")
    monkeypatch.chdir(tmp_path)  # where `data` does not exist
    assert load_space(f).dataset == f"nmnist:{tmp_path / 'spaces' / 'data'}"
    f.write_text(f"[network]\nencoder = 'spikes'\n[training]\ndataset = 'nmnist:{tmp_path}'\n")
    assert load_space(f).dataset == f"nmnist:{tmp_path}"  # absolute: as written
    f.write_text("[network]\nencoder = 'spikes'\n[training]\ndataset = 'nmnist:nope'\n")
    with pytest.raises(ConfigError, match="spaces/nope does not exist"):
        load_space(f)


def test_a_point_is_routed_again_only_by_routers_not_tried_or_after_its_router_left_the_space():
    routers = ["router1", "router2"]
    assert fmax_routers({"fmax_status": "not run"}, routers) == routers
    assert fmax_routers({"fmax_status": "skipped: at most 4"}, routers) == routers
    assert fmax_routers({"fmax_status": "timeout"}, routers) == ["router2"]  # router1 before
    assert fmax_routers({"fmax_status": "timeout", "pnr_router": "router2"}, routers) == ["router1"]
    both = {"fmax_status": "timeout", "pnr_router": "router2", "pnr_timeouts": ["router1"]}
    assert fmax_routers(both, routers) == []
    assert fmax_routers({"fmax_status": "timeout"}, ["router1"]) == []
    assert fmax_routers({"fmax_status": "timeout"}, ["router2"]) == ["router2"]
    assert fmax_routers({"fmax_status": "ok", "pnr_router": "router1"}, routers) == []
    assert fmax_routers({"fmax_status": "ok"}, ["router2"]) == ["router2"]  # router1 left
    assert fmax_routers({"fmax_status": "ok", "pnr_router": "router2"}, ["router2"]) == []
    assert fmax_routers({"fmax_status": "failed: no BELs"}, routers) == []


def test_the_full_space_routes_with_router2_and_the_small_one_with_router1():
    assert load_space("full").hardware["routers"] == ["router2"]
    assert "routers" not in load_space("small").hardware  # router1, nextpnr's default
