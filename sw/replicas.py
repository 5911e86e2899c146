"""Many independent replicas of one network shape, trained as one batched integer program.

A :class:`ReplicaModel` holds ``R`` golden models (:class:`~spikeforge.sw.golden.GoldenModel`)
that share the tensor shapes -- ``layers``, ``timesteps``, ``encoder`` and ``batch_size``
(:data:`SHARED_FIELDS`) -- and may differ in every other config field. Their state is stacked
along a leading replica axis: weights ``[R, n_out, n_in]``, update LFSRs ``[R, n_out]``,
accumulators ``[R, n_out, n_in]``; a step takes ``[R, B, T, n_in]`` spikes (``[R, B, n_in]``
intensities for direct coding) and ``[R, B]`` labels, one sample stream per replica.

Every operation is the golden model's ``torch.int64`` arithmetic (docs/arithmetic.md) with the
replica axis in front: matrix products become ``bmm`` (exact: integer sums do not depend on
their order), and a field the replicas disagree on becomes an ``[R, 1, ...]`` tensor that
broadcasts -- shift amounts, saturation bounds, thresholds, and 0/1 masks that select the reset,
surrogate, BPTT and rounding rule of each replica. A field every replica agrees on stays a Python
int and runs the golden model's own expression. Each replica is bit-identical to training it
alone: weights, LFSR states, accumulators and every trace (``tests/test_replicas.py``).

Two places decide per replica what the golden model decides per model:

* the accumulation fast path (:meth:`GoldenModel._cannot_saturate`): replicas whose sample cannot
  saturate add the exact sum once; the others take the per-timestep saturating adds;
* stochastic rounding: replicas are grouped by their update shift ``U``, and each group draws
  ``U``-bit numbers from its own row LFSRs (:func:`~spikeforge.sw.lfsr.draws`); replicas that
  round to nearest, or have ``U = 0``, draw nothing.

:func:`train_replicas` is :func:`~spikeforge.sw.train.train_int` for ``R`` configs at once: the
same sample order, encoder keys, learning-rate schedule, accuracies and checkpoints, per replica.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch

from .checkpoint import save_checkpoint
from .config import SnnConfig
from .data import Dataset
from .encoders import encode, quantize
from .fixed import shr_round
from .golden import GoldenModel, LayerTrace, init_weights
from .lfsr import draws, seed_state
from .train import (
    TrainResult,
    check_dataset,
    epoch_samples,
    eval_keys,
    lr_steps,
)

__all__ = [
    "SHARED_FIELDS",
    "ReplicaModel",
    "ReplicaRun",
    "ReplicaStep",
    "ReplicaTrace",
    "check_replica_configs",
    "train_replicas",
]

SHARED_FIELDS = {
    "layers": "the weight, membrane and spike tensor shapes",
    "timesteps": "the time axis of every per-timestep tensor",
    "encoder": "the input's shape (spikes [B, T, n_in] or intensities [B, n_in])",
    "batch_size": "the samples per step and when the shared update happens",
}
"""Fields every replica must share, and why; every other field may differ per replica."""


def check_replica_configs(cfgs: Sequence[SnnConfig]) -> tuple[SnnConfig, ...]:
    """``cfgs`` as a tuple after checking they can run as replicas of one model.

    Raises
    ------
    TypeError
        Unless ``cfgs`` is a non-empty sequence of :class:`SnnConfig`.
    ValueError
        When a config differs from the first in a field of :data:`SHARED_FIELDS`; the message
        names the field, both values and what the field shapes.
    """
    if isinstance(cfgs, SnnConfig) or not isinstance(cfgs, Sequence) or not cfgs:
        raise TypeError(f"cfgs must be a non-empty sequence of SnnConfig, not {cfgs!r}")
    cfgs = tuple(cfgs)
    for r, cfg in enumerate(cfgs):
        if not isinstance(cfg, SnnConfig):
            raise TypeError(f"cfgs[{r}] must be an SnnConfig, not {cfg!r}")
        for name, why in SHARED_FIELDS.items():
            mine, first = getattr(cfg, name), getattr(cfgs[0], name)
            if mine != first:
                raise ValueError(
                    f"replica {r} has {name} = {mine!r} but replica 0 has {first!r}: replicas "
                    f"must share {name} (it sets {why}); train such configs in separate groups"
                )
    return cfgs


class _Ints:
    """One integer per replica: a Python int when all replicas agree, else an ``[R]`` tensor.

    :meth:`at` gives the value ready to broadcast against a tensor of ``ndim`` dimensions whose
    first one is the replica axis.
    """

    def __init__(self, values: Sequence[int]):
        self.values = tuple(int(v) for v in values)
        self.uniform = len(set(self.values)) == 1
        self._tensor = torch.tensor(self.values, dtype=torch.int64)
        self._views: dict[int, int | torch.Tensor] = {}

    def at(self, ndim: int) -> int | torch.Tensor:
        if self.uniform:
            return self.values[0]
        if ndim not in self._views:
            self._views[ndim] = self._tensor.view(-1, *([1] * (ndim - 1)))
        return self._views[ndim]

    def map(self, fn: Callable[[int], int]) -> _Ints:
        return _Ints([fn(v) for v in self.values])

    def take(self, index: Sequence[int]) -> _Ints:
        return _Ints([self.values[i] for i in index])

    def tensor(self) -> torch.Tensor:
        return self._tensor


class _Width:
    """Per-replica saturation bounds of a signed width (``sat_b`` of docs/arithmetic.md)."""

    def __init__(self, bits: _Ints):
        self.bits = bits
        self.lo = bits.map(lambda b: -(1 << (b - 1)))
        self.hi = bits.map(lambda b: (1 << (b - 1)) - 1)

    def sat(self, x: torch.Tensor) -> torch.Tensor:
        """:func:`~spikeforge.sw.fixed.sat` with each replica's width (checked by SnnConfig)."""
        return x.clamp(self.lo.at(x.dim()), self.hi.at(x.dim()))

    def take(self, index: Sequence[int]) -> _Width:
        return _Width(self.bits.take(index))


def _shr_floor(x: torch.Tensor, s: _Ints) -> torch.Tensor:
    """``x >> s`` per replica (:func:`~spikeforge.sw.fixed.shr_floor`; the shifts are config
    fields, range-checked by :class:`SnnConfig`)."""
    return x >> s.at(x.dim())


def _shr_round(x: torch.Tensor, s: _Ints) -> torch.Tensor:
    """``rnd(x, s)`` per replica: ``(x + (2**s >> 1)) >> s``, which is ``x`` when ``s = 0``."""
    if s.uniform:
        return shr_round(x, s.values[0])
    half = s.map(lambda v: (1 << v) >> 1)
    return (x + half.at(x.dim())) >> s.at(x.dim())


def _leak(x: torch.Tensor, k: _Ints) -> torch.Tensor:
    """``leak_k(x) = x - (x >> k)`` per replica."""
    return x - _shr_floor(x, k)


@dataclass
class ReplicaTrace(LayerTrace):
    """A :class:`~spikeforge.sw.golden.LayerTrace` of every replica, replica axis first.

    Shapes are the golden model's with ``R`` in front: ``x`` ``[R, B, T, n_in]`` (direct coding:
    ``[R, B, n_in]``), ``current``/``u``/``s``/``e``/``delta`` ``[R, B, T, n]``, ``e_prev``
    ``[R, B, T, n_in]``, ``grad`` ``[R, B, n, n_in]``.
    """

    @property
    def direct(self) -> bool:
        return self.x.dim() == 3

    def replica(self, r: int) -> LayerTrace:
        """Replica ``r``'s trace, as :class:`GoldenModel` would have returned it."""
        parts = {f.name: getattr(self, f.name) for f in fields(self)}
        return LayerTrace(**{k: None if v is None else v[r] for k, v in parts.items()})


@dataclass
class ReplicaStep:
    """One training step of every replica: traces, output errors ``[R, B, T, n_out]``, and
    whether the update ran (it runs for all replicas at once: they share ``batch_size``)."""

    traces: list[ReplicaTrace]
    e_out: torch.Tensor
    updated: bool


class ReplicaModel:
    """``R`` integer golden models of one shape, stepped together as batched tensors.

    Parameters
    ----------
    cfgs : sequence of SnnConfig
        One config per replica; they must agree on :data:`SHARED_FIELDS` and may differ in
        everything else (seeds, widths, shifts, theta, reset, surrogate, bptt, rounding, ...).
    weights : list of int64 tensors, optional
        Stacked master weights ``[R, n_out, n_in]`` per layer; default each replica's
        :func:`~spikeforge.sw.golden.init_weights`.

    Attributes
    ----------
    weights, lfsr_states, grad_acc : list of int64 tensors
        Per layer, replica axis first: ``[R, n_out, n_in]``, ``[R, n_out]``, ``[R, n_out, n_in]``.
    pending : int
        Samples accumulated since the last update (the same for every replica).
    """

    def __init__(self, cfgs: Sequence[SnnConfig], weights: list[torch.Tensor] | None = None):
        self.cfgs = check_replica_configs(cfgs)
        base = self.cfgs[0]
        self.n_replicas = len(self.cfgs)
        self.shape_cfg = base
        if weights is None:
            per = [init_weights(cfg) for cfg in self.cfgs]
            weights = [torch.stack(ws, 0) for ws in zip(*per, strict=True)]
        self.weights = [w.clone() for w in weights]
        self._p = {name: self._ints(name) for name in _INT_FIELDS}
        self._check_weights()
        self.lfsr_states = [
            torch.stack([seed_state(c.lfsr_seed, layer, torch.arange(n_out)) for c in self.cfgs], 0)
            for layer, (n_out, _) in enumerate(base.weight_shapes())
        ]
        self.grad_acc = [torch.zeros(self.n_replicas, *s, dtype=torch.int64) for s in self._shapes]
        self.pending = 0
        self._lr_shifts = tuple(cfg.lr_shift for cfg in self.cfgs)
        self._derive_constants()

    # -- construction ----------------------------------------------------------------------
    @property
    def _shapes(self) -> list[tuple[int, int]]:
        return self.shape_cfg.weight_shapes()

    def _ints(self, name: str) -> _Ints:
        return _Ints([getattr(cfg, name) for cfg in self.cfgs])

    def _check_weights(self) -> None:
        master = _Width(self._ints("master_bits"))
        for layer, (w, shape) in enumerate(zip(self.weights, self._shapes, strict=True)):
            want = (self.n_replicas, *shape)
            if tuple(w.shape) != want or w.dtype != torch.int64:
                raise ValueError(
                    f"weights[{layer}] must be int64 of shape {want}, "
                    f"not {w.dtype} {tuple(w.shape)}"
                )
            if not torch.equal(master.sat(w), w):
                raise ValueError(f"weights[{layer}] exceed a replica's master_bits range")

    def _derive_constants(self) -> None:
        cfgs, p = self.cfgs, self._p
        self._w = {name: _Width(p[name]) for name in ("v_bits", "g_bits", "acc_bits")}
        self._master = _Width(self._ints("master_bits"))
        self._zero_reset = _Ints([c.reset == "zero" for c in cfgs])
        self._keep_theta = _Ints([0 if c.reset == "zero" else c.theta for c in cfgs])
        self._triangle = _Ints([c.surrogate == "triangle" for c in cfgs])
        self._temporal = _Ints([c.bptt == "bptt" for c in cfgs])
        self._width = p["surrogate_shift"].map(lambda s: 1 << s)
        self._half_v = p["v_bits"].map(lambda b: 1 << (b - 1))
        direct = self.shape_cfg.encoder == "direct"
        self._x_max = [
            _Ints([(1 << c.in_bits) - 1 if (layer == 0 and direct) else 1 for c in cfgs])
            for layer in range(self.shape_cfg.n_layers)
        ]
        # _cannot_saturate: peak + T * 2**(g_bits - 1) * x_max < 2**(acc_bits - 1), per replica
        self._peak_limit = [
            torch.tensor(
                [
                    (1 << (c.acc_bits - 1)) - c.timesteps * (1 << (c.g_bits - 1)) * xm
                    for c, xm in zip(cfgs, x_max.values, strict=True)
                ],
                dtype=torch.int64,
            )
            for x_max in self._x_max
        ]

    @classmethod
    def from_models(cls, models: Sequence[GoldenModel]) -> ReplicaModel:
        """Stack golden models (their whole state, mid-batch included) into replicas."""
        if not models or not all(isinstance(m, GoldenModel) for m in models):
            raise TypeError("models must be a non-empty sequence of GoldenModel")
        pending = {m.pending for m in models}
        if len(pending) != 1:
            raise ValueError(f"models must have the same pending sample count, not {pending}")
        weights = [torch.stack(ws, 0) for ws in zip(*(m.weights for m in models), strict=True)]
        out = cls([m.cfg for m in models], weights)
        out.lfsr_states = [
            torch.stack(s, 0) for s in zip(*(m.lfsr_states for m in models), strict=True)
        ]
        out.grad_acc = [torch.stack(g, 0) for g in zip(*(m.grad_acc for m in models), strict=True)]
        out.pending = pending.pop()
        out.lr_shifts = [m.lr_shift for m in models]
        return out

    def state_dict(self, r: int) -> dict:
        """Replica ``r``'s :meth:`GoldenModel.state_dict` (for checkpoints and :meth:`model`)."""
        self._check_replica(r)
        return {
            "weights": [w[r].clone() for w in self.weights],
            "lfsr_states": [s[r].clone() for s in self.lfsr_states],
            "grad_acc": [g[r].clone() for g in self.grad_acc],
            "pending": self.pending,
            "lr_shift": self._lr_shifts[r],
        }

    def model(self, r: int) -> GoldenModel:
        """Replica ``r`` as a standalone :class:`GoldenModel` (a copy)."""
        self._check_replica(r)
        return GoldenModel.from_state(self.cfgs[r], self.state_dict(r))

    def _check_replica(self, r: int) -> None:
        if isinstance(r, bool) or not isinstance(r, int) or not 0 <= r < self.n_replicas:
            raise IndexError(f"replica must be an int in [0, {self.n_replicas - 1}], not {r!r}")

    # -- runtime learning rate ---------------------------------------------------------------
    @property
    def lr_shifts(self) -> tuple[int, ...]:
        """Each replica's ``lr_shift`` register (:attr:`GoldenModel.lr_shift`)."""
        return self._lr_shifts

    @lr_shifts.setter
    def lr_shifts(self, values: Sequence[int]) -> None:
        values = tuple(values)
        if len(values) != self.n_replicas:
            raise ValueError(f"lr_shifts needs {self.n_replicas} values, not {len(values)}")
        for r, (v, cfg) in enumerate(zip(values, self.cfgs, strict=True)):
            if isinstance(v, bool) or not isinstance(v, int):
                raise TypeError(f"lr_shifts[{r}] must be an int, not {v!r}")
            if not cfg.frac_bits <= v <= 40:
                raise ValueError(
                    f"lr_shifts[{r}] = {v} is out of range: allowed [{cfg.frac_bits}, 40]"
                )
        self._lr_shifts = values

    # -- forward ---------------------------------------------------------------------------
    def effective_weights(self, layer: int) -> torch.Tensor:
        """Forward weights ``W_master >> frac_bits`` ``[R, n_out, n_in]``."""
        return _shr_floor(self.weights[layer], self._p["frac_bits"])

    def forward(self, x: torch.Tensor) -> list[ReplicaTrace]:
        """Simulate all ``T`` timesteps of every layer of every replica.

        ``x``: int64 spikes ``[R, B, T, n_in]`` (rate coding) or intensities ``[R, B, n_in]``
        (direct coding), one sample stream per replica.
        """
        cfg = self.shape_cfg
        direct = cfg.encoder == "direct"
        want = (
            (self.n_replicas, "B", cfg.n_inputs)
            if direct
            else (self.n_replicas, "B", cfg.timesteps, cfg.n_inputs)
        )
        ok = x.dim() == len(want) and all(w == "B" or x.shape[k] == w for k, w in enumerate(want))
        if not ok or x.dtype != torch.int64:
            raise ValueError(f"input must be int64 of shape {want}, not {x.dtype} {tuple(x.shape)}")
        traces = []
        for layer in range(cfg.n_layers):
            traces.append(self._forward_layer(layer, x))
            x = traces[-1].s
        return traces

    def _current(self, layer: int, x: torch.Tensor) -> torch.Tensor:
        """Exact synaptic currents ``[R, B, T, n_out]`` (direct: ``(W @ x) >> in_bits``)."""
        w_t = self.effective_weights(layer).transpose(1, 2)
        if x.dim() == 3:
            cur = _shr_floor(torch.bmm(x, w_t), self._p["in_bits"])
            return cur.unsqueeze(2).expand(-1, -1, self.shape_cfg.timesteps, -1)
        r, b, t, n_in = x.shape
        return torch.bmm(x.reshape(r, b * t, n_in), w_t).view(r, b, t, -1)

    def _forward_layer(self, layer: int, x: torch.Tensor) -> ReplicaTrace:
        cur = self._current(layer, x)
        theta, k = self._p["theta"].at(3), self._p["leak_shift"]
        u_prev = torch.zeros(cur.shape[0], cur.shape[1], cur.shape[3], dtype=torch.int64)
        s_prev = torch.zeros_like(u_prev)
        us, ss = [], []
        for t in range(self.shape_cfg.timesteps):
            pre = self._integrate(_leak(u_prev, k), cur[:, :, t], s_prev)
            u_prev = self._w["v_bits"].sat(pre)
            s_prev = (u_prev >= theta).to(torch.int64)
            us.append(u_prev)
            ss.append(s_prev)
        return ReplicaTrace(
            x=x, current=cur.contiguous(), u=torch.stack(us, 2), s=torch.stack(ss, 2)
        )

    def _integrate(self, leaked: torch.Tensor, cur: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """Membrane before saturation: subtract reset ``leak(u) + I - theta s``, zero reset
        ``leak(u) (1 - s) + I``; mixed replicas ``leak(u) (1 - z s) + I - keep s`` with
        ``z = 1``, ``keep = 0`` (zero) or ``z = 0``, ``keep = theta`` (subtract)."""
        z = self._zero_reset
        if z.uniform and z.values[0]:
            return leaked * (1 - s) + cur
        if z.uniform:
            return leaked + cur - self._p["theta"].at(3) * s
        return leaked * (1 - z.at(3) * s) + cur - self._keep_theta.at(3) * s

    # -- backward --------------------------------------------------------------------------
    def surrogate(self, e: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """:meth:`GoldenModel.surrogate` per replica (boxcar or triangle, own window)."""
        width = self._width.at(u.dim())
        dist = (u - self._p["theta"].at(u.dim())).abs()
        tri = self._triangle
        box = None if tri.uniform and tri.values[0] else e * (dist < width).to(torch.int64)
        if tri.uniform and not tri.values[0]:
            return box
        triangle = _shr_round(e * (width - dist).clamp(min=0), self._p["surrogate_shift"])
        return triangle if box is None else torch.where(tri.at(u.dim()) != 0, triangle, box)

    def backward(self, traces: list[ReplicaTrace], e_out: torch.Tensor) -> None:
        """:meth:`GoldenModel.backward` for every replica: fill ``e``, ``delta``, ``e_prev`` and
        ``grad`` of every trace and accumulate into :attr:`grad_acc`."""
        e = e_out
        for layer in reversed(range(self.shape_cfg.n_layers)):
            tr = traces[layer]
            tr.e = e
            tr.delta = self._deltas(self.surrogate(e, tr.u), tr.s)
            r, b, t, n = tr.delta.shape
            total = torch.bmm(tr.delta.reshape(r, b * t, n), self.effective_weights(layer))
            total = total.view(r, b, t, -1)
            tr.e_prev = self._w["g_bits"].sat(_shr_round(total, self._p["bp_shift"]))
            tr.grad = self._accumulate(layer, tr)
            e = tr.e_prev

    def _deltas(self, local: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """``delta[t] = sat_g(g[t] + m[t] leak(delta[t+1]))`` (BPTT) or ``sat_g(g[t])`` (SLTT)."""
        temporal, z = self._temporal, self._zero_reset
        g_sat, k = self._w["g_bits"].sat, self._p["leak_shift"]
        steps = local.shape[2]
        deltas = [None] * steps
        nxt = torch.zeros_like(local[:, :, 0])
        for t in reversed(range(steps)):
            d = local[:, :, t]
            if t < steps - 1 and not (temporal.uniform and not temporal.values[0]):
                term = _leak(nxt, k)
                if not z.uniform:
                    term = term * (1 - z.at(3) * s[:, :, t])
                elif z.values[0]:
                    term = term * (1 - s[:, :, t])
                d = d + (term if temporal.uniform else temporal.at(3) * term)
            nxt = g_sat(d)
            deltas[t] = nxt
        return torch.stack(deltas, 2)

    def _accumulate(self, layer: int, tr: ReplicaTrace) -> torch.Tensor:
        """``acc = sat_acc(acc + delta[t] (x) x[t])`` per replica and sample, ``t = T-1 .. 0``."""
        x = tr.x
        if tr.direct:
            x = x.unsqueeze(2).expand(-1, -1, self.shape_cfg.timesteps, -1)
        acc_w = self._w["acc_bits"]
        acc = self.grad_acc[layer]
        per_sample = []
        for b in range(x.shape[1]):
            d, xb = tr.delta[:, b], x[:, b]  # [R, T, n], [R, T, n_in]
            fast = acc.abs().amax((1, 2)) < self._peak_limit[layer]
            summed = acc_w.sat(acc + torch.bmm(d.transpose(1, 2), xb))
            if not bool(fast.all()):
                slow = (~fast).nonzero().flatten()
                idx = slow.tolist()
                summed[slow] = _saturating_adds(acc[slow], d[slow], xb[slow], acc_w.take(idx))
            acc = summed
            per_sample.append(acc)
        self.grad_acc[layer] = acc
        self.pending += x.shape[1] if layer == 0 else 0
        return torch.stack(per_sample, 1)

    # -- update ----------------------------------------------------------------------------
    def update_shifts(self, layer: int) -> list[int]:
        """Each replica's update shift ``U = lr_shift - frac_bits`` (``+ in_bits`` for a
        direct-coded first layer) at the current :attr:`lr_shifts`."""
        direct = layer == 0 and self.shape_cfg.encoder == "direct"
        return [
            lr - c.frac_bits + (c.in_bits if direct else 0)
            for lr, c in zip(self._lr_shifts, self.cfgs, strict=True)
        ]

    def update(self) -> None:
        """:meth:`GoldenModel.update` for every replica: ``W_m = sat_m(W_m - R(acc))``, with
        each replica's rounding, shift and LFSRs; clears the accumulators."""
        for layer in range(self.shape_cfg.n_layers):
            step = self._update_step(layer)
            self.weights[layer] = self._master.sat(self.weights[layer] - step)
            self.grad_acc[layer] = torch.zeros_like(step)
        self.pending = 0

    def _update_step(self, layer: int) -> torch.Tensor:
        """``R(acc)`` per replica; replicas are grouped by (rule, shift) so each group is one
        tensor expression, and stochastic groups draw from their own rows' LFSRs."""
        acc = self.grad_acc[layer]
        groups: dict[tuple[bool, int], list[int]] = {}
        for r, (shift, cfg) in enumerate(zip(self.update_shifts(layer), self.cfgs, strict=True)):
            stochastic = cfg.rounding == "stochastic" and shift > 0
            groups.setdefault((stochastic, shift), []).append(r)
        if len(groups) == 1:
            (stochastic, shift), _ = groups.popitem()
            if not stochastic:
                return shr_round(acc, shift)
            r_vals, self.lfsr_states[layer] = draws(self.lfsr_states[layer], acc.shape[2], shift)
            return (acc + r_vals) >> shift
        step = torch.empty_like(acc)
        for (stochastic, shift), members in groups.items():
            idx = torch.tensor(members, dtype=torch.int64)
            if not stochastic:
                step[idx] = shr_round(acc[idx], shift)
                continue
            r_vals, states = draws(self.lfsr_states[layer][idx], acc.shape[2], shift)
            step[idx] = (acc[idx] + r_vals) >> shift
            self.lfsr_states[layer][idx] = states
        return step

    # -- whole steps -----------------------------------------------------------------------
    def output_error(self, s_out: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """:func:`~spikeforge.sw.golden.output_error` per replica: ``[R, B, T, n_out]`` from
        output spikes ``[R, B, T, n_out]`` and labels ``[R, B]``."""
        counts = s_out.sum(2)
        classes = torch.arange(counts.shape[-1], dtype=torch.int64)
        labels = labels.to(torch.int64)
        if labels.shape != counts.shape[:2] or not bool(
            ((labels >= 0) & (labels < counts.shape[-1])).all()
        ):
            raise ValueError(
                f"labels must be [R, B] = {tuple(counts.shape[:2])} class indices "
                f"in [0, {counts.shape[-1] - 1}], not {tuple(labels.shape)}"
            )
        hit = classes == labels.unsqueeze(-1)
        target = torch.where(hit, self._p["target_hi"].at(3), self._p["target_lo"].at(3))
        e = self._w["g_bits"].sat((counts - target) << self._p["err_shift"].at(3))
        return e.unsqueeze(2).expand(-1, -1, self.shape_cfg.timesteps, -1).contiguous()

    def train_step(
        self,
        x: torch.Tensor,
        labels: torch.Tensor | None = None,
        e_out: torch.Tensor | None = None,
    ) -> ReplicaStep:
        """:meth:`GoldenModel.train_step` for every replica: forward, output error (from
        ``labels`` ``[R, B]`` or an external ``e_out``), backward, and the update once
        ``batch_size`` samples have accumulated."""
        if (labels is None) == (e_out is None):
            raise ValueError("give exactly one of labels or e_out")
        traces = self.forward(x)
        if e_out is None:
            e_out = self.output_error(traces[-1].s, labels)
        self.backward(traces, e_out)
        updated = self.pending >= self.shape_cfg.batch_size
        if updated:
            self.update()
        return ReplicaStep(traces=traces, e_out=e_out, updated=updated)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Predicted classes ``[R, B]`` (:func:`~spikeforge.sw.golden.predict` per replica)."""
        out = self.forward(x)[-1]
        counts, u_last = out.s.sum(2), out.u[:, :, -1, :]
        key = (counts << self._p["v_bits"].at(3)) | (u_last + self._half_v.at(3))
        return key.argmax(-1)


_INT_FIELDS = (
    "frac_bits",
    "in_bits",
    "theta",
    "leak_shift",
    "surrogate_shift",
    "bp_shift",
    "err_shift",
    "target_hi",
    "target_lo",
    "v_bits",
    "g_bits",
    "acc_bits",
)
"""Config integers the batched arithmetic reads per replica (:class:`_Ints`)."""


def _saturating_adds(
    acc: torch.Tensor, d: torch.Tensor, x: torch.Tensor, width: _Width
) -> torch.Tensor:
    """The golden model's slow path on a subset of replicas: one saturating add per timestep,
    ``t = T-1 .. 0``, of the outer product ``delta[t] (x) x[t]``."""
    for t in reversed(range(d.shape[1])):
        acc = width.sat(acc + d[:, t, :, None] * x[:, t, None, :])
    return acc


# -- training ------------------------------------------------------------------------------


@dataclass
class ReplicaRun:
    """What :func:`train_replicas` returns: one :class:`~spikeforge.sw.train.TrainResult` per
    replica (as :func:`~spikeforge.sw.train.train_int` gives it) and the trained replicas.

    ``train_seconds`` of every result is the wall time of the whole batched run, so each
    result's ``samples_per_second`` is a per-replica rate."""

    results: list[TrainResult]
    model: ReplicaModel
    seconds: float


def _stream(
    cfgs: Sequence[SnnConfig], xs: Sequence[torch.Tensor], y: torch.Tensor, epoch: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every replica's :func:`~spikeforge.sw.train.epoch_samples`, stacked ``[R, N, ...]``.

    Spikes are stored as int8 (0/1) and widened per step, which keeps ``R`` epochs
    of spikes small."""
    per = [epoch_samples(cfg, x, y, epoch) for cfg, x in zip(cfgs, xs, strict=True)]
    compact = torch.int64 if cfgs[0].encoder == "direct" else torch.int8
    return torch.stack([p[0].to(compact) for p in per], 0), torch.stack([p[1] for p in per], 0)


def _accuracies(
    model: ReplicaModel, xs: Sequence[torch.Tensor], y: torch.Tensor, chunk: int
) -> list[float]:
    """:func:`~spikeforge.sw.train.int_accuracy` of every replica (keys ``0 .. N-1``), in
    chunks of ``chunk`` samples."""
    correct = torch.zeros(model.n_replicas, dtype=torch.int64)
    for k in range(0, len(y), chunk):
        keys = k + eval_keys(min(chunk, len(y) - k))
        enc = [encode(x[k : k + chunk], keys, cfg) for cfg, x in zip(model.cfgs, xs, strict=True)]
        pred = model.predict(torch.stack(enc, 0))
        correct += (pred == y[k : k + chunk]).to(torch.int64).sum(1)
    return [float(c) / len(y) for c in correct.tolist()]


def _check_paths(checkpoints: Sequence[str | Path] | None, n_replicas: int) -> list[Path] | None:
    if checkpoints is None:
        return None
    paths = [Path(p) for p in checkpoints]
    if len(paths) != n_replicas:
        raise ValueError(f"checkpoints needs one path per replica ({n_replicas}), not {len(paths)}")
    if len(set(paths)) != len(paths):
        raise ValueError("checkpoints must be distinct paths")
    return paths


def train_replicas(
    cfgs: Sequence[SnnConfig],
    ds: Dataset,
    epochs: int,
    *,
    schedule: str = "step",
    checkpoints: Sequence[str | Path] | None = None,
    on_epoch: Callable[[list[dict[str, Any]]], Any] | None = None,
    eval_chunk: int = 512,
) -> ReplicaRun:
    """:func:`~spikeforge.sw.train.train_int` of every config in ``cfgs``, as one batched run.

    Replica ``r`` sees exactly what ``train_int(cfgs[r], ds, epochs, schedule=schedule)`` sees:
    its own sample order and encoder keys, its own ``lr_shift`` schedule, and the same updates;
    its result has the same history, test and train accuracy, and its final state equals that
    run's last checkpoint.

    Parameters
    ----------
    cfgs : sequence of SnnConfig
        Configs sharing :data:`SHARED_FIELDS`.
    ds : Dataset
    epochs : int
    schedule : {"step", "constant"}
        The learning-rate schedule (:func:`~spikeforge.sw.train.lr_steps`).
    checkpoints : sequence of path, optional
        One path per replica: after every epoch, replica ``r``'s checkpoint in
        :func:`train_int`'s format (loadable with ``load_checkpoint(path, cfgs[r], "int")``).
    on_epoch : callable, optional
        Called after every epoch with one ``{"epoch", "test_accuracy"}`` row per replica.
    eval_chunk : int
        Samples per batched evaluation pass (memory only; results do not depend on it).
    """
    cfgs = check_replica_configs(cfgs)
    lr_steps(schedule, 0, epochs)
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"epochs must be a non-negative int, not {epochs!r}")
    if isinstance(eval_chunk, bool) or not isinstance(eval_chunk, int) or eval_chunk < 1:
        raise ValueError(f"eval_chunk must be a positive int, not {eval_chunk!r}")
    paths = _check_paths(checkpoints, len(cfgs))
    for cfg in cfgs:
        check_dataset(cfg, ds)
    x_tr = [quantize(ds.x_train, ds.x_max, cfg.in_bits) for cfg in cfgs]
    x_te = [quantize(ds.x_test, ds.x_max, cfg.in_bits) for cfg in cfgs]
    model = ReplicaModel(cfgs)
    histories: list[list[dict[str, Any]]] = [[] for _ in cfgs]
    n, bs, seconds = len(ds.y_train), cfgs[0].batch_size, 0.0
    for epoch in range(epochs):
        model.lr_shifts = [cfg.lr_shift + lr_steps(schedule, epoch, epochs) for cfg in cfgs]
        t0 = time.perf_counter()
        x_in, y = _stream(cfgs, x_tr, ds.y_train, epoch)
        for k in range(0, n, bs):
            model.train_step(x_in[:, k : k + bs].to(torch.int64), y[:, k : k + bs])
        seconds += time.perf_counter() - t0
        rows = [
            {"epoch": epoch + 1, "test_accuracy": acc}
            for acc in _accuracies(model, x_te, ds.y_test, eval_chunk)
        ]
        for hist, row in zip(histories, rows, strict=True):
            hist.append(row)
        if paths is not None:
            for r, (cfg, path) in enumerate(zip(cfgs, paths, strict=True)):
                meta = {"epoch": epoch, "history": histories[r], "train_seconds": seconds}
                save_checkpoint(path, cfg, "int", model.state_dict(r), meta)
        if on_epoch is not None:
            on_epoch(rows)
    test = _accuracies(model, x_te, ds.y_test, eval_chunk)
    train = _accuracies(model, x_tr, ds.y_train, eval_chunk)
    results = [
        TrainResult(
            mode="int",
            config=cfg.to_dict(),
            test_accuracy=test[r],
            train_accuracy=train[r],
            epochs=epochs,
            train_seconds=seconds,
            samples_per_second=n * epochs / seconds if seconds else 0.0,
            checkpoint=str(paths[r]) if paths is not None else None,
            history=histories[r],
        )
        for r, cfg in enumerate(cfgs)
    ]
    return ReplicaRun(results=results, model=model, seconds=seconds)
