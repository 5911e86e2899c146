"""Datasets as integer tensors with a fixed, documented split, named by one spec string.

A dataset **spec** is ``NAME`` or ``NAME:PATH`` (a file or folder the source reads, for data that
is not bundled): ``--dataset`` on the CLI, ``dataset`` in a sweep's ``[training]`` table and
:func:`load_dataset` all take it. The sources are one table, :data:`spikeforge.sw.sources.SOURCES`;
a loader is ``load(path, timesteps) -> Dataset``.

Two kinds of data:

* **intensities** ``[N, n_features]``, non-negative integers in ``[0, x_max]``;
  :func:`spikeforge.sw.encoders.quantize` maps them to ``in_bits`` and the ``rate`` or ``direct``
  encoder turns them into the first layer's input;
* **spike trains** ``[N, T, n_features]``, event counts per input and timestep binned to the
  network's ``timesteps`` (``encoder = "spikes"``): event sensors and Randman. A temporal source
  takes ``timesteps`` when it loads.

Sources (see each loader for its split):

``digits``
    scikit-learn's bundled 8x8 handwritten digits (1,797 images, 64 features 0..16, 10 classes).
``breast_cancer``
    scikit-learn's bundled Wisconsin breast cancer table (569 rows, 30 features, 2 classes).
``randman``, ``nmnist``, ``shd``
    :mod:`spikeforge.sw.randman` and :mod:`spikeforge.sw.events`.

**Validation split.** :meth:`Dataset.holdout` carves a fixed stratified fifth out of the training
data. Tuning (the co-design sweep, the benches that chose defaults) scores on it; the test split
is only reported.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sklearn.datasets
import torch
from sklearn.model_selection import train_test_split

from .config import ConfigError
from .sources import parse_spec

__all__ = [
    "HOLDOUT_FRACTION",
    "Dataset",
    "load_breast_cancer",
    "load_dataset",
    "load_digits",
    "stratified_split",
]

HOLDOUT_FRACTION = 0.2
"""The share of the training data :meth:`Dataset.holdout` keeps for validation."""


def stratified_split(
    y: np.ndarray, fraction: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(keep, held)`` of a stratified split: ``held`` is ``fraction`` of every class,
    chosen by scikit-learn's ``train_test_split(stratify=y, random_state=seed, shuffle=True)``."""
    idx = np.arange(len(y))
    keep, held = train_test_split(
        idx, test_size=fraction, stratify=y, random_state=seed, shuffle=True
    )
    return keep, held


@dataclass(frozen=True)
class Dataset:
    """Integer train/test tensors of one source.

    ``x_*``: intensities ``[N, n_features]`` in ``[0, x_max]``, or spike trains
    ``[N, T, n_features]`` (event counts in ``[0, x_max]`` per timestep)."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor  # [N_train] int64 class labels
    x_test: torch.Tensor
    y_test: torch.Tensor
    x_max: int
    n_classes: int
    split: str

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[-1])

    @property
    def timesteps(self) -> int | None:
        """``T`` of spike-train data, None for intensities."""
        return int(self.x_train.shape[1]) if self.x_train.dim() == 3 else None

    def holdout(self, fraction: float = HOLDOUT_FRACTION) -> Dataset:
        """The validation view: training on the training split minus a stratified ``fraction``
        (seed 0), "test" on that fraction. The test split is not in it."""
        keep, held = stratified_split(self.y_train.numpy(), fraction)
        keep_t, held_t = torch.from_numpy(keep), torch.from_numpy(held)
        return dataclasses.replace(
            self,
            name=f"{self.name} (validation)",
            x_train=self.x_train[keep_t],
            y_train=self.y_train[keep_t],
            x_test=self.x_train[held_t],
            y_test=self.y_train[held_t],
            split=f"validation: a stratified {fraction:g} of the training split (seed 0) held out "
            f"of [{self.split}]",
        )

    def head(self, n_train: int) -> Dataset:
        """The first ``n_train`` training samples (0: all)."""
        if not n_train:
            return self
        return dataclasses.replace(
            self, x_train=self.x_train[:n_train], y_train=self.y_train[:n_train]
        )


def load_dataset(spec: str, *, timesteps: int | None = None) -> Dataset:
    """Load the dataset of ``spec`` (``NAME`` or ``NAME:PATH``, :mod:`spikeforge.sw.sources`);
    temporal sources bin to ``timesteps`` (required for them, ignored by the others)."""
    source, path = parse_spec(spec)
    if source.temporal and timesteps is None:
        raise ConfigError(f"dataset {source.name!r} is spike trains: give the timesteps to bin to")
    return source.loader()(path, timesteps if source.temporal else None)


def _split(name: str, x: np.ndarray, y: np.ndarray, x_max: int, n_classes: int) -> Dataset:
    """The bundled tables' split: a stratified 0.2 test split (seed 0)."""
    train, test = stratified_split(y, 0.2)
    return Dataset(
        name=name,
        x_train=torch.from_numpy(x[train]),
        y_train=torch.from_numpy(y[train]),
        x_test=torch.from_numpy(x[test]),
        y_test=torch.from_numpy(y[test]),
        x_max=x_max,
        n_classes=n_classes,
        split="sklearn train_test_split(test_size=0.2, stratify=y, random_state=0)",
    )


def load_digits(path: Path | None, timesteps: int | None) -> Dataset:
    """``digits``: 1,437 training and 360 test images with the class proportions of the whole
    set."""
    bunch = sklearn.datasets.load_digits()
    return _split("digits", bunch.data.astype(np.int64), bunch.target.astype(np.int64), 16, 10)


BREAST_CANCER_LEVELS = 255
"""``breast_cancer``'s intensity range: each feature scaled to ``0 .. 255``."""


def load_breast_cancer(path: Path | None, timesteps: int | None) -> Dataset:
    """``breast_cancer``: 455 training and 114 test rows. Each feature is min-max scaled with
    the *training* rows' range to ``0 .. 255`` (``round(255 (v - lo) / (hi - lo))``, test values
    clipped), so nothing of the test split leaks into the scaling."""
    bunch = sklearn.datasets.load_breast_cancer()
    x, y = bunch.data.astype(np.float64), bunch.target.astype(np.int64)
    train, _ = stratified_split(y, 0.2)
    lo, hi = x[train].min(0), x[train].max(0)
    scaled = np.rint(BREAST_CANCER_LEVELS * (x - lo) / np.where(hi > lo, hi - lo, 1.0))
    q = np.clip(scaled, 0, BREAST_CANCER_LEVELS).astype(np.int64)
    return _split("breast_cancer", q, y, BREAST_CANCER_LEVELS, 2)
