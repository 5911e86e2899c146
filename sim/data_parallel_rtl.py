"""Data-parallel mini-batches on a core array, checked against one golden chip training the
whole mini-batch (docs/arithmetic.md §9.1): the scenario of ``tb_federated``'s
``"data_parallel"`` case over any array transport.

``W`` chips hold the same weights and LFSR states, so one array can play them in turn: for every
mini-batch of ``W * per_shard`` samples (the integer trainer's epoch order,
:func:`~spikeforge.sw.train.epoch_samples`), chip ``k`` -- the array again -- starts from
cleared gradient accumulators (``GRADS = 0``), runs forward and backward without the update on
its shard ``k * per_shard .. (k + 1) * per_shard - 1`` of the mini-batch
(:meth:`~spikeforge.sim.array_session.ArraySession.train_step` with ``update=False``) and its
accumulators are read (:func:`read_grads`). The host adds them exactly and saturates once
(:func:`~spikeforge.sw.federated.sum_accumulators`), writes the sum as ``GRADS``
(:func:`write_grads`: each core gets its rows ``neuron_offset .. neuron_offset + n_out - 1`` of
its layer) and the array applies the update (UPDATE). Beside it a golden chip with
``batch_size = W * per_shard`` calls ``train_step`` on the whole mini-batch.

The array's network must be that golden chip's config (``cfg.batch_size = W * per_shard``):
the accumulators' width ``acc_bits`` is derived for the mini-batch, and
:func:`~spikeforge.sw.federated.check_data_parallel` must accept it.

The planning pass (``check=False``) carries golden accumulators forward (the transport's answers
are placeholders); the checking pass (``check=True``) carries the RTL's and requires every chip's
accumulators to equal a golden chip's on the same shard, and after every mini-batch every weight
and LFSR state to equal the golden chip's (:class:`~spikeforge.sim.checker.Mismatch` with the
first differing index otherwise). ``corrupt = b``: at mini-batch ``b`` the host writes back only
chip 0's accumulators (a host that forgot the others): the falsification the check must catch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from spikeforge.hw.protocol import Quantity
from spikeforge.sim.array_session import ArraySession
from spikeforge.sim.federated_rtl import read_lfsr, write_lfsr
from spikeforge.sim.federation import compare_tensors
from spikeforge.sw.config import ConfigError
from spikeforge.sw.federated import check_data_parallel, sum_accumulators
from spikeforge.sw.golden import GoldenModel, output_error
from spikeforge.sw.train import epoch_samples

__all__ = [
    "data_parallel",
    "golden_shard_grads",
    "read_grads",
    "require_grads",
    "write_grads",
]


def require_grads(session: ArraySession, what: str = "data-parallel training") -> None:
    """Raise :class:`~spikeforge.sw.config.ConfigError` if a core of ``session`` has fused
    gradients: it keeps no accumulators for the host to READ or WRITE (GRADS)."""
    fused = [n for n, p in enumerate(session.cores) if p.fused_grads]
    if fused:
        raise ConfigError(
            f"{what} reads and writes the gradient accumulators (GRADS), but core(s) "
            f"{', '.join(map(str, fused))} have fused_grads = true and keep none: build the "
            "array with fused_grads = false"
        )


async def write_grads(session: ArraySession, grads: Sequence[torch.Tensor]) -> None:
    """Write each layer's gradient accumulators ``grads[layer]`` ``[n_out, n_in]`` to its
    cores, each core its rows ``neuron_offset .. neuron_offset + n_out - 1``."""
    require_grads(session, "WRITE GRADS")
    for group, g in zip(session.layers, grads, strict=True):
        for n in group:
            p = session.cores[n]
            await session.core(n).write(
                Quantity.GRADS, g[p.neuron_offset : p.neuron_offset + p.n_out]
            )


async def read_grads(session: ArraySession) -> list[torch.Tensor]:
    """Every layer's gradient accumulators, ``[n_out, n_in]`` each (its cores' rows joined)."""
    require_grads(session, "READ GRADS")
    return [await session.read_layer(layer, Quantity.GRADS) for layer in range(len(session.layers))]


def golden_shard_grads(model: GoldenModel, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
    """The accumulators a golden chip with ``model``'s weights holds after forward and backward
    (no update) on the encoded inputs ``x`` and labels ``y`` from cleared accumulators;
    ``model`` is left as it was."""
    cfg = model.cfg
    twin = GoldenModel(cfg, [w.clone() for w in model.weights])
    traces = twin.forward(x)
    twin.backward(traces, output_error(cfg, traces[-1].s, y))
    return [g.clone() for g in twin.grad_acc]


async def data_parallel(
    session: ArraySession,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    workers: int = 2,
    per_shard: int = 2,
    batches: int = 4,
    epoch: int = 0,
    check: bool = False,
    corrupt: int | None = None,
    info: Callable[[dict], object] = lambda figures: None,
) -> dict[str, Any]:
    """Run ``batches`` data-parallel mini-batches on ``session`` (and the golden chip beside it);
    see the module.

    Parameters
    ----------
    session : ArraySession
        The array; its network's ``batch_size`` must be ``workers * per_shard``.
    x, y : torch.Tensor
        The whole training split (quantized) and its labels.
    workers, per_shard, batches : int
        ``W``, the samples of each chip's shard and the mini-batches.
    epoch : int
        The epoch whose sample order and encoding (:func:`~spikeforge.sw.train.epoch_samples`)
        the mini-batches take, from its first sample.
    check : bool
        The checking pass: compare and carry the RTL's accumulators (else the golden ones).
    corrupt : int or None
        At that mini-batch the host writes back chip 0's accumulators alone.
    info : callable
        Gets the figures after every chip compared and every mini-batch.

    Returns
    -------
    dict
        ``batches_done``, ``steps`` (samples trained), ``chips_checked`` (chip accumulators
        compared), ``checked`` (mini-batches whose weights and LFSR states were compared),
        ``lr_shift`` and ``weights`` (the last weights read, lists).

    Raises
    ------
    ValueError
        The counts are no positive ints, the split is too short, or the array's ``batch_size``
        is not ``workers * per_shard``.
    spikeforge.sw.config.ConfigError
        A core has fused gradients (no GRADS), or the network's ``acc_bits`` cannot hold a
        mini-batch
        (:func:`~spikeforge.sw.federated.check_data_parallel`).
    spikeforge.sim.checker.Mismatch
        (checking pass) An accumulator, weight or LFSR state differs from the golden one.
    """
    cfg = session.net
    require_grads(session)
    for name, v in (("workers", workers), ("per_shard", per_shard), ("batches", batches)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, not {v!r}")
    batch = workers * per_shard
    if cfg.batch_size != batch:
        raise ValueError(
            f"the array's network has batch_size = {cfg.batch_size}, but {workers} workers x "
            f"{per_shard} samples make a mini-batch of {batch}: build the array for "
            f"batch_size = {batch} (its acc_bits holds the mini-batch)"
        )
    check_data_parallel(cfg)
    if batches * batch > len(y):
        raise ValueError(
            f"{batches} mini-batches of {batch} need {batches * batch} samples; the split has "
            f"{len(y)}"
        )
    if corrupt is not None and not 0 <= corrupt < batches:
        raise ValueError(f"corrupt must be a mini-batch in [0, {batches - 1}], not {corrupt!r}")
    x_in, labels = epoch_samples(cfg, x, y, epoch)
    gold = GoldenModel(cfg)
    lo = max(p.lr_min for p in session.cores)
    hi = min(p.lr_max for p in session.cores)
    if not lo <= gold.lr_shift <= hi:
        raise ConfigError(f"cfg.lr_shift = {gold.lr_shift} is out of the cores' range [{lo}, {hi}]")
    await session.write_weights(gold.weights)
    await write_lfsr(session, gold.lfsr_states)
    await session.set_lr(gold.lr_shift)
    figures: dict[str, Any] = {"batches_done": 0, "steps": 0, "chips_checked": 0, "checked": 0}
    figures["lr_shift"] = gold.lr_shift
    weights: list[torch.Tensor] = list(gold.weights)
    for b in range(batches):
        first = b * batch
        accs = []
        for k in range(workers):
            lo_k = first + k * per_shard
            xs, ys = x_in[lo_k : lo_k + per_shard], labels[lo_k : lo_k + per_shard]
            want = golden_shard_grads(gold, xs, ys)
            await write_grads(session, [torch.zeros_like(g) for g in want])
            for s in range(per_shard):
                await session.train_step(xs[s], int(ys[s]), update=False)
            got = await read_grads(session)
            if check:
                compare_tensors(f"mini-batch {b}, chip {k}", "gradient accumulator", want, got)
                figures["chips_checked"] += 1
                info(figures)
            accs.append(got if check else want)
        total = sum_accumulators(cfg, accs) if corrupt != b else accs[0]
        await write_grads(session, total)
        await session.update()
        step = gold.train_step(x_in[first : first + batch], labels[first : first + batch])
        if not step.updated:
            raise RuntimeError(f"the golden chip did not update after mini-batch {b}")
        weights = await session.read_weights()
        lfsr = await read_lfsr(session)
        if check:
            where = f"mini-batch {b}"
            compare_tensors(where, "weight", gold.weights, weights)
            compare_tensors(where, "LFSR state", gold.lfsr_states, lfsr)
            figures["checked"] += 1
        figures["batches_done"] = b + 1
        figures["steps"] += batch
        info(figures)
    figures["weights"] = [w.tolist() for w in weights]
    return figures
