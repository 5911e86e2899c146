"""``sf.federate``: federated averaging across workers, each round a set of Dask tasks.

The host (this process) keeps the global master weights and each worker's update-LFSR states.
A round sends every participant a :class:`~spikeforge.sw.federated.RoundTask`; the worker reads
its own shard of the training split from the dataset spec (the data stay with the workers:
only weights travel), trains ``E`` local epochs -- on the integer golden model or on the
generated Verilog under Verilator (``backend``) -- and returns its weights. The host averages
the workers that finished with the integer FedAvg rule (docs/arithmetic.md §9), scores the new
global model on the test split (or the validation fifth), and checkpoints the round.

A worker whose task fails -- an exception, its Dask worker process killed
(:class:`~distributed.KilledWorker`; a local cluster does not run it again), or the round's
deadline passing -- is dropped from that round's average with the reason recorded; its LFSR
states stay as they were. The round completes with the others (with none, the weights stay).
"""

from __future__ import annotations

import contextlib
import csv
import functools
import importlib
import json
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import distributed
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from spikeforge.cluster import check_scheduler, dask_client
from spikeforge.loader import Config
from spikeforge.sw.checkpoint import load_checkpoint, save_checkpoint
from spikeforge.sw.config import DEFAULT_SCHEDULE, ConfigError, SnnConfig, check_int
from spikeforge.sw.data import Dataset, load_dataset
from spikeforge.sw.encoders import quantize
from spikeforge.sw.federated import (
    RoundTask,
    fedavg,
    parse_partition,
    participants,
    partition,
    worker_lfsr,
)
from spikeforge.sw.golden import GoldenModel, init_weights
from spikeforge.sw.sources import DEFAULT_DATASET
from spikeforge.sw.train import SCHEDULES, Progress, int_accuracy, lr_steps, no_progress
from spikeforge.training import network_of, training_data

__all__ = [
    "BACKENDS",
    "FederateResult",
    "federate",
    "payload_bytes",
    "plot_rounds",
    "worker_round",
]

BACKENDS = {
    "golden": "spikeforge.sw.federated:local_round",
    "rtl": "spikeforge.sim.federated_runner:run_rtl_round",
}
"""Where a worker trains, imported in the worker: the integer golden model
(``local_round(task, x, y)``), or the generated Verilog of a core array, one per layer, under
Verilator (``run_rtl_round(task, spec, build_dir, validation=...)``: the simulation reads the
dataset by its spec)."""

ROUND_TIMEOUT = 3600.0
"""Seconds a round waits for its workers by default."""

MAX_WORKERS = 1024
MAX_ROUNDS = 100_000
CHECKPOINT = "checkpoint.pt"
SETTINGS = (
    "dataset",
    "workers",
    "rounds",
    "local_epochs",
    "partition",
    "participation",
    "seed",
    "schedule",
    "validation",
    "backend",
)
"""The settings a resumed run must share with the checkpoint."""


@dataclass
class FederateResult:
    """What :func:`federate` did: the final accuracy, one row per round, and the traffic."""

    test_accuracy: float
    rounds: list[dict[str, Any]]
    traffic: dict[str, Any]
    settings: dict[str, Any]
    seconds: float
    out: str
    config: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def payload_bytes(cfg: SnnConfig) -> dict[str, int]:
    """Bytes of one copy of the model: master weights packed at ``master_bits`` each
    (``int``), and the same count of float32 values (``float32``)."""
    n = sum(a * b for a, b in cfg.weight_shapes())
    return {"int": math.ceil(n * cfg.master_bits / 8), "float32": 4 * n, "weights": n}


def sample_bytes(cfg: SnnConfig) -> int:
    """Bytes of one training sample as a worker keeps it: ``n_in`` intensities of ``in_bits``,
    or ``T x n_in`` spike bits."""
    bits = cfg.n_inputs * (cfg.timesteps if cfg.encoder == "spikes" else cfg.in_bits)
    return math.ceil(bits / 8)


def _split(dataset: str | Dataset, net: SnnConfig, validation: bool):
    """``(dataset, quantized training inputs, quantized test inputs)``; a spec is loaded once
    per process."""
    if isinstance(dataset, str):
        return _load(dataset, net.timesteps, net.in_bits, validation)
    return _quantized(training_data(dataset, net, validation=validation), net.in_bits)


@functools.lru_cache(maxsize=4)
def _load(spec: str, timesteps: int, in_bits: int, validation: bool):
    ds = load_dataset(spec, timesteps=timesteps)
    return _quantized(ds.holdout() if validation else ds, in_bits)


def _quantized(ds: Dataset, in_bits: int):
    return ds, quantize(ds.x_train, ds.x_max, in_bits), quantize(ds.x_test, ds.x_max, in_bits)


def worker_round(
    task: RoundTask, dataset: str | Dataset, validation: bool, backend: str, build_dir: str
) -> dict[str, Any]:
    """One worker's round (a Dask task): load the training split (cached per process), train
    ``task`` on ``backend``, return its weights, LFSR states and sample count."""
    module, name = BACKENDS[backend].split(":")
    run = getattr(importlib.import_module(module), name)
    if backend == "rtl":
        return run(task, dataset, Path(build_dir), validation=validation)
    ds, x, _ = _split(dataset, task.cfg, validation)
    return run(task, x, ds.y_train)


def _check_settings(net: SnnConfig, ds: Dataset, s: dict[str, Any], round_timeout: float) -> None:
    check_int("workers", s["workers"], 1, min(MAX_WORKERS, len(ds.y_train)))
    check_int("rounds", s["rounds"], 1, MAX_ROUNDS)
    check_int("local_epochs", s["local_epochs"], 1, 1000)
    check_int("seed", s["seed"], 0, 2**32 - 1)
    parse_partition(s["partition"])
    if not (isinstance(s["participation"], int | float) and 0 < s["participation"] <= 1):
        raise ConfigError(f"participation must be in (0, 1], not {s['participation']!r}")
    if s["schedule"] not in SCHEDULES:
        raise ConfigError(
            f"schedule = {s['schedule']!r} is not allowed: choose one of {', '.join(SCHEDULES)}"
        )
    if s["backend"] not in BACKENDS:
        raise ConfigError(
            f"backend = {s['backend']!r} is unknown: choose one of {', '.join(BACKENDS)}"
        )
    if s["backend"] == "rtl" and net.batch_size != 1:
        raise ConfigError(
            f"backend 'rtl' trains at batch_size = 1 (the chip's), not {net.batch_size}"
        )
    if not (isinstance(round_timeout, int | float) and round_timeout > 0):
        raise ConfigError(
            f"round_timeout must be a positive number of seconds, not {round_timeout!r}"
        )


def _resume(path: Path, net: SnnConfig, settings: dict[str, Any]) -> dict[str, Any] | None:
    if not path.exists():
        return None
    _, blob = load_checkpoint(path, net, "federated")
    saved = blob["meta"]["settings"]
    diff = [
        f"{k}: checkpoint {saved.get(k)!r}, requested {settings[k]!r}"
        for k in SETTINGS
        if saved.get(k) != settings[k]
    ]
    if diff:
        raise ConfigError(f"{path} was made with other settings: " + "; ".join(diff))
    return blob


def _run_round(client, tasks: dict[int, RoundTask], args: tuple, timeout: float):
    """Submit every task and take each result off the cluster as soon as it is done (a result
    left in a worker's memory would be lost with that worker); after ``timeout`` s cancel the
    rest. ``(results, dropped)`` by worker, ``dropped`` with the reason."""
    tag = uuid.uuid4().hex[:8]
    futures = {
        client.submit(worker_round, t, *args, key=f"federate-r{t.round}-w{k}-{tag}", pure=False): k
        for k, t in tasks.items()
    }
    results, dropped = {}, {}
    done = distributed.as_completed(futures, with_results=True, raise_errors=False, timeout=timeout)
    with contextlib.suppress(TimeoutError):  # the unfinished ones are dropped below
        for fut, value in done:
            k = futures[fut]
            if fut.status == "error":  # the worker's failure, whatever it is, drops the worker
                exc = fut.exception()
                dropped[k] = f"{type(exc).__name__}: {exc}"
            else:
                results[k] = value
    for fut, k in futures.items():
        if k not in results and k not in dropped:
            fut.cancel()
            dropped[k] = f"no result within the round's {timeout:g} s"
    return results, dropped


def federate(
    config: Config | SnnConfig,
    *,
    dataset: str | Dataset = DEFAULT_DATASET,
    workers: int = 5,
    rounds: int = 20,
    local_epochs: int = 1,
    partition_spec: str = "iid",
    participation: float = 1.0,
    seed: int = 0,
    schedule: str | None = None,
    validation: bool = False,
    backend: str = "golden",
    dask_workers: int = 2,
    scheduler: str | None = None,
    round_timeout: float = ROUND_TIMEOUT,
    out: str | Path | None = None,
    resume: bool = False,
    progress: Progress | None = None,
    on_round: Callable[[dict[str, Any]], Any] | None = None,
) -> FederateResult:
    """Federated averaging of ``workers`` workers for ``rounds`` rounds on Dask.

    Parameters
    ----------
    config : Config or SnnConfig
        The network (:func:`~spikeforge.loader.load_config`'s ``Config`` or an ``SnnConfig``).
    dataset : str or Dataset
        A spec ``NAME[:PATH]`` each worker loads itself, or a loaded dataset (sent with every
        task).
    workers : int
        Federated workers ``W``; each holds one shard of the training split.
    rounds : int
        Rounds ``R``; the learning-rate ``schedule`` steps over rounds as the centralized
        trainer's over epochs (``step``: ``lr_shift + 1`` at ``R/2`` and ``3R/4``).
    local_epochs : int
        ``E``: passes of each worker over its shard per round. ``R x E`` passes visit every
        sample as often as ``R x E`` centralized epochs.
    partition_spec : {"iid", "dirichlet:ALPHA"}
        How samples are dealt (:func:`~spikeforge.sw.federated.partition`, seeded ``seed``).
    participation : float
        The fraction of workers drawn for each round (1: all).
    seed : int
        Seeds the partition and the participants (the network's seeds are its own).
    validation : bool
        Train on the training split less a stratified fifth and score each round on that fifth.
    backend : {"golden", "rtl"}
        Where a worker trains (:data:`BACKENDS`).
    dask_workers, scheduler
        A local cluster of ``dask_workers`` single-thread processes, or a running scheduler
        ``tcp://HOST:PORT`` (its workers must import this spikeforge).
    round_timeout : float
        Seconds a round waits; a worker not done by then is dropped from the round.
    out : str or Path, optional
        Run folder: ``checkpoint.pt`` after every round, ``federate.json``, ``rounds.csv`` and
        ``accuracy.png`` at the end. Default ``runs/federate-HASH``.
    resume : bool
        Continue from ``out/checkpoint.pt`` (same config and settings).
    progress, on_round
        ``progress(total, desc)`` bar over rounds; ``on_round(row)`` after each round.

    Returns
    -------
    FederateResult
    """
    net = network_of(config)
    schedule = schedule or DEFAULT_SCHEDULE["int"]
    settings = {
        "dataset": dataset if isinstance(dataset, str) else dataset.name,
        "workers": workers,
        "rounds": rounds,
        "local_epochs": local_epochs,
        "partition": partition_spec,
        "participation": participation,
        "seed": seed,
        "schedule": schedule,
        "validation": validation,
        "backend": backend,
    }
    ds, _, x_te = _split(dataset, net, validation)
    _check_settings(net, ds, settings, round_timeout)
    if backend == "rtl" and not isinstance(dataset, str):
        raise ConfigError("backend 'rtl' reads the dataset by its spec: give a NAME[:PATH]")
    if scheduler is not None:
        check_scheduler(scheduler)
    check_int("dask_workers", dask_workers, 1, MAX_WORKERS)
    out = Path(out) if out is not None else Path("runs") / f"federate-{net.config_hash}"
    ckpt = out / CHECKPOINT
    if not resume and ckpt.exists():
        raise ConfigError(f"{ckpt} exists: resume it, or choose another out folder")
    blob = _resume(ckpt, net, settings) if resume else None
    shards = partition(ds.y_train, workers, partition_spec, seed)
    if blob is None:
        weights, lfsr = init_weights(net), [worker_lfsr(net, k) for k in range(workers)]
        history, start, seconds = [], 0, 0.0
    else:
        weights, lfsr = blob["state"]["weights"], blob["state"]["lfsr"]
        history, seconds = blob["meta"]["history"], blob["meta"]["seconds"]
        start = len(history)
    payload = payload_bytes(net)
    bar = (progress or no_progress)(rounds, "federate")
    bar.update(start)
    args = (dataset, validation, backend, str(out / "rtl-build"))
    with dask_client(dask_workers, scheduler, allowed_failures=0) as client:
        for r in range(start, rounds):
            t0 = time.perf_counter()
            lr = net.lr_shift + lr_steps(schedule, r, rounds)
            who = participants(workers, participation, r, seed)
            tasks = {
                k: RoundTask(net, k, r, tuple(weights), tuple(lfsr[k]), lr, shards[k], local_epochs)
                for k in who
            }
            results, dropped = _run_round(client, tasks, args, round_timeout)
            if results:
                done = sorted(results)
                weights = fedavg(
                    net,
                    [results[k]["weights"] for k in done],
                    [results[k]["samples"] for k in done],
                )
                for k in done:
                    lfsr[k] = results[k]["lfsr"]
            seconds += time.perf_counter() - t0
            row = {
                "round": r + 1,
                "test_accuracy": int_accuracy(GoldenModel(net, weights), x_te, ds.y_test),
                "participants": who,
                "finished": sorted(results),
                "dropped": {str(k): why for k, why in sorted(dropped.items())},
                "samples": sum(res["samples"] for res in results.values()),
                "lr_shift": lr,
                "bytes_sent": len(who) * payload["int"],
                "bytes_received": len(results) * payload["int"],
                "seconds": time.perf_counter() - t0,
            }
            history.append(row)
            state = {"weights": weights, "lfsr": lfsr}
            save_checkpoint(
                ckpt,
                net,
                "federated",
                state,
                {"settings": settings, "history": history, "seconds": seconds},
            )
            bar.update(1)
            if on_round is not None:
                on_round(row)
    bar.close()
    result = FederateResult(
        test_accuracy=history[-1]["test_accuracy"],
        rounds=history,
        traffic=_traffic(net, ds, shards, history),
        settings=settings,
        seconds=seconds,
        out=str(out),
        config=net.to_dict(),
    )
    _write(out, result)
    return result


def _traffic(net: SnnConfig, ds: Dataset, shards, history) -> dict[str, Any]:
    """Bytes on the wire per round and in total, integer vs float32, against local data."""
    payload = payload_bytes(net)
    sent = sum(r["bytes_sent"] for r in history)
    received = sum(r["bytes_received"] for r in history)
    local = [len(s) * sample_bytes(net) for s in shards]
    per_worker_round = 2 * payload["int"]
    return {
        "model_bytes_int": payload["int"],
        "model_bytes_float32": payload["float32"],
        "weights": payload["weights"],
        "bytes_sent": sent,
        "bytes_received": received,
        "bytes_total_float32": (sent + received) // payload["int"] * payload["float32"],
        "local_data_bytes": local,
        "round_trip_vs_local_data": per_worker_round / (sum(local) / len(local)),
    }


def _write(out: Path, result: FederateResult) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "federate.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    keys = [
        "round",
        "test_accuracy",
        "participants",
        "finished",
        "dropped",
        "samples",
        "lr_shift",
        "bytes_sent",
        "bytes_received",
        "seconds",
    ]
    with open(out / "rounds.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(keys)
        for row in result.rounds:
            writer.writerow(
                [
                    " ".join(map(str, v))
                    if isinstance(v, list)
                    else "; ".join(f"{k}: {w}" for k, w in v.items())
                    if isinstance(v, dict)
                    else v
                    for v in (row[k] for k in keys)
                ]
            )
    plot_rounds(result.rounds, out / "accuracy.png", title=_title(result.settings))


def _title(s: dict[str, Any]) -> str:
    return (
        f"{s['workers']} workers, {s['partition']}, E = {s['local_epochs']}, "
        f"{s['dataset']} ({s['backend']})"
    )


def plot_rounds(
    rows: list[dict[str, Any]],
    path: Path,
    *,
    title: str = "",
    label: str = "federated (global model)",
    reference: dict[str, list[float]] | None = None,
) -> Path:
    """Test accuracy per round (``rows``), and optional ``reference`` curves by label (e.g.
    centralized training per epoch) as a PNG."""
    fig = Figure(figsize=(6.4, 4.0))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot(
        [r["round"] for r in rows],
        [100 * r["test_accuracy"] for r in rows],
        "o-",
        label=label,
    )
    for label, curve in (reference or {}).items():
        ax.plot(range(1, len(curve) + 1), [100 * a for a in curve], "--", label=label)
    ax.set_xlabel("round")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path
