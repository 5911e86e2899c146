"""The sweep's training as replicas: the group stage against each config trained alone, the
cache both share, two groups racing for one entry, and a sweep with and without grouping.

Every budget is tiny (one epoch of a few dozen samples): what is compared is bit-exactness, not
accuracy.
"""

from __future__ import annotations

import copy
import json
import threading
import time

import pytest
import torch

from spikeforge.codesign import evaluate
from spikeforge.codesign.evaluate import (
    pick_trained,
    train_entry,
    train_group_stage,
    train_stage,
)
from spikeforge.codesign.search import load_records, run_sweep
from spikeforge.codesign.space import BUILTIN_SPACES, DesignSpace, load_space, point_id
from spikeforge.sw import replicas
from spikeforge.sw.checkpoint import load_checkpoint
from spikeforge.sw.config import ConfigError, SnnConfig
from spikeforge.sw.train import train_int

TRAINING = {"epochs": 1, "train_samples": 40, "activity_samples": 3}
BASE = SnnConfig(layers=(64, 10), timesteps=4)
CFGS = [
    BASE,
    BASE.replace(w_bits=4, rounding="nearest"),
    BASE.replace(w_bits=12, bptt="sltt", surrogate="triangle"),
]
VOLATILE = {"train_seconds", "stage_seconds", "worker", "cached"}
"""What may differ between training a config alone and in a group: timing and where it ran."""


def _differences(got: dict, want: dict) -> list[str]:
    """The keys (missing, extra or unequal) of two stage results that differ, timing aside."""
    keys = sorted((set(got) | set(want)) - VOLATILE)
    return [k for k in keys if k not in got or k not in want or got[k] != want[k]]


def _same_checkpoint(a, b, cfg) -> bool:
    _, x = load_checkpoint(a, cfg, "int")
    _, y = load_checkpoint(b, cfg, "int")
    same_state = all(
        torch.equal(u, v)
        for key in ("weights", "lfsr_states", "grad_acc")
        for u, v in zip(x["state"][key], y["state"][key], strict=True)
    )
    meta = ("epoch", "history")
    return (
        same_state
        and {k: x["state"][k] for k in ("pending", "lr_shift")}
        == {k: y["state"][k] for k in ("pending", "lr_shift")}
        and {k: x["meta"][k] for k in meta} == {k: y["meta"][k] for k in meta}
        and set(x) == set(y)
        and set(x["meta"]) == set(y["meta"])
    )


class _Spy:
    """Records what :func:`train_replicas` and the single trainer are called with."""

    def __init__(self, monkeypatch):
        self.groups: list[list[str]] = []
        self.alone: list[str] = []
        self.lock = threading.Lock()
        real_group, real_alone = replicas.train_replicas, evaluate._train_uncached

        def group(cfgs, *args, **kwargs):
            with self.lock:
                self.groups.append([c.config_hash for c in cfgs])
            return real_group(cfgs, *args, **kwargs)

        def alone(cfg, *args, **kwargs):
            with self.lock:
                self.alone.append(cfg.config_hash)
            return real_alone(cfg, *args, **kwargs)

        monkeypatch.setattr(replicas, "train_replicas", group)
        monkeypatch.setattr(evaluate, "_train_uncached", alone)


@pytest.fixture(scope="module")
def alone(tmp_path_factory):
    """Each config of :data:`CFGS` through the single stage, in a cache of its own."""
    cache = tmp_path_factory.mktemp("alone")
    results = [train_stage(cfg, TRAINING, str(cache)) for cfg in CFGS]
    assert all("error" not in r and not r["cached"] for r in results)
    return cache, results


def test_the_group_stage_equals_the_single_stage_per_config(tmp_path, alone, monkeypatch):
    cache_alone, want = alone
    spy = _Spy(monkeypatch)
    got = train_group_stage(CFGS, TRAINING, str(tmp_path))
    assert spy.groups == [[c.config_hash for c in CFGS]] and spy.alone == []  # one program
    assert set(got) == {c.config_hash for c in CFGS}
    for cfg, mine in zip(CFGS, want, strict=True):
        res = pick_trained(got, cfg.config_hash)
        assert _differences(res, mine) == [], cfg
        assert res["cached"] is False
        ours, theirs = (train_entry(c, cfg, TRAINING) for c in (tmp_path, cache_alone))
        assert list(json.loads(ours.with_suffix(".json").read_text())) == list(
            json.loads(theirs.with_suffix(".json").read_text())
        )  # the same keys in the same order
        assert _same_checkpoint(ours.with_suffix(".pt"), theirs.with_suffix(".pt"), cfg)
        later = train_stage(cfg, TRAINING, str(tmp_path))  # a single stage finds the entry
        assert later["cached"] is True and _differences(later, mine) == []
    assert spy.alone == []
    # the configs really differ: the comparison is not between equal results
    assert len({json.dumps(r["trains"]) for r in want}) == len(CFGS)
    assert len({json.dumps(r["history"]) for r in want}) > 1


def test_the_comparison_is_strict_on_every_field(alone):
    _, want = alone
    mine = want[1]
    assert _differences(copy.deepcopy(mine), mine) == []
    for key, change in [
        ("val_accuracy", lambda r: r.update(val_accuracy=r["val_accuracy"] + 1 / 288)),
        ("test_accuracy", lambda r: r.update(test_accuracy=r["test_accuracy"] + 1 / 360)),
        ("history", lambda r: r["history"][-1].update(val_accuracy=0.0)),
        ("spikes", lambda r: r["spikes"][1][0].__setitem__(2, r["spikes"][1][0][2] + 1)),
        ("trains", lambda r: r["trains"][1][2].__setitem__(0, "3ff")),
        ("classes", lambda r: r.pop("classes")),
    ]:
        bad = copy.deepcopy(mine)
        change(bad)
        assert _differences(bad, mine) == [key]


def test_cached_entries_are_loaded_and_only_the_others_train_together(tmp_path, alone, monkeypatch):
    _, want = alone
    first = train_stage(CFGS[0], TRAINING, str(tmp_path))
    spy = _Spy(monkeypatch)
    got = train_group_stage([*CFGS, CFGS[1]], TRAINING, str(tmp_path))  # a duplicate too
    assert spy.groups == [[c.config_hash for c in CFGS[1:]]] and spy.alone == []
    assert [got[c.config_hash]["cached"] for c in CFGS] == [True, False, False]
    assert _differences(got[CFGS[0].config_hash], first) == []
    again = train_group_stage(CFGS, TRAINING, str(tmp_path))
    assert all(r["cached"] for r in again.values()) and len(spy.groups) == 1
    for cfg, mine in zip(CFGS, want, strict=True):
        assert _differences(again[cfg.config_hash], mine) == []


def test_a_killed_entry_resumes_alone_and_the_rest_train_together(tmp_path, monkeypatch):
    training = {**TRAINING, "epochs": 2, "train_samples": 24}
    cache = tmp_path / "group"
    want = [train_stage(cfg, training, str(tmp_path / "alone")) for cfg in CFGS]
    entry = train_entry(cache, CFGS[2], training)

    def killed(row):
        raise KeyboardInterrupt  # a killed sweep: the first epoch's checkpoint, no result

    ds, _ = evaluate._data(CFGS[2], training)
    with pytest.raises(KeyboardInterrupt):
        train_int(CFGS[2], ds, 2, checkpoint=entry.with_suffix(".pt"), on_epoch=killed)
    assert load_checkpoint(entry.with_suffix(".pt"))[1]["meta"]["epoch"] == 0
    spy = _Spy(monkeypatch)
    got = train_group_stage(CFGS, training, str(cache))
    assert spy.groups == [[c.config_hash for c in CFGS[:2]]]
    assert spy.alone == [CFGS[2].config_hash]
    for cfg, mine in zip(CFGS, want, strict=True):
        assert _differences(got[cfg.config_hash], mine) == []


def test_an_entry_another_process_trains_is_waited_for_not_trained_again(
    tmp_path, alone, monkeypatch
):
    """Group [A, B] while B's lock is held (another group training B): the group trains A,
    releases it, waits for B and loads B's result -- each config trained exactly once."""
    from filelock import FileLock

    _, want = alone
    a, b = CFGS[0], CFGS[1]
    spy = _Spy(monkeypatch)
    entry_b = train_entry(tmp_path, b, TRAINING)
    entry_b.parent.mkdir(parents=True)
    lock = FileLock(str(entry_b) + ".lock")
    lock.acquire()
    out = {}
    group = threading.Thread(
        target=lambda: out.update(train_group_stage([a, b], TRAINING, tmp_path))
    )
    group.start()
    try:
        deadline = time.monotonic() + 120
        entry_a = train_entry(tmp_path, a, TRAINING).with_suffix(".json")
        while not entry_a.is_file():  # A trains while B is busy
            assert group.is_alive() and time.monotonic() < deadline
            time.sleep(0.05)
        assert group.is_alive()  # ... and then waits for B
        evaluate._train_entry(b, TRAINING, entry_b)  # "the other group" trains B
    finally:
        lock.release()
    group.join(120)
    assert sorted(spy.alone) == sorted([a.config_hash, b.config_hash]) and spy.groups == []
    assert out[a.config_hash]["cached"] is False and out[b.config_hash]["cached"] is True
    for cfg, mine in zip([a, b], want[:2], strict=True):
        assert _differences(out[cfg.config_hash], mine) == []


def test_two_groups_racing_for_the_same_entries_train_each_once(tmp_path, alone, monkeypatch):
    _, want = alone
    spy = _Spy(monkeypatch)
    outs = [{}, {}]
    orders = [CFGS, CFGS[::-1]]
    threads = [
        threading.Thread(target=lambda o=o, c=c: o.update(train_group_stage(c, TRAINING, tmp_path)))
        for o, c in zip(outs, orders, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    trained = spy.alone + [h for g in spy.groups for h in g]
    assert sorted(trained) == sorted(c.config_hash for c in CFGS)  # each exactly once
    for out in outs:
        for cfg, mine in zip(CFGS, want, strict=True):
            assert _differences(out[cfg.config_hash], mine) == []
    assert sum(not r["cached"] for out in outs for r in out.values()) == len(CFGS)


def test_a_failed_group_fails_each_point_with_the_reason(tmp_path, monkeypatch):
    """``train_timeout`` is per config: a group of 3 times out past 3 x train_timeout."""

    def slow(cfgs, *args, on_epoch=None, **kwargs):
        time.sleep(3.2)
        on_epoch([{"epoch": 1, "test_accuracy": 0.0}] * len(cfgs))

    monkeypatch.setattr(replicas, "train_replicas", slow)
    training = {**TRAINING, "train_timeout": 1}
    got = train_group_stage(CFGS, training, str(tmp_path))
    for cfg in CFGS:
        assert got[cfg.config_hash]["error"] == (
            "training timed out: 3 s > train_timeout 1 s x 3 replicas trained together, "
            "after epoch 1 of 1"
        )
        assert not train_entry(tmp_path, cfg, training).with_suffix(".json").exists()
    assert pick_trained(got, "nope")["error"].startswith("training failed: the group's")
    broken = train_group_stage([CFGS[0], "not a config"], TRAINING, str(tmp_path))
    assert [r["error"] for r in broken.values()] == [
        "training failed: AttributeError: 'str' object has no attribute 'config_hash'"
    ] * 2


SPACE = {
    "name": "replicas",
    "sampler": "grid",
    "network": {"layers": [64, 10]},
    "training": {"epochs": 2, "train_samples": 200, "activity_samples": 3},
    "hardware": {"synth": False},
    "dimensions": {
        "cores": [1, 6],  # 6: invalid (10 neurons in lanes of 2: at most 5 cores)
        "lanes": [2],
        "timesteps": [6, 8],
        "w_bits": [4, 8],
        "bptt": ["bptt", "sltt"],
    },
}
RECORD_VOLATILE = {"seconds", "worker", "workers", "number", "train_cached"}


@pytest.fixture
def threads_cluster():
    """An in-process Dask cluster (two single-threaded workers), so the spies see the tasks."""
    from dask.distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
    ) as cluster:
        yield cluster.scheduler_address


def test_a_sweep_with_replicas_gives_the_records_of_a_sweep_without(
    tmp_path, threads_cluster, monkeypatch
):
    space = DesignSpace.from_dict(SPACE)
    spy = _Spy(monkeypatch)
    alone = run_sweep(space, tmp_path / "alone", scheduler=threads_cluster, max_replicas=1)
    assert spy.groups == [] and len(spy.alone) == 8
    spy.alone.clear()
    grouped = run_sweep(space, tmp_path / "grouped", scheduler=threads_cluster)
    assert sorted(len(g) for g in spy.groups) == [4, 4] and spy.alone == []  # T = 6 and T = 8
    assert alone["points"] == grouped["points"] == 16 and sorted(alone["pareto"]) == sorted(
        grouped["pareto"]
    )
    want, got = (
        {r["id"]: {**r, "generate_cmd": r["generate_cmd"].replace(str(out), "OUT")} for r in rs}
        for out, rs in [(tmp_path / d, load_records(tmp_path / d)) for d in ("alone", "grouped")]
    )
    assert set(got) == set(want)
    statuses = [r["status"] for r in got.values() if r["params"]["cores"] == 1]
    assert statuses.count("ok") >= 2  # cycles, energy, traffic compared too
    for pid, record in got.items():
        keys = (set(record) | set(want[pid])) - RECORD_VOLATILE
        assert {k: record.get(k) for k in keys} == {k: want[pid].get(k) for k in keys}, pid
    # the setting changes how, not what: a resume may change it, nothing is computed again
    again = run_sweep(space, tmp_path / "grouped", scheduler=threads_cluster, max_replicas=1)
    assert again["computed"] == 0 and again["points"] == 16
    assert json.loads((tmp_path / "grouped" / "space.json").read_text())["training"] == {
        **SPACE["training"],
        "dataset": "digits",
        "max_replicas": 1,
    }


def test_max_replicas_is_a_checked_training_key_outside_the_point_id(tmp_path):
    small = load_space("small")
    capped = {**BUILTIN_SPACES["small"], "training": {"epochs": 10, "max_replicas": 1}}
    capped = DesignSpace.from_dict(capped)
    assert (small.max_replicas, capped.max_replicas) == (32, 1)
    p = small.grid()[0]
    assert point_id(small, p) == point_id(capped, p) and capped.budget == small.budget
    with pytest.raises(ConfigError, match=r"training.max_replicas = 0 is out of range"):
        DesignSpace.from_dict({**SPACE, "training": {"max_replicas": 0}})
    with pytest.raises(ConfigError, match=r"--max-replicas = 0 is out of range: allowed \[1, "):
        run_sweep(small, tmp_path, max_replicas=0)


def test_an_entry_cached_before_the_delta_activity_gets_it_from_its_checkpoint(tmp_path, alone):
    """The cycle model needs which deltas are nonzero (BP and WG skip zero groups); an entry
    written without them is completed from its checkpoint, once, equal to a fresh training's,
    by the single stage and by the group stage."""
    cache_alone, want = alone
    for n, stage in enumerate(
        (
            lambda cfg: train_stage(cfg, TRAINING, str(tmp_path)),
            lambda cfg: pick_trained(
                train_group_stage([cfg], TRAINING, str(tmp_path)), cfg.config_hash
            ),
        )
    ):
        cfg = CFGS[n]
        src, dst = (train_entry(c, cfg, TRAINING) for c in (cache_alone, tmp_path))
        dst.parent.mkdir(parents=True, exist_ok=True)
        old = json.loads(src.with_suffix(".json").read_text())
        assert old["nonzero"] == want[n]["nonzero"] and any(
            int(row, 16) for layer in old["nonzero"] for sample in layer for row in sample
        )
        del old["nonzero"]
        dst.with_suffix(".json").write_text(json.dumps(old) + "\n")
        dst.with_suffix(".pt").write_bytes(src.with_suffix(".pt").read_bytes())
        res = stage(cfg)
        assert res["cached"] is True and _differences(res, want[n]) == [], n
        assert json.loads(dst.with_suffix(".json").read_text())["nonzero"] == want[n]["nonzero"]
