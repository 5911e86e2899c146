"""Stimulus shared by every testbench: initial weights and random training samples per seed."""

from __future__ import annotations

import torch

from spikeforge.sw.config import SnnConfig
from spikeforge.sw.golden import init_weights

__all__ = ["samples", "weights_for_seed"]


def weights_for_seed(net: SnnConfig, seed: int) -> list[torch.Tensor]:
    """Master weights of every layer for ``seed``.

    Seed 0 is the trainer's initialisation; odd seeds draw uniformly over the whole master range
    (membranes, deltas and updates saturate); other even seeds are the trainer's initialisation
    with ``init_seed = seed``.
    """
    if seed == 0:
        return init_weights(net)
    if seed % 2 == 0:
        return init_weights(net.replace(init_seed=seed))
    gen = torch.Generator().manual_seed(seed)
    lo, hi = -(1 << (net.master_bits - 1)), 1 << (net.master_bits - 1)
    return [torch.randint(lo, hi, shape, generator=gen) for shape in net.weight_shapes()]


def samples(
    net: SnnConfig, seed: int, steps: int, density: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """``steps`` input spike trains ``[steps, 1, T, n_in]`` (each spike with probability
    ``density``) and labels ``[steps, 1]``, from a generator seeded with ``1000 + seed``."""
    gen = torch.Generator().manual_seed(1000 + seed)
    xs = (torch.rand(steps, 1, net.timesteps, net.n_inputs, generator=gen) < density).long()
    labels = torch.randint(0, net.n_outputs, (steps, 1), generator=gen)
    return xs, labels
