"""Input encoders (docs/arithmetic.md, section 6): LFSR rate coding and direct coding.

Intensities are unsigned ``in_bits``-wide integers ``x`` (see :func:`quantize`).

* **rate**: input ``i`` of the sample with key ``key`` owns the LFSR stream
  ``seed_state(encoder_seed, key, i)``; at timestep ``t`` it draws ``r[t] = draw(s, in_bits)`` and
  spikes iff ``r[t] < x``, so ``P(spike) = x / 2**in_bits``.
* **direct**: the first layer sees the intensities themselves at every timestep; the synaptic
  current is ``(W @ x) >> in_bits`` (see :mod:`spikeforge.sw.golden`).
* **spikes**: the data are already spike trains, event counts per input and timestep
  ``[B, T, n_in]`` (event sensors, Randman); input ``i`` spikes at ``t`` iff its count there is
  non-zero. Nothing is drawn and the keys are unused.
"""

from __future__ import annotations

import torch

from .config import SnnConfig
from .lfsr import draws, seed_state

__all__ = ["encode", "quantize", "rate_encode"]


def quantize(x: torch.Tensor, x_max: int, in_bits: int) -> torch.Tensor:
    """Map integers in ``[0, x_max]`` to ``[0, 2**in_bits - 1]``, rounding half up, in integers.

    ``q = (2 * x * (2**in_bits - 1) + x_max) // (2 * x_max)``.
    """
    if x.dtype.is_floating_point:
        raise TypeError(f"intensities must be an integer tensor, not {x.dtype}")
    if x_max < 1:
        raise ValueError(f"x_max must be >= 1, not {x_max!r}")
    x = x.to(torch.int64)
    if x.numel() and (int(x.min()) < 0 or int(x.max()) > x_max):
        raise ValueError(f"intensities must lie in [0, {x_max}]")
    full = (1 << in_bits) - 1
    return (2 * x * full + x_max) // (2 * x_max)


def rate_encode(x: torch.Tensor, keys: torch.Tensor, cfg: SnnConfig) -> torch.Tensor:
    """Rate-code intensities ``x`` ``[B, n_in]`` into spikes ``[B, T, n_in]`` (int64 0/1)."""
    b, n_in = x.shape
    keys = keys.to(torch.int64).reshape(b, 1)
    idx = torch.arange(n_in, dtype=torch.int64).reshape(1, n_in)
    states = seed_state(cfg.encoder_seed, keys, idx)
    r, _ = draws(states, cfg.timesteps, cfg.in_bits)  # [B, n_in, T]
    return (r < x.unsqueeze(-1)).to(torch.int64).transpose(1, 2).contiguous()


def encode(x: torch.Tensor, keys: torch.Tensor, cfg: SnnConfig) -> torch.Tensor:
    """The first layer's input as the golden model takes it.

    ``rate``: spikes ``[B, T, n_in]``; ``direct``: the intensities ``[B, n_in]`` unchanged;
    ``spikes``: ``x`` ``[B, T, n_in]`` as 0/1.
    """
    if x.shape[-1] != cfg.n_inputs:
        raise ValueError(f"inputs have {x.shape[-1]} features, the config expects {cfg.n_inputs}")
    if cfg.encoder == "spikes":
        if x.dim() != 3 or x.shape[1] != cfg.timesteps:
            raise ValueError(
                f"encoder = 'spikes' takes spike trains [B, {cfg.timesteps}, {cfg.n_inputs}] "
                f"(timesteps = {cfg.timesteps}), not {tuple(x.shape)}"
            )
        return (x > 0).to(torch.int64)
    if x.dim() != 2:
        raise ValueError(
            f"encoder = {cfg.encoder!r} takes intensities [B, {cfg.n_inputs}], not "
            f"{tuple(x.shape)}: spike trains need encoder = 'spikes'"
        )
    if cfg.encoder == "direct":
        return x.to(torch.int64)
    return rate_encode(x, keys, cfg)
