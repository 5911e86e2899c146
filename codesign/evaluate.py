"""Evaluate one design point: accuracy, cycles, resources, energy and off-chip traffic.

The sweep (:mod:`spikeforge.codesign.search`) runs a point as separate Dask tasks, its stages:

1. **config and mapping** (:func:`plan_point`, in the sweep's process) -- the point's
   :class:`~spikeforge.sw.config.SnnConfig` and the mapping compiler's placement on ``cores``
   cores (rejected: the point fails with the reason);
2. **accuracy** (:func:`train_stage`) -- integer on-chip training with the golden model, batch
   1, exactly what the RTL learns (bit-exact, docs/verification.md), on the space's dataset's
   training split less its validation fifth (:meth:`~spikeforge.sw.data.Dataset.holdout`);
   then the accuracy on the validation split (the objective) and, of the same model, on the
   test split (reported, never tuned on); the trained model's spikes on ``activity_samples``
   validation samples are kept for the next stages. Cached per network config, dataset and
   budget (the core count does not change what is learnt).
   Points asked together whose configs share a shape train as replicas of one batched program
   (:func:`train_group_stage`, :mod:`spikeforge.sw.replicas`), each bit-identical to training
   it alone, each cached as if it had been;
3. **resources** (:func:`core_stage` per core shape, :func:`glue_stage` for the interconnect)
   -- Yosys ``synth_ecp5`` (:mod:`spikeforge.codesign.resources`);
4. **cycles, energy, traffic and the record** (:func:`finish_point`) --
   :func:`~spikeforge.hw.array_cycles.array_step_cycles` on those spike trains (exact against
   Verilator), averaged per training sample and per inference pass;
   :mod:`spikeforge.codesign.energy` and :mod:`spikeforge.codesign.traffic` on the mean spike
   counts (estimates); the resources composed.

A stage that fails (invalid point, training diverged or timed out, synthesis error or timeout)
ends the point with ``status = "failed"`` and its reason; what was measured before is kept.
Stages 2 and 3 never raise: a failure comes back as ``{"error": reason}``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import socket
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock, Timeout

from spikeforge.codesign.energy import energy_estimate
from spikeforge.codesign.mapping import map_network
from spikeforge.codesign.resources import compose, synth_core, synth_glue
from spikeforge.codesign.space import DesignSpace, point_config, point_id
from spikeforge.codesign.traffic import traffic_summary
from spikeforge.hw.array import layer_groups
from spikeforge.hw.array_cycles import array_step_cycles
from spikeforge.hw.devices import DEFAULT_DEVICE
from spikeforge.hw.synth import SynthError
from spikeforge.sw import replicas
from spikeforge.sw.checkpoint import load_checkpoint
from spikeforge.sw.config import ConfigError
from spikeforge.sw.data import Dataset, load_dataset
from spikeforge.sw.encoders import quantize
from spikeforge.sw.golden import GoldenModel, output_error
from spikeforge.sw.sources import DEFAULT_DATASET, parse_spec
from spikeforge.sw.train import eval_inputs, int_accuracy, train_int

__all__ = [
    "DIVERGED_FACTOR",
    "PointFailed",
    "core_stage",
    "finish_point",
    "generate_command",
    "glue_stage",
    "pick_trained",
    "plan_point",
    "train_entry",
    "train_group_stage",
    "train_stage",
]

DIVERGED_FACTOR = 1.5
"""Training has diverged when the validation accuracy is at most this times chance
(1 / classes)."""
ACTIVITY_SAMPLES = 16


class PointFailed(RuntimeError):
    """A stage of a point failed; the message is the recorded reason."""


def generate_command(space: DesignSpace, params: Mapping[str, Any], network_toml: str) -> str:
    """The ``spikeforge generate`` command that writes this point's array."""
    flags = [
        f"--cores {params['cores']}",
        f"--lanes {params['lanes']}",
        f"--w-bits {params['w_bits']}",
        f"--g-bits {params['g_bits']}",
        f"--timesteps {params['timesteps']}",
        f"--bptt {params['bptt']}",
        f"--rounding {params['rounding']}",
        f"--surrogate {params['surrogate']}",
    ]
    if params["v_bits"] != "auto":
        flags.append(f"--v-bits {params['v_bits']}")
    device = space.setting("hardware", "device", DEFAULT_DEVICE)
    return (
        f"spikeforge generate --network {network_toml} {' '.join(flags)} --device {device} "
        f"-o build/point-{point_id(space, params)}"
    )


def train_entry(cache_dir: str | Path, cfg, training: Mapping[str, Any]) -> Path:
    """The cache entry of ``cfg`` trained on the dataset and budget ``training``, without
    suffix: ``.json`` (the result), ``.pt`` (the checkpoint, written every epoch) and ``.lock``.
    The dataset appears by name, with a digest of the spec when it has a path."""
    epochs = training.get("epochs", 4)
    n_train = training.get("train_samples", 0)
    n_act = training.get("activity_samples", ACTIVITY_SAMPLES)
    data = _dataset_tag(training.get("dataset", DEFAULT_DATASET))
    return Path(cache_dir) / "train" / f"{cfg.config_hash}-{data}-e{epochs}-n{n_train}-a{n_act}"


def _dataset_tag(spec: str) -> str:
    name, sep, _ = spec.partition(":")
    return f"{name}-{hashlib.sha256(spec.encode()).hexdigest()[:8]}" if sep else name


def _train(cfg, training: Mapping[str, Any], cache_dir: Path) -> dict[str, Any]:
    """Train (or load the cached result of) ``cfg``: accuracy and the activity sample."""
    entry = train_entry(cache_dir, cfg, training)
    entry.parent.mkdir(parents=True, exist_ok=True)
    result = entry.with_suffix(".json")
    with FileLock(str(entry) + ".lock"):
        if result.is_file():
            return _cached_result(cfg, training, entry)
        return _train_entry(cfg, training, entry)


def _cached_result(cfg, training: Mapping[str, Any], entry: Path) -> dict[str, Any]:
    """The cached result of ``entry`` (its lock held). One written before the deltas' activity
    was kept gets it now, from the entry's checkpoint, and is written again."""
    result = entry.with_suffix(".json")
    out = json.loads(result.read_text())
    checkpoint = entry.with_suffix(".pt")
    if "nonzero" not in out and checkpoint.is_file():
        validation, _ = _data(cfg, training)
        n_act = training.get("activity_samples", ACTIVITY_SAMPLES)
        _, blob = load_checkpoint(checkpoint, cfg, "int")
        model = GoldenModel.from_state(cfg, blob["state"])
        x = eval_inputs(cfg, quantize(validation.x_test[:n_act], validation.x_max, cfg.in_bits))
        out["nonzero"] = _delta_activity(cfg, model, x, validation.y_test[:n_act])
        result.write_text(json.dumps(out) + "\n")
    return {**out, "cached": True}


def _delta_activity(cfg, model: GoldenModel, x: torch.Tensor, labels: torch.Tensor) -> list:
    """Which deltas are nonzero when ``model`` trains on ``x`` (its state is left as it was):
    ``[layer][sample]`` packed like the spike trains (:func:`_pack`)."""
    model = GoldenModel.from_state(cfg, model.state_dict())
    traces = model.forward(x)
    model.backward(traces, output_error(cfg, traces[-1].s, labels))
    return [[_pack((d != 0).to(torch.int64).tolist()) for d in tr.delta] for tr in traces]


@functools.lru_cache(maxsize=4)
def _loaded(spec: str, timesteps: int | None) -> tuple[Dataset, Dataset]:
    """The dataset of ``spec`` and its validation view, loaded once per process."""
    full = load_dataset(spec, timesteps=timesteps)
    return full, full.holdout()


def _data(cfg, training: Mapping[str, Any]) -> tuple[Dataset, Dataset]:
    """What ``cfg`` trains on: the validation view (the first ``train_samples`` of the training
    split less its held-out fifth; its "test" is that fifth, the validation split) and the whole
    dataset (whose test split is only reported). A spike-train source is binned to
    ``cfg.timesteps``."""
    spec = training.get("dataset", DEFAULT_DATASET)
    source, _ = parse_spec(spec)
    full, validation = _loaded(spec, cfg.timesteps if source.temporal else None)
    return validation.head(training.get("train_samples", 0)), full


def _train_uncached(cfg, training: Mapping[str, Any], checkpoint: Path) -> dict[str, Any]:
    epochs = training.get("epochs", 4)
    timeout = training.get("train_timeout", 3600)
    torch.set_num_threads(1)
    validation, full = _data(cfg, training)
    t0 = time.monotonic()

    def check_time(row: Mapping[str, Any]) -> None:
        if time.monotonic() - t0 > timeout:
            raise PointFailed(
                f"training timed out: {time.monotonic() - t0:.0f} s > train_timeout {timeout} s "
                f"after epoch {row['epoch']} of {epochs}"
            )

    res = train_int(
        cfg, validation, epochs, checkpoint=checkpoint, resume=True, on_epoch=check_time
    )
    n_act = training.get("activity_samples", ACTIVITY_SAMPLES)
    seconds = round(time.monotonic() - t0, 2)
    return _trained(cfg, res, validation, full, n_act, checkpoint, seconds)


def _trained(
    cfg, res, validation: Dataset, full: Dataset, n_act: int, checkpoint: Path, seconds: float
) -> dict[str, Any]:
    """A cache entry's content: ``res`` (a :class:`~spikeforge.sw.train.TrainResult` of training
    on ``validation``), the test accuracy of the model in ``checkpoint`` on ``full``'s test
    split, and its spikes on the first ``n_act`` validation samples and which neurons' deltas are
    nonzero when it trains on them (``nonzero``, packed like ``trains``: what the BP and WG
    engines skip by, so the cycle model needs it).

    ``val_accuracy`` is the objective; ``test_accuracy`` is reported, never tuned on; the
    ``history`` rows are validation accuracies per epoch."""
    _, blob = load_checkpoint(checkpoint, cfg, "int")
    model = GoldenModel.from_state(cfg, blob["state"])
    x_test = quantize(full.x_test, full.x_max, cfg.in_bits)
    x = eval_inputs(cfg, quantize(validation.x_test[:n_act], validation.x_max, cfg.in_bits))
    traces = model.forward(x)
    trains = [x.tolist()] + [tr.s.tolist() for tr in traces]  # [layer][sample][t][neuron]
    return {
        "val_accuracy": res.test_accuracy,
        "test_accuracy": int_accuracy(model, x_test, full.y_test),
        "train_accuracy": res.train_accuracy,
        "history": [
            {"epoch": row["epoch"], "val_accuracy": row["test_accuracy"]} for row in res.history
        ],
        "classes": full.n_classes,
        "train_seconds": seconds,
        "spikes": [[[sum(row) for row in sample] for sample in layer] for layer in trains],
        "trains": [[_pack(sample) for sample in layer] for layer in trains],
        "nonzero": _delta_activity(cfg, model, x, validation.y_test[:n_act]),
    }


def _train_group(cfgs, training: Mapping[str, Any], cache_dir: Path) -> dict[str, dict]:
    """Train (or load the cached results of) several configs: the result of each config
    (by ``config_hash``) as :func:`_train` gives it, or ``{"error": reason}``.

    The uncached configs that share :data:`~spikeforge.sw.replicas.SHARED_FIELDS` train as
    replicas of one batched program (:func:`~spikeforge.sw.replicas.train_replicas`), bit-identical
    to :func:`_train` of each, and each cache entry is written as :func:`_train` writes it.

    Locks: every entry is trained under its own lock, as in :func:`_train`. The locks are taken
    without waiting; an entry whose lock another process holds (being trained there, alone or in
    another group) is left for a later round, after this round's locks are released, so two groups
    never wait for each other. When every entry left is busy, the round waits for one of them.
    """
    todo = {cfg.config_hash: cfg for cfg in cfgs}
    out: dict[str, dict] = {}
    while todo:
        held = _lock_entries(todo, training, cache_dir)
        try:
            fresh = []
            for h in held:
                cfg, entry = todo[h], train_entry(cache_dir, todo[h], training)
                result = entry.with_suffix(".json")
                if result.is_file():
                    out[h] = _guarded_entry(_cached_result, cfg, training, entry)
                elif entry.with_suffix(".pt").is_file():  # a killed run's epochs: resume alone
                    out[h] = _guarded_entry(_train_entry, cfg, training, entry)
                else:
                    fresh.append(cfg)
            for shape in _shapes(fresh).values():
                out.update(_train_replica_entries(shape, training, cache_dir))
        finally:
            for lock in held.values():
                lock.release()
        for h in held:
            del todo[h]
    return out


def _lock_entries(todo: Mapping[str, Any], training, cache_dir: Path) -> dict[str, FileLock]:
    """The locks of the entries in ``todo`` that are free now (at least one: when all are busy,
    the first one, waiting for it)."""
    held: dict[str, FileLock] = {}
    for h, cfg in todo.items():
        entry = train_entry(cache_dir, cfg, training)
        entry.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(entry) + ".lock")
        try:
            lock.acquire(timeout=0)
        except Timeout:
            continue
        held[h] = lock
    if not held:
        h = next(iter(todo))
        lock = FileLock(str(train_entry(cache_dir, todo[h], training)) + ".lock")
        lock.acquire()
        held[h] = lock
    return held


def _shapes(cfgs) -> dict[tuple, list]:
    groups: dict[tuple, list] = {}
    for cfg in cfgs:
        groups.setdefault(tuple(getattr(cfg, f) for f in replicas.SHARED_FIELDS), []).append(cfg)
    return groups


def _train_entry(cfg, training: Mapping[str, Any], entry: Path) -> dict[str, Any]:
    """:func:`_train` of an entry whose lock is held and whose result is not cached yet."""
    out = _train_uncached(cfg, training, entry.with_suffix(".pt"))
    entry.with_suffix(".json").write_text(json.dumps(out) + "\n")
    return {**out, "cached": False}


def _guarded_entry(fn, *args) -> dict[str, Any]:
    try:
        return fn(*args)
    except Exception as exc:  # one config's failure, recorded; the group goes on
        return {"error": _reason("training", exc)}


def _train_replica_entries(cfgs, training, cache_dir: Path) -> dict[str, dict]:
    """Train configs of one shape whose entries' locks are held, as replicas; write their
    entries. A failure of the batched run fails every config of it with that reason."""
    if len(cfgs) == 1:
        cfg = cfgs[0]
        entry = train_entry(cache_dir, cfg, training)
        return {cfg.config_hash: _guarded_entry(_train_entry, cfg, training, entry)}
    try:
        trained = _train_replicas_uncached(cfgs, training, cache_dir)
    except Exception as exc:
        return {cfg.config_hash: {"error": _reason("training", exc)} for cfg in cfgs}
    out = {}
    for cfg, res in zip(cfgs, trained, strict=True):
        if "error" not in res:
            train_entry(cache_dir, cfg, training).with_suffix(".json").write_text(
                json.dumps(res) + "\n"
            )
            res = {**res, "cached": False}
        out[cfg.config_hash] = res
    return out


def _train_replicas_uncached(cfgs, training, cache_dir: Path) -> list[dict[str, Any]]:
    """:func:`_train_uncached` of every config in ``cfgs`` (one shape) as one replica program.

    The budget ``train_timeout`` is per config: the group may take ``len(cfgs)`` times as long.
    Each entry's ``train_seconds`` is its share of the group's wall time."""
    epochs = training.get("epochs", 4)
    n_act = training.get("activity_samples", ACTIVITY_SAMPLES)
    timeout = training.get("train_timeout", 3600)
    torch.set_num_threads(1)
    validation, full = _data(cfgs[0], training)
    t0 = time.monotonic()
    n_replicas = len(cfgs)

    def check_time(rows: list[Mapping[str, Any]]) -> None:
        if time.monotonic() - t0 > timeout * n_replicas:
            raise PointFailed(
                f"training timed out: {time.monotonic() - t0:.0f} s > train_timeout {timeout} s "
                f"x {n_replicas} replicas trained together, after epoch {rows[0]['epoch']} of "
                f"{epochs}"
            )

    paths = [train_entry(cache_dir, cfg, training).with_suffix(".pt") for cfg in cfgs]
    run = replicas.train_replicas(cfgs, validation, epochs, checkpoints=paths, on_epoch=check_time)
    out = [
        _guarded_entry(_trained, cfg, res, validation, full, n_act, path, 0.0)
        for cfg, res, path in zip(cfgs, run.results, paths, strict=True)
    ]
    share = round((time.monotonic() - t0) / n_replicas, 2)
    return [res if "error" in res else {**res, "train_seconds": share} for res in out]


def _pack(sample: list[list[int]]) -> list[str]:
    """A sample's 0/1 spike rows ``[T][n]`` as one hex string per timestep (bit i: neuron i)."""
    return [format(sum(b << i for i, b in enumerate(row)), "x") for row in sample]


def _unpack(rows: list[str], n: int) -> list[list[int]]:
    return [[(int(h, 16) >> i) & 1 for i in range(n)] for h in rows]


def _cycles(cores, layers, net, trained) -> tuple[float, float]:
    sizes = net.layers
    n_samples = len(trained["trains"][0])
    if "nonzero" not in trained:
        raise PointFailed(
            "the cached training result has no delta activity and no checkpoint to take it "
            "from (the cycle model needs it): delete its cache entry and run the point again"
        )
    train, infer = 0.0, 0.0
    for k in range(n_samples):
        spikes = [_unpack(trained["trains"][i][k], n) for i, n in enumerate(sizes)]
        deltas = [_unpack(trained["nonzero"][i][k], n) for i, n in enumerate(sizes[1:])]
        c = array_step_cycles(cores, layers, spikes, deltas)
        train += c.step
        infer += c.infer
    return train / n_samples, infer / n_samples


def _activity(net, trained) -> list[list[float]]:
    """Mean spikes per timestep: ``[layer boundary][t]`` (0: the input)."""
    out = []
    for layer in trained["spikes"]:
        n = len(layer)
        out.append([sum(sample[t] for sample in layer) / n for t in range(net.timesteps)])
    return out


def _worker() -> str:
    return f"{socket.gethostname()} pid {os.getpid()}"


def _reason(stage: str, exc: Exception) -> str:
    """The recorded reason of a stage's failure."""
    if isinstance(exc, PointFailed):
        return str(exc)
    if isinstance(exc, SynthError):
        return f"synthesis failed: {str(exc).splitlines()[0]}"
    return f"{stage} failed: {type(exc).__name__}: {exc}"


def _guarded(stage: str, fn, *args) -> dict[str, Any]:
    """``fn(*args)`` with the worker's name; a failure becomes ``{"error": reason}``."""
    t0 = time.monotonic()
    try:
        out = dict(fn(*args))
    except Exception as exc:  # a point's failure is recorded, never stops the sweep
        out = {"error": _reason(stage, exc)}
    return {**out, "worker": _worker(), "stage_seconds": round(time.monotonic() - t0, 2)}


def train_stage(net, training: Mapping[str, Any], cache_dir: str) -> dict[str, Any]:
    """Stage 2 (cached per network config and budget); never raises."""
    return _guarded("training", _train, net, training, Path(cache_dir))


def train_group_stage(
    nets, training: Mapping[str, Any], cache_dir: str
) -> dict[str, dict[str, Any]]:
    """Stage 2 of several network configs at once; never raises. Returns each config's result
    (by ``config_hash``), the one :func:`train_stage` gives for it alone: the cached configs are
    loaded, the others train together as replicas of one batched program when they share
    :data:`~spikeforge.sw.replicas.SHARED_FIELDS` (:func:`_train_group`)."""
    t0 = time.monotonic()
    try:
        out = _train_group(nets, training, Path(cache_dir))
    except Exception as exc:  # recorded per point, never stops the sweep
        reason = {"error": _reason("training", exc)}
        out = {getattr(cfg, "config_hash", repr(cfg)): reason for cfg in nets}
    seconds = round(time.monotonic() - t0, 2)
    return {h: {**res, "worker": _worker(), "stage_seconds": seconds} for h, res in out.items()}


def pick_trained(group: Mapping[str, Mapping[str, Any]], config_hash: str) -> dict[str, Any]:
    """One config's result out of :func:`train_group_stage`'s (a point's cheap task)."""
    if config_hash in group:
        return dict(group[config_hash])
    reason = f"training failed: the group's result has no config {config_hash}"
    return {"error": reason, "worker": _worker(), "stage_seconds": 0.0}


def core_stage(shape, cache_dir: str, timeout: float) -> dict[str, Any]:
    """Stage 3 for one core shape (cached by its hash); never raises."""
    out = _guarded("synthesis", synth_core, shape, Path(cache_dir) / "synth", timeout)
    return {**out, "core_hash": shape.core_hash}


def glue_stage(cores, cache_dir: str, timeout: float) -> dict[str, Any]:
    """Stage 3 for the interconnect (cached by the array hash); never raises."""
    return _guarded("synthesis", synth_glue, cores, Path(cache_dir) / "synth", timeout)


def plan_point(
    space: DesignSpace, params: Mapping[str, Any], network_toml: str
) -> tuple[dict[str, Any], Any, list]:
    """Stage 1: the record skeleton, the network config and the cores (``None`` and ``[]``
    when the point is invalid: then the record is already failed with the reason)."""
    params = space.complete(params)
    record: dict[str, Any] = {
        "id": point_id(space, params),
        "params": dict(params),
        "status": "ok",
        "reason": None,
        "generate_cmd": generate_command(space, params, network_toml),
        "seconds": {},
        "fmax_mhz": None,
        "fmax_status": "not run",
    }
    try:
        net = point_config(space, params)
        mapping = map_network(
            net,
            params["cores"],
            lanes=params["lanes"],
            device=space.setting("hardware", "device", DEFAULT_DEVICE),
        )
    except ConfigError as exc:
        record.update(status="failed", reason=f"invalid point: {exc}")
        return record, None, []
    record["cores_per_layer"] = list(mapping.cores_per_layer)
    return record, net, list(mapping.core_params())


def finish_point(
    record: Mapping[str, Any],
    net,
    cores: list,
    trained: Mapping[str, Any],
    core_reports: list[Mapping[str, Any]] | None,
    glue: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """Stage 4, the record: accuracy, cycles, traffic, energy and resources from the
    stage results (``core_reports``/``glue`` are ``None`` without synthesis). Never raises."""
    record = {**record, "seconds": dict(record.get("seconds", {}))}
    stages = [trained, *(core_reports or []), *([glue] if glue else [])]
    record["worker"] = _worker()
    record["workers"] = sorted({s["worker"] for s in stages} | {record["worker"]})
    try:
        _finish(record, net, cores, trained, core_reports, glue)
    except PointFailed as exc:
        record.update(status="failed", reason=str(exc))
    except Exception as exc:  # recorded, never stops the sweep
        record.update(status="failed", reason=f"{type(exc).__name__}: {exc}")
    return record


def _finish(record, net, cores, trained, core_reports, glue) -> None:
    if "error" in trained:
        raise PointFailed(trained["error"])
    record["seconds"]["train"] = 0.0 if trained["cached"] else trained["train_seconds"]
    record["accuracy"] = trained["val_accuracy"]
    record["test_accuracy"] = trained["test_accuracy"]
    record["train_cached"] = trained["cached"]
    chance = 1 / trained["classes"]
    if trained["val_accuracy"] <= DIVERGED_FACTOR * chance:
        raise PointFailed(
            f"training diverged: validation accuracy {trained['val_accuracy']:.1%} <= "
            f"{DIVERGED_FACTOR} x chance ({DIVERGED_FACTOR * chance:.1%})"
        )
    t0 = time.monotonic()
    layers = layer_groups(cores, linked=True)
    train_cycles, infer_cycles = _cycles(cores, layers, net, trained)
    record["train_cycles"] = round(train_cycles)
    record["infer_cycles"] = round(infer_cycles)
    activity = _activity(net, trained)
    traffic = traffic_summary(net, layers, activity)
    record["chip_bytes"] = traffic["chip_bytes"]
    record["gpu_bytes"] = traffic["gpu_bytes"]
    record["traffic_saving"] = traffic["saving"]
    energy = energy_estimate(cores, activity, host_bytes=traffic["chip_bytes"])
    record["energy_nj"] = energy.train_pj / 1000
    record["infer_energy_nj"] = energy.infer_pj / 1000
    record["samples_per_joule"] = energy.samples_per_joule
    record["energy_breakdown_pj"] = energy.breakdown
    record["seconds"]["models"] = round(time.monotonic() - t0, 2)
    if core_reports is None:
        return
    for rep in [*core_reports, glue]:
        if "error" in rep:
            raise PointFailed(rep["error"])
    res = compose(cores, {r["core_hash"]: r for r in core_reports}, glue)
    record.update({k: res[k] for k in ("luts", "ffs", "brams", "dsps")})
    record["synth_parts"] = res["parts"]
    record["seconds"]["synth"] = res["synth_seconds"]
