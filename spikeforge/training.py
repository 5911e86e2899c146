"""``sf.train``: train a network on a dataset, as ``spikeforge train`` does (without a board)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from spikeforge.loader import Config
from spikeforge.sw.checkpoint import load_checkpoint
from spikeforge.sw.config import (
    DEFAULT_SCHEDULE,
    TRAINING_CHOICES,
    ConfigError,
    SnnConfig,
    check_int,
)
from spikeforge.sw.data import Dataset, load_dataset
from spikeforge.sw.sources import DEFAULT_DATASET
from spikeforge.sw.train import (
    SCHEDULES,
    FloatOptions,
    Progress,
    TrainResult,
    no_progress,
    train_float,
    train_int,
)

__all__ = ["MODES", "initial_weights", "network_of", "train", "training_data"]

MODES = TRAINING_CHOICES["mode"]
"""``int``: the integer golden model, bit-exact with the chip; ``float``: the float
surrogate-gradient reference."""

MAX_EPOCHS = 1_000_000


def initial_weights(checkpoint: str | Path, net: SnnConfig) -> list[torch.Tensor]:
    """The master weights of an integer checkpoint made for ``net`` (to start training from)."""
    _, blob = load_checkpoint(checkpoint, net, "int")
    return [w.clone() for w in blob["state"]["weights"]]


def network_of(config: Config | SnnConfig) -> SnnConfig:
    """The network of a :class:`~spikeforge.loader.Config` (or an ``SnnConfig`` itself)."""
    if isinstance(config, Config):
        return config.net
    if isinstance(config, SnnConfig):
        return config
    raise TypeError(f"config must be a Config (sf.load_config) or an SnnConfig, not {config!r}")


def training_data(dataset: str | Dataset, net: SnnConfig, *, validation: bool = False) -> Dataset:
    """The dataset to train ``net`` on: a spec ``NAME[:PATH]`` loaded (spike trains binned to
    ``net.timesteps``) or a :class:`~spikeforge.sw.data.Dataset`; with ``validation``, its
    training split less a stratified fifth, which becomes the test split
    (:meth:`~spikeforge.sw.data.Dataset.holdout`)."""
    if isinstance(dataset, str):
        dataset = load_dataset(dataset, timesteps=net.timesteps)
    elif not isinstance(dataset, Dataset):
        raise TypeError(f"dataset must be a spec NAME[:PATH] or a Dataset, not {dataset!r}")
    return dataset.holdout() if validation else dataset


def train(
    config: Config | SnnConfig,
    *,
    dataset: str | Dataset = DEFAULT_DATASET,
    epochs: int = 20,
    mode: str = "int",
    out: str | Path | None = None,
    resume: bool = False,
    validation: bool = False,
    init: str | Path | None = None,
    schedule: str | None = None,
    float_options: FloatOptions | None = None,
    progress: Progress | None = None,
    on_epoch: Callable[[dict[str, Any]], Any] | None = None,
) -> TrainResult:
    """Train the network of ``config``; write its checkpoint and ``result.json`` in ``out``.

    Parameters
    ----------
    config : Config or SnnConfig
        What :func:`~spikeforge.loader.load_config` returned (its ``net`` is trained), or a
        network.
    dataset : str or Dataset
        A spec ``NAME[:PATH]`` (:data:`~spikeforge.sw.sources.SOURCES`; ``"digits"``) or a
        loaded :class:`~spikeforge.sw.data.Dataset`.
    epochs : int
        Passes over the training split, at least 1.
    mode : {"int", "float"}
        The integer golden model (bit-exact with the chip, batch size from the config) or the
        float surrogate-gradient reference.
    out : str or Path, optional
        The run folder (``checkpoint.pt`` after every epoch, ``result.json`` at the end).
        Default ``runs/train-MODE-HASH``.
    resume : bool
        Continue from ``out/checkpoint.pt`` (made for the same config and mode).
    validation : bool
        Train on the training split less a stratified fifth and test on that fifth
        (:func:`training_data`): choose settings with it, report the test split once.
    init : str or Path, optional
        ``mode="int"`` only, not with ``resume``: start from this integer checkpoint's weights
        (e.g. :func:`~spikeforge.api.save_import`'s) instead of random ones.
    schedule : {"step", "constant"}, optional
        ``step`` halves the learning rate at 1/2 and 3/4 of the epochs. Default ``step`` in int
        mode, ``constant`` in float mode.
    float_options : FloatOptions, optional
        Float mode's learning rate, batch size and loss.
    progress : callable, optional
        ``progress(total, desc)`` returning a bar with ``update(n)`` and ``close()`` (tqdm);
        default none.
    on_epoch : callable, optional
        Called after every epoch with ``{"epoch", "test_accuracy", ...}``.

    Returns
    -------
    TrainResult
        Accuracies, timing, history and the checkpoint's path; ``result.json`` beside the
        checkpoint holds its :meth:`~spikeforge.sw.train.TrainResult.to_dict` with the dataset's
        name and the config hash.

    Raises
    ------
    ConfigError
        If an argument is out of range, the dataset does not suit the network, or ``init`` is
        given with ``mode="float"`` or ``resume``
        (:class:`~spikeforge.sw.checkpoint.CheckpointError` for a checkpoint of another
        config).
    """
    net = network_of(config)
    check_int("epochs", epochs, 1, MAX_EPOCHS)
    if mode not in MODES:
        raise ConfigError(f"mode = {mode!r} is not allowed: choose one of {', '.join(MODES)}")
    schedule = schedule or DEFAULT_SCHEDULE[mode]
    if schedule not in SCHEDULES:
        raise ConfigError(
            f"schedule = {schedule!r} is not allowed: choose one of {', '.join(SCHEDULES)}"
        )
    if init is not None and (mode != "int" or resume):
        raise ConfigError("init starts integer training: use it with mode 'int', without resume")
    if float_options is not None and mode != "float":
        raise ConfigError("float_options apply to mode 'float'")
    ds = training_data(dataset, net, validation=validation)
    out = Path(out) if out is not None else Path("runs") / f"train-{mode}-{net.config_hash}"
    common = {
        "checkpoint": out / "checkpoint.pt",
        "resume": resume,
        "progress": progress or no_progress,
        "schedule": schedule,
        "on_epoch": on_epoch,
    }
    if mode == "int":
        weights = None if init is None else initial_weights(init, net)
        result = train_int(net, ds, epochs, init=weights, **common)
    else:
        result = train_float(net, ds, epochs, float_options, **common)
    summary = {**result.to_dict(), "dataset": ds.name, "config_hash": net.config_hash}
    (out / "result.json").write_text(json.dumps(summary, indent=2) + "\n")
    return result
