"""The dataset sources by name, and the spec string that names one: ``NAME`` or ``NAME:PATH``.

One table, :data:`SOURCES`, for the trainer, the CLI's ``--dataset`` help and choices, and a
sweep's ``dataset`` key. It imports nothing heavy: each source's loader lives in its own module
and is imported when the source is loaded (:meth:`Source.loader`), so ``spikeforge --help`` does
not wait for torch or tonic. :func:`spikeforge.sw.data.load_dataset` loads a spec.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import ConfigError

__all__ = ["DEFAULT_DATASET", "PATH_MODES", "SOURCES", "Source", "parse_spec"]

PATH_MODES = ("none", "required", "optional")

DEFAULT_DATASET = "digits"
"""The dataset of ``spikeforge train``, ``sf.train`` and a sweep that names none."""


@dataclass(frozen=True)
class Source:
    """A dataset source.

    ``target`` is ``"module:function"``, the loader ``load(path, timesteps) -> Dataset``;
    ``path``: ``"none"`` (bundled), ``"required"`` (your files) or ``"optional"``; a
    ``temporal`` source gives spike trains binned to ``timesteps`` (``encoder = "spikes"``)."""

    name: str
    summary: str
    target: str
    path: str = "none"
    temporal: bool = False

    def __post_init__(self) -> None:
        if self.path not in PATH_MODES:
            raise ValueError(f"path must be one of {', '.join(PATH_MODES)}, not {self.path!r}")

    def loader(self) -> Callable[[Path | None, int | None], Any]:
        module, _, function = self.target.partition(":")
        return getattr(importlib.import_module(module), function)


SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        Source(
            "digits",
            "scikit-learn's 8x8 digits, 64 intensities 0..16, 10 classes (bundled)",
            "spikeforge.sw.data:load_digits",
        ),
        Source(
            "breast_cancer",
            "scikit-learn's breast cancer table, 30 features scaled to 0..255, 2 classes (bundled)",
            "spikeforge.sw.data:load_breast_cancer",
        ),
        Source(
            "randman",
            "Randman (Zenke & Vogels 2021): 10 classes of random manifolds of spike times, 20 "
            "inputs firing once each, 1,000 samples (generated, deterministic)",
            "spikeforge.sw.randman:load_randman",
            temporal=True,
        ),
        Source(
            "nmnist",
            "N-MNIST release folder (Train/<digit>/*.bin, Test/<digit>/*.bin), binned to 17x17x2 "
            "= 578 inputs over 300 ms, 10 classes",
            "spikeforge.sw.events:load_nmnist",
            path="required",
            temporal=True,
        ),
        Source(
            "shd",
            "Spiking Heidelberg Digits folder (shd_train.h5, shd_test.h5), 700 channels binned to "
            "140 inputs over 1 s, 20 classes",
            "spikeforge.sw.events:load_shd",
            path="required",
            temporal=True,
        ),
    )
}


def parse_spec(spec: str) -> tuple[Source, Path | None]:
    """The source and path of a spec ``NAME`` or ``NAME:PATH``; :class:`ConfigError` naming what
    is wrong."""
    if not isinstance(spec, str) or not spec:
        raise ConfigError(f"a dataset is NAME or NAME:PATH, not {spec!r}")
    name, sep, rest = spec.partition(":")
    if name not in SOURCES:
        raise ConfigError(f"dataset {name!r} is unknown: choose one of {', '.join(SOURCES)}")
    source = SOURCES[name]
    if sep and not rest:
        raise ConfigError(f"dataset {spec!r}: the path after ':' is empty")
    path = Path(rest) if sep else None
    if path is not None and source.path == "none":
        raise ConfigError(f"dataset {name!r} is bundled and takes no path (got {spec!r})")
    if path is None and source.path == "required":
        raise ConfigError(f"dataset {name!r} reads your files: give {name}:PATH ({source.summary})")
    if path is not None and not path.exists():
        raise ConfigError(f"dataset {spec!r}: {path} does not exist")
    return source, path
