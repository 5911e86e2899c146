"""A whole training epoch of the digits network on a core array, checked against the golden
model: the scenario of ``tb_epoch`` (through the fast transactors) over any array transport.

:func:`train_epoch` writes the golden model's initial weights to every core, then trains the
epoch's samples one by one in the integer trainer's order and encoding (``epoch_samples``,
batch size 1: one training step of four packets each, spikes and errors carried between the
layers by the array's own links), reads every weight of every core back at ``checkpoints``
evenly spaced samples and after the last one, and finally predicts the test split on the
array (the output layer's spike COUNTS and last membrane row through the contract's arg-max).
Every weight must equal the golden model's and every prediction the golden model's; the
commands never depend on an answer, so the fast transactors can play them
(:mod:`~spikeforge.sim.plan`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from spikeforge.sim.array_session import ArraySession
from spikeforge.sim.checker import Mismatch
from spikeforge.sw.data import load_dataset
from spikeforge.sw.encoders import quantize
from spikeforge.sw.golden import GoldenModel
from spikeforge.sw.train import epoch_samples, eval_inputs

__all__ = ["EPOCH_SAMPLES", "train_epoch"]

EPOCH_SAMPLES = 1437
"""The digits training split: one epoch."""


def _first_difference(want: torch.Tensor, got: torch.Tensor) -> tuple[tuple[int, ...], int, int]:
    index = tuple(int(i) for i in (want != got).nonzero()[0])
    return index, int(want[index]), int(got[index])


async def train_epoch(
    session: ArraySession,
    *,
    samples: int = EPOCH_SAMPLES,
    test_samples: int | None = None,
    checkpoints: int = 10,
    expected: dict | None = None,
    info: Callable[[dict], object] = lambda figures: None,
) -> dict:
    """Train ``samples`` samples of epoch 0, read every weight at ``checkpoints`` points and at
    the end, then predict ``test_samples`` test samples (``None``: all).

    Without ``expected`` (the planning pass) the golden model trains beside the session and
    nothing is compared; the returned figures hold its ``expected`` weights at each checkpoint
    and its predictions. With them (the checking pass), every weight and every prediction
    read from the session must equal them (:class:`~spikeforge.sim.checker.Mismatch`
    otherwise). ``info(figures)`` gets the figures so far after each checkpoint and at the end.
    """
    net = session.net
    ds = load_dataset("digits")
    if not 1 <= samples <= len(ds.x_train):
        raise ValueError(f"samples must lie in [1, {len(ds.x_train)}], not {samples}")
    golden = GoldenModel(net)
    plan = {"weights": {}, "predictions": []} if expected is None else None
    if plan is not None:
        x_in, y = epoch_samples(net, quantize(ds.x_train, ds.x_max, net.in_bits), ds.y_train, 0)
    else:
        x_in, y = expected["inputs"]
    await session.write_weights(golden.weights)
    every = max(1, samples // max(1, checkpoints))
    figures: dict = {"samples_done": 0, "checkpoints": []}
    for k in range(samples):
        if plan is not None:
            golden.train_step(x_in[k : k + 1], y[k : k + 1])
        await session.train_step(x_in[k], int(y[k]))
        figures["samples_done"] = k + 1
        if (k + 1) % every and k + 1 != samples:
            continue
        got = await session.read_weights()
        if plan is not None:
            plan["weights"][k + 1] = [w.clone() for w in golden.weights]
        for layer, (want, have) in enumerate(
            zip((expected or plan)["weights"][k + 1], got, strict=True)
        ):
            if expected is not None and not torch.equal(want, have):
                index, w, g = _first_difference(want, have)
                raise Mismatch(
                    f"after sample {k + 1}: layer {layer} weight {index} is {g}, the golden "
                    f"model's {w}"
                )
        figures["checkpoints"].append(k + 1)
        info(figures)
    n_test = len(ds.x_test) if test_samples is None else test_samples
    x_te = eval_inputs(net, quantize(ds.x_test[:n_test], ds.x_max, net.in_bits))
    want = golden.predict(x_te).tolist() if plan is not None else expected["predictions"]
    hits = 0
    for i in range(n_test):
        got = await session.predict(x_te[i])
        if expected is not None and got != want[i]:
            raise Mismatch(f"test sample {i}: the RTL predicts {got}, the golden model {want[i]}")
        hits += int(got == int(ds.y_test[i]))
    golden_hits = sum(int(w == int(t)) for w, t in zip(want, ds.y_test[:n_test], strict=True))
    figures.update(
        test_samples=n_test,
        test_accuracy=hits / n_test if n_test else 0.0,
        golden_test_accuracy=golden_hits / n_test if n_test else 0.0,
    )
    if plan is not None:
        figures["expected"] = {**plan, "predictions": want, "inputs": (x_in, y)}
    info(figures)
    return figures
