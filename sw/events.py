"""Event-sensor datasets, binned to ``T`` timesteps of address events with ``tonic``.

Two sources of :data:`spikeforge.sw.sources.SOURCES` read files you already have (``tonic``'s
dataset classes download; its offline readers and transforms are used here):

``nmnist:FOLDER``
    N-MNIST in its original release layout, ``FOLDER/Train/<digit>/*.bin`` and
    ``FOLDER/Test/<digit>/*.bin`` (60,000 and 10,000 files; the class is the folder's name).
    Each file is read with ``tonic.io.read_mnist_file``: 5 bytes (40 bits) an event, byte 0
    ``x``, byte 1 ``y``, bit 7 of byte 2 the polarity, and the remaining 23 bits (bits 6..0 of
    byte 2, bytes 3 and 4, big-endian) the timestamp in microseconds; an event with ``y = 240``
    marks a timestamp overflow and adds ``2**13`` us to the later ones. Sensor 34 x 34 x 2.
``shd:FOLDER``
    The Spiking Heidelberg Digits, ``FOLDER/shd_train.h5`` and ``FOLDER/shd_test.h5`` (8,156 and
    2,264 samples): HDF5 with ragged ``spikes/times`` (seconds, float), ``spikes/units``
    (channel ``0 .. 699``) and ``labels`` (``0 .. 19``), read with ``h5py`` into ``tonic``'s
    structured event arrays (fields ``t`` in microseconds, rounded; ``x`` the channel; ``p = 0``).

**Binning** (the same rule for both; constants below):

1. events are sorted by time (stable);
2. ``tonic.transforms.Downsample`` divides the address by an integer factor, rounding down:
   N-MNIST ``x // 2`` and ``y // 2`` (34 x 34 -> 17 x 17, both polarities kept), SHD
   ``channel // 5`` (700 -> 140 channels);
3. ``tonic.transforms.ToFrame`` with ``time_window = w = DURATION // T`` microseconds from
   ``start_time = 0`` cuts exactly ``T`` bins ``[k w, (k + 1) w)``; events at ``t >= T w`` are
   **dropped** (durations: N-MNIST 300 ms, its three 100 ms saccades; SHD 1 s);
4. a bin with at least one event is a spike (``x_max = 1``);
5. the frame is flattened to the ``n`` inputs in the order (polarity, y, x) for N-MNIST, input
   ``p * 289 + y * 17 + x`` (578 inputs; ``p`` the file's polarity bit), and by channel for
   SHD (140 inputs).

The spike trains are stored as ``uint8`` ``[N, T, n]``. The splits are the releases' own train
and test sets; :meth:`spikeforge.sw.data.Dataset.holdout` gives the validation split.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import h5py
import numpy as np
import tonic.io
import tonic.transforms
import torch

from .config import ConfigError
from .data import Dataset

__all__ = [
    "EVENT_BYTES",
    "NMNIST_CLASSES",
    "NMNIST_DOWNSAMPLE",
    "NMNIST_DURATION_US",
    "NMNIST_SENSOR",
    "NMNIST_SPLITS",
    "SHD_CHANNELS",
    "SHD_CLASSES",
    "SHD_DOWNSAMPLE",
    "SHD_DURATION_US",
    "SHD_FILES",
    "SHD_KEYS",
    "bin_events",
    "load_nmnist",
    "load_shd",
    "read_nmnist_file",
]

NMNIST_SENSOR = (34, 34, 2)
"""N-MNIST's sensor ``(width, height, polarities)``, tonic's ``sensor_size`` order."""
NMNIST_DOWNSAMPLE = 2
"""N-MNIST's addresses are divided by this per axis (34 x 34 -> 17 x 17)."""
NMNIST_DURATION_US = 300_000
"""N-MNIST's binned duration: the three 100 ms saccades."""
NMNIST_SPLITS = ("Train", "Test")
"""The release's split folders, each with one folder per digit."""
NMNIST_CLASSES = 10
EVENT_BYTES = 5
"""An N-MNIST event is 40 bits."""
NMNIST_DTYPE = np.dtype([("x", np.int64), ("y", np.int64), ("t", np.int64), ("p", np.int64)])
"""The events of an N-MNIST file (tonic's N-MNIST dtype)."""

SHD_CHANNELS = 700
"""SHD's cochlea model channels (tonic's sensor ``(700, 1, 1)``)."""
SHD_DOWNSAMPLE = 5
"""SHD's channels are divided by this (700 -> 140)."""
SHD_DURATION_US = 1_000_000
"""SHD's binned duration (the recordings are at most about 1.4 s; most end before 1 s)."""
SHD_CLASSES = 20
SHD_FILES = {"train": "shd_train.h5", "test": "shd_test.h5"}
SHD_KEYS = ("spikes/times", "spikes/units", "labels")
SHD_DTYPE = np.dtype([("t", np.int64), ("x", np.int64), ("p", np.int64)])
"""The events of an SHD sample (tonic's HSD dtype): time in us, channel, polarity 0."""
US_PER_S = 1_000_000


def _binned_size(size: int, factor: int) -> int:
    return -(-size // factor)


def bin_events(
    events: np.ndarray,
    *,
    sensor_size: tuple[int, int, int],
    downsample: int,
    duration_us: int,
    timesteps: int,
) -> np.ndarray:
    """Spikes ``[timesteps, n]`` (``uint8`` 0/1) of one sample's ``events`` (module docstring).

    Parameters
    ----------
    events : numpy structured array
        Fields ``x``, ``t``, ``p`` (and ``y`` for a 2-D sensor), addresses within
        ``sensor_size``, ``t`` in microseconds.
    sensor_size : tuple of int
        ``(width, height, polarities)`` before downsampling (``height = 1`` without ``y``).
    downsample : int
        The address divisor per axis.
    duration_us : int
        The binned duration; ``T`` windows of ``duration_us // timesteps`` microseconds.
    timesteps : int
        ``T``.
    """
    if timesteps < 1 or timesteps > duration_us:
        raise ConfigError(f"timesteps must lie in [1, {duration_us}], not {timesteps!r}")
    if downsample < 1:
        raise ValueError(f"downsample must be >= 1, not {downsample!r}")
    width, height, polarities = sensor_size
    size = (_binned_size(width, downsample), _binned_size(height, downsample), polarities)
    window = duration_us // timesteps
    end = window * timesteps
    events = events[np.argsort(events["t"], kind="stable")]
    events = events[(events["t"] >= 0) & (events["t"] < end)]
    n = size[0] * size[1] * size[2]
    if len(events) == 0:  # tonic's ToFrame gives one frame for no events
        return np.zeros((timesteps, n), dtype=np.uint8)
    events = tonic.transforms.Downsample(spatial_factor=1 / downsample)(events)
    frames = tonic.transforms.ToFrame(
        sensor_size=size, time_window=window, start_time=0, end_time=end
    )(events)  # [T, P, H, W] or [T, P, W]
    return (frames.reshape(timesteps, n) > 0).astype(np.uint8)


def read_nmnist_file(path: Path) -> np.ndarray:
    """The events of one N-MNIST ``.bin`` file (tonic's reader), checked: :class:`ConfigError`
    naming the file if its length is not a multiple of 5 bytes or an address lies off the
    sensor."""
    length = path.stat().st_size
    if length % EVENT_BYTES:
        raise ConfigError(
            f"{path}: {length} bytes is not a whole number of {EVENT_BYTES}-byte events "
            "(truncated N-MNIST file?)"
        )
    events = tonic.io.read_mnist_file(str(path), dtype=NMNIST_DTYPE)
    width, height, _ = NMNIST_SENSOR
    if len(events) and (events["x"].max() >= width or events["y"].max() >= height):
        raise ConfigError(f"{path}: an event lies off the {width} x {height} N-MNIST sensor")
    return events


def _nmnist_files(root: Path, split: str) -> list[tuple[Path, int]]:
    folder = root / split
    if not folder.is_dir():
        raise ConfigError(
            f"nmnist: {folder} is missing (N-MNIST's release layout is FOLDER/Train/<digit>/*.bin "
            "and FOLDER/Test/<digit>/*.bin)"
        )
    files: list[tuple[Path, int]] = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        if not (sub.name.isdigit() and int(sub.name) < NMNIST_CLASSES):
            raise ConfigError(f"nmnist: {sub} is not a digit class folder (0 .. 9)")
        files.extend((f, int(sub.name)) for f in sorted(sub.glob("*.bin")))
    if not files:
        raise ConfigError(f"nmnist: no .bin files in {folder}/<digit>/")
    return files


def _stack(
    samples: Iterable[np.ndarray], count: int, timesteps: int, n: int, **binning
) -> torch.Tensor:
    out = np.zeros((count, timesteps, n), dtype=np.uint8)
    for i, events in enumerate(samples):
        out[i] = bin_events(events, timesteps=timesteps, **binning)
    return torch.from_numpy(out)


def _require_timesteps(name: str, timesteps: int | None) -> int:
    if timesteps is None:
        raise ConfigError(f"dataset {name!r} is spike trains: give the timesteps to bin to")
    return timesteps


def load_nmnist(path: Path | None, timesteps: int | None) -> Dataset:
    """``nmnist:FOLDER``: the release's train and test files binned to ``timesteps`` (module
    docstring), ``n = 578`` inputs, 10 classes."""
    if path is None:
        raise ConfigError("dataset 'nmnist' reads your files: give nmnist:FOLDER")
    t = _require_timesteps("nmnist", timesteps)
    width, height, polarities = NMNIST_SENSOR
    n = (
        _binned_size(width, NMNIST_DOWNSAMPLE)
        * _binned_size(height, NMNIST_DOWNSAMPLE)
        * polarities
    )
    binning = {
        "sensor_size": NMNIST_SENSOR,
        "downsample": NMNIST_DOWNSAMPLE,
        "duration_us": NMNIST_DURATION_US,
    }
    tensors = []
    for split in NMNIST_SPLITS:
        files = _nmnist_files(path, split)
        x = _stack((read_nmnist_file(f) for f, _ in files), len(files), t, n, **binning)
        tensors += [x, torch.tensor([label for _, label in files], dtype=torch.int64)]
    return _spike_dataset(
        "nmnist", tensors, NMNIST_CLASSES, f"the release's Train and Test folders of {path}"
    )


def _spike_dataset(name: str, tensors: list[torch.Tensor], n_classes: int, split: str) -> Dataset:
    """A spike-train :class:`Dataset` from ``[x_train, y_train, x_test, y_test]``."""
    x_train, y_train, x_test, y_test = tensors
    return Dataset(
        name=name,
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        x_max=1,
        n_classes=n_classes,
        split=split,
    )


def _read_shd(file: Path) -> tuple[list[np.ndarray], torch.Tensor]:
    if not file.is_file():
        raise ConfigError(f"shd: {file} is missing (SHD is FOLDER/shd_train.h5 and shd_test.h5)")
    try:
        h5 = h5py.File(file, "r")
    except OSError as exc:
        raise ConfigError(f"shd: {file} is not an HDF5 file ({exc})") from exc
    with h5:
        for key in SHD_KEYS:
            if key not in h5:
                raise ConfigError(f"shd: {file} has no {key!r} (SHD keys: {', '.join(SHD_KEYS)})")
        times, units = h5["spikes/times"][()], h5["spikes/units"][()]
        labels = np.asarray(h5["labels"][()], dtype=np.int64)
    if not len(labels):
        raise ConfigError(f"shd: {file} holds no samples")
    if not len(times) == len(units) == len(labels):
        raise ConfigError(
            f"shd: {file} has {len(times)} spike times, {len(units)} units and {len(labels)} "
            "labels: one each per sample"
        )
    if labels.min() < 0 or labels.max() >= SHD_CLASSES:
        raise ConfigError(f"shd: {file} has labels outside 0 .. {SHD_CLASSES - 1}")
    samples = []
    for i, (t, u) in enumerate(zip(times, units, strict=True)):
        t_us = np.rint(np.asarray(t, dtype=np.float64) * US_PER_S)
        u = np.asarray(u, dtype=np.int64)
        if len(t_us) != len(u):
            raise ConfigError(f"shd: {file} sample {i} has {len(t_us)} times, {len(u)} units")
        if len(u) and (u.min() < 0 or u.max() >= SHD_CHANNELS):
            raise ConfigError(f"shd: {file} sample {i} has a unit outside 0 .. {SHD_CHANNELS - 1}")
        samples.append(tonic.io.make_structured_array(t_us, u, 0, dtype=SHD_DTYPE))
    return samples, torch.from_numpy(labels)


def load_shd(path: Path | None, timesteps: int | None) -> Dataset:
    """``shd:FOLDER``: ``shd_train.h5`` and ``shd_test.h5`` binned to ``timesteps`` (module
    docstring), ``n = 140`` inputs, 20 classes."""
    if path is None:
        raise ConfigError("dataset 'shd' reads your files: give shd:FOLDER")
    t = _require_timesteps("shd", timesteps)
    n = _binned_size(SHD_CHANNELS, SHD_DOWNSAMPLE)
    binning = {
        "sensor_size": (SHD_CHANNELS, 1, 1),
        "downsample": SHD_DOWNSAMPLE,
        "duration_us": SHD_DURATION_US,
    }
    tensors = []
    for split in ("train", "test"):
        samples, labels = _read_shd(path / SHD_FILES[split])
        tensors += [_stack(samples, len(samples), t, n, **binning), labels]
    split = f"the release's {SHD_FILES['train']} and {SHD_FILES['test']} of {path}"
    return _spike_dataset("shd", tensors, SHD_CLASSES, split)
