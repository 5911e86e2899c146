"""One loader of config files: the network, and the core or the array it is built as.

A config TOML holds the network keys (those of :class:`~spikeforge.sw.config.SnnConfig`, at the
top level or in a ``[network]`` table) and at most one hardware table: ``[core]`` (one core,
:data:`~spikeforge.hw.params.CORE_KEYS`) or ``[array]`` (a multi-core array,
:data:`~spikeforge.codesign.mapping.ARRAY_KEYS`). :func:`load_config` reads it once
(:func:`~spikeforge.sw.config.read_config_toml`), applies overrides by field name and returns a
:class:`Config`: ``config.net`` trains (:func:`spikeforge.train`), ``config.design()`` is
generated (:func:`spikeforge.generate`). The CLI's ``train``, ``generate``, ``synth`` and
``build`` load their configs here. Nothing in this module imports torch or Amaranth.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from spikeforge.codesign.mapping import ARRAY_KEYS, MappingError, array_table, map_network
from spikeforge.codesign.mapping import Mapping as ArrayMapping
from spikeforge.hw.params import CORE_KEYS, CoreParams, core_table
from spikeforge.sw.config import ConfigError, SnnConfig, read_config_toml

__all__ = ["NETWORK_KEYS", "OVERRIDE_KEYS", "Config", "load_config"]

NETWORK_KEYS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(SnnConfig) if f.init)
"""The network's keys: the fields of :class:`~spikeforge.sw.config.SnnConfig`."""

OVERRIDE_KEYS: tuple[str, ...] = (
    *NETWORK_KEYS,
    *sorted(CORE_KEYS - set(NETWORK_KEYS)),
    *(k for k in ARRAY_KEYS if k not in CORE_KEYS),
)
"""Every name :func:`load_config` takes as an override: network, ``[core]`` and ``[array]``
keys (``lanes``, ``device`` and ``lr_range`` belong to both hardware tables)."""

_CORE_ONLY = frozenset(CORE_KEYS - set(ARRAY_KEYS))


@dataclass(frozen=True, kw_only=True)
class Config:
    """A validated config: the network, and the one core or the array it is built as.

    Parameters
    ----------
    net : SnnConfig
        The network; what :func:`spikeforge.train` trains.
    core : mapping
        The ``[core]`` keys (:class:`~spikeforge.hw.params.CoreParams` arguments besides
        ``net``); empty for an array.
    array : mapping or None
        The ``[array]`` keys (:func:`~spikeforge.codesign.mapping.map_network` arguments:
        ``cores``, ``lanes``, ``device``, ``lr_range``), or ``None``: one core.
    source : Path or None
        The TOML it was read from.
    """

    net: SnnConfig
    core: Mapping[str, Any] = field(default_factory=dict)
    array: Mapping[str, Any] | None = None
    source: Path | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.net, SnnConfig):
            raise TypeError(f"net must be an SnnConfig, not {self.net!r}")
        object.__setattr__(self, "core", MappingProxyType(core_table(dict(self.core))))
        if self.array is not None:
            where = "the config" if self.source is None else f"config file {str(self.source)!r}"
            if self.core:
                raise MappingError(
                    f"{where} configures one core ({', '.join(sorted(self.core))}) and an "
                    f"array: an array takes {', '.join(ARRAY_KEYS)}"
                )
            array = array_table(dict(self.array), where)
            object.__setattr__(self, "array", MappingProxyType(array))

    @property
    def is_array(self) -> bool:
        """Whether the hardware is a multi-core array (an ``[array]`` table or ``cores``)."""
        return self.array is not None

    def core_params(self) -> CoreParams:
        """The validated one core (:class:`~spikeforge.hw.params.CoreParams`).

        Raises
        ------
        ConfigError
            If the config is an array, or a value is out of range (lanes that do not divide the
            neurons, memories beyond the device, ...).
        """
        if self.is_array:
            raise ConfigError("the config is an array ([array] table or cores): see mapping()")
        return CoreParams(net=self.net, **self.core)

    def mapping(self) -> ArrayMapping:
        """The array's mapping (:func:`~spikeforge.codesign.mapping.map_network`).

        Raises
        ------
        ConfigError
            If the config is one core or gives no ``cores``, or the network does not map.
        """
        if not self.is_array or "cores" not in self.array:
            raise ConfigError(
                "an array needs cores: give cores in the [array] table or as an override"
            )
        return map_network(self.net, **self.array)

    def design(self) -> CoreParams | tuple[CoreParams, ...]:
        """What is generated: :meth:`core_params`, or the array's cores."""
        return tuple(self.mapping().core_params()) if self.is_array else self.core_params()


def load_config(
    toml: str | Path | None = None, /, *, array: bool | None = None, **overrides: Any
) -> Config:
    """Read a config TOML (or the defaults) and apply overrides by field name.

    Parameters
    ----------
    toml : str or Path, optional
        The config file: network keys at the top level or in ``[network]``, and an optional
        ``[core]`` or ``[array]`` table. Without it: the default network, one core.
    array : bool, optional
        ``True``: the hardware is an array even before its ``cores`` are given (a ``[core]``
        table is refused); ``False``: one core (an ``[array]`` table is refused). Default: an
        array if the file has an ``[array]`` table or ``cores`` is overridden.
    **overrides
        Values that replace the file's, by name (:data:`OVERRIDE_KEYS`): a network key, a
        ``[core]`` key or an ``[array]`` key. ``cores`` (or an ``[array]`` table) makes the
        config an array; then ``lanes``, ``device`` and ``lr_range`` are the array's.

    Returns
    -------
    Config
        The validated network; the hardware validated too when the file or the overrides set
        any of it (else when it is asked for: a network trains even if no core holds it).

    Raises
    ------
    ConfigError
        If the file is missing or not valid TOML, a name is unknown (the message lists the
        valid ones), a value is invalid, or one core's key is given to an array
        (:class:`~spikeforge.codesign.mapping.MappingError`).
    """
    unknown = sorted(set(overrides) - set(OVERRIDE_KEYS))
    if unknown:
        raise ConfigError(
            f"unknown config key(s) {', '.join(unknown)}; allowed keys: {', '.join(OVERRIDE_KEYS)}"
        )
    if toml is None:
        net, tables, source = {}, {}, None
    else:
        source = Path(toml)
        net, tables = read_config_toml(source, ("core", "array"))
    where = "the config" if source is None else f"config file {str(source)!r}"
    if array is not None and not isinstance(array, bool):
        raise TypeError(f"array must be True, False or None, not {array!r}")
    is_array = ("array" in tables or "cores" in overrides) if array is None else array
    if is_array and "core" in tables:
        raise MappingError(
            f"{where} has a [core] table, which configures one core; an array takes an [array] "
            f"table with keys {', '.join(ARRAY_KEYS)}"
        )
    if not is_array and "array" in tables:
        raise MappingError(
            f"{where} has an [array] table, which configures an array; one core takes a [core] "
            f"table with keys {', '.join(sorted(CORE_KEYS))}"
        )
    if not is_array and "cores" in overrides:
        raise MappingError("cores configures an array, not one core (array=False)")
    if is_array:
        hardware = array_table(tables.get("array", {}), where)
    else:
        hardware = core_table(tables.get("core", {}), where)
    for key, value in overrides.items():
        if key in NETWORK_KEYS:
            net[key] = value
        elif is_array and key in _CORE_ONLY:
            raise MappingError(
                f"{key} configures one core, not an array: an array takes "
                f"{', '.join(ARRAY_KEYS)} (the mapping gives every core its layer)"
            )
        else:
            hardware[key] = value
    net = SnnConfig.from_dict(net)
    if is_array:
        config = Config(net=net, array=hardware, source=source)
        if "cores" in hardware:
            config.mapping()
    else:
        config = Config(net=net, core=hardware, source=source)
        if hardware:
            config.core_params()
    return config
