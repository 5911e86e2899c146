"""Float surrogate-gradient reference network (autograd), the integer model's float twin.

The forward pass is snnTorch's ``snn.Leaky`` (``reset_delay=True``) written out, operation for
operation, so it matches snnTorch exactly (``tests/test_float_ref.py`` runs both side by side)::

    reset[t] = H(mem[t-1] - theta)                       (detached, as in snnTorch)
    subtract: mem[t] = beta * mem[t-1] + I[t] - reset[t] * theta
    zero:     mem[t] = beta * ((1 - reset[t]) * mem[t-1]) + I[t]
    spk[t]   = H(mem[t] - theta),   H(x) = [x > 0]

with ``theta = 1`` and ``beta = 1 - 2**-leak_shift``. Units: one float membrane unit is ``theta``
integer units, so float weights are integer weights divided by ``theta``. The surrogate
derivative is the boxcar or triangle of :class:`~spikeforge.sw.config.SnnConfig` with half-width
``2**surrogate_shift / theta``. ``bptt="sltt"`` detaches the temporal path (spatial-only).
"""

from __future__ import annotations

import torch
from torch import nn

from .config import SnnConfig

__all__ = ["FloatSNN", "SurrogateSpike", "count_loss"]


class SurrogateSpike(torch.autograd.Function):
    """Forward ``H(x) = [x > 0]``; backward ``[|x| < w]`` (boxcar) or ``max(0, 1 - |x|/w)``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, shape: str, width: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.shape, ctx.width = shape, width
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (x,) = ctx.saved_tensors
        if ctx.shape == "boxcar":
            local = (x.abs() < ctx.width).to(x.dtype)
        else:
            local = (1.0 - x.abs() / ctx.width).clamp(min=0.0)
        return grad * local, None, None


class FloatSNN(nn.Module):
    """Fully connected LIF network with the sizes and neuron rules of ``cfg``.

    ``forward(x)`` takes spikes ``[B, T, n_in]`` (rate coding) or currents ``[B, n_in]`` (direct
    coding, intensities divided by ``2**in_bits``) and returns per-layer lists of spikes and
    membranes, each ``[B, T, n]``.
    """

    def __init__(self, cfg: SnnConfig, weights: list[torch.Tensor] | None = None):
        super().__init__()
        self.cfg = cfg
        self.fcs = nn.ModuleList(nn.Linear(i, o, bias=False) for o, i in cfg.weight_shapes())
        self.beta = torch.tensor(1.0 - 2.0**-cfg.leak_shift)
        self.threshold = torch.tensor(1.0)
        self.width = (1 << cfg.surrogate_shift) / cfg.theta
        if weights is not None:
            self.load_integer_weights(weights)

    def load_integer_weights(self, weights: list[torch.Tensor]) -> None:
        """Set float weights to integer master weights ``/ (theta * 2**frac_bits)``."""
        scale = self.cfg.theta * (1 << self.cfg.frac_bits)
        with torch.no_grad():
            for fc, w in zip(self.fcs, weights, strict=True):
                fc.weight.copy_(w.to(torch.float32) / scale)

    def lif(self, cur: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the LIF neuron over ``cur`` ``[B, T, n]``; returns ``(spikes, membranes)``."""
        mem = torch.zeros_like(cur[:, 0])
        spks, mems = [], []
        sltt = self.cfg.bptt == "sltt"
        for t in range(cur.shape[1]):
            prev = mem.detach() if sltt else mem
            reset = (mem - self.threshold > 0).to(mem.dtype).detach()
            if self.cfg.reset == "subtract":
                mem = self.beta * prev + cur[:, t] - reset * self.threshold
            else:
                mem = self.beta * ((1 - reset) * prev) + cur[:, t]
            spk = SurrogateSpike.apply(mem - self.threshold, self.cfg.surrogate, self.width)
            spks.append(spk)
            mems.append(mem)
        return torch.stack(spks, 1), torch.stack(mems, 1)

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        spikes, mems = [], []
        for fc in self.fcs:
            cur = fc(x)
            if cur.dim() == 2:
                cur = cur.unsqueeze(1).expand(-1, self.cfg.timesteps, -1)
            x, mem = self.lif(cur)
            spikes.append(x)
            mems.append(mem)
        return spikes, mems

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Most output spikes; ties go to the larger last membrane (as the integer model)."""
        with torch.no_grad():
            spikes, mems = self(x)
        counts = spikes[-1].sum(1)
        last = torch.sigmoid(mems[-1][:, -1])  # in (0, 1): breaks ties, never outranks a count
        return (counts + last).argmax(1)


def count_loss(cfg: SnnConfig, out_spikes: torch.Tensor, labels: torch.Tensor, kind: str):
    """Loss on output spike counts.

    ``mse``: ``0.5 * sum_j (count_j - target_j)**2`` averaged over the batch, whose gradient
    ``count - target`` is the integer model's output error. ``ce``: cross-entropy of the counts.
    """
    counts = out_spikes.sum(1)
    if kind == "ce":
        return nn.functional.cross_entropy(counts, labels)
    if kind != "mse":
        raise ValueError(f"loss must be 'mse' or 'ce', not {kind!r}")
    target = torch.full_like(counts, float(cfg.target_lo))
    target.scatter_(1, labels.reshape(-1, 1), float(cfg.target_hi))
    return 0.5 * ((counts - target) ** 2).sum(1).mean()
