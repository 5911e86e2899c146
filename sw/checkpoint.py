"""Checkpoints: weights, training state and the exact config that produced them.

A checkpoint is a ``torch.save`` dict (loaded with ``weights_only=True``)::

    {"format": "spikeforge-checkpoint", "version": 1, "mode": "int" | "float",
     "config": SnnConfig.to_dict(), "config_hash": str, "state": {...}, "meta": {...}}

Loading against a config refuses any mismatch and names the differing fields. Writes are atomic
(temporary file, then rename), so a killed run never leaves a torn checkpoint.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from .config import SnnConfig

__all__ = ["FORMAT", "CheckpointError", "load_checkpoint", "save_checkpoint"]

FORMAT = "spikeforge-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that is missing, malformed, or made for another config or mode."""


def save_checkpoint(
    path: str | Path, cfg: SnnConfig, mode: str, state: dict[str, Any], meta: dict[str, Any]
) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = {
        "format": FORMAT,
        "version": VERSION,
        "mode": mode,
        "config": cfg.to_dict(),
        "config_hash": cfg.config_hash,
        "state": state,
        "meta": meta,
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(blob, tmp)
    os.replace(tmp, path)
    return path


def _describe_mismatch(saved: dict[str, Any], wanted: dict[str, Any]) -> str:
    diffs = [
        f"{k}: checkpoint {saved.get(k)!r}, requested {wanted.get(k)!r}"
        for k in sorted(set(saved) | set(wanted))
        if saved.get(k) != wanted.get(k)
    ]
    return "; ".join(diffs)


def load_checkpoint(
    path: str | Path, cfg: SnnConfig | None = None, mode: str | None = None
) -> tuple[SnnConfig, dict[str, Any]]:
    """Load ``path``; with ``cfg``/``mode`` given, refuse a checkpoint made for anything else.

    Returns ``(config, blob)``.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    try:
        blob = torch.load(path, weights_only=True)
    except Exception as exc:  # torch raises several types for a non-checkpoint file
        raise CheckpointError(f"{str(path)!r} is not a readable checkpoint: {exc}") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise CheckpointError(f"{str(path)!r} is not a spikeforge checkpoint")
    if blob.get("version") != VERSION:
        raise CheckpointError(
            f"{str(path)!r} has checkpoint version {blob.get('version')!r}; this is {VERSION}"
        )
    saved = SnnConfig.from_dict(blob["config"])
    if mode is not None and blob["mode"] != mode:
        raise CheckpointError(
            f"checkpoint {str(path)!r} is for mode {blob['mode']!r}, not {mode!r}"
        )
    if cfg is not None and saved.config_hash != cfg.config_hash:
        raise CheckpointError(
            f"checkpoint {str(path)!r} was made with another config: "
            + _describe_mismatch(saved.to_dict(), cfg.to_dict())
        )
    return saved, blob
