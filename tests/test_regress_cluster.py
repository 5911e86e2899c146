"""``spikeforge regress`` on a Dask cluster (``sim/regress_cluster.py``, ``spikeforge/cluster.py``).

The fast tests run real Dask on a real two-process LocalCluster with cheap task bodies in place
of Verilator (``run_on_cluster`` takes them as parameters): the results come back in the
sequential run's order and shape, a task whose worker dies is run again and then reported as a
``KilledWorker`` failure while the rest completes, a stalled regression is cancelled at its
deadline and reported, a failing build fails its config's runs. The ``rtl`` test runs two small
matrix configs on two workers and compares them run by run with the sequential run.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from distributed import LocalCluster, get_worker, secede
from distributed.comm.core import CommClosedError

import spikeforge.cluster as cluster
import spikeforge.sim.regress as regress
from spikeforge.cli import main
from spikeforge.cluster import check_scheduler, dask_client
from spikeforge.sim.matrix import core_params
from spikeforge.sim.regress import (
    DIGITS_NAME,
    PROTOCOL_CHECKS,
    DigitsRun,
    MatrixRun,
    run_config,
    summary,
)
from spikeforge.sim.regress_cluster import run_on_cluster
from spikeforge.sim.rtl_runner import Build, RunResult

SMALL = ("w4-p1-zero-triangle", "w16-pN-sltt-nearest")  # the smallest configs of matrix.CI
PARAMS = core_params(SMALL[0])
WAIT = 30.0  # seconds a task body waits for the others at most
SETTLE = 1.0  # seconds for finished tasks to report to the scheduler before a worker dies


# -- argument checks -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--workers", "0"], "--workers must be >= 1, not 0"),
        (["--workers", "-2"], "--workers must be >= 1, not -2"),
        (["--scheduler", "localhost:8786"], "'localhost:8786'"),
        (["--scheduler", "tcp://host"], "'tcp://host'"),
        (["--scheduler", "tcp://host:99999"], "'tcp://host:99999'"),
        (["--workers", "2", "--task-timeout", "0"], "--task-timeout must be > 0 seconds, not 0"),
        (["--task-timeout", "60"], "--task-timeout applies with --workers or --scheduler"),
        (["--workers", "1", "--seeds", "0"], "--seeds must be >= 1, not 0"),
    ],
)
def test_bad_cluster_flags_exit_2_naming_the_value_before_anything_runs(
    flags, named, tmp_path, capsys
):
    with pytest.raises(SystemExit) as exc:
        main(["regress", "--only", SMALL[0], "--out", str(tmp_path), *flags])
    assert exc.value.code == 2
    assert named in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing built


def test_workers_and_scheduler_exclude_each_other(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["regress", "--out", str(tmp_path), "--workers", "2", "--scheduler", "tcp://h:1"])
    assert exc.value.code == 2
    assert "not allowed with argument --workers" in capsys.readouterr().err


@pytest.mark.parametrize("address", ["tcp://127.0.0.1:8786", "tcp://[::1]:8786", "tls://h:1"])
def test_a_scheduler_address_is_scheme_host_and_port(address):
    assert check_scheduler(address) == address


@pytest.mark.parametrize(
    "address", ["", "h:1", "udp://h:1", "tcp://:1", "tcp://h:0", "tcp://h:1/x"]
)
def test_a_malformed_scheduler_address_is_refused(address):
    with pytest.raises(ValueError, match="--scheduler must be a Dask scheduler address"):
        check_scheduler(address)


def _running(workers: int) -> LocalCluster:
    return LocalCluster(n_workers=workers, processes=False, protocol="tcp", dashboard_address=":0")


def test_a_running_scheduler_is_used_with_its_deadlines(monkeypatch):
    monkeypatch.setattr(cluster, "SCHEDULER_TIMEOUT", 1)
    monkeypatch.setattr(cluster, "WORKER_TIMEOUT", 1)
    with _running(1) as running, dask_client(scheduler=running.scheduler_address) as c:
        assert c.submit(sum, [1, 2], key="three").result() == 3
    t0 = time.monotonic()
    with _running(0) as empty:
        with pytest.raises(TimeoutError), dask_client(scheduler=empty.scheduler_address):
            pass  # no worker
        address = empty.scheduler_address
    with pytest.raises(OSError, match="Timed out"), dask_client(scheduler=address):
        pass  # no scheduler
    assert time.monotonic() - t0 < 15


# -- cheap task bodies, run on the workers ----------------------------------------------------


def _mark(root: Path, what: str) -> None:
    (root / "done").mkdir(exist_ok=True)
    (root / "done" / what).touch()


def _await_others(root: Path) -> None:
    """Wait until every other seed and check has finished, so that no other task is waiting
    on this worker when it dies or hangs (the scheduler counts a death against every task it
    gave the worker); the worker runs them meanwhile (``secede``: it is given another thread).

    A task marks itself done just before it returns, and the scheduler may still send this
    worker a lost result to compute again, so "finished" here means: all marked, and nothing
    else executing or queued on this worker for ``SETTLE`` seconds on end (a death before that
    was counted against a finished check)."""
    secede()
    others = json.loads((root / "plan.json").read_text())["others"]
    state = get_worker().state
    deadline = time.monotonic() + WAIT
    quiet = None  # since when this worker has had nothing else to do
    while time.monotonic() < deadline:
        marked = (root / "done").is_dir() and len(list((root / "done").iterdir())) >= others
        if not marked or state.executing or state.ready or state.constrained:
            quiet = None
        elif quiet is None:
            quiet = time.monotonic()
        elif time.monotonic() - quiet >= SETTLE:
            return
        time.sleep(0.05)


def fake_build(params, folder: Path) -> Build:
    if folder.name == "broken":
        raise RuntimeError("%Error: spikeforge_core.v:1: syntax error")
    # a lambda like build_core's: the Build crosses processes by cloudpickle
    return Build(params.name, folder, params.core_hash, 0.5, False, emit=lambda out: {"o": out})


def fake_seed(b, params, folder: Path, seed: int, **case) -> RunResult:
    root = folder.parent
    if (folder.name, seed) == ("dies", 1) or (
        (folder.name, seed) == ("dies-once", 0) and not (root / "died").exists()
    ):
        (root / "attempts").mkdir(exist_ok=True)
        (root / "attempts" / str(os.getpid())).touch()
        (root / "died").touch()
        _await_others(root)
        os._exit(1)
    if (folder.name, seed) == ("hangs", 0):
        _await_others(root)
        deadline = time.monotonic() + 2 * WAIT
        while not (root / "release").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    _mark(root, f"{folder.name}-seed-{seed}")
    detail = {"passed": True, "cycles": 100 + seed, "case": case, "hash": b.config_hash}
    return RunResult(True, "", 100 + seed, 0.01, folder / f"seed-{seed}", detail=detail)


def fake_check(b, params, folder: Path, check: str, **case) -> RunResult:
    _mark(folder.parent, f"{folder.name}-{check}")
    detail = {"passed": True, "cycles": len(check), "case": case, "pid": os.getpid()}
    return RunResult(True, "", len(check), 0.01, folder / check, detail=detail)


def fake_digits(folder: Path, **kwargs) -> DigitsRun:
    if kwargs["samples"] < 0:
        raise ValueError("no digits")
    out = DigitsRun(DIGITS_NAME, Build("spikeforge_rack", folder, "rack", 1.0, False))
    out.runs.append((0, RunResult(True, "", kwargs["samples"], 0.1, folder / "seed-0")))
    return out


FAKES = {
    "build": fake_build,
    "seed_run": fake_seed,
    "check_run": fake_check,
    "digits_run": fake_digits,
}


@pytest.fixture(scope="module")
def client():
    """Two single-thread worker processes; a task whose worker died is run once more."""
    with dask_client(2, allowed_failures=1) as c:
        yield c


def _warm() -> str:
    return fake_seed.__module__


READY = 300.0
"""Seconds a test waits at most for both workers to run again after one was killed (a worker
process imports torch as it starts: slow on a loaded machine)."""


def _ready(client) -> None:
    """Both workers running and holding the task bodies: a worker started anew imports them
    before a test's clock runs. A worker still going down refuses the call: try again."""
    deadline = time.monotonic() + READY
    while True:
        try:
            client.wait_for_workers(2, timeout=max(1.0, deadline - time.monotonic()))
            if len(client.run(_warm)) == 2:
                return
        except (OSError, CommClosedError):
            if time.monotonic() > deadline:
                raise
        time.sleep(0.5)


def _run(client, root: Path, names, *, others: int = 0, **kwargs):
    root.mkdir(parents=True, exist_ok=True)
    (root / "plan.json").write_text(json.dumps({"others": others}))
    _ready(client)
    ticks: list[str] = []
    results = run_on_cluster(
        client,
        [(n, PARAMS) for n in names],
        root,
        seeds=kwargs.pop("seeds", [0, 1]),
        tick=ticks.append,
        **FAKES,
        **kwargs,
    )
    return results, ticks


def test_results_come_back_in_the_sequential_order_and_shape(client, tmp_path, monkeypatch):
    root = tmp_path / "run"
    results, ticks = _run(client, root, ["b", "a"], seeds=[2, 0], digits={"samples": 7})
    assert [r.name for r in results] == ["b", "a", DIGITS_NAME]
    assert sorted(ticks) == sorted(
        [f"{n} seed {s}" for n in "ba" for s in (2, 0)]
        + [f"{n} {c}" for n in "ba" for c in PROTOCOL_CHECKS]
        + ["digits"]
    )
    assert all(r.passed for r in results)
    assert results[2].runs[0][1].cycles == 7
    pids = {r.detail["pid"] for m in results[:2] for _, r in m.checks}
    assert os.getpid() not in pids  # run by the workers

    # the sequential run_config with the same task bodies: the same results
    monkeypatch.setattr(regress, "build_core", fake_build)
    monkeypatch.setattr(regress, "run_seed", fake_seed)
    monkeypatch.setattr(regress, "run_check", fake_check)
    root = root.resolve()
    local = [run_config(n, PARAMS, root / n, seeds=[2, 0]) for n in ("b", "a")]
    assert summary(local) == summary(results[:2])
    for mine, theirs in zip(local, results[:2], strict=True):
        assert isinstance(theirs, MatrixRun)
        assert [s for s, _ in theirs.runs] == [2, 0]
        assert [c for c, _ in theirs.checks] == list(PROTOCOL_CHECKS)
        assert mine.runs == theirs.runs
        assert [(c, r.cycles, r.folder) for c, r in mine.checks] == [
            (c, r.cycles, r.folder) for c, r in theirs.checks
        ]
        assert mine.to_dict() == theirs.to_dict()


def test_a_task_whose_worker_dies_is_run_again_then_reported_killed_worker(client, tmp_path):
    root = tmp_path / "run"
    others = 2 * (2 + len(PROTOCOL_CHECKS)) - 1
    results, ticks = _run(client, root, ["ok", "dies"], others=others)
    ok, dies = results
    assert ok.passed and len(ticks) == others + 1
    assert len(list((root / "attempts").iterdir())) == 2  # a first time and once more
    assert [s for s, r in dies.runs if r.passed] == [0]
    assert all(r.passed for _, r in dies.checks), dies.report()
    failed = dies.runs[1][1]
    assert failed.message.startswith("KilledWorker: ") and failed.cycles == 0
    assert failed.folder == root.resolve() / "dies" / "seed-1"
    assert summary(results)[1]["result"] == "FAIL (1)"
    assert "dies, seed 1:\nKilledWorker: " in dies.report()


def test_a_task_whose_worker_died_once_passes_when_run_again(client, tmp_path):
    root = tmp_path / "run"
    others = 2 * (2 + len(PROTOCOL_CHECKS)) - 1
    results, _ = _run(client, root, ["ok", "dies-once"], others=others)
    assert all(r.passed for r in results), [r.report() for r in results]
    assert len(list((root / "attempts").iterdir())) == 1


def test_a_stalled_regression_is_cancelled_at_its_deadline_and_reported(client, tmp_path):
    root = tmp_path / "run"
    _ready(client)
    t0 = time.monotonic()
    try:
        results, ticks = _run(client, root, ["ok", "hangs"], others=3, checks=False, task_timeout=3)
    finally:
        (root / "release").touch()  # the cancelled task still runs: let its worker go
    assert time.monotonic() - t0 < WAIT
    ok, hangs = results
    assert ok.passed and len(ticks) == 4
    assert hangs.runs[1][1].passed
    late = hangs.runs[0][1]
    assert not late.passed
    assert late.message == "cancelled: no build or run finished within --task-timeout 3 s"


def test_a_failing_build_fails_its_config_and_the_rest_completes(client, tmp_path):
    root = tmp_path / "run"
    results, ticks = _run(client, root, ["broken", "ok"], digits={"samples": -1})
    broken, ok, digits = results
    assert ok.passed and len(ticks) == 2 * (2 + len(PROTOCOL_CHECKS)) + 1
    assert not broken.passed and len(broken.failures) == 2
    why = "build failed: RuntimeError: %Error: spikeforge_core.v:1: syntax error"
    assert [r.message for _, r in broken.runs + broken.checks] == [why] * 5
    assert broken.build.config_hash == PARAMS.core_hash and not broken.build.cached
    assert summary(results)[0]["result"] == "FAIL (2)"
    assert not digits.passed and digits.runs[0][1].message == "ValueError: no digits"
    json.dumps([r.to_dict() for r in results])  # the CLI's JSON


# -- the real thing ---------------------------------------------------------------------------

TIMINGS = {"sim_seconds", "cycles_per_second", "build_seconds", "build_cached"}
WALL = {"seconds", "run_seconds"}


@pytest.mark.rtl
def test_two_configs_on_two_workers_equal_the_sequential_run(tmp_path):
    """Built and run on the cluster, then run again one after another on the same builds:
    every run alike (pass, cycles, every detail but the wall time), through the fast
    transactors and the cocotbext-axi comparison."""
    configs = [(n, core_params(n)) for n in SMALL]
    with dask_client(2) as c:
        cluster = run_on_cluster(c, configs, tmp_path, seeds=[0, 1], fast=True)
    assert all(not r.build.cached for r in cluster)  # built by the workers
    local = [run_config(n, p, tmp_path / n, seeds=[0, 1], fast=True) for n, p in configs]
    assert all(r.build.cached for r in local)  # the workers' builds are the sequential ones
    for mine, theirs in zip(local, cluster, strict=True):
        assert mine.passed and theirs.passed, theirs.report()
        for (s, a), (t, b) in zip(
            mine.runs + mine.checks, theirs.runs + theirs.checks, strict=True
        ):
            assert (s, a.passed, a.cycles, a.folder) == (t, b.passed, b.cycles, b.folder)
            assert {k: v for k, v in a.detail.items() if k not in WALL} == {
                k: v for k, v in b.detail.items() if k not in WALL
            }
        drop = {"cycles/s", "build s"}
        assert [{k: v for k, v in row.items() if k not in drop} for row in summary([mine])] == [
            {k: v for k, v in row.items() if k not in drop} for row in summary([theirs])
        ]
        a, b = mine.to_dict(), theirs.to_dict()
        for d in (a, b):
            for k in TIMINGS:
                d.pop(k)
            for run in d["runs"]:
                for k in WALL:
                    run.pop(k)
        assert a == b
