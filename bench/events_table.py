"""An event-data accuracy table through the real ``nmnist:FOLDER`` loader: float, integer BPTT and
integer SLTT on scikit-learn's digits as an emulated event camera sees them under N-MNIST's
saccades (the real N-MNIST and SHD cannot be downloaded here).

    .venv/bin/python bench/events_table.py [--seeds 3] [--epochs E] [--timesteps T]
        [--hidden H] [--out FOLDER] [--json] [--validation]

**The recording** (deterministic, no randomness): each 8 x 8 digit (intensity ``0 .. 16``) is
upsampled by ``UPSAMPLE`` (nearest) and placed at ``ORIGIN`` on N-MNIST's 34 x 34 sensor, then
moved along a triangle ``SACCADE`` like N-MNIST's three saccades (straight 100 ms segments),
rendered with bilinear sub-pixel shifts every ``STEP_US``. Each pixel emulates a DVS: it keeps
the log intensity ``log(BACKGROUND + I / 16)`` at its last event and emits one ON (``p = 1``) or
OFF (``p = 0``) event for every ``CONTRAST`` of change since, at that step's time. The events are
written as N-MNIST ``.bin`` files in the release layout (``Train/<digit>/*.bin`` from the digits'
training split, ``Test/<digit>/*.bin`` from its test split) and loaded back with
:func:`spikeforge.sw.data.load_dataset` (``nmnist:FOLDER``: 17 x 17 x 2 = 578 inputs, 300 ms in
``T`` bins).

**Per seed** (``init_seed`` 1..S: the initialisation and sample order): ``float``
(:func:`~spikeforge.sw.train.train_float`, Adam, the float reference), ``int BPTT`` and
``int SLTT`` (:func:`~spikeforge.sw.train.train_int`, ``bptt = "bptt"`` / ``"sltt"``, batch 1,
the arithmetic the RTL runs), all for the same epochs on a ``578-H-10`` network. Test accuracy
is the mean ± half range over seeds.

**Chosen on the validation split** (``Dataset.holdout()``, never the test split;
``--validation --seeds 1`` reruns it, 12 min on a busy machine): ``T = 16``, ``H = 32`` and 4
epochs. From the baseline ``T = 8, H = 32``, 4 epochs (validation accuracy float / int BPTT /
int SLTT, seed 1: 93.4 / 95.5 / 85.4%), 2 epochs lost 3-11 points (85.1 / 92.4 / 74.0%),
``T = 16`` gained SLTT 8 points (94.8 / 95.1 / 93.8%) and ``H = 64`` gained nothing (93.1 /
94.4 / 85.4%). The sensor, saccade and DVS constants were set before any training, so that a
digit gives a few thousand events (about 4,800, the order of N-MNIST's), and not tuned.

Prints a table; writes ``OUT/results.json`` and ``OUT/table.md``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from spikeforge.sw.config import SnnConfig
from spikeforge.sw.data import load_dataset, load_digits
from spikeforge.sw.events import NMNIST_DURATION_US, NMNIST_SENSOR
from spikeforge.sw.train import train_float, train_int

UPSAMPLE = 3
"""Each digit pixel becomes 3 x 3 sensor pixels (24 x 24 of the 34 x 34 sensor)."""
ORIGIN = (2, 2)
"""The digit's top-left sensor pixel (x, y) at the start of the first saccade."""
SACCADE = ((0.0, 0.0), (6.0, 3.0), (0.0, 6.0), (0.0, 0.0))
"""The triangle's corners (dx, dy) in sensor pixels: three straight segments of 100 ms each."""
STEP_US = 1_000
"""The emulated camera's sampling step."""
BACKGROUND = 0.1
"""Added to the 0..1 intensity before the log, so dark pixels have a finite log intensity."""
CONTRAST = 0.4
"""The log-intensity change of one event."""
DIGIT_LEVELS = 16
COLUMNS = ("float", "int BPTT", "int SLTT")
BASELINE = {"timesteps": 8, "hidden": 32, "epochs": 4}
CHOICES = (
    BASELINE,
    {**BASELINE, "epochs": 2},
    {**BASELINE, "timesteps": 16},
    {**BASELINE, "hidden": 64},
)
"""What ``--validation`` compares: a baseline and one change at a time."""
DEFAULTS = {"timesteps": 16, "hidden": 32, "epochs": 4}
"""Chosen by ``--validation --seeds 1`` (module docstring)."""


def positions() -> np.ndarray:
    """The (dx, dy) offset at every step, ``[NMNIST_DURATION_US // STEP_US, 2]``."""
    steps = NMNIST_DURATION_US // STEP_US
    per = steps // (len(SACCADE) - 1)
    corners = np.asarray(SACCADE)
    k = np.arange(steps)
    seg, frac = k // per, (k % per) / per
    return corners[seg] + (corners[seg + 1] - corners[seg]) * frac[:, None]


def render(images: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Intensities ``[N, H, W]`` in 0..1 on the sensor, the digits shifted by ``offset``
    (bilinear)."""
    width, height, _ = NMNIST_SENSOR
    n, h, w = images.shape
    ix, iy = int(np.floor(offset[0])), int(np.floor(offset[1]))
    fx, fy = offset[0] - ix, offset[1] - iy
    out = np.zeros((n, height + 1, width + 1))
    x0, y0 = ORIGIN[0] + ix, ORIGIN[1] + iy
    for ddx, ddy, weight in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)),
                             (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):  # fmt: skip
        out[:, y0 + ddy : y0 + ddy + h, x0 + ddx : x0 + ddx + w] += weight * images
    return out[:, :height, :width]


def record(digits: np.ndarray) -> list[np.ndarray]:
    """The DVS events ``(x, y, p, t)`` ``[E, 4]`` of each 8 x 8 digit (module docstring)."""
    up = np.kron(digits.reshape(-1, 8, 8) / DIGIT_LEVELS, np.ones((UPSAMPLE, UPSAMPLE)))
    path = positions()
    ref = np.log(BACKGROUND + render(up, path[0]))
    chunks: list[np.ndarray] = []
    for k in range(1, len(path)):
        level = np.log(BACKGROUND + render(up, path[k]))
        count = np.trunc((level - ref) / CONTRAST).astype(np.int64)
        ref += count * CONTRAST
        img, y, x = np.nonzero(count)
        c = count[img, y, x]
        rows = np.stack([img, x, y, (c > 0).astype(np.int64), np.full_like(x, k * STEP_US)], 1)
        chunks.append(np.repeat(rows, np.abs(c), axis=0))
    events = np.concatenate(chunks)
    events = events[np.argsort(events[:, 0], kind="stable")]
    bounds = np.searchsorted(events[:, 0], np.arange(len(digits) + 1))
    return [events[a:b, 1:] for a, b in itertools.pairwise(bounds)]


def pack(events: np.ndarray) -> bytes:
    """N-MNIST's 40-bit events: x, y, then the polarity at bit 39 and 23 bits of time (us)."""
    x, y, p, t = (events[:, i].astype(np.uint32) for i in range(4))
    raw = np.stack([x, y, (p << 7) | (t >> 16) & 0x7F, (t >> 8) & 0xFF, t & 0xFF], 1)
    return raw.astype(np.uint8).tobytes()


def write_release(root: Path) -> dict[str, float]:
    """Write the digits' training and test splits as N-MNIST ``.bin`` files under ``root``."""
    ds = load_digits(None, None)
    counts = []
    for split, x, y in (("Train", ds.x_train, ds.y_train), ("Test", ds.x_test, ds.y_test)):
        for i, (events, label) in enumerate(zip(record(x.numpy()), y.tolist(), strict=True)):
            folder = root / split / str(label)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{i:05d}.bin").write_bytes(pack(events))
            counts.append(len(events))
    return {"files": len(counts), "mean_events": statistics.fmean(counts)}


def run(ds, seed: int, timesteps: int, hidden: int, epochs: int) -> dict[str, float]:
    """Test accuracy of the three trainers for one seed."""
    base = {"layers": (ds.n_features, hidden, 10), "timesteps": timesteps, "encoder": "spikes"}
    out = {}
    out["float"] = train_float(SnnConfig(**base, init_seed=seed), ds, epochs).test_accuracy
    for column, rule in (("int BPTT", "bptt"), ("int SLTT", "sltt")):
        cfg = SnnConfig(**base, bptt=rule, init_seed=seed)
        out[column] = train_int(cfg, ds, epochs).test_accuracy
    return out


def spread(values: list[float]) -> str:
    mean = statistics.fmean(values)
    return f"{100 * mean:.1f} ± {100 * (max(values) - min(values)) / 2:.1f}%"


def table(runs: dict[int, dict[str, float]], title: str) -> str:
    rows = [
        f"| {title} | " + " | ".join(COLUMNS) + " |",
        "| --- |" + " --- |" * len(COLUMNS),
        f"| accuracy, seeds 1..{len(runs)} (mean ± half range) | "
        + " | ".join(spread([r[c] for r in runs.values()]) for c in COLUMNS)
        + " |",
    ]
    return "\n".join(rows)


def validation(folder: Path, seeds: int) -> list[str]:
    """Validation accuracy of every choice in :data:`CHOICES` (the test split is not loaded
    into the runs: ``Dataset.holdout()``)."""
    lines = []
    for choice in CHOICES:
        ds = load_dataset(f"nmnist:{folder}", timesteps=choice["timesteps"]).holdout()
        runs = {s: run(ds, s, **choice) for s in range(1, seeds + 1)}
        title = ", ".join(f"{k} {v}" for k, v in choice.items())
        lines.append(table(runs, title).replace("accuracy", "validation accuracy"))
        print(lines[-1].splitlines()[-1].replace("validation", f"{title}: validation"))
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds 1..N [default: 3]")
    for name, value in DEFAULTS.items():
        parser.add_argument(f"--{name}", type=int, default=value, help=f"[default: {value}]")
    parser.add_argument("--out", type=Path, help="write the .bin files and results here")
    parser.add_argument("--validation", action="store_true", help="compare CHOICES instead")
    parser.add_argument("--json", action="store_true", help="print a JSON summary as last line")
    args = parser.parse_args(argv)
    for name in ("seeds", *DEFAULTS):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, not {getattr(args, name)}")
    t0 = time.perf_counter()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        folder = out / "nmnist-digits"
        recording = write_release(folder)
        t_rec = time.perf_counter() - t0
        print(
            f"wrote {recording['files']} N-MNIST files ({recording['mean_events']:.0f} events "
            f"each on average) to {folder} in {t_rec:.0f} s"
        )
        if args.validation:
            text = "\n\n".join(validation(folder, args.seeds))
        else:
            ds = load_dataset(f"nmnist:{folder}", timesteps=args.timesteps)
            print(f"loaded through nmnist:FOLDER in {time.perf_counter() - t0 - t_rec:.0f} s")
            runs = {}
            for seed in range(1, args.seeds + 1):
                runs[seed] = run(ds, seed, args.timesteps, args.hidden, args.epochs)
                print(
                    f"seed {seed}: " + ", ".join(f"{c} {100 * runs[seed][c]:.1f}%" for c in COLUMNS)
                )
            title = (
                f"emulated N-MNIST digits, 578-{args.hidden}-10, T = {args.timesteps}, "
                f"{args.epochs} epochs"
            )
            text = table(runs, title).replace("accuracy", "test accuracy")
        seconds = time.perf_counter() - t0
        print(text)
        print(f"{seconds:.0f} s")
        summary = {
            "text": text,
            "seconds": seconds,
            "recording": recording,
            "args": {k: str(v) for k, v in vars(args).items()},
        }
        if args.out is not None:
            (out / "results.json").write_text(json.dumps(summary, indent=2) + "\n")
            (out / "table.md").write_text(text + "\n")
    if args.json:
        print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
