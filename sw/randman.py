"""Randman: random smooth manifolds of spike times, a task where only spike *timing* carries the
class (Zenke & Vogels 2021, "The remarkable robustness of surrogate gradient learning for
instilling complex function in spiking neural networks", Neural Computation 33(4)).

Construction (as the authors' public ``randman`` code builds it, written anew here):

* **a manifold per class.** Class ``c`` owns a random smooth map from the unit cube
  ``[0, 1]**dim_manifold`` into ``n_inputs`` dimensions. Coordinate ``i`` of the map is a product
  over the manifold dimensions ``d`` of one random 1-d function each,

  .. math::

      f_{i,d}(x) = \\sum_{k=0}^{n_{basis}-1} \\frac{a_{k}}{(k + 1)^{\\alpha}}
                    \\sin\\bigl(2\\pi (k\\, b_{k}\\, x + c_{k})\\bigr),

  with ``a, b, c`` uniform in ``[0, 1)`` per ``(c, i, d, k)`` and ``a_0 = 0`` (the constant
  ``k = 0`` term dropped: the original's ``use_bias = False``). Larger ``alpha`` gives smoother
  manifolds; the original truncates at ``ceil(prec**(-1 / alpha))`` terms, 32 for its
  ``alpha = 2, prec = 1e-3``, our :data:`N_BASIS`.
* **a sample** of class ``c`` is a uniform random point ``x`` of the unit cube mapped by class
  ``c``'s manifold; each coordinate is min-max normalized over the class's samples to ``[0, 1]``
  (the original's ``standardize``) and is the **time of the one spike** input ``i`` fires.
* **binning** to ``T`` timesteps: ``t = min(floor(T * u), T - 1)`` for a normalized time ``u``.

Every input fires exactly once in every sample, so spike counts say nothing about the class;
the classes differ only in *when* the inputs fire. All randomness comes from one
``numpy.random.Generator(PCG64(seed))``: every class's manifold first, then every class's
points, so a seed fixes the data and the manifolds do not depend on ``n_samples``.

The ``randman`` dataset source (:func:`load_randman`) is :data:`DEFAULTS` with seed
:data:`SEED`, split with :func:`~spikeforge.sw.data.stratified_split`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from .config import ConfigError, check_int
from .data import Dataset, stratified_split

__all__ = [
    "DEFAULTS",
    "N_BASIS",
    "SEED",
    "TEST_FRACTION",
    "bin_spike_times",
    "load_randman",
    "make_randman",
    "randman_spike_times",
]

N_BASIS = 32
"""Sinusoids per 1-d function: the original's cutoff ``ceil(1e-3 ** (-1 / 2))`` at ``alpha = 2``."""

DEFAULTS: dict[str, int | float] = {
    "n_classes": 10,
    "n_inputs": 20,
    "dim_manifold": 1,
    "n_samples": 100,
    "alpha": 2.0,
    "n_basis": N_BASIS,
}
"""The ``randman`` source's parameters: 10 classes of 1-d manifolds in 20 inputs, 100 samples
per class (1,000 in all), the original's smoothness ``alpha = 2`` and cutoff."""

SEED = 0
"""The ``randman`` source's generator seed."""

TEST_FRACTION = 0.2
"""The ``randman`` source's stratified test share (seed 0): 800 training, 200 test samples."""

MAX_SAMPLES = 1 << 20
"""At most this many samples per class (memory: ``n_classes * n_samples * n_inputs`` doubles)."""


def _check_alpha(alpha: object) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, int | float):
        raise ConfigError(f"alpha must be a positive number, not {alpha!r}")
    if not (math.isfinite(alpha) and alpha > 0):
        raise ConfigError(f"alpha = {alpha!r} is out of range: it must be finite and > 0")
    return float(alpha)


def _check_seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be a non-negative int, not {seed!r}")
    return seed


def _manifold(params: np.ndarray, spectrum: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Coordinates ``[N, n_inputs]`` of ``points`` ``[N, dim]`` on the manifold of ``params``
    ``[n_inputs, dim, 3, n_basis]`` (amplitude, frequency and phase draws)."""
    amp, freq, phase = params[:, :, 0], params[:, :, 1], params[:, :, 2]  # [n_in, dim, K]
    k = np.arange(spectrum.size, dtype=np.float64)
    arg = k * freq * points[:, None, :, None] + phase  # [N, n_in, dim, K]
    terms = amp * spectrum * np.sin(2 * np.pi * arg)
    return terms.sum(-1).prod(-1)


def _normalize(y: np.ndarray) -> np.ndarray:
    """Min-max normalize every column of ``y`` to ``[0, 1]`` (a constant column to 0)."""
    lo, hi = y.min(0), y.max(0)
    return (y - lo) / np.where(hi > lo, hi - lo, 1.0)


def randman_spike_times(
    *,
    n_classes: int,
    n_inputs: int,
    dim_manifold: int,
    n_samples: int,
    alpha: float,
    n_basis: int = N_BASIS,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Normalized spike times ``[n_classes * n_samples, n_inputs]`` in ``[0, 1]`` and labels.

    Parameters
    ----------
    n_classes : int
        Classes, one random manifold each (2 .. 1024).
    n_inputs : int
        Embedding dimension: input neurons, each firing once per sample (1 .. 4096).
    dim_manifold : int
        Intrinsic dimension of every manifold (1 .. 8); higher is harder.
    n_samples : int
        Samples per class.
    alpha : float
        Fall-off exponent of the sinusoids' amplitudes ``1 / (k + 1)**alpha``; > 0, higher is
        smoother.
    n_basis : int
        Sinusoids per 1-d function (2 .. 1000).
    seed : int
        Seed (>= 0) of the one generator that draws everything.

    Returns
    -------
    times : numpy.ndarray
        float64 ``[n_classes * n_samples, n_inputs]``, class-major (class 0's samples first).
    labels : numpy.ndarray
        int64 ``[n_classes * n_samples]``.

    Raises
    ------
    ConfigError
        A parameter out of range, naming it and its value.
    """
    check_int("n_classes", n_classes, 2, 1024)
    check_int("n_inputs", n_inputs, 1, 4096)
    check_int("dim_manifold", dim_manifold, 1, 8)
    check_int("n_samples", n_samples, 1, MAX_SAMPLES)
    check_int("n_basis", n_basis, 2, 1000)
    alpha = _check_alpha(alpha)
    rng = np.random.Generator(np.random.PCG64(_check_seed(seed)))
    params = rng.random((n_classes, n_inputs, dim_manifold, 3, n_basis))
    params[..., 0, 0] = 0.0  # no constant term (the original's use_bias = False)
    spectrum = 1.0 / np.arange(1, n_basis + 1, dtype=np.float64) ** alpha
    points = rng.random((n_classes, n_samples, dim_manifold))
    times = np.concatenate(
        [_normalize(_manifold(params[c], spectrum, points[c])) for c in range(n_classes)]
    )
    labels = np.repeat(np.arange(n_classes, dtype=np.int64), n_samples)
    return times, labels


def bin_spike_times(times: np.ndarray, timesteps: int) -> torch.Tensor:
    """Spike trains int64 ``[N, T, n]`` of normalized times ``[N, n]`` in ``[0, 1]``: input ``i``
    fires once, at ``t = min(floor(T * u), T - 1)``.

    Raises
    ------
    ConfigError
        ``timesteps`` not an int in ``[1, 256]``, or a time outside ``[0, 1]``.
    """
    check_int("timesteps", timesteps, 1, 256)
    u = np.asarray(times, dtype=np.float64)
    if u.ndim != 2:
        raise ConfigError(f"spike times must be [N, n_inputs], not shape {u.shape}")
    if u.size and not (np.all(u >= 0) and np.all(u <= 1)):
        raise ConfigError("spike times must lie in [0, 1]")
    t = np.minimum(np.floor(timesteps * u).astype(np.int64), timesteps - 1)
    spikes = np.zeros((u.shape[0], timesteps, u.shape[1]), dtype=np.int64)
    rows, cols = np.indices(u.shape)
    spikes[rows, t, cols] = 1
    return torch.from_numpy(spikes)


def make_randman(
    *,
    timesteps: int,
    n_classes: int,
    n_inputs: int,
    dim_manifold: int,
    n_samples: int,
    alpha: float,
    n_basis: int = N_BASIS,
    seed: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Spike trains int64 0/1 ``[N, timesteps, n_inputs]`` and labels int64 ``[N]``:
    :func:`randman_spike_times` binned by :func:`bin_spike_times` (parameters as there)."""
    times, labels = randman_spike_times(
        n_classes=n_classes,
        n_inputs=n_inputs,
        dim_manifold=dim_manifold,
        n_samples=n_samples,
        alpha=alpha,
        n_basis=n_basis,
        seed=seed,
    )
    return bin_spike_times(times, timesteps), torch.from_numpy(labels)


def load_randman(path: Path | None, timesteps: int | None) -> Dataset:
    """``randman``: :data:`DEFAULTS`, seed :data:`SEED`, binned to ``timesteps``; 800 training
    and 200 test samples (a stratified :data:`TEST_FRACTION`, seed 0); spikes 0/1,
    ``x_max = 1``."""
    if timesteps is None:
        raise ConfigError("dataset 'randman' is spike trains: give the timesteps to bin to")
    x, y = make_randman(timesteps=timesteps, seed=SEED, **DEFAULTS)
    train, test = (torch.from_numpy(i) for i in stratified_split(y.numpy(), TEST_FRACTION))
    c = DEFAULTS
    return Dataset(
        name="randman",
        x_train=x[train],
        y_train=y[train],
        x_test=x[test],
        y_test=y[test],
        x_max=1,
        n_classes=int(c["n_classes"]),
        split=f"randman {c['n_classes']} classes, {c['n_inputs']} inputs, dim {c['dim_manifold']}, "
        f"alpha {c['alpha']:g}, {c['n_samples']} per class, seed {SEED}, T = {timesteps}; "
        f"stratified test {TEST_FRACTION:g} (seed 0)",
    )
