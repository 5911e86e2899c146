"""Checker: every value the core returned against the model, with a first-mismatch report."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["AFTER_UPDATE", "BEFORE_UPDATE", "Mismatch", "check_cores", "check_step"]

AXES = {
    "membranes": ("t", "j"),
    "spikes": ("t", "j"),
    "deltas": ("t", "j"),
    "eprev": ("t", "i"),
    "weights": ("j", "i"),
    "grads": ("j", "i"),
    "counts": ("j",),
    "lfsr": ("j",),
}


class Mismatch(AssertionError):
    """The first differing value: quantity, index, expected, got, step and seed."""


def check_step(expected: dict, got: dict, *, step: int, seed: int, where: str = "") -> None:
    """Compare every quantity in ``expected`` with ``got``; raise :class:`Mismatch` on the first
    difference (quantities in ``expected`` order, indices in row-major order)."""
    for name, exp in expected.items():
        if name not in got:
            raise Mismatch(f"step {step}, seed {seed}: {name} was not read back{where}")
        val = got[name]
        if tuple(val.shape) != tuple(exp.shape):
            raise Mismatch(
                f"step {step}, seed {seed}: {name} has shape {tuple(val.shape)}, "
                f"expected {tuple(exp.shape)}{where}"
            )
        bad = (val != exp).nonzero()
        if bad.numel():
            idx = tuple(int(v) for v in bad[0])
            axes = AXES.get(name, tuple(f"d{n}" for n in range(len(idx))))
            at = ", ".join(f"{a} = {v}" for a, v in zip(axes, idx, strict=True))
            raise Mismatch(
                f"step {step}, seed {seed}: first mismatch in {name} at {at}: expected "
                f"{int(exp[idx])}, got {int(val[idx])} ({bad.shape[0]} of {exp.numel()} "
                f"values differ){where}"
            )


BEFORE_UPDATE = ("membranes", "spikes", "counts", "deltas", "eprev", "errors", "grads")
"""Quantities a step leaves for a READ before its update (the gradients are cleared by it)."""
AFTER_UPDATE = ("weights", "lfsr")
"""Quantities the update changes."""


async def check_cores(
    sessions: Sequence, expected: Sequence[dict], names: Sequence[str], *, step: int, seed: int
) -> None:
    """READ ``names`` (those each core's ``expected`` holds) from every core session and
    compare them with :func:`check_step`; the mismatch names the core and its layer."""
    from spikeforge.hw.protocol import Quantity

    for n, (session, exp) in enumerate(zip(sessions, expected, strict=True)):
        keys = [k for k in names if k in exp]
        got = {k: await session.read(Quantity[k.upper()]) for k in keys}
        where = f" (core {n}, layer {session.params.layer})"
        check_step({k: exp[k] for k in keys}, got, step=step, seed=seed, where=where)
