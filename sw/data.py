"""Datasets as integer intensities with a fixed, documented split.

A dataset source is a function registered in :data:`SOURCES` that returns a :class:`Dataset`;
add a source by decorating a loader with :func:`register`. Intensities are non-negative integers
in ``[0, x_max]``; :func:`spikeforge.sw.encoders.quantize` maps them to ``in_bits``.

``digits`` -- scikit-learn's bundled 8x8 handwritten digits (1,797 images, 64 features with values
0..16, 10 classes; shipped with scikit-learn, no download). Split: ``train_test_split(test_size=0.2,
stratify=y, random_state=0, shuffle=True)`` giving 1,437 training and 360 test images with the
class proportions of the whole set.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["SOURCES", "Dataset", "load_dataset", "register"]


@dataclass(frozen=True)
class Dataset:
    """Integer train/test tensors of one source."""

    name: str
    x_train: torch.Tensor  # [N_train, n_features] int64 in [0, x_max]
    y_train: torch.Tensor  # [N_train] int64 class labels
    x_test: torch.Tensor
    y_test: torch.Tensor
    x_max: int
    n_classes: int
    split: str

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])


SOURCES: dict[str, Callable[[], Dataset]] = {}


def register(name: str) -> Callable[[Callable[[], Dataset]], Callable[[], Dataset]]:
    """Decorator adding a loader to :data:`SOURCES` under ``name``."""

    def deco(fn: Callable[[], Dataset]) -> Callable[[], Dataset]:
        SOURCES[name] = fn
        return fn

    return deco


def load_dataset(name: str) -> Dataset:
    """Load a registered dataset by name."""
    if name not in SOURCES:
        raise ValueError(f"dataset {name!r} is unknown: choose one of {', '.join(sorted(SOURCES))}")
    return SOURCES[name]()


@register("digits")
def _digits() -> Dataset:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = bunch.data.astype(np.int64)
    y = bunch.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=0.2, stratify=y, random_state=0, shuffle=True
    )
    return Dataset(
        name="digits",
        x_train=torch.from_numpy(x_tr),
        y_train=torch.from_numpy(y_tr),
        x_test=torch.from_numpy(x_te),
        y_test=torch.from_numpy(y_te),
        x_max=16,
        n_classes=10,
        split="sklearn train_test_split(test_size=0.2, stratify=y, random_state=0)",
    )
