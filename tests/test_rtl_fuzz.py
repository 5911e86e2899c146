"""The host port of the generated Verilog fuzzed while it trains (Verilator + cocotb).

The CI subset of ``make fuzz``: a small hidden-layer core whose WRITEs take several packets
(2,000 packets) and a three-core array (1,000 packets), both with 30% idle/backpressure on the
AXI4-Stream ports. Every answer must be the protocol's, and every weight the golden model's
after the valid steps alone (:mod:`spikeforge.sim.fuzz`). Build folders: ``build/rtl/fuzz-*``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spikeforge.cli import main
from spikeforge.sim.fuzz import FuzzConfig, small_array, small_core
from spikeforge.sim.fuzz_packets import ARRAY_KINDS, CORE_KINDS
from spikeforge.sim.regress import run_fuzz

BUILD_ROOT = Path(__file__).resolve().parents[1] / "build" / "rtl"


@pytest.mark.rtl
def test_a_fuzzed_core_answers_every_packet_right_and_trains_bit_exact():
    _, result = run_fuzz([small_core()], BUILD_ROOT / "fuzz-core", cfg=FuzzConfig(2000, seed=1))
    assert result.passed, result.report()
    report = result.detail
    assert report["packets"] >= 2000 and report["mismatches"] == 0
    assert report["valid_steps"] >= 50 and report["checkpoints"] >= 5
    assert set(CORE_KINDS) <= set(report["packets_by_class"])  # every kind was sent
    assert report["aborts"].get("interrupted", 0) >= 5
    for status in ("BAD_OPCODE", "BAD_ARG", "BAD_LENGTH", "BAD_SPIKES", "ABORTED"):
        assert report["answers_by_status"][status] > 0


@pytest.mark.rtl
def test_a_fuzzed_array_answers_every_packet_right_and_trains_bit_exact():
    cfg = FuzzConfig(1000, seed=2, watchdog=0.3)
    _, result = run_fuzz(small_array(), BUILD_ROOT / "fuzz-array", cfg=cfg)
    assert result.passed, result.report()
    report = result.detail
    assert report["packets"] >= 1000 and report["mismatches"] == 0
    assert set(ARRAY_KINDS) <= set(report["packets_by_class"])
    assert report["answers_by_status"]["TIMEOUT"] > 0
    assert set(report["watchdog_episodes"]) == {"stuck core", "tiny timeout"}


@pytest.mark.rtl
def test_fuzz_cli_prints_the_figures_and_json_last(tmp_path, capsys):
    cfg = tmp_path / "fuzz.toml"
    cfg.write_text(
        'layers = [12, 8, 4]\ntimesteps = 3\nsurrogate = "triangle"\n'
        "[core]\nlayer = 0\nlanes = 4\nemit_error = true\nwrite_buffer = 16\n"
    )
    out = BUILD_ROOT / "fuzz-core"  # the same core as above: the build is reused
    code = main(["fuzz", "--config", str(cfg), "--packets", "150", "--out", str(out), "--json"])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and summary["passed"] is True
    assert summary["packets"] >= 150 and summary["build_cached"] is True


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--packets", "0"], "--packets must be >= 1"),
        (["--stall", "1.5"], "--stall must lie in [0, 1)"),
        (["--config", "a.toml", "--cores", "2"], "give one or the other"),
        (["--config", "missing.toml"], "missing.toml"),
        (["--cores", "1"], "needs at least 2 cores"),
    ],
)
def test_fuzz_cli_rejects_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["fuzz", *argv])
    assert exc.value.code != 0
    assert message in capsys.readouterr().err
