"""Learning across several chips: partitions, a worker's local round, integer FedAvg, and
data-parallel mini-batches -- everything here is host arithmetic on the golden model's integers.

**Federated averaging** (docs/arithmetic.md §9). ``W`` workers each hold a shard of the training
split. A round sends the global master weights to the round's participants; worker ``k`` trains
``E`` local epochs on its ``n_k`` samples exactly as one chip trains (batch ``cfg.batch_size``,
its own update LFSRs) and returns its master weights; the host averages them weighted by the
sample counts with :func:`fedavg`. A worker that fails is left out of that round's average.

Sample order and encoding of a local epoch (:func:`local_epoch`): local epoch ``e`` of round
``r`` is *global epoch* ``g = r * E + e``; the worker visits its shard in the order
``torch.randperm(n_k, generator=Generator().manual_seed(init_seed + 7919 * (g + 1) + 104729 *
k))`` and encodes sample ``i`` (a training-split index) with key ``(g + 1) * 2**20 + i`` -- the
key the centralized trainer gives that sample in epoch ``g`` (:func:`~spikeforge.sw.train.
epoch_keys`).

Worker 0's update LFSRs start from the chip's own seeds, ``seed_state(lfsr_seed, layer, j)``;
worker ``k > 0``'s from ``seed_state(lfsr_seed, layer, j, WORKER_SALT + k)``
(:func:`worker_lfsr`), so workers round stochastically with independent streams. Each carries
its state from round to round (a chip keeps its LFSRs; a host that restarts a worker writes them
back). So one worker with ``E = 1`` is exactly the centralized trainer: same order, keys, LFSRs
and learning-rate steps, and FedAvg of one model is that model.

**Data-parallel** (:func:`data_parallel_step`): ``W`` workers with the same weights each run the
backward pass on a shard of one mini-batch *without* the update, the host adds their gradient
accumulators exactly, saturates once to ``acc_bits`` and writes the sum back, and every worker
applies the same update. That is bit-identical to one chip training the whole mini-batch when
no accumulator can saturate -- which the derived ``acc_bits`` guarantees for the mini-batch
(:func:`check_data_parallel`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .config import PARTITIONS, ConfigError, SnnConfig, clog2
from .encoders import encode
from .fixed import sat
from .golden import GoldenModel, output_error
from .lfsr import seed_state
from .train import KEY_EPOCH_STRIDE

__all__ = [
    "PARTITIONS",
    "WORKER_SALT",
    "RoundTask",
    "check_data_parallel",
    "data_parallel_step",
    "fedavg",
    "local_epoch",
    "local_round",
    "parse_partition",
    "participants",
    "partition",
    "sum_accumulators",
    "worker_lfsr",
]

WORKER_SALT = 0x5EED_0000
"""Added to the index of worker ``k > 0`` as a fourth seed word of its LFSRs
(:func:`worker_lfsr`)."""

MAX_KEY_EPOCHS = (1 << 32) // KEY_EPOCH_STRIDE - 1
"""Encoder keys are 32-bit words: global epochs ``g`` must satisfy ``(g + 1) * 2**20 < 2**32``."""


# -- partitions ---------------------------------------------------------------------------------
def parse_partition(spec: str) -> tuple[str, float | None]:
    """``"iid"`` -> ``("iid", None)``; ``"dirichlet:0.5"`` -> ``("dirichlet", 0.5)``."""
    if not isinstance(spec, str):
        raise ConfigError(f"partition must be a string like 'iid' or 'dirichlet:0.5', not {spec!r}")
    name, _, arg = spec.partition(":")
    if name == "iid" and not arg:
        return "iid", None
    if name == "dirichlet":
        try:
            alpha = float(arg)
        except ValueError:
            alpha = -1.0
        if not 0 < alpha <= 1e6:
            raise ConfigError(
                f"partition {spec!r}: the Dirichlet concentration must be a number in "
                "(0, 1e6], e.g. dirichlet:0.5"
            )
        return "dirichlet", alpha
    raise ConfigError(f"partition {spec!r} is unknown: choose one of {', '.join(PARTITIONS)}")


def partition(y: torch.Tensor, workers: int, spec: str, seed: int) -> list[torch.Tensor]:
    """Deal the sample indices ``0 .. len(y) - 1`` to ``workers`` workers; each shard sorted.

    ``iid``: one random permutation cut into ``workers`` pieces whose sizes differ by at most 1.
    ``dirichlet:ALPHA``: for each class, shares ``p ~ Dir(ALPHA, ..., ALPHA)`` of its samples go
    to the workers (the cut points ``floor(cumsum(p) * n_c)``); drawn again, up to 100 times,
    until every worker has at least one sample. Both draw from NumPy's PCG64 seeded ``seed``.
    """
    kind, alpha = parse_partition(spec)
    n = len(y)
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= n:
        raise ConfigError(
            f"workers must be an int in [1, {n}] (the training samples), not {workers!r}"
        )
    rng = np.random.default_rng(seed)
    if kind == "iid":
        perm = rng.permutation(n)
        return [
            torch.from_numpy(np.sort(part)).to(torch.int64)
            for part in np.array_split(perm, workers)
        ]
    labels = y.numpy()
    for _ in range(100):
        shards: list[list[np.ndarray]] = [[] for _ in range(workers)]
        for c in np.unique(labels):
            idx = rng.permutation(np.flatnonzero(labels == c))
            p = rng.dirichlet(np.full(workers, alpha))
            cuts = np.floor(np.cumsum(p)[:-1] * len(idx)).astype(np.int64)
            for k, part in enumerate(np.split(idx, cuts)):
                shards[k].append(part)
        out = [np.sort(np.concatenate(s)) for s in shards]
        if min(len(s) for s in out) > 0:
            return [torch.from_numpy(s).to(torch.int64) for s in out]
    raise ConfigError(
        f"partition {spec!r} left a worker without samples in 100 draws: raise ALPHA or use "
        "fewer workers"
    )


def participants(workers: int, fraction: float, round_: int, seed: int) -> list[int]:
    """The workers of round ``round_``: all when ``fraction == 1``, else
    ``max(1, round(fraction * workers))`` of them drawn without replacement (PCG64 seeded
    ``[seed, round_]``), in increasing order."""
    if not 0 < fraction <= 1:
        raise ConfigError(f"participation must be in (0, 1], not {fraction!r}")
    if fraction == 1:
        return list(range(workers))
    m = max(1, round(fraction * workers))
    rng = np.random.default_rng([seed, round_])
    return sorted(int(k) for k in rng.choice(workers, size=m, replace=False))


# -- a worker's round -----------------------------------------------------------------------------
def worker_lfsr(cfg: SnnConfig, worker: int) -> list[torch.Tensor]:
    """Worker ``worker``'s initial update-LFSR states, one ``[n_out]`` tensor per layer: the
    chip's ``seed_state(lfsr_seed, layer, j)`` for worker 0, else
    ``seed_state(lfsr_seed, layer, j, WORKER_SALT + worker)``."""
    salt = () if worker == 0 else (WORKER_SALT + worker,)
    return [
        seed_state(cfg.lfsr_seed, layer, torch.arange(n_out, dtype=torch.int64), *salt)
        for layer, (n_out, _) in enumerate(cfg.weight_shapes())
    ]


@dataclass(frozen=True)
class RoundTask:
    """What the host sends a worker for one round (besides the worker's own data).

    Attributes
    ----------
    cfg : the network
    worker, round : who and when (they pick the sample order and keys)
    weights : the global master weights at the start of the round
    lfsr : the worker's update-LFSR states, one ``[n_out]`` tensor per layer
    lr_shift : the learning-rate shift of the round (the schedule's step)
    indices : the worker's shard: training-split indices, increasing
    local_epochs : ``E``
    """

    cfg: SnnConfig
    worker: int
    round: int
    weights: tuple[torch.Tensor, ...]
    lfsr: tuple[torch.Tensor, ...]
    lr_shift: int
    indices: torch.Tensor
    local_epochs: int

    def __post_init__(self) -> None:
        last = (self.round + 1) * self.local_epochs - 1
        if last > MAX_KEY_EPOCHS:
            raise ConfigError(
                f"round {self.round} x {self.local_epochs} local epochs passes global epoch "
                f"{MAX_KEY_EPOCHS}, the last with 32-bit encoder keys"
            )


def local_epoch(task: RoundTask, epoch: int, x: torch.Tensor, y: torch.Tensor):
    """Local epoch ``epoch`` of ``task``: encoded inputs and labels in visiting order.

    ``x``, ``y``: the whole training split (quantized intensities or spike trains) and labels;
    only the shard's rows are used.
    """
    cfg = task.cfg
    g = task.round * task.local_epochs + epoch
    gen = torch.Generator().manual_seed(cfg.init_seed + 7919 * (g + 1) + 104729 * task.worker)
    idx = task.indices[torch.randperm(len(task.indices), generator=gen)]
    return encode(x[idx], (g + 1) * KEY_EPOCH_STRIDE + idx, cfg), y[idx]


def local_round(task: RoundTask, x: torch.Tensor, y: torch.Tensor) -> dict[str, Any]:
    """Train ``task`` on the golden model: ``E`` local epochs of batch-``cfg.batch_size``
    steps, then an update of whatever is pending (a shard not a multiple of the batch).

    Returns ``{"worker", "round", "weights", "lfsr", "samples", "seconds"}``: the worker's master
    weights and LFSR states after the round, and ``samples = len(indices)`` (the FedAvg weight).
    """
    cfg = task.cfg
    t0 = time.perf_counter()
    model = GoldenModel(cfg, list(task.weights))
    model.lfsr_states = [s.clone() for s in task.lfsr]
    model.lr_shift = task.lr_shift
    bs = cfg.batch_size
    for epoch in range(task.local_epochs):
        x_in, labels = local_epoch(task, epoch, x, y)
        for k in range(0, len(labels), bs):
            model.train_step(x_in[k : k + bs], labels[k : k + bs])
    if model.pending:
        model.update()
    return {
        "worker": task.worker,
        "round": task.round,
        "weights": [w.clone() for w in model.weights],
        "lfsr": [s.clone() for s in model.lfsr_states],
        "samples": len(task.indices),
        "seconds": time.perf_counter() - t0,
    }


# -- averaging ----------------------------------------------------------------------------------
def fedavg(cfg: SnnConfig, weights: Sequence[Sequence[torch.Tensor]], samples: Sequence[int]):
    """Integer FedAvg (docs/arithmetic.md §9): per weight,
    ``W = sat_m(floor((2 * sum_k n_k * W_k + N) / (2 * N)))`` with ``N = sum_k n_k`` -- the exact
    weighted sum, divided once, rounded to nearest with ties toward +inf.

    ``weights[k]`` is worker ``k``'s list of master-weight tensors, ``samples[k]`` its ``n_k``.
    """
    if not weights or len(weights) != len(samples):
        raise ValueError(f"need one sample count per worker: {len(weights)} vs {len(samples)}")
    if any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in samples):
        raise ValueError(f"sample counts must be positive ints, not {list(samples)!r}")
    total = sum(samples)
    out = []
    for layer in range(cfg.n_layers):
        acc = sum(n * w[layer] for n, w in zip(samples, weights, strict=True))
        avg = torch.div(2 * acc + total, 2 * total, rounding_mode="floor")
        out.append(sat(avg, cfg.master_bits))
    return out


# -- data-parallel --------------------------------------------------------------------------------
def check_data_parallel(cfg: SnnConfig) -> None:
    """A :class:`~spikeforge.sw.config.ConfigError` unless no gradient accumulator can saturate
    within one mini-batch of ``cfg.batch_size`` samples: ``acc_bits >= g_bits +
    clog2(T * batch_size) + 1`` (+ ``in_bits`` for direct coding), the derived width. Then the
    host's exact sum of the workers' accumulators equals one chip's saturating adds."""
    direct = cfg.in_bits if cfg.encoder == "direct" else 0
    need = cfg.g_bits + clog2(cfg.timesteps * cfg.batch_size) + 1 + direct
    if cfg.acc_bits < need:
        raise ConfigError(
            f"data-parallel needs acc_bits >= {need} for batch_size = {cfg.batch_size} "
            f"(no accumulator may saturate within a mini-batch), not {cfg.acc_bits}"
        )


def sum_accumulators(cfg: SnnConfig, accs: Sequence[Sequence[torch.Tensor]]) -> list[torch.Tensor]:
    """The host's sum of the workers' gradient accumulators (docs/arithmetic.md §9.1): per layer
    ``G = sat_acc(sum_k G_k)``, the exact sum saturated once to ``cfg.acc_bits``.

    Parameters
    ----------
    cfg : SnnConfig
        The network (its ``acc_bits`` and layer shapes).
    accs : sequence of sequences of torch.Tensor
        ``accs[k][layer]``: worker ``k``'s accumulators, int64 of the layer's weight shape.

    Returns
    -------
    list of torch.Tensor
        One int64 tensor per layer.

    Raises
    ------
    ValueError
        No worker, or a worker's accumulators are not one int64 tensor of each layer's shape.
    """
    if not accs:
        raise ValueError("need the accumulators of at least one worker")
    shapes = cfg.weight_shapes()
    for k, acc in enumerate(accs):
        if len(acc) != len(shapes):
            raise ValueError(
                f"worker {k} has {len(acc)} accumulator tensors, the network {len(shapes)} layers"
            )
        for layer, (g, shape) in enumerate(zip(acc, shapes, strict=True)):
            if tuple(g.shape) != tuple(shape) or g.dtype != torch.int64:
                raise ValueError(
                    f"worker {k}'s layer {layer} accumulators are {g.dtype} "
                    f"{tuple(g.shape)}, not int64 {tuple(shape)}"
                )
    return [sat(sum(acc[layer] for acc in accs), cfg.acc_bits) for layer in range(len(shapes))]


def data_parallel_step(
    models: Sequence[GoldenModel], xs: Sequence[torch.Tensor], ys: Sequence[torch.Tensor]
) -> list[torch.Tensor]:
    """One mini-batch on ``W`` workers: worker ``k`` runs forward and backward on ``xs[k]``,
    ``ys[k]`` without the update; the host sums the accumulators exactly, saturates once, writes
    the sum to every worker and each applies the update. Returns the new master weights.

    Every worker must hold the same weights and LFSR states (they stay equal); a worker whose
    shard is empty only takes the update.
    """
    if not models or not len(models) == len(xs) == len(ys):
        raise ValueError("need one input shard and one label shard per worker")
    cfg = models[0].cfg
    for m in models[1:]:
        if m.cfg != cfg or any(
            not torch.equal(a, b) for a, b in zip(m.weights, models[0].weights, strict=True)
        ):
            raise ValueError("data-parallel workers must share the config and the weights")
    for model, x, y in zip(models, xs, ys, strict=True):
        model.grad_acc = [torch.zeros_like(g) for g in model.grad_acc]
        if len(y):
            traces = model.forward(x)
            model.backward(traces, output_error(cfg, traces[-1].s, y))
    total = sum_accumulators(cfg, [m.grad_acc for m in models])
    for model in models:
        model.grad_acc = [t.clone() for t in total]
        model.update()
    return [w.clone() for w in models[0].weights]
