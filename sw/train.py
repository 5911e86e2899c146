"""Training loops: on-chip training emulation (integer golden model) and the float reference.

Integer mode is what the chip does: batch size ``cfg.batch_size`` (hardware: 1), every sample
rate- or direct-encoded with the documented LFSR keys, one :meth:`GoldenModel.train_step` per
sample, the update after ``batch_size`` samples. Both modes checkpoint after every epoch and
resume from the last checkpoint bit-exactly.

Learning-rate schedule: ``"step"`` halves the learning rate at half and again at three quarters
of the epochs -- in integer mode the host raises the runtime ``lr_shift`` register by one each
time (:func:`lr_steps`); ``"constant"`` keeps it. Defaults, chosen by measurement over seeds
(docs/results.md): ``step`` for integer mode (batch-1 updates are noisy until the rate drops),
``constant`` for the float reference (Adam).

Sample keys (the encoder's LFSR seeds): training sample ``i`` of epoch ``e`` uses
``(e + 1) * 2**20 + i``; test sample ``i`` uses ``i``. The order of epoch ``e`` is
``torch.randperm(N, generator=Generator().manual_seed(init_seed + 7919 * (e + 1)))``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from .checkpoint import load_checkpoint, save_checkpoint
from .config import TRAINING_CHOICES, ConfigError, SnnConfig
from .data import Dataset
from .encoders import encode, quantize
from .float_ref import FloatSNN, count_loss
from .golden import GoldenModel, init_weights

__all__ = [
    "FloatOptions",
    "TrainResult",
    "check_dataset",
    "epoch_keys",
    "epoch_order",
    "epoch_samples",
    "eval_inputs",
    "eval_keys",
    "lr_steps",
    "no_progress",
    "train_float",
    "train_int",
]

SCHEDULES = TRAINING_CHOICES["schedule"]

KEY_EPOCH_STRIDE = 1 << 20

Progress = Callable[[int, str], Any]
"""``progress(total, desc)`` returns an object with ``update(n)`` and ``close()`` (e.g. tqdm)."""


@dataclass
class TrainResult:
    mode: str
    config: dict[str, Any]
    test_accuracy: float
    train_accuracy: float
    epochs: int
    train_seconds: float
    samples_per_second: float
    checkpoint: str | None
    history: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, kw_only=True)
class FloatOptions:
    """Optimiser settings of the float reference (not part of the integer contract)."""

    lr: float = 2e-3
    batch_size: int = 16
    loss: str = "mse"

    def __post_init__(self) -> None:
        if not (isinstance(self.lr, float) and 0 < self.lr < 1):
            raise ConfigError(f"lr must be a float in (0, 1), not {self.lr!r}")
        if not (isinstance(self.batch_size, int) and 1 <= self.batch_size <= 4096):
            raise ConfigError(
                f"float batch_size must be an int in [1, 4096], not {self.batch_size!r}"
            )
        if self.loss not in TRAINING_CHOICES["loss"]:
            raise ConfigError(f"loss must be 'mse' or 'ce', not {self.loss!r}")


def lr_steps(schedule: str, epoch: int, epochs: int) -> int:
    """How many times the learning rate has been halved at ``epoch`` (0-based) of ``epochs``."""
    if schedule not in SCHEDULES:
        raise ConfigError(
            f"lr schedule {schedule!r} is unknown: choose one of {', '.join(SCHEDULES)}"
        )
    if schedule == "constant":
        return 0
    return int(epoch >= epochs // 2) + int(epoch >= (3 * epochs) // 4)


def epoch_order(cfg: SnnConfig, n: int, epoch: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(cfg.init_seed + 7919 * (epoch + 1))
    return torch.randperm(n, generator=gen)


def epoch_keys(cfg: SnnConfig, n: int, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The training order of ``epoch`` (:func:`epoch_order`) and the encoder keys of its
    samples, ``(epoch + 1) * KEY_EPOCH_STRIDE + index``."""
    order = epoch_order(cfg, n, epoch)
    return order, (epoch + 1) * KEY_EPOCH_STRIDE + order


def epoch_samples(
    cfg: SnnConfig, x: torch.Tensor, y: torch.Tensor, epoch: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The integer trainer's inputs of ``epoch`` in training order: quantized intensities ``x``
    in :func:`epoch_keys` order, encoded with its keys, and their labels."""
    order, keys = epoch_keys(cfg, len(x), epoch)
    return encode(x[order], keys, cfg), y[order]


def eval_keys(n: int) -> torch.Tensor:
    """The encoder keys of ``n`` evaluation samples: ``0 .. n - 1``."""
    return torch.arange(n, dtype=torch.int64)


def eval_inputs(cfg: SnnConfig, x: torch.Tensor) -> torch.Tensor:
    """Encoded evaluation inputs of quantized intensities ``x`` (:func:`eval_keys`, as
    :func:`int_accuracy` uses)."""
    return encode(x, eval_keys(len(x)), cfg)


def check_dataset(cfg: SnnConfig, ds: Dataset) -> None:
    """A :class:`~spikeforge.sw.config.ConfigError` unless ``ds`` has the network's inputs, at
    most its outputs, and the input kind its encoder takes (spike trains of ``timesteps`` for
    ``spikes``, intensities otherwise)."""
    if (ds.timesteps is not None) != (cfg.encoder == "spikes"):
        kind = "spike trains" if ds.timesteps is not None else "intensities"
        want = "'spikes'" if ds.timesteps is not None else "'rate' or 'direct'"
        raise ConfigError(f"dataset {ds.name!r} is {kind}: set encoder = {want}")
    if ds.timesteps is not None and ds.timesteps != cfg.timesteps:
        raise ConfigError(
            f"dataset {ds.name!r} is binned to {ds.timesteps} timesteps, the network has "
            f"timesteps = {cfg.timesteps}"
        )
    if ds.n_features != cfg.n_inputs:
        raise ConfigError(
            f"layers[0] = {cfg.n_inputs} but dataset {ds.name!r} has {ds.n_features} features"
        )
    if ds.n_classes > cfg.n_outputs:
        raise ConfigError(
            f"layers[-1] = {cfg.n_outputs} is smaller than the {ds.n_classes} classes "
            f"of {ds.name!r}"
        )


def no_progress(total: int, desc: str):
    """A :data:`Progress` factory that shows nothing."""

    class _Null:
        def update(self, n: int) -> None:
            pass

        def close(self) -> None:
            pass

    return _Null()


def _resume(path: Path | None, cfg: SnnConfig, mode: str, resume: bool) -> dict[str, Any] | None:
    if path is None or not resume or not path.exists():
        return None
    _, blob = load_checkpoint(path, cfg, mode)
    return blob


def int_accuracy(model: GoldenModel, x: torch.Tensor, y: torch.Tensor, key0: int = 0) -> float:
    """Accuracy of the integer model on quantized intensities ``x`` (keys ``key0 + i``)."""
    pred = model.predict(encode(x, key0 + eval_keys(len(x)), model.cfg))
    return float((pred == y).to(torch.int64).sum()) / len(y)


def train_int(
    cfg: SnnConfig,
    ds: Dataset,
    epochs: int,
    checkpoint: str | Path | None = None,
    resume: bool = False,
    progress: Progress = no_progress,
    schedule: str = "step",
    on_epoch: Callable[[dict[str, Any]], Any] | None = None,
    init: list[torch.Tensor] | None = None,
) -> TrainResult:
    """On-chip training emulation with the integer golden model.

    ``on_epoch(row)`` is called after every epoch's checkpoint is written, with
    ``{"epoch", "test_accuracy"}``. ``init``: the master weights to start from (e.g. a NIR
    import's) instead of :func:`init_weights`; a resumed run ignores it."""
    lr_steps(schedule, 0, epochs)
    check_dataset(cfg, ds)
    ckpt = Path(checkpoint) if checkpoint is not None else None
    x_tr = quantize(ds.x_train, ds.x_max, cfg.in_bits)
    x_te = quantize(ds.x_test, ds.x_max, cfg.in_bits)
    blob = _resume(ckpt, cfg, "int", resume)
    if blob is None:
        model, history, start, seconds = GoldenModel(cfg, init), [], 0, 0.0
    else:
        model = GoldenModel.from_state(cfg, blob["state"])
        history, seconds = blob["meta"]["history"], blob["meta"]["train_seconds"]
        start = blob["meta"]["epoch"] + 1
    n, bs = len(x_tr), cfg.batch_size
    for epoch in range(start, epochs):
        model.lr_shift = cfg.lr_shift + lr_steps(schedule, epoch, epochs)
        bar = progress(n, f"int epoch {epoch + 1}/{epochs}")
        t0 = time.perf_counter()
        x_in, y = epoch_samples(cfg, x_tr, ds.y_train, epoch)
        for k in range(0, n, bs):
            model.train_step(x_in[k : k + bs], y[k : k + bs])
            bar.update(min(bs, n - k))
        seconds += time.perf_counter() - t0
        bar.close()
        history.append({"epoch": epoch + 1, "test_accuracy": int_accuracy(model, x_te, ds.y_test)})
        if ckpt is not None:
            meta = {"epoch": epoch, "history": history, "train_seconds": seconds}
            save_checkpoint(ckpt, cfg, "int", model.state_dict(), meta)
        if on_epoch is not None:
            on_epoch(history[-1])
    return TrainResult(
        mode="int",
        config=cfg.to_dict(),
        test_accuracy=int_accuracy(model, x_te, ds.y_test),
        train_accuracy=int_accuracy(model, x_tr, ds.y_train),
        epochs=epochs,
        train_seconds=seconds,
        samples_per_second=n * max(epochs - start, 0) / seconds if seconds else 0.0,
        checkpoint=str(ckpt) if ckpt is not None else None,
        history=history,
    )


def float_inputs(cfg: SnnConfig, x: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """The float network's input: the same LFSR spikes, or intensities ``/ 2**in_bits``."""
    enc = encode(x, keys, cfg).to(torch.float32)
    return enc / (1 << cfg.in_bits) if cfg.encoder == "direct" else enc


def float_accuracy(net: FloatSNN, x: torch.Tensor, y: torch.Tensor) -> float:
    pred = net.predict(float_inputs(net.cfg, x, eval_keys(len(x))))
    return float((pred == y).to(torch.int64).sum()) / len(y)


def train_float(
    cfg: SnnConfig,
    ds: Dataset,
    epochs: int,
    options: FloatOptions | None = None,
    checkpoint: str | Path | None = None,
    resume: bool = False,
    progress: Progress = no_progress,
    schedule: str = "constant",
    on_epoch: Callable[[dict[str, Any]], Any] | None = None,
) -> TrainResult:
    """Surrogate-gradient training of :class:`FloatSNN` with Adam, from the integer init."""
    lr_steps(schedule, 0, epochs)
    check_dataset(cfg, ds)
    opts = options or FloatOptions()
    ckpt = Path(checkpoint) if checkpoint is not None else None
    x_tr = quantize(ds.x_train, ds.x_max, cfg.in_bits)
    x_te = quantize(ds.x_test, ds.x_max, cfg.in_bits)
    net = FloatSNN(cfg, init_weights(cfg))
    opt = torch.optim.Adam(net.parameters(), lr=opts.lr)
    blob = _resume(ckpt, cfg, "float", resume)
    history: list[dict[str, Any]] = []
    start, seconds = 0, 0.0
    if blob is not None:
        net.load_state_dict(blob["state"]["model"])
        opt.load_state_dict(blob["state"]["optimizer"])
        history, seconds = blob["meta"]["history"], blob["meta"]["train_seconds"]
        start = blob["meta"]["epoch"] + 1
    n, bs = len(x_tr), opts.batch_size
    for epoch in range(start, epochs):
        for group in opt.param_groups:
            group["lr"] = opts.lr / 2 ** lr_steps(schedule, epoch, epochs)
        bar = progress(n, f"float epoch {epoch + 1}/{epochs}")
        t0 = time.perf_counter()
        order = epoch_order(cfg, n, epoch)
        x_in = float_inputs(cfg, x_tr[order], (epoch + 1) * KEY_EPOCH_STRIDE + order)
        y = ds.y_train[order]
        for k in range(0, n, bs):
            spikes, _ = net(x_in[k : k + bs])
            loss = count_loss(cfg, spikes[-1], y[k : k + bs], opts.loss)
            opt.zero_grad()
            loss.backward()
            opt.step()
            bar.update(min(bs, n - k))
        seconds += time.perf_counter() - t0
        bar.close()
        history.append({"epoch": epoch + 1, "test_accuracy": float_accuracy(net, x_te, ds.y_test)})
        if ckpt is not None:
            state = {"model": net.state_dict(), "optimizer": opt.state_dict()}
            meta = {"epoch": epoch, "history": history, "train_seconds": seconds, **asdict(opts)}
            save_checkpoint(ckpt, cfg, "float", state, meta)
        if on_epoch is not None:
            on_epoch(history[-1])
    return TrainResult(
        mode="float",
        config=cfg.to_dict(),
        test_accuracy=float_accuracy(net, x_te, ds.y_test),
        train_accuracy=float_accuracy(net, x_tr, ds.y_train),
        epochs=epochs,
        train_seconds=seconds,
        samples_per_second=n * max(epochs - start, 0) / seconds if seconds else 0.0,
        checkpoint=str(ckpt) if ckpt is not None else None,
        history=history,
    )
