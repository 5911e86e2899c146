"""Formal checks with SymbiYosys (yowasp-sby, smtbmc + z3): the checks CI runs, and proof that a
broken property or a broken configuration fails with a counterexample trace."""

from __future__ import annotations

from pathlib import Path

import pytest

from spikeforge.sim import formal
from spikeforge.sim.formal import CHECKS, Check, read_trace, run_check

CI = {c.name: c for c in CHECKS if c.ci}
FAST = [
    ("error_emitter_flow", "prove"),
    ("spike_emitter_flow", "prove"),
    ("spike_receiver", "prove"),
    ("error_receiver", "prove"),
    ("spike_merge", "prove"),
    ("error_reduce", "prove"),
    ("packet_router", "bmc"),
    ("response_merger", "bmc"),  # found a TIMEOUT word changing while it waited (fixed)
    ("stall_gate", "bmc"),  # found the gate withdrawing valid (fixed)
]


def _mode(check: Check, mode: str) -> int:
    return dict(check.modes)[mode]


@pytest.mark.parametrize(("name", "mode"), FAST)
def test_check(tmp_path: Path, name: str, mode: str):
    check = CI[name]
    result = run_check(check, mode, _mode(check, mode), tmp_path)
    assert result.expected, (result.status, result.failed, result.workdir)
    assert result.asserts, "a check without assertions proves nothing"


def _false_property(m, props):
    """SpikeMerge with a false claim: no sink ever sees a ``last`` word."""
    dut = formal.spike_merge(m, props)
    props.check("never_last", ~(dut.o0.valid & dut.o0.payload.last))


def test_false_property_fails_with_trace(tmp_path: Path):
    check = Check("false_property", "links.SpikeMerge", "false", _false_property, (("bmc", 8),))
    result = run_check(check, "bmc", 8, tmp_path)
    assert result.status == "FAIL"
    assert not result.expected
    [failed] = result.failed
    name, step = failed.split("@")
    assert name == "never_last" and int(step) >= 1
    assert result.trace is not None and Path(result.trace).exists()
    trace = read_trace(result.trace, ["o0__valid", "o0__payload"])
    assert trace["o0__valid"][int(step)] == 1  # the trace shows the `last` word on o0


def _short_margin(m, props):
    """The error emitter with too small a margin for the BP engine's words in flight: a
    deliberately broken configuration (margin 2 instead of ``bp_error_drain + 2``), on the
    12-deep FIFO model so the overflow comes early."""
    formal.error_emitter(m, props, margin=2, depth=12, data=False, invariant=False)


def test_broken_margin_overflows_with_trace(tmp_path: Path):
    check = Check("short_margin", "links.ErrorEmitter", "broken", _short_margin, (("bmc", 30),))
    result = run_check(check, "bmc", 30, tmp_path)
    assert result.status == "FAIL", result.workdir
    [failed] = result.failed
    name, step = failed.split("@")
    assert name == "no_push_when_full"
    trace = read_trace(result.trace, ["bp_push", "w_rdy"])
    assert trace["bp_push"][int(step)] == 1 and trace["w_rdy"][int(step)] == 0
    assert result.trace is not None and Path(result.trace).exists()
    log = (Path(result.workdir) / "bmc.log").read_text()
    assert "failed assertion top." in log


def test_table_and_json(tmp_path: Path):
    code = formal.main(["--out", str(tmp_path), "--json", "--only", "stall_gate"])
    assert code == 0
    table = (tmp_path / "table.md").read_text()
    assert "| stall_gate | links.StallGate | bmc depth 20 |" in table
    assert (tmp_path / "results.json").exists()
