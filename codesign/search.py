"""The sweep: Optuna proposes points, Dask evaluates them, the run folder keeps everything.

Run folder (``out``)::

    space.json          the space this folder sweeps (a resume must use the same, but for
                        ``max_replicas``)
    network.toml        the fixed network keys, for each point's ``spikeforge generate``
    study.db            Optuna's SQLite storage (default ``--storage``)
    points/ID.json      one record per evaluated point, written when its result arrives
    evaluations.jsonl   one line per point computed (not per point reused): the resume audit
    cache/              training results and synthesis runs, shared by the workers
    fmax/ID/            place and route of the Pareto points
    results.csv, results.json, pareto_*.png, report.html

**Search.** ``grid`` asks Optuna's grid sampler for every point once; ``nsga2`` runs NSGA-II on
the objectives (accuracy up; LUTs, cycles per training sample and energy per sample down). The
accuracy objective and the activity behind cycles and energy are measured on the validation
split of the space's dataset; each point's test accuracy is recorded beside it, never tuned on
(:mod:`spikeforge.codesign.space`).
The loop asks, submits to Dask, and tells Optuna each result as it arrives, keeping every worker
busy. **Replicas.** With ``max_replicas`` above 1 (default
:data:`~spikeforge.codesign.space.MAX_REPLICAS`) the loop asks up to ``max_replicas`` points at a
time, and the configs of points asked together that share a shape train as replicas of one
batched program (:func:`~spikeforge.codesign.evaluate.train_group_stage`): the same results,
cached the same way, in less time. **Resume.** Points with a record are never computed again: a
trial that asks for one is answered from its record. Trials a killed sweep left running are
marked failed ("interrupted") and their points queued again. **Failures** (invalid point,
diverged or timed-out training, synthesis failure or timeout) are recorded with their reason and
told to Optuna as failed trials; the sweep goes on. **Fmax** is then measured for the Pareto
points only, each place and route bounded by ``pnr_timeout`` (past it: 'Fmax unknown').
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import optuna
from dask.distributed import as_completed, wait
from optuna.samplers import GridSampler, NSGAIISampler
from optuna.trial import TrialState, create_trial

from spikeforge.cluster import dask_client
from spikeforge.codesign.evaluate import (
    core_stage,
    finish_point,
    glue_stage,
    pick_trained,
    plan_point,
    train_entry,
    train_group_stage,
    train_stage,
)
from spikeforge.codesign.mapping import map_network
from spikeforge.codesign.pareto import pareto_front
from spikeforge.codesign.report import ACCURACY_LABELS, write_report
from spikeforge.codesign.resources import array_fmax, shapes
from spikeforge.codesign.space import (
    EXECUTION_KEYS,
    TRAINING_KEYS,
    DesignSpace,
    point_config,
    point_id,
)
from spikeforge.hw.array import array_hash
from spikeforge.hw.devices import DEFAULT_DEVICE
from spikeforge.sw.config import ConfigError, check_int
from spikeforge.sw.data import load_dataset
from spikeforge.sw.replicas import SHARED_FIELDS
from spikeforge.sw.sources import DEFAULT_DATASET
from spikeforge.sw.train import check_dataset

__all__ = ["SweepError", "objectives", "run_sweep"]

INTERRUPTED = "interrupted: the sweep was stopped while this point ran; queued again"


class SweepError(ConfigError):
    """The run folder or the options do not fit the sweep asked for."""


class AskTellGridSampler(GridSampler):
    """Optuna's grid sampler for an ask-and-tell loop: the loop stops itself when every point
    was asked (``GridSampler.after_trial`` calls ``study.stop()``, which only works inside
    ``study.optimize``)."""

    def after_trial(self, study, trial, state, values) -> None:
        return None


def objectives(space: DesignSpace) -> dict[str, str]:
    """The objectives and their directions: accuracy up; LUTs (when synthesized), cycles per
    training sample and energy per training sample down."""
    out = {"accuracy": "max"}
    if space.setting("hardware", "synth", True):
        out["luts"] = "min"
    out["train_cycles"] = "min"
    out["energy_nj"] = "min"
    return out


def _sampler(space: DesignSpace):
    if space.sampler == "grid":
        return AskTellGridSampler(
            {d: list(v) for d, v in space.dimensions.items()}, seed=space.seed
        )
    return NSGAIISampler(population_size=space.population, seed=space.seed)


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def _results_part(space: Mapping[str, Any]) -> dict[str, Any]:
    """A space's dict without :data:`~spikeforge.codesign.space.EXECUTION_KEYS` and the
    hardware's ``routers``, which a resume may change: the first change how points are
    computed, not their results; a change of routers routes again the points it concerns
    (:func:`fmax_routers`)."""
    training = {k: v for k, v in space.get("training", {}).items() if k not in EXECUTION_KEYS}
    hardware = {k: v for k, v in space.get("hardware", {}).items() if k != "routers"}
    return {**space, "training": training, "hardware": hardware}


def _prepare(space: DesignSpace, out: Path) -> Path:
    """Create or check the run folder; return the network TOML path."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "points").mkdir(exist_ok=True)
    recorded = out / "space.json"
    mine = space.to_dict()
    if recorded.is_file():
        theirs = json.loads(recorded.read_text())
        if "dataset" not in theirs.get("training", {}):
            raise SweepError(
                f"run folder {str(out)!r} holds a sweep that scored its points on the test "
                "split (made before sweeps tuned on a validation split); choose another --out"
            )
        if _results_part(theirs) != _results_part(json.loads(json.dumps(mine))):
            raise SweepError(
                f"run folder {str(out)!r} holds a sweep of space {theirs.get('name')!r} with "
                "other settings; resume it with the same space or choose another --out"
            )
    _check_data(space)
    _write_json(recorded, mine)
    lines = [f"# network of sweep {space.name!r}: the dimensions come as flags"]
    for key, value in space.network.items():
        lines.append(f"{key} = {json.dumps(value)}")
    toml = out / "network.toml"
    toml.write_text("\n".join(lines) + "\n")
    return toml


def _check_data(space: DesignSpace) -> None:
    """:class:`SweepError` unless the space's network takes its dataset (inputs, classes, input
    kind), checked on the config of the default point (which validates the fixed part once
    more; a spike-train source is loaded binned to its timesteps)."""
    net = point_config(space, space.complete({}))
    data = load_dataset(space.dataset, timesteps=net.timesteps)
    try:
        check_dataset(net, data)
    except ValueError as exc:
        raise SweepError(f"space {space.name!r} [network] does not fit its data: {exc}") from None


def _recover(study: optuna.Study, storage) -> int:
    """Mark trials a killed sweep left running as failed and queue their points again.

    A sweep can be killed between ``ask`` and the last ``suggest``, so a stale trial may hold
    only some of its parameters (or none). A grid trial is queued again by its grid point (the
    ``grid_id`` Optuna's grid sampler gave it: the sampler answers every parameter from it); any
    other trial by the parameters it was given or had fixed, the rest sampled anew.
    """
    stale = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.RUNNING]
    for t in stale:
        storage.set_trial_user_attr(t._trial_id, "reason", INTERRUPTED)
        storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        attrs = t.system_attrs
        if "grid_id" in attrs:
            grid = {k: attrs[k] for k in ("grid_id", "search_space") if k in attrs}
            study.add_trial(create_trial(state=TrialState.WAITING, system_attrs=grid))
            continue
        params = {**attrs.get("fixed_params", {}), **t.params}
        if params:
            study.enqueue_trial(params, skip_if_exists=False)
    return len(stale)


def _finished(study: optuna.Study) -> int:
    return sum(
        1
        for t in study.get_trials(deepcopy=False)
        if t.state.is_finished() and t.user_attrs.get("reason") != INTERRUPTED
    )


def _suggest(space: DesignSpace, trial: optuna.Trial) -> dict[str, Any]:
    return space.complete(
        {d: trial.suggest_categorical(d, list(v)) for d, v in space.dimensions.items()}
    )


def _tell(study: optuna.Study, trial: optuna.Trial, record: Mapping, goals: Mapping) -> None:
    trial.set_user_attr("point_id", record["id"])
    values = [record.get(k) for k in goals]
    if record["status"] == "ok" and all(v is not None for v in values):
        study.tell(trial, [float(v) for v in values])
    else:
        trial.set_user_attr("reason", record.get("reason") or "objective missing")
        study.tell(trial, state=TrialState.FAIL)


def _record(out: Path, log: Path, study, trial, record: dict, goals) -> None:
    """Store a computed point's record, log the computation, tell Optuna."""
    record["number"] = trial.number
    _write_json(out / "points" / f"{record['id']}.json", record)
    line = {
        "id": record["id"],
        "trial": trial.number,
        "status": record["status"],
        "run": os.getpid(),
        "workers": record.get("workers"),
    }
    with log.open("a") as fh:
        fh.write(json.dumps(line) + "\n")
    _tell(study, trial, record, goals)


def _digest(data: Any, n: int = 8) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:n]


def _submit(client, space: DesignSpace, batch: list, cache: str, network_toml: str, training):
    """Submit the stages of the points asked together (``batch``, their parameters); return
    per point the future of its record (or the record itself when the point is invalid).

    Training (:func:`_submit_training`), each core shape and the interconnect are separate tasks
    keyed by their cache hash, so points that share one share the task (Dask runs a key once)
    and one point's shapes can run on several workers at once; the record is assembled by a
    last, cheap task. ``training`` maps the keys of training tasks this sweep submitted earlier
    to their futures: a point whose config trains already waits for that task.
    """
    planned = [plan_point(space, params, network_toml) for params in batch]
    nets = [net for _, net, _ in planned if net is not None]
    trained = _submit_training(client, space, nets, cache, training)
    return [
        record
        if net is None
        else _submit_stages(client, space, record, net, cores, trained[net.config_hash], cache)
        for record, net, cores in planned
    ]


def _submit_training(client, space: DesignSpace, nets: list, cache: str, training) -> dict:
    """The training futures of ``nets`` by config hash.

    A config trains alone (:func:`~spikeforge.codesign.evaluate.train_stage`, keyed
    ``train-HASH-BUDGET``) when it is cached already, when ``max_replicas`` is 1, or when no other
    uncached config of ``nets`` shares its shape (:data:`~spikeforge.sw.replicas.SHARED_FIELDS`).
    The others train as replicas: one :func:`~spikeforge.codesign.evaluate.train_group_stage`
    task per shape (split evenly into groups of at most ``max_replicas``), keyed by its sorted
    config hashes and the budget, and per config a cheap task picking its result out.
    """
    budget = space.budget
    digest = _digest(budget)
    for key in [k for k, fut in training.items() if fut.done()]:
        del training[key]  # finished: cached now (or failed, then trained again)
    futures: dict[str, Any] = {}
    shapes: dict[tuple, list] = {}
    for net in nets:
        h, key = net.config_hash, f"train-{net.config_hash}-{digest}"
        if h in futures:
            continue
        if key in training:
            futures[h] = training[key]
        elif (
            space.max_replicas == 1
            or train_entry(cache, net, budget).with_suffix(".json").is_file()
        ):
            futures[h] = client.submit(train_stage, net, budget, cache, key=key)
        else:
            shape = tuple(getattr(net, f) for f in SHARED_FIELDS)
            shapes.setdefault(shape, []).append(net)
            continue
        training[key] = futures[h]
    for members in shapes.values():
        members.sort(key=lambda net: net.config_hash)
        n_groups = -(-len(members) // space.max_replicas)
        for group in (members[i::n_groups] for i in range(n_groups)):
            if len(group) == 1:
                net = group[0]
                key = f"train-{net.config_hash}-{digest}"
                futures[net.config_hash] = client.submit(train_stage, net, budget, cache, key=key)
                training[key] = futures[net.config_hash]
                continue
            gid = _digest([[net.config_hash for net in group], budget], 16)
            stage = client.submit(train_group_stage, group, budget, cache, key=f"train-group-{gid}")
            for net in group:
                h = net.config_hash
                key = f"train-{h}-{digest}"
                futures[h] = client.submit(pick_trained, stage, h, key=f"{key}-in-{gid}")
                training[key] = futures[h]
    return futures


def _submit_stages(client, space: DesignSpace, record, net, cores, trained, cache: str):
    """Submit a valid point's synthesis and record tasks; the future of its record."""
    core_reports = glue = None
    if space.setting("hardware", "synth", True):
        timeout = space.setting("hardware", "synth_timeout", 1800)
        core_reports = [
            client.submit(core_stage, s, cache, timeout, key=f"core-{s.core_hash}")
            for s in shapes(cores)
        ]
        glue = client.submit(glue_stage, cores, cache, timeout, key=f"glue-{array_hash(cores)}")
    return client.submit(
        finish_point,
        record,
        net,
        cores,
        trained,
        core_reports,
        glue,
        key=f"point-{record['id']}-{time.monotonic_ns()}",
    )


def _slots(client) -> int:
    return max(1, sum(client.nthreads().values()))


def load_records(out: Path) -> list[dict[str, Any]]:
    """Every point record of the run folder, in trial order."""
    records = [json.loads(p.read_text()) for p in sorted((out / "points").glob("*.json"))]
    return sorted(records, key=lambda r: (r.get("number", 0), r["id"]))


def run_sweep(
    space: DesignSpace,
    out: Path,
    *,
    trials: int | None = None,
    workers: int = 2,
    scheduler: str | None = None,
    storage: str | None = None,
    progress: Callable[[int, int, str], Any] | None = None,
    max_replicas: int | None = None,
) -> dict[str, Any]:
    """Run (or resume) a sweep; see the module docstring. Returns the summary.

    Parameters
    ----------
    space : DesignSpace
    out : Path
        Run folder.
    trials : int or None
        Points to evaluate in all (default: the space's ``trials``; a grid: all of it).
    workers : int
        Dask worker processes of the local cluster (ignored with ``scheduler``).
    scheduler : str or None
        Address of a running Dask scheduler to use instead of a local cluster.
    storage : str or None
        Optuna storage URL (default ``sqlite:///OUT/study.db``).
    progress : callable or None
        ``progress(total, initial, desc)`` returning a tqdm-like bar (``update``, ``close``).
    max_replicas : int or None
        Overrides the space's ``training.max_replicas`` (1: every config trains alone); the
        results do not depend on it, so a resume may change it.
    """
    if not isinstance(space, DesignSpace):
        raise TypeError(f"space must be a DesignSpace, not {space!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise SweepError(f"--workers must be an int >= 1, not {workers!r}")
    if trials is not None and (
        isinstance(trials, bool) or not isinstance(trials, int) or trials < 1
    ):
        raise SweepError(f"--trials must be an int >= 1, not {trials!r}")
    if max_replicas is not None:
        check_int("--max-replicas", max_replicas, *TRAINING_KEYS["max_replicas"])
        training = {**space.training, "max_replicas": max_replicas}
        space = dataclasses.replace(space, training=training)
    out = Path(out).resolve()
    started = time.monotonic()
    started_at = datetime.now().isoformat(timespec="seconds")
    network_toml = _prepare(space, out)
    target = space.n_trials if trials is None else trials
    if space.sampler == "grid":
        target = min(target, space.grid_size)
    goals = objectives(space)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = storage or f"sqlite:///{out / 'study.db'}"
    store = optuna.storages.RDBStorage(url)
    study = optuna.create_study(
        study_name=f"spikeforge-{space.name}",
        storage=store,
        sampler=_sampler(space),
        directions=["maximize" if d == "max" else "minimize" for d in goals.values()],
        load_if_exists=True,
    )
    interrupted = _recover(study, store)
    done = _finished(study)
    cache = str(out / "cache")
    log = out / "evaluations.jsonl"
    bar = progress(target, min(done, target), f"sweep {space.name}") if progress else None
    computed = reused = 0
    with dask_client(workers, scheduler) as client:
        slots = 2 * _slots(client)  # stages of the next points keep workers busy
        batch_size = max(slots, space.max_replicas) if space.max_replicas > 1 else slots
        in_flight: dict[Any, tuple[optuna.Trial, str]] = {}
        training: dict[str, Any] = {}
        asked = done
        while asked < target or in_flight:
            while asked < target and len(in_flight) < slots:
                batch: list[tuple[optuna.Trial, dict[str, Any], str]] = []
                while asked < target and len(in_flight) + len(batch) < batch_size:
                    trial = study.ask()
                    asked += 1
                    params = _suggest(space, trial)
                    pid = point_id(space, params)
                    known = out / "points" / f"{pid}.json"
                    if known.is_file():
                        _tell(study, trial, json.loads(known.read_text()), goals)
                        reused += 1
                        if bar:
                            bar.update(1)
                        continue
                    batch.append((trial, params, pid))
                futures = _submit(
                    client, space, [b[1] for b in batch], cache, str(network_toml), training
                )
                for (trial, _, pid), fut in zip(batch, futures, strict=True):
                    if isinstance(fut, dict):  # invalid: recorded without a worker
                        _record(out, log, study, trial, fut, goals)
                        computed += 1
                        if bar:
                            bar.update(1)
                        continue
                    in_flight[fut] = (trial, pid)
            if not in_flight:
                continue
            finished, _ = wait(list(in_flight), return_when="FIRST_COMPLETED")
            for fut in finished:
                trial, pid = in_flight.pop(fut)
                try:
                    record = fut.result()
                except Exception as exc:  # the worker died: record it, go on
                    record = {
                        "id": pid,
                        "params": _suggest(space, trial),
                        "status": "failed",
                        "reason": f"worker lost: {type(exc).__name__}: {exc}",
                    }
                _record(out, log, study, trial, record, goals)
                computed += 1
                if bar:
                    bar.update(1)
        if bar:
            bar.close()
        records = load_records(out)
        front = pareto_front(records, goals)
        fmax_runs = _measure_fmax(space, out, records, front, client, progress)
    records = load_records(out)
    summary = {
        "space": space.name,
        "points": len(records),
        "done": sum(r["status"] == "ok" for r in records),
        "failed": sum(r["status"] != "ok" for r in records),
        "computed": computed,
        "reused": reused,
        "interrupted": interrupted,
        "pareto": front,
        "objectives": goals,
        "fmax_runs": fmax_runs,
        "seconds": round(time.monotonic() - started, 1),
        "network": list(space.network.get("layers", [])),
        "out": str(out),
        "storage": url,
        "started": started_at,
        "command": f"spikeforge sweep --space {space.name} --out {out}"
        + (f" --dataset {space.dataset}" if space.dataset != DEFAULT_DATASET else ""),
        "dataset": space.dataset,
        "accuracy": dict(ACCURACY_LABELS),
    }
    paths = write_report(records, summary, out)
    summary["report"] = paths["html"]
    summary["csv"] = paths["csv"]
    summary["json"] = paths["json"]
    _write_json(out / "summary.json", summary)
    return summary


def fmax_order(records, front: list[str]) -> list[str]:
    """The Pareto points in the order their Fmax is measured: the accuracy-vs-LUT front first
    (the area choices), then the rest, each by falling accuracy."""
    by_id = {r["id"]: r for r in records}
    area = set(pareto_front([by_id[p] for p in front], {"accuracy": "max", "luts": "min"}))
    return sorted(front, key=lambda p: (p not in area, -by_id[p]["accuracy"]))


def fmax_routers(record: Mapping[str, Any], routers: list[str]) -> list[str]:
    """The routers still to try on a Pareto point (a record without ``pnr_router`` was routed
    with router1):

    * Fmax not measured: all of ``routers``;
    * after a timeout: those of ``routers`` not tried on it yet (``pnr_timeouts``, ``pnr_router``);
    * measured with a router that is no longer in ``routers``: all of them again (the space
      changed its router; every figure of a front comes from the same one when it can);
    * otherwise (measured, or place and route failed): none.
    """
    status = record.get("fmax_status", "not run")
    if status == "not run" or status.startswith("skipped"):
        return list(routers)
    last = record.get("pnr_router", "router1")
    if status == "timeout":
        tried = {*record.get("pnr_timeouts", []), last}
        return [r for r in routers if r not in tried]
    if status == "ok" and last not in routers:
        return list(routers)
    return []


def _measure_fmax(space, out: Path, records, front, client, progress) -> int:
    """Place and route every Pareto point not measured yet; store Fmax in its record."""
    hw = space.hardware
    if not (hw.get("fmax", True) and hw.get("synth", True)):
        return 0
    by_id = {r["id"]: r for r in records}

    routers = list(hw.get("routers", ["router1"]))

    def routers_left(pid: str) -> list[str]:
        return fmax_routers(by_id[pid], routers)

    def waiting(pid: str) -> bool:
        return bool(routers_left(pid))

    todo = [pid for pid in fmax_order(records, front) if waiting(pid)]
    limit = hw.get("fmax_points", 0)
    if limit:
        measured = sum(not waiting(pid) for pid in front)
        todo, skipped = todo[: max(0, limit - measured)], todo[max(0, limit - measured) :]
        for pid in skipped:
            note = f"skipped: the space measures at most fmax_points = {limit} Pareto points"
            _write_json(out / "points" / f"{pid}.json", {**by_id[pid], "fmax_status": note})
    futures = {}
    for pid in todo:
        params = by_id[pid]["params"]
        net = point_config(space, params)
        cores = list(
            map_network(
                net, params["cores"], lanes=params["lanes"], device=hw.get("device", DEFAULT_DEVICE)
            ).core_params()
        )
        fut = client.submit(
            array_fmax,
            cores,
            out / "fmax" / pid,
            pnr_timeout=hw.get("pnr_timeout", 900),
            target_mhz=hw.get("target_mhz", 100),
            synth_timeout=hw.get("synth_timeout", 1800),
            routers=routers_left(pid),
            pure=False,
        )
        futures[fut] = pid
    bar = progress(len(todo), 0, "Fmax (Pareto points)") if progress and todo else None
    for fut in as_completed(list(futures)):
        pid = futures[fut]
        try:
            res = fut.result()
        except Exception as exc:
            res = {"fmax_mhz": None, "fmax_status": f"failed: {type(exc).__name__}: {exc}"}
        before = by_id[pid]
        router = before.get("pnr_router", "router1")
        if before.get("fmax_status") == "timeout":  # routed again after a timeout
            earlier = [*before.get("pnr_timeouts", []), router]
            res = {**res, "pnr_timeouts": [*earlier, *res.get("pnr_timeouts", [])]}
        elif before.get("fmax_status") == "ok":  # routed again with the space's router
            earlier_fmax = {**before.get("fmax_earlier", {}), router: before["fmax_mhz"]}
            res = {**res, "fmax_earlier": earlier_fmax}
        record = {**before, **res}
        _write_json(out / "points" / f"{pid}.json", record)
        if bar:
            bar.update(1)
    if bar:
        bar.close()
    return len(todo)
