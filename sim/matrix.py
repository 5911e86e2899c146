"""The one config matrix of the core's verification: Amaranth-simulator tests, the Verilator
regression in CI and ``spikeforge regress`` all draw their configs from here.

Each entry is ``(network keywords, core keywords)`` for ``CoreParams(net=SnnConfig(**net),
**core)``. :data:`CI` is the Verilator subset ``make test`` runs (it covers ``w_bits`` 4 and 16,
one lane and one lane per neuron, T = 1 and T = 16, BPTT and SLTT, both surrogates, both resets,
nearest and stochastic rounding, a non-square layer, a hidden layer fed an external error,
the output layer of two and a core with fused gradients and dense weights); :data:`FULL` adds
the rest for ``make regress-full``.
"""

from __future__ import annotations

from collections.abc import Iterable

from spikeforge.hw.params import CoreParams
from spikeforge.sw.config import ConfigError, SnnConfig

__all__ = ["AMARANTH", "CI", "CONFIGS", "DIGITS_NET", "FULL", "check_names", "core_params"]

_SATURATING = {"g_bits": 4, "acc_bits": 5, "v_bits": 10, "err_shift": 5}

CONFIGS: dict[str, tuple[dict, dict]] = {
    # -- the CI subset -----------------------------------------------------------------------
    "w4-p1-zero-triangle": (
        {"layers": (6, 4), "timesteps": 4, "w_bits": 4, "reset": "zero", "surrogate": "triangle"},
        {"lanes": 1, "emit_error": True},
    ),
    "w16-pN-sltt-nearest": (
        {"layers": (5, 4), "timesteps": 3, "w_bits": 16, "bptt": "sltt", "rounding": "nearest"},
        {"lanes": 4, "emit_error": True},
    ),
    "t1-nonsquare": ({"layers": (12, 6), "timesteps": 1}, {"lanes": 3, "emit_error": True}),
    "t16-bptt": ({"layers": (8, 4), "timesteps": 16}, {"lanes": 2}),
    "hidden-external-error": (
        {"layers": (6, 8, 4), "timesteps": 4, "surrogate": "triangle"},
        {"layer": 0, "lanes": 4},
    ),
    "output-of-two": (
        {"layers": (6, 8, 4), "timesteps": 4, "reset": "zero"},
        {"layer": 1, "lanes": 2},
    ),
    "saturating": (
        {"layers": (8, 4), "timesteps": 6, **_SATURATING},
        {"lanes": 2, "emit_error": True},
    ),
    "default-shape": ({"layers": (16, 16), "timesteps": 8}, {"lanes": 8}),
    # -- regress-full only (also the Amaranth-simulator cases) ---------------------------------
    "base": ({"layers": (8, 4), "timesteps": 4}, {"lanes": 2, "emit_error": True}),
    "p1-zero-triangle": (
        {"layers": (6, 3), "timesteps": 5, "reset": "zero", "surrogate": "triangle"},
        {"lanes": 1, "emit_error": True},
    ),
    "pN-sltt-nearest": (
        {"layers": (7, 4), "timesteps": 3, "bptt": "sltt", "rounding": "nearest"},
        {"lanes": 4, "emit_error": True},
    ),
    "w4-frac0": ({"layers": (8, 4), "timesteps": 4, "w_bits": 4, "frac_bits": 0}, {"lanes": 2}),
    "w16-u0": ({"layers": (5, 4), "timesteps": 3, "w_bits": 16}, {"lanes": 2, "emit_error": True}),
    "t1": ({"layers": (8, 6), "timesteps": 1}, {"lanes": 3, "emit_error": True}),
    "nonsquare-lanes3": (
        {"layers": (12, 6), "timesteps": 4, "surrogate": "triangle", "reset": "zero"},
        {"lanes": 3, "emit_error": True},
    ),
    "hidden-layer-external-error": (
        {"layers": (6, 8, 4), "timesteps": 4, "reset": "zero"},
        {"layer": 0, "lanes": 4},
    ),
    "output-layer-of-two": (
        {"layers": (6, 8, 4), "timesteps": 4, "surrogate": "triangle"},
        {"layer": 1, "lanes": 2},
    ),
    "t16-sltt-zero-nearest-w12": (
        {
            "layers": (20, 10),
            "timesteps": 16,
            "w_bits": 12,
            "bptt": "sltt",
            "reset": "zero",
            "rounding": "nearest",
        },
        {"lanes": 5, "emit_error": True},
    ),
    "split-output-slice": (
        {"layers": (6, 8, 6), "timesteps": 4, "surrogate": "triangle"},
        {"layer": 1, "lanes": 2, "neurons": (2, 6)},
    ),
    "split-hidden-slice": (
        {"layers": (6, 8, 4), "timesteps": 5, "reset": "zero", "rounding": "nearest"},
        {"layer": 0, "lanes": 3, "neurons": (2, 8), "emit_error": True},
    ),
    "default-core": ({"layers": (64, 64), "timesteps": 8}, {"lanes": 8, "emit_error": True}),
    # -- fused gradients (no gradient memory: the update forms G from deltas and the mask) --
    "fused-saturating": (
        {"layers": (8, 4), "timesteps": 6, **_SATURATING},
        {"lanes": 2, "emit_error": True, "fused_grads": True},
    ),
    "fused-hidden-saturating": (
        {"layers": (6, 8, 4), "timesteps": 8, "lr_shift": 4, **_SATURATING},
        {"layer": 0, "lanes": 2, "fused_grads": True, "dense_weights": True},
    ),
    "fused-hidden-sltt-nearest": (
        {"layers": (7, 6, 4), "timesteps": 3, "bptt": "sltt", "rounding": "nearest"},
        {"layer": 0, "lanes": 3, "fused_grads": True},
    ),
    "fused-t16-split": (
        {"layers": (6, 8, 6), "timesteps": 16, "surrogate": "triangle", "reset": "zero"},
        {"layer": 1, "lanes": 2, "neurons": (2, 6), "fused_grads": True},
    ),
    "digits-output": ({"layers": (64, 64, 10), "timesteps": 16}, {"layer": 1, "lanes": 10}),
}

CI: tuple[str, ...] = (  # the issue-4 matrix, plus one core of a layer split across cores
    "w4-p1-zero-triangle",
    "w16-pN-sltt-nearest",
    "t1-nonsquare",
    "t16-bptt",
    "hidden-external-error",
    "output-of-two",
    "saturating",
    "default-shape",
    "split-hidden-slice",
    "fused-hidden-saturating",
)
"""The Verilator configs ``make test`` runs (3 seeds each)."""

FULL: tuple[str, ...] = tuple(CONFIGS)
"""Every config (``make regress-full``)."""

AMARANTH: tuple[str, ...] = (
    "base",
    "p1-zero-triangle",
    "pN-sltt-nearest",
    "w4-frac0",
    "w16-u0",
    "t1",
    "nonsquare-lanes3",
    "saturating",
    "hidden-layer-external-error",
    "output-layer-of-two",
    "split-output-slice",
    "split-hidden-slice",
)
"""The configs the Amaranth-simulator tests run (small: that simulator is ~30x slower)."""

DIGITS_NET = {"layers": (64, 64, 10), "timesteps": 16}
"""The digits network the whole-run regression trains on two cores (8 and 10 lanes)."""


def core_params(name: str) -> CoreParams:
    """The validated core of matrix entry ``name``."""
    if name not in CONFIGS:
        raise ConfigError(
            f"config {name!r} is not in the matrix: choose one of {', '.join(CONFIGS)}"
        )
    net, core = CONFIGS[name]
    return CoreParams.checked(CoreParams(net=SnnConfig(**net), **core))


def check_names(names: Iterable[str]) -> list[str]:
    """``names`` after checking each is a matrix entry."""
    names = list(names)
    for name in names:
        core_params(name)
    return names
