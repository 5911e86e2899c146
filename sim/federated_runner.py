"""Federated rounds and data-parallel mini-batches on the Verilated array, one simulator process
per run (``tb_federated``).

* :func:`run_federation` -- ``W`` workers x ``R`` rounds of FedAvg with every worker round on the
  array, checked bit for bit against the golden federation;
* :func:`run_rtl_round` -- one :class:`~spikeforge.sw.federated.RoundTask` on the array, a
  synchronous function a Dask task can call: it returns ``local_round``'s dict;
* :func:`run_data_parallel` -- data-parallel mini-batches, the array playing every chip in turn,
  checked bit for bit against one golden chip training the whole mini-batch.

All build the network's array (one core per layer, :func:`array_cores`) inside the
fast-transactor wrapper in ``build_dir/array-<hash>`` (``hash``: of the cores' parameters), so
every run of one network shares one build, reused while the Verilog is unchanged
(:func:`~spikeforge.sim.rtl_runner.build`; concurrent builds of one folder take turns on its
lock).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from spikeforge.hw.params import CoreParams
from spikeforge.sim.rtl_runner import Build, RunResult, build_fast_array, run
from spikeforge.sw.config import SnnConfig
from spikeforge.sw.federated import RoundTask

__all__ = [
    "RtlRoundError",
    "array_build",
    "array_cores",
    "run_data_parallel",
    "run_federation",
    "run_rtl_round",
]

TESTBENCH = "spikeforge.sim.tb_federated"


class RtlRoundError(RuntimeError):
    """A round on the RTL failed (the simulator's report in the message)."""


def array_cores(cfg: SnnConfig, lanes: Sequence[int] | None = None) -> list[CoreParams]:
    """One linked core per layer of ``cfg``; ``lanes`` per layer (default: the largest divisor
    of the layer's neuron count up to 8)."""
    if not isinstance(cfg, SnnConfig):
        raise TypeError(f"cfg must be an SnnConfig, not {type(cfg).__name__}")
    sizes = [n_out for n_out, _ in cfg.weight_shapes()]
    if lanes is None:
        lanes = [max(d for d in range(1, min(n, 8) + 1) if n % d == 0) for n in sizes]
    if len(lanes) != len(sizes):
        raise ValueError(f"lanes needs one entry per layer ({len(sizes)}), not {list(lanes)}")
    return [CoreParams(net=cfg, layer=n, lanes=int(p), linked=True) for n, p in enumerate(lanes)]


def array_build(cores: Sequence[CoreParams], build_dir: Path) -> Build:
    """The fast-transactor build of ``cores`` in ``build_dir/array-<hash>``."""
    canonical = json.dumps([p.to_dict() for p in cores], sort_keys=True)
    key = hashlib.sha256(canonical.encode()).hexdigest()[:12]
    return build_fast_array(list(cores), Path(build_dir) / f"array-{key}")


def run_federation(
    build_dir: Path,
    folder: Path,
    *,
    cfg: SnnConfig,
    dataset: str = "digits",
    workers: int = 2,
    rounds: int = 2,
    samples: int = 12,
    local_epochs: int = 1,
    seed: int = 0,
    stall: float = 0.2,
    corrupt: tuple[int, int] | None = None,
    waves_on_failure: bool = False,
) -> tuple[Build, RunResult]:
    """Build ``cfg``'s array (:func:`array_build`) and run the federation
    (:func:`~spikeforge.sim.federation.federate`'s keywords) in ``folder`` with ``stall`` idle
    and backpressure cycles. ``waves_on_failure``: re-run a failure with tracing (a traced
    build: minutes)."""
    if not 0.0 <= stall < 1.0:
        raise ValueError(f"stall must lie in [0, 1), not {stall!r}")
    cores = array_cores(cfg)
    b = array_build(cores, build_dir)
    case = {
        "kind": "federation",
        "cores": [p.to_dict() for p in cores],
        "dataset": dataset,
        "stall": stall,
        "seed": seed,
        "steps": workers * rounds * local_epochs * samples,
        "federation": {
            "workers": workers,
            "rounds": rounds,
            "samples": samples,
            "local_epochs": local_epochs,
            "seed": seed,
            "corrupt": list(corrupt) if corrupt is not None else None,
        },
    }
    result = run(b, folder, case, testbench=TESTBENCH, waves_on_failure=waves_on_failure)
    return b, result


def run_data_parallel(
    build_dir: Path,
    folder: Path,
    *,
    cfg: SnnConfig,
    dataset: str = "digits",
    workers: int = 2,
    per_shard: int = 2,
    batches: int = 4,
    epoch: int = 0,
    seed: int = 0,
    stall: float = 0.2,
    corrupt: int | None = None,
    waves_on_failure: bool = False,
) -> tuple[Build, RunResult]:
    """Build ``cfg``'s array (:func:`array_build`) and run ``batches`` data-parallel
    mini-batches of ``workers`` x ``per_shard`` samples on it
    (:func:`~spikeforge.sim.data_parallel_rtl.data_parallel`) in ``folder`` with ``stall`` idle
    and backpressure cycles generated from ``seed``.

    Parameters
    ----------
    build_dir, folder : Path
        Where the build lives (``array-<hash>``) and the run's folder.
    cfg : SnnConfig
        The network; ``cfg.batch_size`` must be ``workers * per_shard`` (the accumulators are
        built ``acc_bits`` wide for the mini-batch).
    dataset : str
        The dataset spec whose training split the epoch orders.
    workers, per_shard, batches, epoch : int
        ``W``, each chip's samples per mini-batch, the mini-batches and the epoch they come from.
    seed : int
        Of the idle and backpressure generators.
    stall : float
        Idle and backpressure probability in ``[0, 1)``.
    corrupt : int or None
        At that mini-batch the host writes back chip 0's accumulators alone (a falsification).
    waves_on_failure : bool
        Re-run a failure with tracing (a traced build: minutes).

    Returns
    -------
    (Build, RunResult)

    Raises
    ------
    ValueError
        ``stall`` is out of range or ``cfg.batch_size`` is not ``workers * per_shard``.
    """
    if not 0.0 <= stall < 1.0:
        raise ValueError(f"stall must lie in [0, 1), not {stall!r}")
    if cfg.batch_size != workers * per_shard:
        raise ValueError(
            f"cfg.batch_size = {cfg.batch_size}, but {workers} workers x {per_shard} samples "
            f"make a mini-batch of {workers * per_shard}"
        )
    cores = array_cores(cfg)
    b = array_build(cores, build_dir)
    case = {
        "kind": "data_parallel",
        "cores": [p.to_dict() for p in cores],
        "dataset": dataset,
        "stall": stall,
        "seed": seed,
        "steps": batches * workers * per_shard,
        "data_parallel": {
            "workers": workers,
            "per_shard": per_shard,
            "batches": batches,
            "epoch": epoch,
            "corrupt": corrupt,
        },
    }
    result = run(b, folder, case, testbench=TESTBENCH, waves_on_failure=waves_on_failure)
    return b, result


def run_rtl_round(
    task: RoundTask, dataset_spec: str, build_dir: Path, *, validation: bool = False
) -> dict[str, Any]:
    """Run ``task`` on the Verilated array of ``task.cfg`` in a simulator subprocess.

    Parameters
    ----------
    task : RoundTask
        The round (``task.cfg.batch_size`` must be 1: the RTL trains at batch size 1).
    dataset_spec : str
        The dataset (``NAME[:PATH]``, :func:`~spikeforge.sw.data.load_dataset`) whose training
        split ``task.indices`` index; the testbench loads and quantizes it.
    build_dir : Path
        Where the build lives (``array-<hash>``, shared by every round of the network) and the
        run's folder (removed when the round succeeds).
    validation : bool
        ``task.indices`` index the training split less its stratified fifth
        (:meth:`~spikeforge.sw.data.Dataset.holdout`).

    Returns
    -------
    dict
        ``{"worker", "round", "weights", "lfsr", "samples", "seconds"}`` as
        :func:`~spikeforge.sw.federated.local_round`; ``seconds`` is the wall time of the whole
        call (a build included).

    Raises
    ------
    ValueError
        ``task`` is no RoundTask, trains at a batch size other than 1, or ``dataset_spec`` is
        no string.
    RtlRoundError
        The simulation failed (its report).
    """
    if not isinstance(task, RoundTask):
        raise TypeError(f"task must be a RoundTask, not {type(task).__name__}")
    if task.cfg.batch_size != 1:
        raise ValueError(
            f"the RTL trains at batch size 1 only, but the task's cfg.batch_size is "
            f"{task.cfg.batch_size}"
        )
    if not isinstance(dataset_spec, str) or not dataset_spec:
        raise ValueError(f"dataset_spec must be a spec NAME[:PATH], not {dataset_spec!r}")
    t0 = time.perf_counter()
    b = array_build(array_cores(task.cfg), build_dir)
    folder = Path(tempfile.mkdtemp(prefix=f"round{task.round}-worker{task.worker}-", dir=b.folder))
    case = {
        "kind": "round",
        "cores": [p.to_dict() for p in array_cores(task.cfg)],
        "dataset": dataset_spec,
        "validation": validation,
        "stall": 0.0,
        "seed": 0,
        "steps": task.local_epochs * len(task.indices),
        "task": {
            "worker": task.worker,
            "round": task.round,
            "weights": [w.tolist() for w in task.weights],
            "lfsr": [s.tolist() for s in task.lfsr],
            "lr_shift": task.lr_shift,
            "indices": task.indices.tolist(),
            "local_epochs": task.local_epochs,
        },
    }
    result = run(b, folder, case, testbench=TESTBENCH, waves_on_failure=False)
    if not result.passed:
        raise RtlRoundError(
            f"worker {task.worker}, round {task.round} failed on the RTL: {result.report()}"
        )
    detail = result.detail or {}
    shutil.rmtree(folder, ignore_errors=True)
    return {
        "worker": task.worker,
        "round": task.round,
        "weights": [torch.tensor(w, dtype=torch.int64) for w in detail["weights"]],
        "lfsr": [torch.tensor(s, dtype=torch.int64) for s in detail["lfsr"]],
        "samples": len(task.indices),
        "seconds": time.perf_counter() - t0,
    }
