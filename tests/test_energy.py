"""Energy and off-chip traffic estimates: hand-computed cases and their monotonicity."""

from __future__ import annotations

import pytest

from spikeforge.codesign.energy import ENERGY_TABLE, energy_estimate, sample_ops
from spikeforge.codesign.host_stream import train_step_stream
from spikeforge.codesign.mapping import map_network
from spikeforge.codesign.traffic import (
    chip_traffic_bytes,
    gpu_bptt_traffic_bytes,
    traffic_summary,
)
from spikeforge.hw.array import layer_groups
from spikeforge.sw.config import SnnConfig


def _array(cores=1, **net):
    cfg = SnnConfig(layers=(64, 10), timesteps=4, **net)
    ps = list(map_network(cfg, cores, lanes=2).core_params())
    return cfg, ps, layer_groups(ps, linked=True)


def test_forward_energy_is_the_hand_count_of_a_one_core_layer():
    _, ps, _ = _array()
    p, t, bit = ps[0], ENERGY_TABLE, ENERGY_TABLE["sram_bit_pj"]
    active = [[3, 0, 1, 2], [0, 0, 0, 0]]

    def add(b):
        return t["add8_pj"] + (t["add32_pj"] - t["add8_pj"]) * (b - 8) / 24

    events = 6 * 10
    fp = events * (8 * bit + add(p.current_bits)) + 10 * 4 * (3 * add(16) + 3 * 16 * bit + bit)
    assert sample_ops(ps, active)["fp"] == pytest.approx(fp)


def test_energy_grows_with_spikes_and_with_bit_widths():
    _, ps, _ = _array()
    quiet, busy = [[2] * 4, [0] * 4], [[20] * 4, [0] * 4]
    assert energy_estimate(ps, busy).train_pj > energy_estimate(ps, quiet).train_pj
    _, wide, _ = _array(w_bits=16)
    assert energy_estimate(wide, busy).train_pj > energy_estimate(ps, busy).train_pj
    e = energy_estimate(ps, busy, host_bytes=100)
    assert e.train_pj - energy_estimate(ps, busy).train_pj == pytest.approx(100 * 162.5)
    assert e.samples_per_joule == pytest.approx(1e12 / e.train_pj)
    assert e.infer_pj < e.train_pj


def test_the_chip_traffic_is_the_host_streams_words():
    _, _, layers = _array(cores=3)
    spikes = [[1, 0, 1] + [0] * 61, [0] * 64, [1] * 64, [0, 1] + [0] * 62]
    packets = train_step_stream(layers, spikes, 3)
    words = sum(len(p.words) for p in packets) + sum(len(p.answers) for p in packets)
    assert chip_traffic_bytes(layers, spikes) == 4 * words
    # LOAD_SPIKES: route, command, 4 counts and 67 indices; FORWARD, SET_LABEL and BACKWARD:
    # route and command; each of the 4 packets answered by the 3 cores with a status word
    assert words == (2 + 4 + 67) + 3 * 2 + 4 * 3


def test_the_gpu_baseline_formula_on_a_hand_example():
    net = SnnConfig(layers=(3, 2), timesteps=2)
    m, n, T = 3, 2, 2
    assert gpu_bptt_traffic_bytes(net) == 4 * (T * (4 * m + 6 * n + 2 * m * n) + 5 * m * n)
    assert gpu_bptt_traffic_bytes(net, bytes_per_value=2) == gpu_bptt_traffic_bytes(net) // 2
    cfg, _, layers = _array()
    s = traffic_summary(cfg, layers, [[10] * 4, [1] * 4])
    assert 0.9 < s["saving"] < 1 and s["chip_bytes"] < s["gpu_bptt_bytes"]


def test_bad_input_names_the_parameter():
    cfg, ps, _ = _array()
    with pytest.raises(ValueError, match="active must have 2 rows"):
        sample_ops(ps, [[1] * 4])
    with pytest.raises(ValueError, match=r"active\[1\] must hold 4 counts >= 0"):
        sample_ops(ps, [[1] * 4, [-1, 0, 0, 0]])
    with pytest.raises(TypeError, match="cores must be a non-empty sequence of CoreParams"):
        sample_ops([cfg], [[1] * 4, [0] * 4])
    with pytest.raises(ValueError, match="host_bytes must be >= 0"):
        energy_estimate(ps, [[1] * 4, [0] * 4], host_bytes=-1)
    with pytest.raises(TypeError, match="net must be an SnnConfig"):
        gpu_bptt_traffic_bytes("64,10")
