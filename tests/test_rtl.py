"""The generated Verilog under Verilator + cocotb trains bit-exactly like the golden model.

Every run has random idle cycles on the input and random backpressure on the output. Build
folders live in ``build/rtl/<test id>`` and are reused while the config hash and the Verilog are
unchanged (``sim/rtl_runner.py``).

* every config of the CI matrix (``sim/matrix.py``), 3 seeds, 2 training steps each, through the
  fast transactors (``sim/fast_tb.py``), and seed 0 again through cocotbext-axi, the reference
  BFM, on the same build: every answer packet identical to the fast run's; every
  membrane, spike, count, delta, ``e_prev``, gradient, weight and LFSR state, and together the
  seeds use every learning-rate shift the core allows; then, once per config, the COUNTERS
  against the cycle formulas, an idle ABORT that must change nothing and a WRITE one row too
  long that must be refused (holes ``make mutate`` found);
* the digits network on two cores: 50 training samples with every weight compared after every
  sample, then the whole test split predicted like the golden model;
* the digits network on a two-core array through the fast transactors: the first 300 samples
  of the epoch with every weight compared at 10 checkpoints, then the whole test split (the
  whole epoch: ``make epoch-rtl``);
* a falsified golden value makes the run fail with the first-mismatch report and an FST;
* a simulator process that hangs is killed at its deadline, and the run says so;
* ``spikeforge regress`` on a config file.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from spikeforge.cli import main
from spikeforge.hw.params import CoreParams
from spikeforge.sim.matrix import CI, core_params
from spikeforge.sim.regress import run_config, run_digits, run_epoch
from spikeforge.sim.rtl_runner import build_fast_core, run
from spikeforge.sw.config import SnnConfig

BUILD_ROOT = Path(__file__).resolve().parents[1] / "build" / "rtl"
SEEDS = (0, 1, 2)


def _folder(request) -> Path:
    return BUILD_ROOT / re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)


@pytest.mark.rtl
@pytest.mark.parametrize("name", CI)
def test_matrix_config_trains_bit_exact_over_three_seeds(name, request):
    result = run_config(name, core_params(name), _folder(request), seeds=SEEDS, fast=True)
    assert result.passed, result.report()
    assert all(r.detail["stopped"] == "done" for _, r in result.runs)  # the fast transactors
    assert [s for s, _ in result.runs] == list(SEEDS)
    assert all(r.detail["steps_done"] == 2 for _, r in result.runs)
    # built with the read-during-write checks (a small core's reads may never meet a write)
    assert all("rw_checked" in r.detail for _, r in result.runs)
    assert [n for n, r in result.checks if r.passed] == ["axi", "cycles", "abort", "length"]
    params = core_params(name)  # the seeds together reach every learning-rate shift allowed
    ran = {lr for _, r in result.runs for lr in r.detail["lr_shifts"]}
    assert ran == set(range(params.lr_min, params.lr_max + 1))


@pytest.mark.rtl
def test_digits_network_trains_on_two_cores_like_the_golden_model(request):
    result = run_digits(_folder(request), samples=16, test_samples=40)
    assert result.passed, result.report()
    detail = result.runs[0][1].detail
    assert detail["samples_done"] == 16
    assert detail["layers_changed"] == [True, True]  # the error reached the first layer
    assert detail["test_samples"] == 40  # the whole split: the epoch test below, make regress
    assert detail["rw_checked"] > 0  # reads met writes, never at one address


@pytest.mark.rtl
def test_digits_epoch_part_on_an_array_through_the_fast_transactors(request):
    result = run_epoch(_folder(request), samples=300, test_samples=None, checkpoints=10)
    assert result.passed, result.report()
    detail = result.runs[0][1].detail
    assert detail["samples_done"] == 300 and detail["stopped"] == "done"
    assert detail["checkpoints"] == list(range(30, 301, 30))  # every weight equal at each
    assert detail["test_samples"] == 360  # every prediction equal to the golden model's
    assert detail["test_accuracy"] == detail["golden_test_accuracy"]


@pytest.mark.rtl
def test_checker_reports_the_first_mismatch_with_a_waveform(request):
    params = CoreParams(net=SnnConfig(layers=(8, 4), timesteps=4), lanes=2)
    result = run_config(
        "corrupt",
        params,
        _folder(request),
        seeds=[2],
        steps=1,
        corrupt=True,
        checks=False,
        fast=True,
    )
    assert not result.passed
    _, run = result.runs[0]
    assert "step 0, seed 2: first mismatch in deltas at t = 3, j = 3" in run.message
    assert run.fst is not None and run.fst.stat().st_size > 0
    assert f"waveform: {run.fst}" in result.report()


HANG = """import time

import cocotb


@cocotb.test()
async def hang(dut):
    time.sleep(600)  # a testbench stuck outside the simulator: no simulated deadline helps
"""


@pytest.mark.rtl
def test_a_hung_simulator_is_killed_at_its_deadline(tmp_path, monkeypatch):
    params = CoreParams(net=SnnConfig(layers=(8, 4), timesteps=4), lanes=2)
    b = build_fast_core(
        params, BUILD_ROOT / "test_checker_reports_the_first_mismatch_with_a_waveform"
    )
    (tmp_path / "tb_hang.py").write_text(HANG)
    monkeypatch.syspath_prepend(str(tmp_path))  # the simulator's Python finds tb_hang
    t0 = time.monotonic()
    result = run(b, tmp_path / "run", {}, testbench="tb_hang", timeout=20, waves_on_failure=False)
    assert time.monotonic() - t0 < 60
    assert not result.passed
    assert "ran past its deadline of 20 s and was killed" in result.message


@pytest.mark.rtl
def test_regress_cli_runs_a_config_file_and_prints_json_last(tmp_path, capsys):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text('layers = [6, 4]\ntimesteps = 2\nsurrogate = "triangle"\n[core]\nlanes = 2\n')
    out = tmp_path / "regress"
    code = main(["regress", "--config", str(cfg), "--seeds", "2", "--out", str(out), "--json"])
    lines = capsys.readouterr().out.strip().splitlines()
    summary = json.loads(lines[-1])
    assert code == 0
    assert summary["passed"] is True
    assert [c["config"] for c in summary["configs"]] == ["tiny"]
    assert [r["seed"] for r in summary["configs"][0]["runs"]] == [0, 1]
    assert any("tiny" in line and "pass" in line for line in lines[:-1])  # the table


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--seeds", "0"], "--seeds must be"),
        (["--config", "missing.toml"], "missing.toml"),
        (["--matrix", "nope"], "invalid choice"),
        (["--transactors", "nope"], "invalid choice"),
        (["--only", "no-such-config"], "no-such-config"),
    ],
)
def test_regress_cli_rejects_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["regress", *argv])
    assert exc.value.code != 0
    assert message in capsys.readouterr().err
