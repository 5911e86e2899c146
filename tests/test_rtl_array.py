"""The generated multi-core array under Verilator + cocotb trains bit-exactly like the golden
model: one cocotbext-axi driver and monitor on the array's one host port (random idle cycles and
random backpressure), spikes and errors on the array's own links, every weight of every layer
compared after every step. The build lives in ``build/rtl/array-*``."""

from __future__ import annotations

from pathlib import Path

import pytest

from spikeforge.codesign.mapping import map_network
from spikeforge.sim.regress import run_array
from spikeforge.sw.config import SnnConfig

BUILD_ROOT = Path(__file__).resolve().parents[1] / "build" / "rtl"


@pytest.mark.rtl
@pytest.mark.parametrize("seed", [1, 2])
def test_a_three_layer_network_on_five_cores_trains_bit_exact(seed):
    """(32, 48, 32, 10) mapped on five cores: layers 0 and 1 split in two, layer 2 on one core
    with 5 lanes. Three training steps with 30% idle/backpressure on the host port."""
    net = SnnConfig(layers=(32, 48, 32, 10), timesteps=8)
    mapping = map_network(net, 5, lanes=8)
    assert mapping.cores_per_layer == (2, 2, 1)
    folder = BUILD_ROOT / "array-32-48-32-10-c5"  # one build for both seeds
    _, result = run_array(mapping.core_params(), folder, seed=seed, steps=3, stall=0.3)
    assert result.passed, result.report()
    assert len(result.detail["step_cycles"]) == 3
    assert sorted(result.detail["counters"]) == [str(n) for n in range(5)]
