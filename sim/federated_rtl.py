"""A federated worker's round on a core array: :func:`spikeforge.sw.federated.local_round` on
the RTL, through any :class:`~spikeforge.sim.array_session.ArraySession` transport.

:func:`rtl_local_round` writes the round's global master weights to every core, the worker's
update-LFSR states to the cores that hold each layer's rows (``Quantity.LFSR``, rows
``neuron_offset .. neuron_offset + n_out - 1`` of the layer), clears the gradient accumulators
and sets the round's learning-rate shift; then it trains every sample of every local epoch in
:func:`~spikeforge.sw.federated.local_epoch`'s order and encoding, one training step each
(batch size 1: the update follows every sample, so nothing is pending at the end), and reads
the weights and LFSR states back. The commands never depend on an answer, so the fast
transactors can play them (:mod:`~spikeforge.sim.plan`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import torch

from spikeforge.hw.protocol import Quantity
from spikeforge.sim.array_session import ArraySession
from spikeforge.sw.federated import RoundTask, local_epoch

__all__ = ["check_round", "read_lfsr", "rtl_local_round", "write_lfsr"]

LFSR_MAX = (1 << 32) - 1
"""Update-LFSR states are 32-bit words; 0 is refused (the core would store it as 1)."""


def check_round(session: ArraySession, task: RoundTask) -> None:
    """Raise :class:`ValueError` naming what is wrong unless ``task`` can run on ``session``:
    batch size 1, the same network, weights and LFSR states of the layers' shapes, LFSR states
    in ``[1, 2**32 - 1]`` and a learning-rate shift the cores allow."""
    if not isinstance(task, RoundTask):
        raise TypeError(f"task must be a RoundTask, not {type(task).__name__}")
    cfg = task.cfg
    if cfg.batch_size != 1:
        raise ValueError(
            f"the RTL trains at batch size 1 only (an update after every sample), but the "
            f"task's cfg.batch_size is {cfg.batch_size}"
        )
    if cfg != session.net:
        raise ValueError(
            f"the task's network (config {cfg.config_hash}) is not the array's "
            f"({session.net.config_hash})"
        )
    shapes = cfg.weight_shapes()
    if len(task.weights) != len(shapes) or len(task.lfsr) != len(shapes):
        raise ValueError(
            f"the task needs {len(shapes)} weight tensors and {len(shapes)} LFSR tensors, "
            f"not {len(task.weights)} and {len(task.lfsr)}"
        )
    for layer, (shape, w, s) in enumerate(zip(shapes, task.weights, task.lfsr, strict=True)):
        if tuple(w.shape) != tuple(shape):
            raise ValueError(f"task.weights[{layer}] has shape {tuple(w.shape)}, not {shape}")
        if tuple(s.shape) != (shape[0],):
            raise ValueError(f"task.lfsr[{layer}] has shape {tuple(s.shape)}, not ({shape[0]},)")
        if s.numel() and (int(s.min()) < 1 or int(s.max()) > LFSR_MAX):
            raise ValueError(f"task.lfsr[{layer}] holds states outside [1, 2**32 - 1]")
    lo = max(p.lr_min for p in session.cores)
    hi = min(p.lr_max for p in session.cores)
    if not lo <= task.lr_shift <= hi:
        raise ValueError(f"task.lr_shift = {task.lr_shift} is out of the cores' range [{lo}, {hi}]")


async def write_lfsr(session: ArraySession, states: Sequence[torch.Tensor]) -> None:
    """Write each layer's update-LFSR states ``states[layer]`` ``[n_out]`` to its cores."""
    for group, s in zip(session.layers, states, strict=True):
        for n in group:
            p = session.cores[n]
            await session.core(n).write(
                Quantity.LFSR, s[p.neuron_offset : p.neuron_offset + p.n_out]
            )


async def read_lfsr(session: ArraySession) -> list[torch.Tensor]:
    """Every layer's update-LFSR states, ``[n_out]`` each."""
    return [await session.read_layer(layer, Quantity.LFSR) for layer in range(len(session.layers))]


async def _clear_grads(session: ArraySession) -> None:
    for n, p in enumerate(session.cores):
        if p.fused_grads:  # no accumulators: each update forms its gradient afresh
            continue
        await session.core(n).write(Quantity.GRADS, torch.zeros(p.n_out, p.n_in, dtype=torch.int64))


async def rtl_local_round(
    session: ArraySession, task: RoundTask, x: torch.Tensor, y: torch.Tensor
) -> dict[str, Any]:
    """Train ``task`` on the array behind ``session``; the RTL's twin of
    :func:`~spikeforge.sw.federated.local_round`.

    Parameters
    ----------
    session : ArraySession
        The array (its cores compute ``task.cfg``).
    task : RoundTask
        The round; ``task.cfg.batch_size`` must be 1.
    x, y : torch.Tensor
        The whole training split (quantized intensities or spike trains) and its labels.

    Returns
    -------
    dict
        ``{"worker", "round", "weights", "lfsr", "samples", "seconds"}`` as ``local_round``:
        the weights and LFSR states read back from the array, ``samples = len(task.indices)``
        and the wall seconds of the round.

    Raises
    ------
    ValueError
        The task does not fit the array (:func:`check_round`).
    """
    check_round(session, task)
    t0 = time.perf_counter()
    await session.write_weights(task.weights)
    await write_lfsr(session, task.lfsr)
    await _clear_grads(session)
    await session.set_lr(task.lr_shift)
    for epoch in range(task.local_epochs):
        x_in, labels = local_epoch(task, epoch, x, y)
        for k in range(len(labels)):
            await session.train_step(x_in[k], int(labels[k]))
    return {
        "worker": task.worker,
        "round": task.round,
        "weights": await session.read_weights(),
        "lfsr": await read_lfsr(session),
        "samples": len(task.indices),
        "seconds": time.perf_counter() - t0,
    }
