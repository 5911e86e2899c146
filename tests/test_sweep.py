"""The sweep end to end through the CLI: kill and resume, and a real two-worker Dask cluster.

Both run ``spikeforge sweep`` as a separate process, as a user would, on small spaces of the
single-layer digits network (a few hundred training samples, so a point takes seconds).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from spikeforge.codesign.report import ACCURACY_LABELS
from spikeforge.codesign.search import AskTellGridSampler, _recover
from spikeforge.sw.checkpoint import load_checkpoint
from spikeforge.sw.config import SnnConfig
from spikeforge.sw.data import load_dataset
from spikeforge.sw.encoders import quantize
from spikeforge.sw.golden import GoldenModel
from spikeforge.sw.train import int_accuracy, train_int

BIN = Path(sys.executable).parent
TINY = """
name = "tiny"
sampler = "grid"
[network]
layers = [64, 10]
[training]
epochs = 1
train_samples = 300
activity_samples = 4
max_replicas = 2  # pairs: points keep finishing one group at a time, so a kill falls mid-way
[hardware]
synth = false
[dimensions]
cores = [1, 6]
lanes = [2]
timesteps = [4]
w_bits = [4, 6, 8, 12, 16]
bptt = ["bptt", "sltt"]
"""


def _sweep(space: Path, out: Path, *extra: str) -> list[str]:
    return [
        str(BIN / "spikeforge"),
        "sweep",
        "--space",
        str(space),
        "--out",
        str(out),
        "--no-progress",
        "--json",
        *extra,
    ]


def _run(space: Path, out: Path, *extra: str, timeout: float) -> dict:
    """Run a sweep to its end; its ``--json`` summary (the last line of standard output)."""
    done = subprocess.run(
        _sweep(space, out, *extra), capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "evaluations.jsonl").read_text().splitlines()]


def _trained(out: Path) -> int:
    points = [json.loads(p.read_text()) for p in (out / "points").glob("*.json")]
    return sum(p["params"]["cores"] == 1 for p in points)


GRID = {"a": [1, 2, 3], "b": ["x", "y"]}


def _study(tmp_path: Path, sampler) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(storage=f"sqlite:///{tmp_path / 'study.db'}", sampler=sampler)


def _suggest(trial: optuna.Trial, names=GRID) -> tuple:
    return tuple(trial.suggest_categorical(n, GRID[n]) for n in names)


def test_a_grid_point_killed_before_all_its_parameters_were_asked_is_queued_again(tmp_path):
    """A kill can fall between ``ask`` and the last ``suggest`` (the CI once caught it): the
    stale trial holds some parameters or none, yet its grid point runs again, all of it."""
    study = _study(tmp_path, AskTellGridSampler(GRID, seed=3))
    first = study.ask()
    study.tell(first, 1.0 * len(_suggest(first)))
    some = study.ask()
    half = _suggest(some, ["a"])  # killed here, "b" never asked
    study.ask()  # killed right after ask
    assert _recover(study, study._storage) == 2
    asked = []
    for _ in range(len(GRID["a"]) * len(GRID["b"]) - 1):
        trial = study.ask()
        asked.append(_suggest(trial))
        study.tell(trial, 0.0)
    done = [tuple(t.params[n] for n in GRID) for t in study.trials if t.state.name == "COMPLETE"]
    assert sorted(done) == sorted((a, b) for a in GRID["a"] for b in GRID["b"])
    assert asked[0][0] == half[0]  # the half-asked point came back first


def test_a_queued_point_killed_before_its_first_parameter_keeps_its_parameters(tmp_path):
    study = _study(tmp_path, optuna.samplers.NSGAIISampler(seed=3))
    study.enqueue_trial({"a": 2, "b": "y"})
    study.ask()  # killed before any suggest: its parameters are only "fixed" ones
    assert _recover(study, study._storage) == 1
    assert len(study.get_trials(states=(optuna.trial.TrialState.WAITING,))) == 1
    assert _suggest(study.ask()) == (2, "y")


def test_a_killed_sweep_resumes_keeping_every_completed_point(tmp_path):
    space = tmp_path / "tiny.toml"
    space.write_text(TINY)
    out = tmp_path / "run"
    proc = subprocess.Popen(
        _sweep(space, out, "--workers", "1"),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 240
    while _trained(out) < 2:  # two points through training, then kill
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
        assert time.monotonic() < deadline, "no 2 trained points within 240 s"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its Dask cluster, mid-way
    proc.wait()
    proc.stderr.close()
    kept = {p.stem: p.read_text() for p in (out / "points").glob("*.json")}
    assert 3 <= len(kept) < 20
    first_run = _log(out)

    summary = _run(space, out, "--workers", "1", timeout=600)

    assert summary["points"] == 20 and summary["done"] + summary["failed"] == 20
    assert summary["computed"] == 20 - len(kept)  # nothing kept was computed again
    for pid, text in kept.items():  # every completed point kept as it was
        assert (out / "points" / f"{pid}.json").read_text() == text
    second_run = _log(out)[len(first_run) :]
    assert not {e["id"] for e in second_run} & set(kept)
    assert len({e["id"] for e in second_run}) == len(second_run) == 20 - len(kept)
    records = [json.loads(p.read_text()) for p in (out / "points").glob("*.json")]
    invalid = [r for r in records if r["params"]["cores"] == 6]
    assert len(invalid) == 10 and all(  # 10 neurons in lane groups of 2: at most 5 cores
        r["status"] == "failed"
        and r["reason"].startswith("invalid point: ")
        and "at most 5 cores" in r["reason"]
        for r in invalid
    )
    study = optuna.load_study(study_name="spikeforge-tiny", storage=f"sqlite:///{out}/study.db")
    told = [
        t
        for t in study.trials
        if t.state.is_finished() and not t.user_attrs.get("reason", "").startswith("interrupted")
    ]
    assert sorted(t.user_attrs["point_id"] for t in told) == sorted(
        p.stem for p in (out / "points").glob("*.json")
    )
    assert summary["interrupted"] == len(study.trials) - len(told)


DASK_SPACE = """
name = "dask"
sampler = "grid"
[network]
layers = [64, 10]
[training]
epochs = 2
train_samples = 600
activity_samples = 4
max_replicas = 1  # one training task per point, so both workers take part
[hardware]
pnr_timeout = 3
routers = ["router1", "router2"]  # the second tried after the first timed out
[dimensions]
cores = [1]
lanes = [5]
timesteps = [4]
w_bits = [4, 6]
"""


@pytest.fixture
def dask_cluster(tmp_path):
    """A Dask scheduler and two single-threaded workers, each its own process."""
    sched_file = tmp_path / "scheduler.json"
    dask = str(BIN / "dask")
    procs = [
        subprocess.Popen(
            [
                dask,
                "scheduler",
                "--scheduler-file",
                str(sched_file),
                "--port",
                "0",
                "--no-dashboard",
                "--host",
                "127.0.0.1",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    try:
        deadline = time.monotonic() + 60
        while not sched_file.is_file():
            assert time.monotonic() < deadline, "the scheduler did not start"
            time.sleep(0.2)
        time.sleep(0.5)
        address = json.loads(sched_file.read_text())["address"]
        for _ in range(2):
            procs.append(
                subprocess.Popen(
                    [
                        dask,
                        "worker",
                        address,
                        "--nworkers",
                        "1",
                        "--nthreads",
                        "1",
                        "--no-dashboard",
                        "--host",
                        "127.0.0.1",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        wait = (
            "from dask.distributed import Client; c = Client(%r, timeout=60); "
            "c.wait_for_workers(2, timeout=120); print(len(c.nthreads())); c.close()"
        )
        ready = subprocess.run(
            [sys.executable, "-c", wait % address],
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert ready.stdout.strip() == "2", ready.stderr[-2000:]
        yield address
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def test_the_sweep_runs_on_a_dask_cluster_of_two_worker_processes(tmp_path, dask_cluster):
    space = tmp_path / "dask.toml"
    space.write_text(DASK_SPACE)
    out = tmp_path / "run"
    summary = _run(space, out, "--scheduler", dask_cluster, timeout=900)
    assert summary["points"] == 2 and summary["done"] == 2, summary
    records = [json.loads(p.read_text()) for p in (out / "points").glob("*.json")]
    workers = {w for r in records for w in r["workers"]}
    assert len(workers) == 2, workers  # both worker processes trained or synthesized
    assert all(f"pid {os.getpid()}" not in w for w in workers)
    for r in records:  # synthesized for real by Yosys, on the worker
        assert r["luts"] > 1000 and r["ffs"] > 500 and r["brams"] >= 1
        assert 0.15 < r["accuracy"] <= 1
        assert r["train_cycles"] > r["infer_cycles"] > 0
    front = summary["pareto"]
    assert front and set(front) <= {r["id"] for r in records}
    for r in records:  # the Pareto points were placed and routed; 3 s is too short for it
        assert r["fmax_status"] == ("timeout" if r["id"] in front else "not run")
        assert r["fmax_mhz"] is None
        if r["id"] in front:  # router1 timed out, then router2
            assert (r["pnr_router"], r["pnr_timeouts"]) == ("router2", ["router1"])
    html = (out / "report.html").read_text()
    assert "Fmax unknown" in html and html.count("data:image/png;base64,") == 3


CANCER = """
name = "cancer"
sampler = "grid"
[network]
layers = [30, 2]
[training]
dataset = "breast_cancer"
epochs = 2
activity_samples = 4
[hardware]
synth = false
[dimensions]
lanes = [2]
timesteps = [8]
w_bits = [8, 12]
"""


def test_a_sweep_on_another_dataset_tunes_on_its_validation_split_and_reports_its_test_split(
    tmp_path,
):
    space = tmp_path / "cancer.toml"
    space.write_text(CANCER)
    out = tmp_path / "run"
    summary = _run(space, out, "--workers", "1", timeout=300)
    assert summary["points"] == 2 and summary["dataset"] == "breast_cancer"
    assert summary["accuracy"] == ACCURACY_LABELS
    entries = sorted((out / "cache" / "train").glob("*.json"))
    assert len(entries) == 2 and all("-breast_cancer-e2-n0-a4" in e.name for e in entries)
    records = {r["params"]["w_bits"]: r for r in json.loads((out / "results.json").read_text())}
    # the objective of w_bits = 8 by hand: trained on the training split less its validation
    # fifth, scored on that fifth; the same model on the test split is only reported
    full = load_dataset("breast_cancer")
    val = full.holdout()
    assert (len(val.x_train), len(val.x_test), len(full.x_test)) == (364, 91, 114)
    cfg = SnnConfig(layers=(30, 2), timesteps=8, w_bits=8)
    res = train_int(cfg, val, 2, checkpoint=tmp_path / "mine.pt")
    model = GoldenModel.from_state(cfg, load_checkpoint(tmp_path / "mine.pt")[1]["state"])
    test = int_accuracy(model, quantize(full.x_test, full.x_max, cfg.in_bits), full.y_test)
    assert records[8]["accuracy"] == res.test_accuracy > 0.75
    assert records[8]["test_accuracy"] == test
    assert records[8]["status"] == "ok"
    # a diverged point keeps both accuracies with its reason; the objective is what it names
    diverged = records[12]
    assert diverged["status"] == "failed" and 0 <= diverged["test_accuracy"] <= 1
    objective = f"validation accuracy {diverged['accuracy']:.1%}"
    assert diverged["reason"] == f"training diverged: {objective} <= 1.5 x chance (75.0%)"
    page = (out / "report.html").read_text()
    assert all(label in page for label in ACCURACY_LABELS.values())
    assert "<dt>dataset</dt><dd>breast_cancer</dd>" in page


def test_the_dataset_flag_overrides_the_space_and_the_network_must_fit_it(tmp_path):
    done = subprocess.run(
        _sweep(Path("small"), tmp_path / "run", "--dataset", "breast_cancer"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    assert (
        "space 'small' [network] does not fit its data: layers[0] = 64 but dataset "
        "'breast_cancer' has 30 features"
    ) in done.stderr
    assert not (tmp_path / "run" / "space.json").exists()
