"""Federated averaging with every worker's round on a core array, checked against the golden
federation: the scenario of ``tb_federated`` over any array transport.

:func:`federate` deals the training split to ``workers`` workers (``iid``, then the first
``samples`` indices of each shard), starts from the golden model's initial weights and
:func:`~spikeforge.sw.federated.worker_lfsr`'s states, and runs ``rounds`` rounds: in round
``r`` each worker's round runs on the array one after the other
(:func:`~spikeforge.sim.federated_rtl.rtl_local_round`: the array plays every worker, each
round starting by writing that worker's weights and LFSR states) and the host averages the
weights read back with :func:`~spikeforge.sw.federated.fedavg`. Beside it the golden federation
runs :func:`~spikeforge.sw.federated.local_round`. Round ``r`` trains at learning-rate shift
``lr_min + min(r, lr_max - lr_min)`` (a step schedule the cores' SET_LR must follow).

The planning pass (``check=False``) carries the golden results forward (the transport's answers
are placeholders); the checking pass (``check=True``) carries the RTL's and requires every
weight and LFSR state read after every worker round, and every averaged weight, to equal the
golden federation's (:class:`~spikeforge.sim.checker.Mismatch` with the first differing index
otherwise). ``corrupt`` sends one worker round a falsified task (its first LFSR state XOR 1)
while the golden federation keeps the right one: the falsification the check must catch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import torch

from spikeforge.sim.array_session import ArraySession
from spikeforge.sim.checker import Mismatch
from spikeforge.sim.federated_rtl import rtl_local_round
from spikeforge.sw.federated import RoundTask, fedavg, local_round, partition, worker_lfsr
from spikeforge.sw.golden import GoldenModel

__all__ = ["compare_tensors", "corrupted", "federate", "round_lr"]


def round_lr(session: ArraySession, round_: int) -> int:
    """The learning-rate shift of round ``round_``: ``lr_min + min(round_, lr_max - lr_min)``."""
    lo = max(p.lr_min for p in session.cores)
    hi = min(p.lr_max for p in session.cores)
    return lo + min(round_, hi - lo)


def compare_tensors(
    where: str, what: str, want: Sequence[torch.Tensor], got: Sequence[torch.Tensor]
) -> None:
    """Raise :class:`Mismatch` naming ``where``, the layer, ``what`` and the first differing
    index unless every tensor of ``got`` equals ``want``'s."""
    if len(want) != len(got):
        raise Mismatch(f"{where}: {len(got)} layers of {what}, the golden model has {len(want)}")
    for layer, (w, g) in enumerate(zip(want, got, strict=True)):
        if w.shape != g.shape:
            raise Mismatch(
                f"{where}: layer {layer} {what} have shape {tuple(g.shape)}, the golden "
                f"model's {tuple(w.shape)}"
            )
        if not torch.equal(w, g):
            index = tuple(int(i) for i in (w != g).nonzero()[0])
            raise Mismatch(
                f"{where}: layer {layer} {what} {list(index)} is {int(g[index])}, the golden "
                f"model's {int(w[index])}"
            )


def corrupted(task: RoundTask) -> RoundTask:
    """``task`` with the first LFSR state of layer 0 XOR 1 (a wrong state written)."""
    lfsr = [s.clone() for s in task.lfsr]
    lfsr[0][0] ^= 1
    return dataclasses.replace(task, lfsr=tuple(lfsr))


async def federate(
    session: ArraySession,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    workers: int = 2,
    rounds: int = 2,
    samples: int = 12,
    local_epochs: int = 1,
    seed: int = 0,
    check: bool = False,
    corrupt: tuple[int, int] | None = None,
    info: Callable[[dict], object] = lambda figures: None,
) -> dict[str, Any]:
    """Run the federation on ``session`` (and the golden one beside it); see the module.

    Parameters
    ----------
    session : ArraySession
    x, y : torch.Tensor
        The whole training split (quantized) and its labels.
    workers, rounds, samples, local_epochs : int
        ``W``, the rounds, the samples of each worker's shard and ``E``.
    seed : int
        Of the ``iid`` partition.
    check : bool
        The checking pass: compare and carry the RTL's results (else the golden ones).
    corrupt : (worker, round) or None
        That worker round gets :func:`corrupted`'s task on the array.
    info : callable
        Gets the figures after every worker round.

    Returns
    -------
    dict
        ``worker_rounds``, ``rounds_done``, ``steps`` and ``lr_shifts``; ``weights`` (the last
        averaged weights, lists) and ``checked`` (worker rounds compared).
    """
    cfg = session.net
    if not 1 <= samples <= len(y) // workers:
        raise ValueError(f"samples must lie in [1, {len(y) // workers}] per worker, not {samples}")
    shards = [s[:samples] for s in partition(y, workers, "iid", seed)]
    gold_w = [w.clone() for w in GoldenModel(cfg).weights]
    gold_s = [worker_lfsr(cfg, k) for k in range(workers)]
    rtl_w, rtl_s = list(gold_w), list(gold_s)
    figures: dict[str, Any] = {"worker_rounds": 0, "rounds_done": 0, "steps": 0, "checked": 0}
    figures["lr_shifts"] = []
    for r in range(rounds):
        lr = round_lr(session, r)
        figures["lr_shifts"].append(lr)
        gold, rtl = [], []
        for k in range(workers):
            gold_task = RoundTask(
                cfg, k, r, tuple(gold_w), tuple(gold_s[k]), lr, shards[k], local_epochs
            )
            sent = RoundTask(cfg, k, r, tuple(rtl_w), tuple(rtl_s[k]), lr, shards[k], local_epochs)
            if corrupt == (k, r):
                sent = corrupted(sent)
            want = local_round(gold_task, x, y)
            got = await rtl_local_round(session, sent, x, y)
            if check:
                where = f"worker {k}, round {r}"
                compare_tensors(where, "weight", want["weights"], got["weights"])
                compare_tensors(where, "LFSR state", want["lfsr"], got["lfsr"])
                figures["checked"] += 1
            gold.append(want)
            rtl.append(got if check else want)
            gold_s[k], rtl_s[k] = want["lfsr"], rtl[-1]["lfsr"]
            figures["worker_rounds"] += 1
            figures["steps"] += local_epochs * samples
            info(figures)
        gold_w = fedavg(cfg, [g["weights"] for g in gold], [g["samples"] for g in gold])
        rtl_w = fedavg(cfg, [g["weights"] for g in rtl], [g["samples"] for g in rtl])
        if check:
            compare_tensors(f"round {r}, averaged", "weight", gold_w, rtl_w)
        figures["rounds_done"] = r + 1
    figures["weights"] = [w.tolist() for w in rtl_w]
    return figures
