"""The generated Verilog under Verilator + cocotb (cocotbext-axi drives the AXI4-Stream ports,
with random idle cycles on the input and backpressure on the output) trains bit-exactly like
the golden model: every membrane, spike, count, delta, e_prev, gradient, weight and LFSR state
after every step. The build folder of each case is named after its test id."""

from __future__ import annotations

import pytest

from spikeforge.hw.params import CoreParams
from spikeforge.sim.rtl_runner import run_testbench
from spikeforge.sw.config import SnnConfig

MATRIX = {
    "w4-p1-zero-triangle": (
        {"layers": (6, 4), "timesteps": 4, "w_bits": 4, "reset": "zero", "surrogate": "triangle"},
        {"lanes": 1, "emit_error": True},
    ),
    "w16-pN-sltt-nearest": (
        {"layers": (5, 4), "timesteps": 3, "w_bits": 16, "bptt": "sltt", "rounding": "nearest"},
        {"lanes": 4, "emit_error": True},
    ),
    "t1-nonsquare": ({"layers": (12, 6), "timesteps": 1}, {"lanes": 3, "emit_error": True}),
    "t16-bptt": ({"layers": (8, 4), "timesteps": 16}, {"lanes": 2}),
    "hidden-external-error": (
        {"layers": (6, 8, 4), "timesteps": 4, "surrogate": "triangle"},
        {"layer": 0, "lanes": 4},
    ),
    "output-of-two": (
        {"layers": (6, 8, 4), "timesteps": 4, "reset": "zero"},
        {"layer": 1, "lanes": 2},
    ),
    "saturating": (
        {
            "layers": (8, 4),
            "timesteps": 6,
            "g_bits": 4,
            "acc_bits": 5,
            "v_bits": 10,
            "err_shift": 5,
        },
        {"lanes": 2, "emit_error": True},
    ),
    "default-shape": ({"layers": (16, 16), "timesteps": 8}, {"lanes": 8}),
}


@pytest.mark.rtl
@pytest.mark.parametrize("case", list(MATRIX))
def test_verilator_core_trains_bit_exact(case, tmp_path_factory, request):
    net, core = MATRIX[case]
    params = CoreParams(net=SnnConfig(**net), **core)
    build = tmp_path_factory.mktemp("rtl") / request.node.name.replace("/", "_")
    run_testbench(params, build, seed=1, steps=2, density=0.5, stall=0.3)


@pytest.mark.rtl
def test_checker_reports_the_first_mismatch(tmp_path):
    params = CoreParams(net=SnnConfig(layers=(8, 4), timesteps=4), lanes=2)
    with pytest.raises(AssertionError, match="cocotb tests failed"):
        run_testbench(params, tmp_path / "corrupt", seed=2, steps=1, corrupt=True)
    log = (tmp_path / "corrupt" / "test.log").read_text()
    assert "first mismatch in deltas at t = 3, j = 3" in log
    assert "step 0, seed 2" in log
