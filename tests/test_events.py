"""Event sources (``nmnist``, ``shd``, :mod:`spikeforge.sw.events`) on tiny files written here:
N-MNIST events packed by hand in the release's 40-bit format, SHD as ragged HDF5."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from spikeforge.cli import main
from spikeforge.sw.config import ConfigError
from spikeforge.sw.data import load_dataset
from spikeforge.sw.events import read_nmnist_file

T = 4  # N-MNIST: 300 ms / 4 = 75 ms bins; SHD: 1 s / 4 = 250 ms bins
OVERFLOW_Y = 240  # the release's timestamp-overflow marker (adds 2**13 us)


def pack(events: list[tuple[int, int, int, int]]) -> bytes:
    """N-MNIST's 40-bit events ``(x, y, p, t_us)``: x, y, then p at bit 39 and 23 bits of t."""
    out = bytearray()
    for x, y, p, t in events:
        out += bytes([x, y, (p << 7) | (t >> 16) & 0x7F, (t >> 8) & 0xFF, t & 0xFF])
    return bytes(out)


def write_bin(folder: Path, name: str, events: list[tuple[int, int, int, int]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(pack(events))
    return folder / name


# input = p * 289 + (y // 2) * 17 + x // 2; bin = t // 75_000, t >= 300_000 dropped
SAMPLE_A = [
    (33, 0, 1, 0),  # input 305, bin 0
    (32, 1, 1, 10),  # the same input and bin: still one spike
    (4, 7, 0, 150_000),  # input 53, bin 2
    (0, 33, 1, 299_999),  # input 289 + 16 * 17 = 561, bin 3
    (5, 5, 0, 300_000),  # dropped: after the 300 ms
]
SPIKES_A = {(0, 305), (2, 53), (3, 561)}
SAMPLE_B = [(10, 20, 0, 80_000)]  # input 10 * 17 + 5 = 175, bin 1
SAMPLE_C = [(1, 1, 1, 74_999), (1, 1, 1, 75_000)]  # input 289, bins 0 and 1


@pytest.fixture
def nmnist(tmp_path: Path) -> Path:
    root = tmp_path / "nmnist"
    write_bin(root / "Train" / "3", "00001.bin", SAMPLE_A)
    write_bin(root / "Train" / "0", "00002.bin", SAMPLE_B)
    write_bin(root / "Train" / "0", "00003.bin", [])
    write_bin(root / "Test" / "7", "00001.bin", SAMPLE_C)
    return root


def spikes_of(x: torch.Tensor) -> set[tuple[int, int]]:
    return {(int(t), int(i)) for t, i in torch.nonzero(x)}


def test_nmnist_bins_labels_and_splits(nmnist):
    ds = load_dataset(f"nmnist:{nmnist}", timesteps=T)
    assert ds.x_train.shape == (3, T, 578) and ds.x_test.shape == (1, T, 578)
    assert ds.timesteps == T and ds.x_max == 1 and ds.n_classes == 10
    # files in class-folder order, then by name: 0/00002, 0/00003, 3/00001
    assert ds.y_train.tolist() == [0, 0, 3] and ds.y_test.tolist() == [7]
    assert spikes_of(ds.x_train[0]) == {(1, 175)}
    assert spikes_of(ds.x_train[1]) == set()
    assert spikes_of(ds.x_train[2]) == SPIKES_A
    assert spikes_of(ds.x_test[0]) == {(0, 289), (1, 289)}
    assert int(ds.x_train.max()) == 1


def test_nmnist_reader_applies_timestamp_overflow(tmp_path):
    f = write_bin(tmp_path, "a.bin", [(1, 2, 1, 5), (0, OVERFLOW_Y, 0, 0), (3, 4, 0, 7)])
    events = read_nmnist_file(f)
    assert events[["x", "y", "t", "p"]].tolist() == [(1, 2, 5, 1), (3, 4, 7 + 2**13, 0)]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            lambda r: (r / "Train" / "3" / "00001.bin").write_bytes(pack(SAMPLE_A)[:-2]),
            "is not a whole",
        ),
        (
            lambda r: (r / "Test" / "7" / "00001.bin").write_bytes(pack([(34, 0, 0, 1)])),
            "off the 34",
        ),
        (lambda r: (r / "Train" / "seven").mkdir(), "is not a digit class folder"),
        (lambda r: (r / "Test" / "7" / "00001.bin").rename(r / "Test.bin"), "no .bin files"),
    ],
)
def test_nmnist_errors_name_the_file(nmnist, damage, message):
    damage(nmnist)
    with pytest.raises(ConfigError, match=message) as exc:
        load_dataset(f"nmnist:{nmnist}", timesteps=T)
    assert str(nmnist) in str(exc.value)


def test_nmnist_missing_split_folder(nmnist):
    (nmnist / "Test" / "7" / "00001.bin").unlink()
    (nmnist / "Test" / "7").rmdir()
    (nmnist / "Test").rmdir()
    with pytest.raises(ConfigError, match=r"Test is missing"):
        load_dataset(f"nmnist:{nmnist}", timesteps=T)


def write_shd(path: Path, samples: list[list[tuple[float, int]]], labels: list[int], **skip):
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as h5:
        times = h5.create_dataset(
            "spikes/times", (len(samples),), dtype=h5py.vlen_dtype(np.float32)
        )
        units = h5.create_dataset("spikes/units", (len(samples),), dtype=h5py.vlen_dtype(np.uint16))
        for i, s in enumerate(samples):
            times[i] = np.array([t for t, _ in s], dtype=np.float32)
            units[i] = np.array([u for _, u in s], dtype=np.uint16)
        if not skip.get("no_labels"):
            h5.create_dataset("labels", data=np.array(labels, dtype=np.uint8))


# input = channel // 5; bin = t // 250 ms, t >= 1 s dropped
SHD_TRAIN = [
    [(0.0, 699), (0.5, 12), (0.6, 14), (1.0, 3), (0.25, 5)],  # (0, 139) (2, 2) (1, 1)
    [(0.99, 0)],  # (3, 0)
]


@pytest.fixture
def shd(tmp_path: Path) -> Path:
    root = tmp_path / "shd"
    write_shd(root / "shd_train.h5", SHD_TRAIN, [19, 4])
    write_shd(root / "shd_test.h5", [[]], [0])
    return root


def test_shd_bins_labels_and_splits(shd):
    ds = load_dataset(f"shd:{shd}", timesteps=T)
    assert ds.x_train.shape == (2, T, 140) and ds.x_test.shape == (1, T, 140)
    assert ds.y_train.tolist() == [19, 4] and ds.y_test.tolist() == [0]
    assert ds.x_max == 1 and ds.n_classes == 20
    assert spikes_of(ds.x_train[0]) == {(0, 139), (2, 2), (1, 1)}
    assert spikes_of(ds.x_train[1]) == {(3, 0)}
    assert spikes_of(ds.x_test[0]) == set()


def test_shd_errors_name_the_file(shd):
    write_shd(shd / "shd_test.h5", [[]], [0], no_labels=True)
    with pytest.raises(ConfigError, match=r"shd_test\.h5 has no 'labels'"):
        load_dataset(f"shd:{shd}", timesteps=T)
    write_shd(shd / "shd_test.h5", [], [])
    with pytest.raises(ConfigError, match=r"shd_test\.h5 holds no samples"):
        load_dataset(f"shd:{shd}", timesteps=T)
    (shd / "shd_test.h5").unlink()
    with pytest.raises(ConfigError, match=r"shd_test\.h5 is missing"):
        load_dataset(f"shd:{shd}", timesteps=T)


def test_event_sources_need_a_folder():
    with pytest.raises(ConfigError, match="give nmnist:PATH"):
        load_dataset("nmnist", timesteps=T)


@pytest.mark.parametrize("mode", ["int", "float"])
def test_cli_trains_on_nmnist(nmnist, tmp_path, mode, capsys):
    args = ["train", "--dataset", f"nmnist:{nmnist}", "--encoder", "spikes", "--mode", mode]
    args += ["--layers", "578,8,10", "--timesteps", str(T), "--epochs", "1"]
    assert main([*args, "--out", str(tmp_path / mode), "--no-progress"]) == 0
    assert "epoch   1  test accuracy" in capsys.readouterr().out


def test_bench_recording_round_trips_through_the_reader(tmp_path):
    spec = importlib.util.spec_from_file_location(
        "events_table", Path(__file__).resolve().parents[1] / "bench" / "events_table.py"
    )
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    digits = load_dataset("digits").x_train[:2].numpy()
    recorded = bench.record(digits)
    assert recorded[0].tolist() == bench.record(digits)[0].tolist()  # deterministic
    for i, events in enumerate(recorded):
        assert len(events) > 1000 and set(events[:, 2].tolist()) == {0, 1}
        f = tmp_path / f"{i}.bin"
        f.write_bytes(bench.pack(events))
        back = read_nmnist_file(f)
        assert back[["x", "y", "p", "t"]].tolist() == [tuple(e) for e in events.tolist()]
