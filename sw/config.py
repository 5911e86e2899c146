"""The single, validated, frozen configuration of a spikeforge network.

One :class:`SnnConfig` feeds the golden model, the float reference, the trainer and (later) the
RTL generator, the cycle model and the testbenches. Fields left ``None`` are *derived* at
construction by the rules in :data:`DERIVED_RULES`; after construction every field is a concrete
value, the object is immutable, and :attr:`SnnConfig.config_hash` identifies it.

Invalid values fail at construction with a :class:`ConfigError` naming the parameter, the value and
the allowed range. This module is hardware-neutral: it imports neither torch nor amaranth.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "CHOICES",
    "DEFAULT_SCHEDULE",
    "DERIVED_RULES",
    "FIELD_HELP",
    "NIR_DT",
    "RANGES",
    "TRAINING_CHOICES",
    "ConfigError",
    "SnnConfig",
    "check_int",
    "clog2",
    "read_config_toml",
]

RESETS = ("subtract", "zero")
SURROGATES = ("boxcar", "triangle")
BPTT_MODES = ("bptt", "sltt")
ROUNDINGS = ("nearest", "stochastic")
ENCODERS = ("rate", "direct", "spikes")
CHOICES: dict[str, tuple[str, ...]] = {
    "reset": RESETS,
    "surrogate": SURROGATES,
    "bptt": BPTT_MODES,
    "rounding": ROUNDINGS,
    "encoder": ENCODERS,
}
"""The allowed values of every string field: the CLI's choices and the co-design space's."""

TRAINING_CHOICES: dict[str, tuple[str, ...]] = {
    "mode": ("int", "float"),
    "schedule": ("step", "constant"),
    "loss": ("mse", "ce"),
}
"""The allowed values of the trainer's own options (not network fields): the trainer,
:func:`spikeforge.train` and the CLI's ``train`` flags."""

PARTITIONS = ("iid", "dirichlet:ALPHA")
"""How federated training deals the training split to workers (``sw/federated.py``)."""

DEFAULT_SCHEDULE: dict[str, str] = {"int": "step", "float": "constant"}
"""The learning-rate schedule of each mode when none is given (docs/results.md)."""

RANGES: dict[str, tuple[int, int]] = {
    "layers": (1, 4096),
    "timesteps": (1, 256),
    "w_bits": (2, 16),
    "frac_bits": (0, 16),
    "v_bits": (3, 32),
    "g_bits": (2, 24),
    "leak_shift": (1, 16),
    "in_bits": (1, 16),
    "batch_size": (1, 65536),
    "err_shift": (0, 16),
    "init_scale": (1, 256),
}
"""The range of every int field that does not depend on another (``layers``: each size;
``v_bits``: also at least ``w_bits + 1``): the config, the CLI and the co-design space."""

NIR_DT = 1e-4
"""Seconds per timestep a NIR file is read and written with unless told: snnTorch's export and
import use 1e-4 (``tau = dt / (1 - beta)``)."""

DERIVED_RULES = {
    "theta": "2**(w_bits - 2): weights span +-2 theta",
    "v_bits": "w_bits + 8 (at most 32)",
    "bp_shift": "log2(theta) rounded down: W^T.delta is rescaled by 1/theta",
    "surrogate_shift": "log2(theta) + 1 rounded down: the window half-width is 2 theta",
    "lr_shift": "max(frac_bits, 16 - log2(theta)): the same float learning rate at every w_bits",
    "acc_bits": "g_bits + clog2(timesteps * batch_size) + 1 (+ in_bits for direct coding): "
    "never saturates",
    "target_hi": "ceil(3 * timesteps / 4): the label neuron fires at 3 of 4 steps",
}


FIELD_HELP = {
    "layers": "neuron counts from input to output layer, e.g. 64,64,10",
    "timesteps": "T, simulation steps per sample",
    "w_bits": "signed width of the weights the forward and backward passes use",
    "frac_bits": "extra fractional bits of the master weights the update writes",
    "v_bits": "signed width of the membrane potential",
    "g_bits": "signed width of errors and deltas",
    "acc_bits": "signed width of the weight-gradient accumulators",
    "leak_shift": "k of the leak v - (v >> k), i.e. beta = 1 - 2**-k",
    "theta": "firing threshold in membrane units",
    "reset": "reset after a spike: subtract theta, or set to zero",
    "surrogate": "surrogate derivative shape",
    "surrogate_shift": "surrogate window half-width is 2**surrogate_shift membrane units",
    "bptt": "full backpropagation through time, or spatial-only SLTT",
    "rounding": "rounding of the weight update (stochastic: LFSR-driven)",
    "lr_shift": "learning rate 2**-lr_shift: update = grad >> lr_shift in weight LSBs",
    "bp_shift": "W^T.delta is shifted right (rounded) by this before saturation to g_bits",
    "err_shift": "output error (count - target) is shifted left by this",
    "target_hi": "target spike count of the label neuron",
    "target_lo": "target spike count of the other output neurons",
    "encoder": "input coding: LFSR rate coding or direct (intensities as currents)",
    "in_bits": "width of an unsigned input intensity",
    "batch_size": "samples whose gradients accumulate before one update (hardware: 1)",
    "init_scale": "initial weights uniform in [-a, a], a = init_scale*theta//isqrt(4*fan_in)",
    "init_seed": "seed of the weight initialisation and the sample order",
    "lfsr_seed": "seed of the per-row update LFSRs (stochastic rounding)",
    "encoder_seed": "seed of the rate encoder's LFSRs",
}
"""One line per field: the CLI's ``--help`` text."""


class ConfigError(ValueError):
    """An invalid configuration value; the message names parameter, value and allowed range."""


def clog2(n: int) -> int:
    """Smallest ``b`` with ``2**b >= n`` (``clog2(1) == 0``)."""
    return max(0, (n - 1).bit_length())


def read_config_toml(
    path: str | Path, tables: tuple[str, ...] = ()
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read a config TOML: its network keys and the named tables beside them.

    The one reader of config files (the network here, the ``[core]`` and ``[array]`` tables
    validated by :mod:`spikeforge.hw.params` and :mod:`spikeforge.codesign.mapping`).

    Parameters
    ----------
    path : str or Path
        The TOML file. The network keys (those of :class:`SnnConfig`) are in a ``[network]``
        table or, without one, at the top level.
    tables : tuple of str
        Top-level names that are not network keys (e.g. ``("core", "array")``).

    Returns
    -------
    network : dict
        The raw network keys (unvalidated).
    found : dict
        The value of each name of ``tables`` the file has (its type is the caller's to check).

    Raises
    ------
    ConfigError
        If the file does not exist or is not valid TOML.
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {str(path)!r} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {str(path)!r} is not valid TOML: {exc}") from None
    found = {name: data[name] for name in tables if name in data}
    if isinstance(data.get("network"), dict):
        return dict(data["network"]), found
    return {k: v for k, v in data.items() if k not in found}, found


def check_int(name: str, value: Any, lo: int, hi: int) -> int:
    """``value`` if it is an int in ``[lo, hi]``; else a ConfigError naming name, value, range."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be an int in [{lo}, {hi}], not {value!r}")
    if not lo <= value <= hi:
        raise ConfigError(f"{name} = {value} is out of range: allowed [{lo}, {hi}]")
    return value


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ConfigError(f"{name} = {value!r} is not allowed: choose one of {', '.join(allowed)}")
    return value


@dataclass(frozen=True, kw_only=True)
class SnnConfig:
    """Sizes, bit widths and training rules of an integer spiking network.

    Parameters
    ----------
    layers : tuple of int
        Neuron counts from the input to the output layer, e.g. ``(64, 64, 10)``.
    timesteps : int
        ``T``, simulation steps per sample.
    w_bits, frac_bits : int
        Signed width of the weights the forward pass uses, and extra fractional bits of the master
        copy the update writes (``0``: the update writes the ``w_bits`` weights directly).
    v_bits, g_bits, acc_bits : int
        Signed widths of membranes, errors/deltas, and weight-gradient accumulators.
    leak_shift : int
        ``k`` of the leak ``v - (v >> k)``, i.e. ``beta = 1 - 2**-k``.
    theta : int
        Firing threshold, in membrane units.
    reset : {"subtract", "zero"}
    surrogate : {"boxcar", "triangle"}
    surrogate_shift : int
        The surrogate window half-width is ``2**surrogate_shift`` membrane units.
    bptt : {"bptt", "sltt"}
        Full backpropagation through time, or the spatial-only SLTT rule.
    rounding : {"nearest", "stochastic"}
        How the weight update is rounded (stochastic: LFSR-driven, reproducible by hardware).
    lr_shift : int
        The update is ``grad / 2**lr_shift`` in forward-weight LSBs.
    bp_shift : int
        ``W^T . delta`` is shifted right by this (rounded) before saturation to ``g_bits``.
    err_shift : int
        The output error ``count - target`` is shifted left by this into ``g_bits``.
    target_hi, target_lo : int
        Target spike counts of the label neuron and of the others.
    encoder : {"rate", "direct", "spikes"}
        Input coding of the first layer; ``in_bits`` is the width of an input intensity.
        ``spikes``: the data are spike trains already binned to ``timesteps`` (event sensors,
        Randman); the host loads them as they are.
    batch_size : int
        Samples whose gradients are accumulated before one update (hardware: 1).
    init_scale : int
        Initial weights are uniform integers in ``[-a, a]``,
        ``a = init_scale * theta // isqrt(4 * fan_in)``.
    init_seed, lfsr_seed, encoder_seed : int
        Seeds (32-bit) of the weight initialisation, the update LFSRs and the rate encoder.
    """

    layers: tuple[int, ...] = (64, 64, 10)
    timesteps: int = 16
    w_bits: int = 8
    frac_bits: int = 4
    v_bits: int | None = None
    g_bits: int = 8
    acc_bits: int | None = None
    leak_shift: int = 3
    theta: int | None = None
    reset: str = "subtract"
    surrogate: str = "boxcar"
    surrogate_shift: int | None = None
    bptt: str = "bptt"
    rounding: str = "stochastic"
    lr_shift: int | None = None
    bp_shift: int | None = None
    err_shift: int = 3
    target_hi: int | None = None
    target_lo: int = 0
    encoder: str = "rate"
    in_bits: int = 8
    batch_size: int = 1
    init_scale: int = 4
    init_seed: int = 1
    lfsr_seed: int = 2
    encoder_seed: int = 3
    _hash: str = field(default="", init=False, repr=False, compare=False)
    _explicit: frozenset[str] = field(default=frozenset(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        given = frozenset(name for name in DERIVED_RULES if getattr(self, name) is not None)
        object.__setattr__(self, "_explicit", given)
        layers = self.layers
        if isinstance(layers, list):
            layers = tuple(layers)
        if not isinstance(layers, tuple) or len(layers) < 2:
            raise ConfigError(
                "layers must be a sequence of at least 2 sizes (input, ..., output), "
                f"not {layers!r}"
            )
        for i, n in enumerate(layers):
            check_int(f"layers[{i}]", n, *RANGES["layers"])
        object.__setattr__(self, "layers", layers)

        t = check_int("timesteps", self.timesteps, *RANGES["timesteps"])
        w = check_int("w_bits", self.w_bits, *RANGES["w_bits"])
        for name in ("frac_bits", "g_bits", "leak_shift", "in_bits", "batch_size", "err_shift"):
            check_int(name, getattr(self, name), *RANGES[name])
        check_int("init_scale", self.init_scale, *RANGES["init_scale"])
        for name, allowed in CHOICES.items():
            _choice(name, getattr(self, name), allowed)
        for name in ("init_seed", "lfsr_seed", "encoder_seed"):
            check_int(name, getattr(self, name), 0, 2**32 - 1)

        self._derive("v_bits", min(RANGES["v_bits"][1], w + 8))
        v = check_int("v_bits", self.v_bits, w + 1, RANGES["v_bits"][1])
        self._derive("theta", 1 << (w - 2))
        theta = check_int("theta", self.theta, 1, (1 << (v - 1)) - 1)
        log_theta = theta.bit_length() - 1
        self._derive("bp_shift", log_theta)
        check_int("bp_shift", self.bp_shift, 0, 40)
        self._derive("surrogate_shift", min(log_theta + 1, v - 2))
        check_int("surrogate_shift", self.surrogate_shift, 0, v - 2)
        self._derive("lr_shift", max(self.frac_bits, 16 - log_theta))
        check_int("lr_shift", self.lr_shift, self.frac_bits, 40)
        direct_bits = self.in_bits if self.encoder == "direct" else 0
        self._derive("acc_bits", self.g_bits + clog2(t * self.batch_size) + 1 + direct_bits)
        check_int("acc_bits", self.acc_bits, self.g_bits + direct_bits, 48)
        self._derive("target_hi", (3 * t + 3) // 4)
        check_int("target_hi", self.target_hi, 1, t)
        check_int("target_lo", self.target_lo, 0, self.target_hi - 1)
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        object.__setattr__(self, "_hash", hashlib.sha256(canonical.encode()).hexdigest()[:16])

    def _derive(self, name: str, value: int) -> None:
        if getattr(self, name) is None:
            object.__setattr__(self, name, value)

    # -- read-only derived quantities -------------------------------------------------------
    @property
    def config_hash(self) -> str:
        """16 hex digits of SHA-256 over the canonical JSON of every resolved field."""
        return self._hash

    @property
    def n_layers(self) -> int:
        """Number of weight layers (``len(layers) - 1``)."""
        return len(self.layers) - 1

    @property
    def n_inputs(self) -> int:
        return self.layers[0]

    @property
    def n_outputs(self) -> int:
        return self.layers[-1]

    @property
    def master_bits(self) -> int:
        """Width of the master weights the update writes: ``w_bits + frac_bits``."""
        return self.w_bits + self.frac_bits

    def weight_shapes(self) -> list[tuple[int, int]]:
        """``(n_out, n_in)`` of every weight layer, like ``torch.nn.Linear``."""
        return [(self.layers[i + 1], self.layers[i]) for i in range(self.n_layers)]

    # -- (de)serialisation ----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.init}
        out["layers"] = list(self.layers)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SnnConfig:
        known = {f.name for f in dataclasses.fields(cls) if f.init}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"unknown config key(s) {', '.join(unknown)}; "
                f"allowed keys: {', '.join(sorted(known))}"
            )
        return cls(**data)

    @staticmethod
    def read_toml(path: str | Path) -> dict[str, Any]:
        """The raw key/value pairs of a TOML config (top level or a ``[network]`` table)."""
        return read_config_toml(path)[0]

    @classmethod
    def from_toml(cls, path: str | Path) -> SnnConfig:
        """Load and validate a TOML config file."""
        return cls.from_dict(cls.read_toml(path))

    def to_toml(self, header: str = "") -> str:
        """The fields that differ from the defaults (derived ones only if given) as TOML."""
        lines = [f"# {line}" for line in header.splitlines()]
        for f in dataclasses.fields(self):
            if not f.init:
                continue
            value = getattr(self, f.name)
            derived = f.name in DERIVED_RULES
            if (derived and f.name not in self._explicit) or (
                not derived and f.name != "layers" and value == f.default
            ):
                continue
            if isinstance(value, tuple):
                text = "[" + ", ".join(str(v) for v in value) + "]"
            elif isinstance(value, str):
                text = json.dumps(value)
            else:
                text = str(value)
            lines.append(f"{f.name} = {text}")
        return "\n".join(lines) + "\n"

    def replace(self, **changes: Any) -> SnnConfig:
        """A new validated config with ``changes`` applied.

        Fields that were derived (not given) here are derived again from the changed values.
        """
        base = {
            k: v for k, v in self.to_dict().items() if k not in DERIVED_RULES or k in self._explicit
        }
        return SnnConfig.from_dict({**base, **changes})
