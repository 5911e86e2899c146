"""Model: the golden model's values for one core (one layer of the network) per training step."""

from __future__ import annotations

import torch

from spikeforge.hw.params import CoreParams
from spikeforge.sw.golden import GoldenModel

__all__ = ["CoreModel"]


class CoreModel:
    """The golden model of the whole network, seen from the core computing ``params.layer``.

    :meth:`step` trains one sample and returns the core's inputs (``x``, ``e``, ``label``) and
    every value the core must produce, keyed like the host quantities.
    """

    def __init__(self, params: CoreParams, weights: list[torch.Tensor]):
        self.params = CoreParams.checked(params)
        self.model = GoldenModel(params.net, weights)

    def step(self, x: torch.Tensor, label: int, *, lr_shift: int | None = None) -> dict:
        p = self.params
        if lr_shift is not None:
            self.model.lr_shift = lr_shift
        res = self.model.train_step(x, labels=torch.tensor([label]))
        tr = res.traces[p.layer]
        expected = {
            "membranes": tr.u[0],
            "spikes": tr.s[0],
            "counts": tr.s[0].sum(0),
            "deltas": tr.delta[0],
            "grads": tr.grad[0],
            "weights": res.weights[p.layer],
            "lfsr": self.model.lfsr_states[p.layer].clone(),
        }
        if p.emits_error:
            expected["eprev"] = tr.e_prev[0]
        return {"x": tr.x[0], "e": tr.e[0], "label": label, "expected": expected}
