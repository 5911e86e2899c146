"""The generated Verilog under Verilator + cocotb (cocotbext-axi drives the AXI4-Stream ports)
trains bit-exactly like the golden model. The full regression matrix is issue 4's."""

from __future__ import annotations

import pytest

from spikeforge.hw.params import CoreParams
from spikeforge.sim.rtl_runner import run_testbench
from spikeforge.sw.config import SnnConfig


@pytest.mark.rtl
def test_verilator_core_trains_bit_exact(tmp_path, request):
    params = CoreParams(net=SnnConfig(layers=(8, 4), timesteps=4, surrogate="triangle"), lanes=2)
    results = run_testbench(params, tmp_path / request.node.name, seed=3, steps=2)
    assert results.is_file()
