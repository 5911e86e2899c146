"""The bit-exact integer golden model: forward, backward through time, gradients, update.

Everything here is ``torch.int64`` arithmetic following docs/arithmetic.md; no floating point
touches the integer path. Tensors are batched: ``B`` samples are simulated at once and every
intermediate the hardware exposes is returned in a :class:`LayerTrace` per layer.

Shapes: weights ``W[l]`` are ``[n_out, n_in]``; per-timestep quantities are ``[B, T, n]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .config import SnnConfig
from .fixed import leak, sat, shr_floor, shr_round, shr_stoch
from .lfsr import draws, seed_state

__all__ = [
    "GoldenModel",
    "LayerTrace",
    "StepResult",
    "init_weights",
    "output_error",
    "predict",
    "predict_counts",
]


@dataclass
class LayerTrace:
    """What one layer did for a batch; backward fields are ``None`` until :meth:`backward`.

    Attributes
    ----------
    x : input spikes ``[B, T, n_in]`` (0/1), or intensities ``[B, n_in]`` for direct coding
    current : exact synaptic current ``[B, T, n]`` (before leak, reset and saturation)
    u : membrane after integration, before reset ``[B, T, n]`` (what the surrogate reads)
    s : output spikes ``[B, T, n]`` (0/1)
    e : error arriving at the layer, ``dL/ds`` ``[B, T, n]``
    delta : ``dL/du`` ``[B, T, n]``
    e_prev : error sent to the previous layer, ``sat(round(delta @ W))`` ``[B, T, n_in]``
    grad : weight-gradient accumulator after each sample ``[B, n, n_in]``
    """

    x: torch.Tensor
    current: torch.Tensor
    u: torch.Tensor
    s: torch.Tensor
    e: torch.Tensor | None = None
    delta: torch.Tensor | None = None
    e_prev: torch.Tensor | None = None
    grad: torch.Tensor | None = None

    @property
    def direct(self) -> bool:
        return self.x.dim() == 2


@dataclass
class StepResult:
    """One training step: the traces, the output error, and the weights after the update."""

    traces: list[LayerTrace]
    e_out: torch.Tensor
    weights: list[torch.Tensor]
    updated: bool


def init_weights(cfg: SnnConfig) -> list[torch.Tensor]:
    """Master weights, uniform integers in ``[-a, a]`` scaled by ``2**frac_bits``.

    ``a = clamp(init_scale * theta // isqrt(4 * fan_in), 1, 2**(w_bits-1) - 1)``; layer ``l`` uses
    a CPU ``torch.Generator`` seeded with ``init_seed + l``.
    """
    out = []
    wmax = (1 << (cfg.w_bits - 1)) - 1
    for layer, (n_out, n_in) in enumerate(cfg.weight_shapes()):
        a = cfg.init_scale * cfg.theta // math.isqrt(4 * n_in)
        a = min(max(a, 1), wmax)
        gen = torch.Generator().manual_seed(cfg.init_seed + layer)
        w = torch.randint(-a, a + 1, (n_out, n_in), generator=gen, dtype=torch.int64)
        out.append(w << cfg.frac_bits)
    return out


def output_error(cfg: SnnConfig, s_out: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``e[b, t, j] = sat_g((count[b, j] - target[b, j]) << err_shift)`` for every ``t``.

    ``count`` is the spike count over ``T``; ``target`` is ``target_hi`` at the label and
    ``target_lo`` elsewhere.
    """
    counts = s_out.sum(1)
    target = torch.full_like(counts, cfg.target_lo)
    target.scatter_(1, labels.to(torch.int64).reshape(-1, 1), cfg.target_hi)
    e = sat((counts - target) << cfg.err_shift, cfg.g_bits)
    return e.unsqueeze(1).expand(-1, cfg.timesteps, -1).contiguous()


def error_from_sum(cfg: SnnConfig, total: torch.Tensor) -> torch.Tensor:
    """``e_prev = sat_g(rnd(total, Q))`` of the exact sum ``total = W^T . delta``: one rounding,
    one saturation -- also when a split layer's cores deliver ``total`` as exact partial sums
    over their neurons (the reducer adds them, then calls this)."""
    return sat(shr_round(total, cfg.bp_shift), cfg.g_bits)


def predict(cfg: SnnConfig, s_out: torch.Tensor, u_out: torch.Tensor) -> torch.Tensor:
    """Class = most output spikes; ties go to the larger last membrane, then the lowest index.

    Key: ``count << v_bits | (u[T-1] + 2**(v_bits-1))``, arg-max with the first index on ties.
    """
    return predict_counts(cfg, s_out.sum(1), u_out[:, -1, :])


def predict_counts(cfg: SnnConfig, counts: torch.Tensor, u_last: torch.Tensor) -> torch.Tensor:
    """:func:`predict` from the output spike counts ``[B, n]`` and the last membranes ``[B, n]``
    (what a host reads of a core: two short answers instead of every timestep's spikes)."""
    key = (counts << cfg.v_bits) | (u_last + (1 << (cfg.v_bits - 1)))
    return key.argmax(1)


class GoldenModel:
    """Integer network state (master weights, update LFSRs, gradient accumulators) and its rules.

    Parameters
    ----------
    cfg : SnnConfig
    weights : list of int64 tensors, optional
        Master weights (``w_bits + frac_bits`` wide); default :func:`init_weights`.
    """

    def __init__(self, cfg: SnnConfig, weights: list[torch.Tensor] | None = None):
        if not isinstance(cfg, SnnConfig):
            raise TypeError(f"cfg must be an SnnConfig, not {cfg!r}")
        self.cfg = cfg
        self.weights = [w.clone() for w in weights] if weights is not None else init_weights(cfg)
        lo, hi = -(1 << (cfg.master_bits - 1)), (1 << (cfg.master_bits - 1)) - 1
        for layer, (w, shape) in enumerate(zip(self.weights, cfg.weight_shapes(), strict=True)):
            if tuple(w.shape) != shape or w.dtype != torch.int64:
                raise ValueError(
                    f"weights[{layer}] must be int64 of shape {shape}, "
                    f"not {w.dtype} {tuple(w.shape)}"
                )
            if int(w.min()) < lo or int(w.max()) > hi:
                raise ValueError(f"weights[{layer}] exceed the {cfg.master_bits}-bit master range")
        self.lfsr_states = [
            seed_state(cfg.lfsr_seed, layer, torch.arange(n_out, dtype=torch.int64))
            for layer, (n_out, _) in enumerate(cfg.weight_shapes())
        ]
        self.grad_acc = [torch.zeros(shape, dtype=torch.int64) for shape in cfg.weight_shapes()]
        self.pending = 0
        self._lr_shift = cfg.lr_shift

    @property
    def lr_shift(self) -> int:
        """The learning-rate shift in force: a runtime register, initially ``cfg.lr_shift``.

        A host may raise it between updates (a step learning-rate schedule)."""
        return self._lr_shift

    @lr_shift.setter
    def lr_shift(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"lr_shift must be an int, not {value!r}")
        if not self.cfg.frac_bits <= value <= 40:
            raise ValueError(
                f"lr_shift = {value} is out of range: allowed [{self.cfg.frac_bits}, 40]"
            )
        self._lr_shift = value

    def state_dict(self) -> dict:
        """Everything a training run needs to resume bit-exactly."""
        return {
            "weights": [w.clone() for w in self.weights],
            "lfsr_states": [s.clone() for s in self.lfsr_states],
            "grad_acc": [g.clone() for g in self.grad_acc],
            "pending": self.pending,
            "lr_shift": self.lr_shift,
        }

    @classmethod
    def from_state(cls, cfg: SnnConfig, state: dict) -> GoldenModel:
        model = cls(cfg, state["weights"])
        model.lfsr_states = [s.clone() for s in state["lfsr_states"]]
        model.grad_acc = [g.clone() for g in state["grad_acc"]]
        model.pending = int(state["pending"])
        model.lr_shift = int(state["lr_shift"])
        return model

    # -- forward ---------------------------------------------------------------------------
    def effective_weights(self, layer: int) -> torch.Tensor:
        """Forward weights: ``W_master >> frac_bits`` (arithmetic shift)."""
        return shr_floor(self.weights[layer], self.cfg.frac_bits)

    def forward(self, x: torch.Tensor) -> list[LayerTrace]:
        """Simulate all ``T`` timesteps of every layer.

        ``x``: spikes ``[B, T, n_in]`` for rate coding, intensities ``[B, n_in]`` for direct coding.
        """
        cfg = self.cfg
        expect = 2 if cfg.encoder == "direct" else 3
        if x.dim() != expect or x.shape[-1] != cfg.n_inputs:
            raise ValueError(
                f"input must have {expect} dims ending in {cfg.n_inputs}, not {tuple(x.shape)}"
            )
        traces = []
        for layer in range(cfg.n_layers):
            trace = self._forward_layer(layer, x)
            traces.append(trace)
            x = trace.s
        return traces

    def _forward_layer(self, layer: int, x: torch.Tensor) -> LayerTrace:
        cfg = self.cfg
        w = self.effective_weights(layer)
        if x.dim() == 2:  # direct coding: (W @ x) >> in_bits, the same at every timestep
            cur = shr_floor(x @ w.T, cfg.in_bits).unsqueeze(1).expand(-1, cfg.timesteps, -1)
        else:
            cur = x @ w.T
        b, n = cur.shape[0], w.shape[0]
        u_prev = torch.zeros(b, n, dtype=torch.int64)
        s_prev = torch.zeros(b, n, dtype=torch.int64)
        us, ss = [], []
        for t in range(cfg.timesteps):
            if cfg.reset == "subtract":
                pre = leak(u_prev, cfg.leak_shift) + cur[:, t] - cfg.theta * s_prev
            else:
                pre = leak(u_prev, cfg.leak_shift) * (1 - s_prev) + cur[:, t]
            u_prev = sat(pre, cfg.v_bits)
            s_prev = (u_prev >= cfg.theta).to(torch.int64)
            us.append(u_prev)
            ss.append(s_prev)
        return LayerTrace(x=x, current=cur.contiguous(), u=torch.stack(us, 1), s=torch.stack(ss, 1))

    # -- backward --------------------------------------------------------------------------
    def surrogate(self, e: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """Local term ``e * sigma'(u)`` in ``g`` units (before the temporal term).

        boxcar:   ``e`` if ``|u - theta| < 2**sw`` else 0
        triangle: ``round((e * max(0, 2**sw - |u - theta|)) >> sw)``
        """
        cfg = self.cfg
        width = 1 << cfg.surrogate_shift
        dist = (u - cfg.theta).abs()
        if cfg.surrogate == "boxcar":
            return e * (dist < width).to(torch.int64)
        return shr_round(e * (width - dist).clamp(min=0), cfg.surrogate_shift)

    def backward(self, traces: list[LayerTrace], e_out: torch.Tensor) -> None:
        """Fill ``e``, ``delta``, ``e_prev`` and ``grad`` of every trace, output layer first.

        ``e_out`` ``[B, T, n_out]`` is the output error (:func:`output_error`, or supplied
        externally). Gradients also accumulate into :attr:`grad_acc` for :meth:`update`.
        """
        cfg = self.cfg
        e = e_out
        for layer in reversed(range(cfg.n_layers)):
            tr = traces[layer]
            tr.e = e
            local = self.surrogate(e, tr.u)
            deltas = [None] * cfg.timesteps
            nxt = torch.zeros_like(local[:, 0])
            for t in reversed(range(cfg.timesteps)):
                d = local[:, t]
                if cfg.bptt == "bptt" and t < cfg.timesteps - 1:
                    temporal = leak(nxt, cfg.leak_shift)
                    if cfg.reset == "zero":
                        temporal = temporal * (1 - tr.s[:, t])
                    d = d + temporal
                nxt = sat(d, cfg.g_bits)
                deltas[t] = nxt
            tr.delta = torch.stack(deltas, 1)
            w = self.effective_weights(layer)
            tr.e_prev = error_from_sum(cfg, tr.delta @ w)
            tr.grad = self._accumulate(layer, tr)
            e = tr.e_prev

    def _accumulate(self, layer: int, tr: LayerTrace) -> torch.Tensor:
        """``acc = sat_acc(acc + delta[t] (x) x[t])`` per sample, ``t = T-1 .. 0``; adds only."""
        cfg = self.cfg
        x = tr.x
        if tr.direct:
            x = x.unsqueeze(1).expand(-1, cfg.timesteps, -1)
        acc = self.grad_acc[layer]
        per_sample = []
        for b in range(x.shape[0]):
            d, xb = tr.delta[b], x[b]
            if self._cannot_saturate(layer, acc):
                acc = sat(acc + d.T @ xb, cfg.acc_bits)
            else:
                for t in reversed(range(cfg.timesteps)):
                    acc = sat(acc + torch.outer(d[t], xb[t]), cfg.acc_bits)
            per_sample.append(acc)
        self.grad_acc[layer] = acc
        self.pending += x.shape[0] if layer == 0 else 0
        return torch.stack(per_sample, 0)

    def _cannot_saturate(self, layer: int, acc: torch.Tensor) -> bool:
        """True when no order of this sample's adds can leave the ``acc_bits`` range.

        Then the per-timestep saturating adds equal one exact sum followed by one saturation.
        """
        cfg = self.cfg
        x_max = (1 << cfg.in_bits) - 1 if (layer == 0 and cfg.encoder == "direct") else 1
        worst = cfg.timesteps * (1 << (cfg.g_bits - 1)) * x_max
        bound = 1 << (cfg.acc_bits - 1)
        peak = int(acc.abs().max()) if acc.numel() else 0
        return peak + worst < bound

    # -- update ----------------------------------------------------------------------------
    def update(self) -> list[torch.Tensor]:
        """Apply ``W_m = sat_m(W_m - R(acc))`` to every layer, clear accumulators, return weights.

        ``R`` shifts right by ``lr_shift - frac_bits`` (plus ``in_bits`` for a direct-coded first
        layer),
        rounding to nearest or stochastically with ``r`` drawn per weight, row ``j`` from its own
        LFSR, ``i = 0 .. n_in-1`` in order.
        """
        cfg = self.cfg
        for layer in range(cfg.n_layers):
            shift = self.lr_shift - cfg.frac_bits
            if layer == 0 and cfg.encoder == "direct":
                shift += cfg.in_bits
            acc = self.grad_acc[layer]
            if cfg.rounding == "nearest" or shift == 0:
                step = shr_round(acc, shift)
            else:
                r, self.lfsr_states[layer] = draws(self.lfsr_states[layer], acc.shape[1], shift)
                step = shr_stoch(acc, shift, r)
            self.weights[layer] = sat(self.weights[layer] - step, cfg.master_bits)
            self.grad_acc[layer] = torch.zeros_like(acc)
        self.pending = 0
        return [w.clone() for w in self.weights]

    # -- whole steps -----------------------------------------------------------------------
    def train_step(
        self, x: torch.Tensor, labels: torch.Tensor | None = None, e_out: torch.Tensor | None = None
    ) -> StepResult:
        """Forward, output error (from ``labels`` or an external ``e_out``), backward, and the
        update once ``batch_size`` samples have accumulated."""
        if (labels is None) == (e_out is None):
            raise ValueError("give exactly one of labels or e_out")
        traces = self.forward(x)
        if e_out is None:
            e_out = output_error(self.cfg, traces[-1].s, labels)
        self.backward(traces, e_out)
        updated = self.pending >= self.cfg.batch_size
        weights = self.update() if updated else [w.clone() for w in self.weights]
        return StepResult(traces=traces, e_out=e_out, weights=weights, updated=updated)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Predicted classes for a batch of encoded inputs."""
        out = self.forward(x)[-1]
        return predict(self.cfg, out.s, out.u)
