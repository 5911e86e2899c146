"""Energy and off-chip traffic estimates: hand-computed cases and their monotonicity."""

from __future__ import annotations

import pytest

from spikeforge.codesign.energy import energy_estimate, sample_ops
from spikeforge.codesign.host_stream import train_step_stream
from spikeforge.codesign.mapping import map_network
from spikeforge.codesign.traffic import (
    GpuBaseline,
    chip_encoded_bytes,
    chip_traffic_bytes,
    gpu_traffic,
    traffic_summary,
)
from spikeforge.hw.array import layer_groups
from spikeforge.sw.config import SnnConfig


def _array(cores=1, **net):
    cfg = SnnConfig(layers=(64, 10), timesteps=4, **net)
    ps = list(map_network(cfg, cores, lanes=2).core_params())
    return cfg, ps, layer_groups(ps, linked=True)


def test_every_engine_s_energy_is_the_hand_count_of_a_one_core_layer():
    # 64 -> 10 on one core, T = 4, 8-bit weights, v 16, g 8, acc 11, master 12, current 15
    # bits, BPTT, no error emitted; 3 + 0 + 1 + 2 = 6 input spikes. Per bit of block RAM
    # 10/64 = 0.15625 pJ; adds 0.03 + 0.07 (b - 8) / 24 pJ: 15 bits 0.0504167, 16 bits
    # 0.0533333, 11 bits 0.03875, 12 bits 0.0416667, 8 bits 0.03; an 8 x 8 multiply 0.2 pJ.
    _, ps, _ = _array()
    parts = sample_ops(ps, [[3, 0, 1, 2], [0, 0, 0, 0]])
    # FP: 60 events x (weight read 1.25 + add 0.0504167) = 78.025; 40 neuron-steps x (3 adds
    # 0.16 + membrane read, write and history write 7.5 + spike bit 0.15625) = 312.65
    assert parts["fp"] == pytest.approx(390.675)
    # BP: 40 x (2 adds 0.1066667 + multiply 0.2 + history read 2.5 + delta read and write 2.5
    # + BPTT add 0.03) = 40 x 5.3366667
    assert parts["bp"] == pytest.approx(213.466667)
    # WG: 60 x (add 0.03875 + accumulator read and write 3.4375 + delta read 1.25)
    assert parts["wg"] == pytest.approx(283.575)
    # update: 640 weights x (add 0.0416667 + master read and write 3.75 + accumulator read and
    # clear 3.4375) = 640 x 7.2291667
    assert parts["update"] == pytest.approx(4626.666667)


def test_a_core_that_emits_an_error_pays_its_macs():
    # layer 1 of 4 -> 4 -> 2 (n = 2, m = 4, T = 2), SLTT: per neuron-step 2 adds 0.1066667 +
    # multiply 0.2 + history read 2.5 + delta read and write 2.5 = 5.3066667, x 4 = 21.2266667;
    # e_prev: 4 x 2 x 2 = 16 MACs x (8 x 8 multiply 0.2 + add at the 17-bit partial width
    # 0.05625 + weight read 1.25) = 24.1
    cfg = SnnConfig(layers=(4, 4, 2), timesteps=2, bptt="sltt")
    core = map_network(cfg, 2, lanes=2).core_params()[1]
    assert core.emits_error and core.partial_bits == 17
    assert sample_ops([core], [[0, 0]] * 3)["bp"] == pytest.approx(45.326667)


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
    # LOAD_SPIKES (FORWARD streamed into it; one layer, so no FORWARD packet): route, command,
    # 4 counts and 67 indices; SET_LABEL and BACKWARD: route and command; each of the 3
    # packets answered by the 3 cores with a status word
    assert words == (2 + 4 + 67) + 2 * 2 + 3 * 3


def test_the_gpu_baseline_on_hand_worked_examples():
    # a 3 -> 2 layer, T = 2, fp32: 6 weights = 24 B; saved per sample and step: inputs 3 and
    # membranes 2 per timestep, 2 x 5 x 4 = 40 B; inputs read per sample: 2 x 3 x 4 = 24 B
    net = SnnConfig(layers=(3, 2), timesteps=2)
    roomy = GpuBaseline(batch=2, cache_bytes=1000)
    # batch 2: 80 B saved, fits; weights read, gradients written, weights written: 24 B each,
    # 12 B per sample
    assert gpu_traffic(net, roomy) == {
        "inputs": 24.0,
        "activations": 0.0,
        "weights": 12.0,
        "gradients": 12.0,
        "update": 12.0,
        "total": 60.0,
    }
    # a 148 B cache keeps weights and gradients (48 B) and 100 B of activations; batch 4 saves
    # 160 B: 60 B spill, written and read back = 120 B per step = 30 B per sample
    tight = gpu_traffic(net, GpuBaseline(batch=4, cache_bytes=148))
    assert (tight["activations"], tight["weights"], tight["total"]) == (30.0, 6.0, 72.0)
    # encoding on the GPU reads the 3 intensity bytes instead of the 24 B of spike frames
    assert gpu_traffic(net, GpuBaseline(batch=2, cache_bytes=1000, encode=True))["total"] == 39.0
    with pytest.raises(ValueError, match=r"weights and gradients \(48 B\) do not fit"):
        gpu_traffic(net, GpuBaseline(cache_bytes=47))


def test_the_default_baseline_is_a_batch_of_128_on_an_a100():
    # 64 -> 10, T = 16: 640 weights = 2,560 B, three passes / 128 = 60 B per sample; spike
    # frames 16 x 64 x 4 = 4,096 B; saved activations 128 x 16 x 74 x 4 = 606,208 B << 40 MB
    assert gpu_traffic(SnnConfig(layers=(64, 10)))["total"] == 4156.0
    cfg, _, layers = _array()
    s = traffic_summary(cfg, layers, [[10] * 4, [1] * 4])
    # T = 4 here: frames 4 x 64 x 4 = 1,024 B, weights 3 x 2,560 / 128 = 60 B
    assert s["gpu_bytes"] == 1084.0
    # 40 spikes: route, command (LOAD_SPIKES with FORWARD streamed into it), 4 counts, 40
    # indices, 2 more packets of 2 words, 3 answers
    assert s["chip_bytes"] == 4 * (2 + 4 + 40 + 2 * 2 + 3)
    assert s["saving"] == pytest.approx(1 - 212 / 1084)


def test_the_chip_encoding_itself_sends_the_packed_intensities():
    _, _, layers = _array()
    spikes = [[1] * 10 + [0] * 54] * 4
    # 40 events and 4 counts become a key and 64 / 4 = 16 words of 8-bit intensities; FORWARD
    # is a packet of its own again (route, command, one answer: 3 words)
    assert chip_encoded_bytes(layers, spikes, 8) == chip_traffic_bytes(layers, spikes) - 4 * 24
    assert chip_encoded_bytes(layers, spikes, 12) == chip_traffic_bytes(layers, spikes) - 4 * 8


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
        gpu_traffic("64,10")
    with pytest.raises(ValueError, match="batch must be an int >= 1, not 0"):
        GpuBaseline(batch=0)
    with pytest.raises(ValueError, match="encode must be a bool"):
        GpuBaseline(encode="yes")
