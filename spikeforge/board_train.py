"""Training on a board (or a virtual one) exactly as the integer trainer trains the golden model.

:func:`train_on_board` runs :func:`spikeforge.sw.train.train_int`'s schedule on a
:class:`~spikeforge.driver.Board` (one core) or :class:`~spikeforge.driver.ArrayBoard` (every
layer of the network on the array's cores): the same initial state (written to the board first), the
same sample order and spike encoding per epoch, the same learning-rate steps (SET_LR), batch
size 1. A core with the rate encoder gets each sample's intensities and key (LOAD_INPUTS) and
draws the same spikes itself. With ``verify`` the golden model trains alongside and every
weight is compared after every epoch: a difference stops the run with a
:class:`~spikeforge.sim.session.CoreError` naming the epoch and how many weights differ.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch

from spikeforge.driver import Board
from spikeforge.sim.session import CoreError
from spikeforge.sw.config import ConfigError, SnnConfig
from spikeforge.sw.data import Dataset
from spikeforge.sw.encoders import quantize
from spikeforge.sw.golden import GoldenModel
from spikeforge.sw.train import (
    Progress,
    check_dataset,
    epoch_keys,
    epoch_samples,
    eval_inputs,
    eval_keys,
    lr_steps,
    no_progress,
)

__all__ = ["train_on_board"]


def train_on_board(
    board: Board,
    cfg: SnnConfig,
    ds: Dataset,
    epochs: int,
    *,
    schedule: str = "step",
    samples: int | None = None,
    test_samples: int | None = None,
    verify: bool = True,
    progress: Progress = no_progress,
    on_epoch: Callable[[dict[str, Any]], Any] | None = None,
) -> dict[str, Any]:
    """Train ``epochs`` epochs of ``ds`` (the first ``samples`` of each epoch's order, all by
    default) on ``board``; the test accuracy after each epoch on the first ``test_samples``
    of the test split (all by default)."""
    if cfg.weight_shapes() != board.net.weight_shapes():
        raise ConfigError(
            f"the board trains layers {list(board.net.layers)}, not {list(cfg.layers)}"
        )
    if cfg.batch_size != 1:
        raise ConfigError(f"a board trains with batch_size 1, not {cfg.batch_size}")
    if epochs < 1:
        raise ConfigError(f"epochs must be >= 1, not {epochs}")
    lr_steps(schedule, 0, epochs)
    check_dataset(cfg, ds)
    x_tr = quantize(ds.x_train, ds.x_max, cfg.in_bits)
    x_te = quantize(ds.x_test, ds.x_max, cfg.in_bits)
    n = len(x_tr) if samples is None else min(samples, len(x_tr))
    n_test = len(x_te) if test_samples is None else min(test_samples, len(x_te))
    x_eval, y_eval = eval_inputs(cfg, x_te[:n_test]), ds.y_test[:n_test]
    on_chip = board.rate_encoder  # the board encodes: send intensities and keys
    if on_chip:
        eval_samples = [(x_te[i], int(k)) for i, k in enumerate(eval_keys(n_test))]
    else:
        eval_samples = [(x, None) for x in x_eval]
    golden = GoldenModel(cfg)
    state = golden.state_dict()
    board.load_network(state["weights"], state["lfsr_states"])
    history = []
    start = time.perf_counter()
    for epoch in range(epochs):
        lr = cfg.lr_shift + lr_steps(schedule, epoch, epochs)
        board.set_lr(lr)
        golden.lr_shift = lr
        x_in, y = epoch_samples(cfg, x_tr, ds.y_train, epoch)
        order, keys = epoch_keys(cfg, len(x_tr), epoch)
        bar = progress(n, f"board epoch {epoch + 1}/{epochs}")
        for k in range(n):
            if on_chip:
                board.train_step(x_tr[order[k]], int(y[k]), key=int(keys[k]))
            else:
                board.train_step(x_in[k], int(y[k]))
            if verify:
                golden.train_step(x_in[k : k + 1], y[k : k + 1])
            bar.update(1)
        bar.close()
        row: dict[str, Any] = {"epoch": epoch + 1, "samples": n}
        if verify:
            weights = board.network_weights()
            differ = sum(int((w != g).sum()) for w, g in zip(weights, golden.weights, strict=True))
            if differ:
                total = sum(w.numel() for w in weights)
                raise CoreError(
                    f"epoch {epoch + 1}: {differ} of {total} weights on the board "
                    f"differ from the golden model's"
                )
            row["bit_exact"] = True
        predictions = torch.tensor([board.predict(x, key=key) for x, key in eval_samples])
        row["test_accuracy"] = float((predictions == y_eval).double().mean())
        if verify:
            row["predictions_match"] = bool(torch.equal(predictions, golden.predict(x_eval)))
            if not row["predictions_match"]:
                raise CoreError(f"epoch {epoch + 1}: the board's predictions differ")
        history.append(row)
        if on_epoch is not None:
            on_epoch(row)
    seconds = time.perf_counter() - start
    return {
        "epochs": epochs,
        "samples_per_epoch": n,
        "test_samples": n_test,
        "test_accuracy": history[-1]["test_accuracy"],
        "history": history,
        "verified": verify,
        "seconds": round(seconds, 1),
        "input": "intensities (on-chip rate encoder)" if on_chip else "spike events",
        "link": dict(board.link.stats.__dict__),
    }
