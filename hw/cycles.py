"""Cycle model of one core: every engine's formula and the host's handshakes, in one place.

Exact, not estimated: ``tests/test_core_amaranth.py`` compares each figure with the core's own
counters (COUNTERS command) in simulation.
"""

from __future__ import annotations

from collections.abc import Sequence

from spikeforge.hw.backward import backward_cycles
from spikeforge.hw.forward import forward_cycles
from spikeforge.hw.gradient import gradient_cycles
from spikeforge.hw.params import CoreParams
from spikeforge.hw.update import update_cycles

__all__ = ["step_cycles"]

BACKWARD_HANDSHAKE = 2
"""BACKWARD command cycles besides the engines: the registered start and the final check."""
UPDATE_HANDSHAKE = 2
"""Extra cycles when BACKWARD also applies the update (its start and final check)."""


def step_cycles(
    p: CoreParams, active: Sequence[int], nonzero: Sequence[int], *, update: bool = True
) -> dict[str, int]:
    """Cycles of one training sample for ``active[t]`` input spikes and ``nonzero[t]`` groups
    with a nonzero delta per timestep (:func:`~spikeforge.hw.backward.nonzero_groups` of the
    sample's golden deltas: the BP and WG engines skip the zero groups).

    ``backward`` is the BACKWARD command's total: BP and WG run side by side (a core with fused
    gradients has no WG: ``wg = 0``), the update (``update=True``) follows both::

        backward = max(bp, wg) + BACKWARD_HANDSHAKE [+ update + UPDATE_HANDSHAKE]
    """
    p = CoreParams.checked(p)
    if len(active) != p.timesteps:
        raise ValueError(
            f"active must have {p.timesteps} entries (one per timestep), not {len(active)}"
        )
    out = {
        "forward": forward_cycles(p, active),
        "lanes_busy": p.groups * sum(a + 1 for a in active),
        "bp": backward_cycles(p, nonzero),
        "wg": 0 if p.fused_grads else gradient_cycles(p, active, nonzero),
        "update": update_cycles(p, active) if update else 0,
    }
    out["backward"] = max(out["bp"], out["wg"]) + BACKWARD_HANDSHAKE
    if update:
        out["backward"] += out["update"] + UPDATE_HANDSHAKE
    return out
