"""The declared design space of a co-design sweep: which values each dimension may take.

A space fixes the network (the :class:`~spikeforge.sw.config.SnnConfig` keys that do not vary),
the training budget and the hardware target, and lists the values of every swept dimension:

============  ==================================================================================
dimension     meaning
============  ==================================================================================
cores         cores of the :class:`~spikeforge.hw.array.CoreArray` (mapping compiler)
lanes         most neuron lanes per core
w_bits        forward/backward weight width
v_bits        membrane width (``"auto"``: derived, ``w_bits + 8``)
g_bits        error/delta width
timesteps     ``T``
bptt          ``"bptt"`` or ``"sltt"``
rounding      ``"stochastic"`` or ``"nearest"`` weight-update rounding
surrogate     ``"boxcar"`` or ``"triangle"``
============  ==================================================================================

A dimension a space does not list keeps one value (:data:`DEFAULTS`). Built-in spaces:
``small`` (24 points, a grid: 1-4 cores, ``w_bits`` 4/8/16, BPTT and SLTT on the single-layer
digits network) and ``full`` (the two-layer digits network, every dimension, NSGA-II). A TOML
file declares its own (docs/codesign.md). Every value is checked when the space is read; a
point whose combination the mapping compiler or the config rejects is recorded as failed with
that reason, not dropped.

**Data.** ``[training] dataset = "NAME[:PATH]"`` (default
:data:`~spikeforge.sw.sources.DEFAULT_DATASET`) names any source of
:data:`~spikeforge.sw.sources.SOURCES`; a spike-train source needs
``encoder = "spikes"`` under ``[network]``; a relative ``PATH`` in a space file is read from the
file's folder. The spec is part of every point's id and training
cache entry. A point trains on the training split less a stratified fifth and is scored on that
fifth, the validation split (:meth:`~spikeforge.sw.data.Dataset.holdout`): the sweep tunes on
it; the test split is measured and reported, never tuned on.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spikeforge.hw.devices import DEFAULT_DEVICE, DEVICE_NAMES
from spikeforge.hw.synth import ROUTERS
from spikeforge.sw.config import CHOICES, RANGES, ConfigError, SnnConfig, check_int
from spikeforge.sw.sources import DEFAULT_DATASET, parse_spec

__all__ = [
    "BUILTIN_SPACES",
    "DEFAULTS",
    "DIMENSIONS",
    "EXECUTION_KEYS",
    "MAX_REPLICAS",
    "DesignSpace",
    "load_space",
    "point_config",
    "point_id",
]

DIMENSIONS: dict[str, tuple[Any, ...] | tuple[int, int]] = {
    "cores": (1, 256),
    "lanes": (1, 64),
    **{name: RANGES[name] for name in ("w_bits", "v_bits", "g_bits", "timesteps")},
    **{name: CHOICES[name] for name in ("bptt", "rounding", "surrogate")},
}
"""Every dimension with its allowed range (ints) or its allowed values (strings)."""

DEFAULTS: dict[str, Any] = {
    "cores": 1,
    "lanes": 8,
    "w_bits": 8,
    "v_bits": "auto",
    "g_bits": 8,
    "timesteps": 8,
    "bptt": "bptt",
    "rounding": "stochastic",
    "surrogate": "boxcar",
}
"""The value of a dimension a space does not sweep."""

SAMPLERS = ("grid", "nsga2")
TRAINING_KEYS = {
    "epochs": (1, 1000),
    "train_samples": (0, 10**7),
    "activity_samples": (1, 4096),
    "train_timeout": (1, 10**6),
    "max_replicas": (1, 4096),
}
MAX_REPLICAS = 32
"""Default of ``training.max_replicas``: points whose network configs share a shape
(:data:`~spikeforge.sw.replicas.SHARED_FIELDS`) and are asked together train as replicas of one
batched program, at most this many per program; 1 trains every config alone."""
EXECUTION_KEYS = frozenset({"max_replicas"})
"""``[training]`` keys that change how the points are computed, never what they learn: they are
not part of a point's id or training budget, and a resumed sweep may change them."""
HARDWARE_KEYS = {
    "device",
    "synth",
    "synth_timeout",
    "fmax",
    "fmax_points",
    "pnr_timeout",
    "routers",
    "target_mhz",
}
TOP_KEYS = {
    "name",
    "sampler",
    "trials",
    "population",
    "seed",
    "network",
    "training",
    "hardware",
    "dimensions",
}

BUILTIN_SPACES: dict[str, dict[str, Any]] = {
    "small": {
        "name": "small",
        "sampler": "grid",
        "network": {"layers": [64, 10]},
        "training": {"epochs": 10},
        "hardware": {"pnr_timeout": 240, "fmax_points": 4},
        "dimensions": {
            "cores": [1, 2, 3, 4],
            "lanes": [2],
            "w_bits": [4, 8, 16],
            "bptt": ["bptt", "sltt"],
        },
    },
    "full": {
        "name": "full",
        "sampler": "nsga2",
        "trials": 120,
        "population": 24,
        "network": {"layers": [64, 32, 10]},
        "training": {"epochs": 6},
        "hardware": {"pnr_timeout": 1800, "routers": ["router2"]},
        "dimensions": {
            "cores": [2, 3, 4, 6, 8],
            "lanes": [2, 4, 8],
            "w_bits": [4, 6, 8, 12, 16],
            "v_bits": ["auto", 16, 24],
            "g_bits": [6, 8, 12],
            "timesteps": [4, 8, 16],
            "bptt": ["bptt", "sltt"],
            "rounding": ["stochastic", "nearest"],
            "surrogate": ["boxcar", "triangle"],
        },
    },
}
"""The built-in spaces as they would be written in a space TOML file."""


def _check_keys(where: str, data: Mapping[str, Any], allowed) -> None:
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
        )


def _check_values(name: str, values: Any) -> tuple[Any, ...]:
    if not isinstance(values, list | tuple) or not values:
        raise ConfigError(f"dimensions.{name} must be a non-empty list of values, not {values!r}")
    allowed = DIMENSIONS[name]
    for v in values:
        if name == "v_bits" and v == "auto":
            continue
        if isinstance(allowed[0], str):
            if v not in allowed:
                raise ConfigError(
                    f"dimensions.{name} value {v!r} is not allowed: choose from "
                    f"{', '.join(allowed)}"
                )
        else:
            check_int(f"dimensions.{name} value", v, *allowed)
    if len(set(values)) != len(values):
        raise ConfigError(f"dimensions.{name} lists a value twice: {list(values)}")
    return tuple(values)


def _check_dataset(where: str, spec: Any, fixed: SnnConfig) -> str:
    """``spec`` once it names a source that the space's encoder takes. The encoder is fixed
    (``[network]``, not a dimension); the timesteps a spike-train source is binned to are each
    point's own."""
    try:
        source, _ = parse_spec(spec)
    except ConfigError as exc:
        raise ConfigError(f"{where} [training]: dataset: {exc}") from None
    if source.temporal and fixed.encoder != "spikes":
        raise ConfigError(
            f'{where} [training]: dataset {spec!r} is spike trains: set encoder = "spikes" '
            f"under [network] (the encoder is fixed, not a dimension; it is {fixed.encoder!r})"
        )
    if not source.temporal and fixed.encoder == "spikes":
        raise ConfigError(
            f'{where} [training]: dataset {spec!r} is intensities, but encoder = "spikes" '
            'under [network] takes spike trains: set encoder = "rate" or "direct"'
        )
    return spec


@dataclass(frozen=True)
class DesignSpace:
    """A validated design space (see the module docstring).

    Parameters
    ----------
    name : str
        Shown in the report and the study name.
    sampler : {"grid", "nsga2"}
        Optuna's grid sampler (every point once) or NSGA-II (multi-objective evolution).
    dimensions : mapping of str to tuple
        Values per swept dimension; the others keep :data:`DEFAULTS`.
    network : mapping
        :class:`SnnConfig` keys that do not vary (``layers`` at least).
    training : mapping
        ``dataset`` (a spec ``NAME[:PATH]``, :data:`DEFAULT_DATASET` when not given; always
        present after validation), ``epochs`` of integer on-chip training, ``train_samples``
        (0: all of the training split less its validation fifth, :meth:`Dataset.holdout
        <spikeforge.sw.data.Dataset.holdout>`), ``activity_samples`` (validation samples whose
        spikes feed the cycle and energy models),
        ``train_timeout`` (seconds of one config's training; a group of ``R`` replicas trained
        together may take ``R`` times as long), ``max_replicas`` (:data:`MAX_REPLICAS`).
    hardware : mapping
        ``device`` (an ECP5 of :data:`~spikeforge.hw.devices.DEVICE_NAMES`), ``synth`` (run
        Yosys; ``false`` skips the resource objectives), ``synth_timeout``, ``fmax`` (place and
        route the Pareto points), ``pnr_timeout`` (seconds per point; past it: 'Fmax
        unknown'), ``routers`` (nextpnr's, of :data:`~spikeforge.hw.synth.ROUTERS`, tried in
        order: the next only when place and route with the one before ran past
        ``pnr_timeout``; default ``["router1"]``; a resume may change them:
        :func:`~spikeforge.codesign.search.fmax_routers`), ``fmax_points``
        (most Pareto points to place and route, the accuracy-vs-LUT front first; 0: all) and
        ``target_mhz``.
    trials : int or None
        Points to evaluate (grid: at most the grid size; default: all of it).
    population : int
        NSGA-II population size.
    seed : int
        Sampler seed.
    """

    name: str
    sampler: str
    dimensions: Mapping[str, tuple[Any, ...]]
    network: Mapping[str, Any]
    training: Mapping[str, Any] = field(default_factory=dict)
    hardware: Mapping[str, Any] = field(default_factory=dict)
    trials: int | None = None
    population: int = 24
    seed: int = 1

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "space") -> DesignSpace:
        """Validate ``data`` (the TOML layout of :data:`BUILTIN_SPACES`) into a space."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where} must be a table, not {data!r}")
        _check_keys(where, data, TOP_KEYS)
        sampler = data.get("sampler", "grid")
        if sampler not in SAMPLERS:
            raise ConfigError(
                f"{where}: sampler = {sampler!r} is not allowed: choose one of "
                f"{', '.join(SAMPLERS)}"
            )
        dims = data.get("dimensions", {})
        _check_keys(f"{where} [dimensions]", dims, DIMENSIONS)
        dimensions = {name: _check_values(name, v) for name, v in dims.items()}
        network = dict(data.get("network", {}))
        clash = sorted(
            set(network) & ({"w_bits", "v_bits", "g_bits", "timesteps"} | set(DIMENSIONS))
        )
        if clash:
            raise ConfigError(
                f"{where} [network]: {', '.join(clash)} are design dimensions; list them under "
                "[dimensions] instead"
            )
        fixed = SnnConfig.from_dict(network)  # the fixed part must be a valid config on its own
        training = dict(data.get("training", {}))
        _check_keys(f"{where} [training]", training, {*TRAINING_KEYS, "dataset"})
        for key, value in training.items():
            if key != "dataset":
                check_int(f"training.{key}", value, *TRAINING_KEYS[key])
        spec = training.pop("dataset", DEFAULT_DATASET)
        training = {"dataset": _check_dataset(where, spec, fixed), **training}
        hardware = dict(data.get("hardware", {}))
        _check_keys(f"{where} [hardware]", hardware, HARDWARE_KEYS)
        for key in ("synth", "fmax"):
            if key in hardware and not isinstance(hardware[key], bool):
                raise ConfigError(f"hardware.{key} must be true or false, not {hardware[key]!r}")
        for key in ("synth_timeout", "pnr_timeout", "target_mhz"):
            if key in hardware:
                check_int(f"hardware.{key}", hardware[key], 1, 10**6)
        if "fmax_points" in hardware:
            check_int("hardware.fmax_points", hardware["fmax_points"], 0, 10**6)
        routers = hardware.get("routers", ["router1"])
        if (
            not isinstance(routers, list | tuple)
            or not routers
            or len(set(routers)) != len(routers)
            or any(r not in ROUTERS for r in routers)
        ):
            raise ConfigError(
                f"hardware.routers must be a list of distinct routers of {', '.join(ROUTERS)}, "
                f"not {routers!r}"
            )
        if hardware.get("device", DEFAULT_DEVICE) not in DEVICE_NAMES:
            raise ConfigError(
                f"hardware.device = {hardware['device']!r} is not allowed: choose "
                f"{', '.join(DEVICE_NAMES)}"
            )
        trials = data.get("trials")
        if trials is not None:
            check_int("trials", trials, 1, 10**6)
        return cls(
            name=str(data.get("name", where)),
            sampler=sampler,
            dimensions=dimensions,
            network=network,
            training=training,
            hardware=hardware,
            trials=trials,
            population=check_int("population", data.get("population", 24), 2, 10**4),
            seed=check_int("seed", data.get("seed", 1), 0, 2**32 - 1),
        )

    # -- the points ------------------------------------------------------------------------
    @property
    def grid_size(self) -> int:
        """Number of points of the full grid (the product of the value counts)."""
        n = 1
        for values in self.dimensions.values():
            n *= len(values)
        return n

    def grid(self) -> list[dict[str, Any]]:
        """Every point of the grid, dimensions in :data:`DIMENSIONS` order."""
        names = [d for d in DIMENSIONS if d in self.dimensions]
        combos = itertools.product(*(self.dimensions[d] for d in names))
        return [self.complete(dict(zip(names, c, strict=True))) for c in combos]

    def complete(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """``params`` with every unswept dimension set to its default."""
        return {d: params.get(d, DEFAULTS[d]) for d in DIMENSIONS}

    @property
    def n_trials(self) -> int:
        """Points the sweep evaluates: ``trials``, for a grid at most the grid size."""
        if self.sampler == "grid":
            return min(self.trials or self.grid_size, self.grid_size)
        return self.trials or 4 * self.population

    def setting(self, group: str, key: str, default: Any) -> Any:
        return getattr(self, group).get(key, default)

    @property
    def budget(self) -> dict[str, Any]:
        """The training keys that decide what a point learns (``training`` without
        :data:`EXECUTION_KEYS`)."""
        return {k: v for k, v in self.training.items() if k not in EXECUTION_KEYS}

    @property
    def dataset(self) -> str:
        """The dataset spec the points train and are scored on (``training.dataset``)."""
        return self.training.get("dataset", DEFAULT_DATASET)

    def with_dataset(self, spec: str) -> DesignSpace:
        """This space on another dataset, validated as a space file's ``dataset`` is."""
        data = {**self.to_dict(), "training": {**self.training, "dataset": spec}}
        return DesignSpace.from_dict(data, where=f"space {self.name!r}")

    @property
    def max_replicas(self) -> int:
        """Most configs trained together as replicas (``training.max_replicas``)."""
        return self.training.get("max_replicas", MAX_REPLICAS)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "sampler": self.sampler,
            "trials": self.trials,
            "population": self.population,
            "seed": self.seed,
            "network": dict(self.network),
            "training": dict(self.training),
            "hardware": dict(self.hardware),
            "dimensions": {k: list(v) for k, v in self.dimensions.items()},
        }


def point_config(space: DesignSpace, params: Mapping[str, Any]) -> SnnConfig:
    """The network config of a point: the space's fixed keys plus the point's widths and rules."""
    keys = {
        k: params[k] for k in ("w_bits", "g_bits", "timesteps", "bptt", "rounding", "surrogate")
    }
    if params["v_bits"] != "auto":
        keys["v_bits"] = params["v_bits"]
    return SnnConfig.from_dict({**space.network, **keys})


def point_id(space: DesignSpace, params: Mapping[str, Any]) -> str:
    """12 hex digits identifying a point: its parameters, the network and the training budget
    (a point with another budget is another point; :data:`EXECUTION_KEYS` are not part of it)."""
    blob = {
        "params": dict(space.complete(params)),
        "network": dict(space.network),
        "training": space.budget,
        "hardware": {k: v for k, v in space.hardware.items() if k in ("device", "synth")},
    }
    text = json.dumps(blob, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def load_space(spec: str | Path) -> DesignSpace:
    """A built-in space by name (``small``, ``full``) or a space TOML file."""
    if isinstance(spec, str) and spec in BUILTIN_SPACES:
        return DesignSpace.from_dict(BUILTIN_SPACES[spec], where=f"space {spec!r}")
    path = Path(spec)
    if not path.is_file():
        raise ConfigError(
            f"--space {str(spec)!r} is neither a built-in space ({', '.join(BUILTIN_SPACES)}) "
            "nor an existing TOML file"
        )
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"space file {str(path)!r} is not valid TOML: {exc}") from None
    data.setdefault("name", path.stem)
    training = data.get("training")
    if isinstance(training, dict) and isinstance(training.get("dataset"), str):
        data["training"] = {**training, "dataset": _beside(training["dataset"], path.parent)}
    return DesignSpace.from_dict(data, where=f"space file {str(path)!r}")


def _beside(spec: str, folder: Path) -> str:
    """``spec`` with a relative ``PATH`` made absolute from ``folder`` (the space file's): a
    space file names its data as it sees them, whatever the current folder."""
    name, sep, rest = spec.partition(":")
    if not sep or not rest or Path(rest).is_absolute():
        return spec
    return f"{name}:{(folder / rest).resolve()}"
