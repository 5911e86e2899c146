"""The network-to-core mapping compiler: slices, lanes, spare cores, limits and messages."""

from __future__ import annotations

import json

import pytest

from spikeforge.codesign.mapping import (
    Mapping,
    MappingError,
    Slice,
    array_table,
    map_network,
    max_cores,
    min_cores,
)
from spikeforge.hw.array import layer_groups
from spikeforge.hw.devices import ecp5_device
from spikeforge.hw.params import CoreParams
from spikeforge.sw.config import ConfigError, SnnConfig

NET = SnnConfig(layers=(64, 64, 10), timesteps=4)
BIG = SnnConfig(layers=(784, 256, 10), timesteps=8)  # layer 0 needs 16 cores on a 25k


def test_minimum_mapping_is_one_core_per_layer():
    m = map_network(NET, 2)
    assert m.slices == (Slice(0, 0, 64, 8), Slice(1, 0, 10, 5))
    assert m.cores == 2
    assert m.cores_per_layer == (1, 1)
    assert min_cores(NET) == 2
    assert max_cores(NET) == 64 // 8 + 10 // 5


def test_spare_cores_go_to_the_heaviest_layer():
    # Work 64 * 64 = 4096 against 10 * 64 = 640: layer 0 takes the spares while its work per
    # core stays above layer 1's.
    assert map_network(NET, 3).slices == (
        Slice(0, 0, 32, 8),
        Slice(0, 32, 64, 8),
        Slice(1, 0, 10, 5),
    )
    m = map_network(NET, 4)
    assert m.slices == (
        Slice(0, 0, 24, 8),  # 8 groups of 8 in 3 slices: 3, 3, 2 groups
        Slice(0, 24, 48, 8),
        Slice(0, 48, 64, 8),
        Slice(1, 0, 10, 5),
    )
    assert m.cores_per_layer == (3, 1)
    # 4096 / 6 = 683 > 640 but 4096 / 7 = 585 < 640: the 9th core goes to layer 1.
    assert map_network(NET, 8).cores_per_layer == (7, 1)
    assert map_network(NET, 9).cores_per_layer == (7, 2)


def test_ties_go_to_the_lower_layer():
    net = SnnConfig(layers=(16, 16, 16), timesteps=4)
    assert map_network(net, 3).cores_per_layer == (2, 1)
    assert map_network(net, 4).cores_per_layer == (2, 2)


def test_lanes_are_the_largest_divisor_up_to_the_limit():
    net = SnnConfig(layers=(16, 54, 12), timesteps=4)
    # 54 -> 6 lanes, 9 groups; split in two: 5 + 4 groups = 30 (6 lanes) + 24 (8 lanes).
    m = map_network(net, 3, lanes=8)
    assert m.slices == (Slice(0, 0, 30, 6), Slice(0, 30, 54, 8), Slice(1, 0, 12, 6))
    assert map_network(net, 2, lanes=4).slices == (Slice(0, 0, 54, 3), Slice(1, 0, 12, 4))


@pytest.mark.parametrize("cores", [2, 3, 5, 7, 10])
def test_slices_tile_each_layer_in_multiples_of_lanes(cores):
    m = map_network(NET, cores)
    assert sum(m.cores_per_layer) == cores
    for layer, (n_out, _) in enumerate(NET.weight_shapes()):
        own = [s for s in m.slices if s.layer == layer]
        assert [s.start for s in own] == [0] + [s.stop for s in own[:-1]]
        assert own[-1].stop == n_out
        assert all(s.neurons % s.lanes == 0 and s.lanes <= 8 for s in own)
        sizes = {s.neurons // 8 if layer == 0 else s.neurons // 5 for s in own}
        assert max(sizes) - min(sizes) <= 1  # as equal as possible, in lane groups


def test_core_params_are_linked_and_valid():
    whole = map_network(NET, 2).core_params()
    assert [p.neurons for p in whole] == [None, None]
    assert all(p.linked and p.device == "85k" and p.lr_range == 4 for p in whole)
    assert whole[0] == CoreParams(net=NET, layer=0, lanes=8, linked=True)
    split = map_network(NET, 4).core_params()
    assert [p.neurons for p in split] == [(0, 24), (24, 48), (48, 64), None]
    assert [p.lanes for p in split] == [8, 8, 8, 5]
    assert layer_groups(split, linked=True) == [[0, 1, 2], [3]]


def test_the_whole_array_must_fit_one_device():
    # min_cores is the per-layer bound: each slice's memories fit the device on their own
    assert min_cores(BIG, device="85k") == 4
    assert min_cores(BIG, device="25k") == 17
    # ... but the cores share one device: 784-256-10 needs more than twice an 85k's block RAMs
    for cores, device in ((17, "25k"), (4, "85k"), (8, "85k")):
        brams = ecp5_device(device).brams
        with pytest.raises(
            MappingError,
            match=rf"network \(784, 256, 10\) on {cores} cores needs about \d+ block RAMs "
            rf"\(weights \d+, grads \d+, .*\) but one ECP5 {device} has {brams}: it does not "
            "fit this device",
        ):
            map_network(BIG, cores, device=device)
    # planning only (the host stream, cycles): the same placement without the check
    plan = map_network(BIG, 4, check_device=False)
    assert plan.cores_per_layer == (3, 1) and plan.bram_estimate > 208
    # the total is the cores' sum; one that fits passes (64-64-10 on a 25k's 56)
    m = map_network(NET, 4, device="25k")
    assert m.bram_estimate == sum(p.bram_estimate for p in m.core_params()) <= 56
    assert sum(m.bram_by_memory().values()) == m.bram_estimate


def test_too_few_cores_for_the_layers():
    with pytest.raises(
        MappingError,
        match=r"network \(64, 64, 10\) has 2 weight layers: needs at least 2 cores, "
        r"got 1 \(1 short\)",
    ):
        map_network(NET, 1)


def test_too_few_cores_for_the_block_rams():
    with pytest.raises(
        MappingError,
        match=r"layer 0 \(256 x 784\) needs at least 16 cores on ECP5 25k: "
        r"the network needs 17 cores, got 16 \(1 short\)",
    ):
        map_network(BIG, 16, device="25k")


def test_too_many_cores():
    with pytest.raises(
        MappingError,
        match=r"at most 10 cores \(every layer split to one lane group per core\); "
        r"got 11 \(1 too many\)",
    ):
        map_network(NET, 11)


def test_layer_too_big_for_the_device():
    net = SnnConfig(layers=(2048, 64, 10), timesteps=16)
    message = (
        r"layer 0 \(64 x 2048\) cannot be placed on ECP5 25k even split into 8 cores of one "
        r"8-neuron lane group each: memories need about 81 block RAMs .* but ECP5 25k has 56"
    )
    with pytest.raises(MappingError, match=message):
        map_network(net, 10, device="25k")
    with pytest.raises(MappingError, match=message):
        min_cores(net, device="25k")
    # two slices of layer 0 fit an 85k each, but not together with everything else
    with pytest.raises(MappingError, match=r"needs about 392 block RAMs .* 85k has 208"):
        map_network(net, 3)


@pytest.mark.parametrize(
    ("cores", "error", "message"),
    [
        (0, MappingError, r"cores = 0 is out of range: allowed at least 1"),
        (-1, MappingError, r"cores = -1 is out of range: allowed at least 1"),
        ("4", TypeError, r"cores must be an int >= 1, not '4'"),
        (2.0, TypeError, r"cores must be an int >= 1, not 2\.0"),
        (True, TypeError, r"cores must be an int >= 1, not True"),
    ],
)
def test_bad_cores_argument(cores, error, message):
    with pytest.raises(error, match=message):
        map_network(NET, cores)


def test_bad_other_arguments():
    with pytest.raises(ConfigError, match=r"lanes = 0 is out of range"):
        map_network(NET, 2, lanes=0)
    with pytest.raises(ValueError, match=r"device = '12k' is not known: allowed 25k, 45k, 85k"):
        map_network(NET, 2, device="12k")
    with pytest.raises(TypeError, match=r"net must be an SnnConfig"):
        map_network((64, 64, 10), 2)


def test_mapping_rejects_a_bad_tiling():
    with pytest.raises(MappingError, match=r"expected layer 0 from neuron 32"):
        Mapping(NET, (Slice(0, 0, 32, 8), Slice(1, 0, 10, 5)), "85k", 4)
    with pytest.raises(MappingError, match=r"end at layer 0, neuron 64"):
        Mapping(NET, (Slice(0, 0, 64, 8),), "85k", 4)
    with pytest.raises(MappingError):
        Mapping(NET, (Slice(1, 0, 10, 5), Slice(0, 0, 64, 8)), "85k", 4)


def test_to_dict_is_json_and_complete():
    m = map_network(NET, 4)
    data = json.loads(json.dumps(m.to_dict()))
    assert data["device"] == "85k" and data["lr_range"] == 4
    assert data["net"] == NET.to_dict() | {"layers": [64, 64, 10]}
    assert data["net_hash"] == NET.config_hash
    assert [(c["core"], c["layer"], c["start"], c["stop"], c["lanes"]) for c in data["cores"]] == [
        (0, 0, 0, 24, 8),
        (1, 0, 24, 48, 8),
        (2, 0, 48, 64, 8),
        (3, 1, 0, 10, 5),
    ]
    assert [c["synapses"] for c in data["cores"]] == [24 * 64, 24 * 64, 16 * 64, 10 * 64]
    assert data["layers"] == [
        {"layer": 0, "shape": [64, 64], "cores": 3, "work": 4096, "max_core_synapses": 1536},
        {"layer": 1, "shape": [10, 64], "cores": 1, "work": 640, "max_core_synapses": 640},
    ]
    rebuilt = Mapping(
        SnnConfig.from_dict(data["net"]),
        tuple(Slice(c["layer"], c["start"], c["stop"], c["lanes"]) for c in data["cores"]),
        data["device"],
        data["lr_range"],
    )
    assert rebuilt == m


def test_describe_lists_every_core():
    m = map_network(NET, 4)
    lines = m.describe().splitlines()
    assert lines[0] == (
        f"network (64, 64, 10), T = 4: 4 cores on one ECP5 85k, about {m.bram_estimate} of its "
        "208 block RAMs"
    )
    assert lines[1].split() == ["core", "layer", "neurons", "lanes", "synapses", "BRAM"]
    rows = [line.split() for line in lines[2:]]
    brams = [str(p.bram_estimate) for p in m.core_params()]
    assert rows == [
        ["0", "0", "0..23", "8", "1536", brams[0]],
        ["1", "0", "24..47", "8", "1536", brams[1]],
        ["2", "0", "48..63", "8", "1024", brams[2]],
        ["3", "1", "0..9", "5", "640", brams[3]],
    ]


def test_fused_cores_hold_784_256_10_on_one_85k():
    net = SnnConfig(layers=(784, 256, 10), timesteps=16)  # the fit table's default widths
    with pytest.raises(MappingError, match=r"needs about 519 block RAMs \(weights 203, grads 203"):
        map_network(net, min_cores(net, device="85k"), device="85k")
    k = min_cores(net, device="85k", fused=True)
    m = map_network(net, k, device="85k", fused=True)
    assert (k, m.cores_per_layer, m.fused) == (2, (1, 1), True)
    by = m.bram_by_memory()
    assert m.bram_estimate == 200 <= 208 and "grads" not in by
    assert (by["weights"], by["events"], by["mask"]) == (145, 22, 1)  # layer 1's: LUT RAM
    cores = m.core_params()
    assert all(p.fused_grads for p in cores)
    assert [p.dense_weights for p in cores] == [True, True]  # 12-bit weights: packing helps
    assert m.to_dict()["fused"] is True and "fused gradients" in m.describe()
    # automatic: plain cores while they fit, fused ones when they do not
    assert map_network(net, 2, device="85k", fused=None) == m
    assert not map_network(NET, 4, fused=None).fused
    # neither fits: the plain cores' message
    huge = SnnConfig(layers=(784, 1024, 10), timesteps=16)
    with pytest.raises(MappingError, match=r"layer 0 \(1024 x 784\) needs at least 10 cores"):
        map_network(huge, 2, fused=None)


def test_a_dense_weight_memory_only_where_it_saves_block_rams():
    net = SnnConfig(layers=(64, 64, 10), timesteps=8, w_bits=5)  # 9-bit master weights
    m = map_network(net, 2, fused=True)
    assert [p.dense_weights for p in m.core_params()] == [False, False]
    assert all(p.fused_grads for p in m.core_params())


def test_the_array_table_takes_fused():
    assert array_table({"cores": 2, "fused": True}) == {"cores": 2, "fused": True}
    with pytest.raises(MappingError, match="fused in the config must be true or false"):
        array_table({"fused": "yes"})
    with pytest.raises(TypeError, match="fused must be a bool or None"):
        map_network(NET, 2, fused=1)
