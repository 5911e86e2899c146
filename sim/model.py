"""Model: the golden model's values for one core (one layer of the network) per training step."""

from __future__ import annotations

import torch

from spikeforge.hw.backward import nonzero_groups
from spikeforge.hw.params import CoreParams
from spikeforge.sw.fixed import shr_floor
from spikeforge.sw.golden import GoldenModel, StepResult

__all__ = ["CoreModel", "core_expected"]


def core_expected(
    params: CoreParams,
    res: StepResult,
    model: GoldenModel,
    weights_before: list[torch.Tensor],
    *,
    errors: bool = False,
) -> dict[str, torch.Tensor]:
    """Every value core ``params`` holds after the golden model's step ``res`` (``model`` is the
    model after the step, ``weights_before`` its weights before): membranes, spikes, counts,
    deltas, gradients (before the update), weights and LFSR states after it, ``eprev`` on a core
    that emits the error (a split core: the exact partial sum over its neurons), and with
    ``errors`` the error the core took in (from its link or a WRITE)."""
    p = params
    tr = res.traces[p.layer]
    j = slice(p.neuron_offset, p.neuron_offset + p.n_out)  # the core's neurons
    expected = {
        "membranes": tr.u[0][:, j],
        "spikes": tr.s[0][:, j],
        "counts": tr.s[0][:, j].sum(0),
        "deltas": tr.delta[0][:, j],
        # a fused core keeps no gradient to read
        **({} if p.fused_grads else {"grads": tr.grad[0][j]}),
        "weights": res.weights[p.layer][j],
        "lfsr": model.lfsr_states[p.layer][j].clone(),
    }
    if p.emits_error and p.split:
        w = shr_floor(weights_before[p.layer][j], p.net.frac_bits)
        expected["eprev"] = tr.delta[0][:, j] @ w
    elif p.emits_error:
        expected["eprev"] = tr.e_prev[0]
    if errors:
        expected["errors"] = tr.e[0][:, j]
    return expected


class CoreModel:
    """The golden model of the whole network, seen from the core computing ``params.layer``.

    :meth:`step` trains one sample and returns the core's inputs (``x``, ``e``, ``label``),
    ``nonzero`` (its groups with a nonzero delta per timestep, what its BP and WG engines take:
    :func:`~spikeforge.hw.backward.nonzero_groups`) and every value the core must produce,
    keyed like the host quantities.
    """

    def __init__(self, params: CoreParams, weights: list[torch.Tensor]):
        self.params = CoreParams.checked(params)
        self.model = GoldenModel(params.net, weights)

    def step(self, x: torch.Tensor, label: int, *, lr_shift: int | None = None) -> dict:
        p = self.params
        if lr_shift is not None:
            self.model.lr_shift = lr_shift
        self.weights_before = [w.clone() for w in self.model.weights]
        res = self.model.train_step(x, labels=torch.tensor([label]))
        tr = res.traces[p.layer]
        j = slice(p.neuron_offset, p.neuron_offset + p.n_out)
        expected = core_expected(p, res, self.model, self.weights_before)
        return {
            "x": tr.x[0],
            "e": tr.e[0][:, j],
            "label": label,
            "nonzero": nonzero_groups(p, tr.delta[0]),
            "expected": expected,
        }
