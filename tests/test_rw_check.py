"""The read-during-write checks (hw/rw_check.py): present in every simulation build, absent from
synthesis, silent on the real schedule, and tripped by a broken one in both simulators.

The broken schedule: the forward engine's hazard window cut from ``FP_DEPTH`` = 11 to 10
cycles, so a group's integrate reads its membrane and spike count in the cycle the previous
timestep's writes of them land -- what ``synth_ecp5 -no-rw-check`` would turn into an
undefined word on the FPGA.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from spikeforge.hw import forward
from spikeforge.hw.generate import generate
from spikeforge.hw.params import CoreParams
from spikeforge.sim.amaranth_host import run_core
from spikeforge.sim.regress import run_config
from spikeforge.sim.scenario import train_and_check
from spikeforge.sim.session import CoreSession
from spikeforge.sw.config import SnnConfig

BUILD_ROOT = Path(__file__).resolve().parents[1] / "build" / "rtl"
BROKEN = CoreParams(net=SnnConfig(layers=(8, 4), timesteps=8), lanes=4)
VIOLATION = r"read-during-write: memory core\.(membranes|counts), address \d+, cycle \d+"


def _train(params: CoreParams, seed: int = 1, steps: int = 1) -> int:
    """Train in Amaranth's simulator; the core's count of checked accesses at the end."""

    async def script(host):
        await train_and_check(CoreSession(params, host.call), seed=seed, steps=steps, density=0.5)
        return host.ctx.get(host.dut.rw_checked)

    return run_core(params, script)


def test_the_real_schedule_passes_every_check_and_counts_them():
    params = CoreParams(net=SnnConfig(layers=(8, 4), timesteps=4), lanes=2, emit_error=True)
    assert _train(params, steps=2) > 0  # reads and writes met in one cycle, never one address


def test_a_broken_schedule_trips_the_check_in_amaranths_simulator(monkeypatch):
    monkeypatch.setattr(forward, "FP_DEPTH", forward.FP_DEPTH - 1)
    with pytest.raises(AssertionError, match=VIOLATION):
        _train(BROKEN)


@pytest.mark.rtl
def test_a_broken_schedule_stops_the_verilator_run_with_the_checks_message(monkeypatch):
    monkeypatch.setattr(forward, "FP_DEPTH", forward.FP_DEPTH - 1)
    folder = BUILD_ROOT / "rw-check-broken"
    result = run_config(
        "broken-drain", BROKEN, folder, seeds=[1], steps=1, waves_on_failure=False, checks=False
    )
    assert not result.passed
    (_, run), *_ = result.runs
    assert re.search(VIOLATION, run.message), run.message
    assert "Assertion failed" in run.message


def test_synthesis_verilog_has_no_checks_and_simulation_verilog_has_them(tmp_path):
    params = CoreParams(net=SnnConfig(layers=(6, 4), timesteps=2), lanes=2)
    sim = generate(params, tmp_path / "sim")
    syn = generate(params, tmp_path / "syn", checks=False)
    sim_v = (tmp_path / "sim" / sim["verilog"]).read_text()
    syn_v = (tmp_path / "syn" / syn["verilog"]).read_text()
    assert sim["rw_checks"] and not syn["rw_checks"]
    assert "read-during-write" in sim_v and "assert" in sim_v
    assert "read-during-write" not in syn_v and "assert" not in syn_v
    assert "rw_checked" in {p["name"] for p in sim["ports"]}
    assert "rw_checked" not in {p["name"] for p in syn["ports"]}
    with pytest.raises(TypeError, match="checks must be a bool"):
        generate(params, tmp_path / "bad", checks="no")
