"""The network-to-core mapping compiler: which core computes which neurons of which layer.

A network of ``net.n_layers`` weight layers is trained on an array of cores
(:class:`~spikeforge.hw.array.CoreArray`). Each core computes one weight layer, or a contiguous
slice of a layer's output neurons. :func:`map_network` places a given number of cores:

1. Layer ``l`` (``n_out x n_in``) uses ``P_l`` lanes, the largest divisor of ``n_out`` that is
   at most ``lanes``, so it has ``n_out / P_l`` lane groups. Split into ``k`` cores, the groups
   go to ``k`` contiguous slices as equal as possible (the first slices take the extra group),
   and each slice's core gets the largest divisor of its neuron count that is at most ``lanes``.
2. Every layer gets the fewest cores whose slices all fit the device's block RAMs
   (:attr:`~spikeforge.hw.params.CoreParams.bram_estimate`), and the whole array must fit one
   device: the cores' block RAMs together at most the device's (:attr:`Mapping.bram_estimate`;
   more cores never make a network fit that does not, since every core adds its own buffers).
3. Spare cores go one at a time to the layer with the most work per core, work being the
   layer's synapses ``n_out * n_in`` (a core's cycles scale with its slice); ties go to the lower
   layer.

Cores are numbered layer-major, each layer's slices in neuron order, as the array needs. This
module imports neither torch nor amaranth.

With ``fused=True`` every core has fused gradients (no gradient memory: the update forms them
from the delta history, :attr:`~spikeforge.hw.params.CoreParams.fused_grads`) and, where it
saves block RAMs, densely packed weights (:attr:`~spikeforge.hw.params.CoreParams.dense_weights`);
``fused=None`` uses such cores only when the plain ones do not fit the device.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from spikeforge.hw.devices import DEFAULT_DEVICE, ecp5_device
from spikeforge.hw.params import CoreParams, MemorySpec
from spikeforge.sw.config import ConfigError, SnnConfig, check_int

__all__ = [
    "ARRAY_KEYS",
    "Mapping",
    "MappingError",
    "Slice",
    "array_table",
    "core_for",
    "map_network",
    "max_cores",
    "min_cores",
]

ARRAY_KEYS = ("cores", "lanes", "device", "lr_range", "fused")
"""Keys of the optional ``[array]`` table of a config TOML (:func:`array_table`,
:func:`spikeforge.loader.load_config`): the arguments of :func:`map_network`."""


class MappingError(ConfigError):
    """A network cannot be placed on the requested cores; the message names the numbers."""


@dataclass(frozen=True)
class Slice:
    """Neurons ``start .. stop - 1`` of weight layer ``layer``, computed by ``lanes`` lanes."""

    layer: int
    start: int
    stop: int
    lanes: int

    @property
    def neurons(self) -> int:
        """Neurons of the slice (``stop - start``)."""
        return self.stop - self.start


@dataclass(frozen=True)
class Mapping:
    """A placement of a network on cores, one :class:`Slice` per core.

    Parameters
    ----------
    net : SnnConfig
        The network.
    slices : tuple of Slice
        One per core, in core order: layer-major, each layer's slices by ``start``; they tile
        every layer exactly once.
    device : str
        ECP5 device of every core.
    lr_range : int
        Learning-rate range of every core (:class:`~spikeforge.hw.params.CoreParams`).
    fused : bool
        Every core has fused gradients, and dense weights where they save block RAMs
        (:func:`core_for`).
    """

    net: SnnConfig
    slices: tuple[Slice, ...]
    device: str
    lr_range: int
    fused: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "slices", tuple(self.slices))
        sizes = [n_out for n_out, _ in self.net.weight_shapes()]
        layer, start = 0, 0
        for n, s in enumerate(self.slices):
            if start == sizes[layer] and layer + 1 < len(sizes):
                layer, start = layer + 1, 0
            if (s.layer, s.start) != (layer, start) or not start < s.stop <= sizes[layer]:
                raise MappingError(
                    f"slices[{n}] = {s} does not continue the tiling: expected layer {layer} "
                    f"from neuron {start}, up to {sizes[layer]}"
                )
            start = s.stop
        if (layer, start) != (len(sizes) - 1, sizes[-1]):
            raise MappingError(
                f"the slices end at layer {layer}, neuron {start}: every layer's neurons need "
                "a core"
            )

    @property
    def cores(self) -> int:
        """Number of cores."""
        return len(self.slices)

    @property
    def cores_per_layer(self) -> tuple[int, ...]:
        """Cores of each weight layer."""
        return tuple(
            sum(s.layer == layer for s in self.slices) for layer in range(self.net.n_layers)
        )

    @property
    def bram_estimate(self) -> int:
        """Block RAMs of all cores (:attr:`~spikeforge.hw.params.CoreParams.bram_estimate`)."""
        return sum(p.bram_estimate for p in self.core_params())

    def bram_by_memory(self) -> dict[str, int]:
        """Block RAMs of all cores by memory name (``weights``, ``grads``, ...), largest first."""
        out: dict[str, int] = {}
        for p in self.core_params():
            for mem in p.memories:
                out[mem.name] = out.get(mem.name, 0) + mem.bram_estimate
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

    def core_params(self) -> tuple[CoreParams, ...]:
        """The linked :class:`CoreParams` of every core, in core order (``neurons=None`` for a
        core that holds its whole layer)."""
        shapes = self.net.weight_shapes()
        return tuple(
            core_for(
                self.net,
                s.layer,
                s.lanes,
                None if s.neurons == shapes[s.layer][0] else (s.start, s.stop),
                device=self.device,
                lr_range=self.lr_range,
                fused=self.fused,
            )
            for s in self.slices
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary: the network, the device, every core and every layer's work."""
        shapes = self.net.weight_shapes()
        per_layer = self.cores_per_layer
        return {
            "net": self.net.to_dict(),
            "net_hash": self.net.config_hash,
            "device": self.device,
            "lr_range": self.lr_range,
            **({"fused": True} if self.fused else {}),
            "cores": [
                {
                    "core": n,
                    "layer": s.layer,
                    "start": s.start,
                    "stop": s.stop,
                    "lanes": s.lanes,
                    "synapses": s.neurons * shapes[s.layer][1],
                }
                for n, s in enumerate(self.slices)
            ],
            "layers": [
                {
                    "layer": layer,
                    "shape": [n_out, n_in],
                    "cores": per_layer[layer],
                    "work": n_out * n_in,
                    "max_core_synapses": max(
                        s.neurons * n_in for s in self.slices if s.layer == layer
                    ),
                }
                for layer, (n_out, n_in) in enumerate(shapes)
            ],
        }

    def describe(self) -> str:
        """A table of the cores: layer, neurons, lanes, synapses and estimated block RAMs."""
        shapes = self.net.weight_shapes()
        device = ecp5_device(self.device)
        fused = " (fused gradients)" if self.fused else ""
        title = (
            f"network {self.net.layers}, T = {self.net.timesteps}: {self.cores} cores{fused} on "
            f"one ECP5 {self.device}, about {self.bram_estimate} of its {device.brams} block RAMs"
        )
        header = f"{'core':>4}  {'layer':>5}  {'neurons':>11}  {'lanes':>5}  {'synapses':>8}  BRAM"
        lines = [title, header]
        for n, (s, p) in enumerate(zip(self.slices, self.core_params(), strict=True)):
            synapses = s.neurons * shapes[s.layer][1]
            lines.append(
                f"{n:>4}  {s.layer:>5}  {f'{s.start}..{s.stop - 1}':>11}  {s.lanes:>5}  "
                f"{synapses:>8}  {p.bram_estimate:>4}"
            )
        return "\n".join(lines)


def core_for(
    net: SnnConfig,
    layer: int,
    lanes: int,
    neurons: tuple[int, int] | None,
    *,
    device: str,
    lr_range: int,
    fused: bool,
) -> CoreParams:
    """The linked core of a slice; with ``fused``, fused gradients and dense weights where
    packing the weight memory's lanes saves block RAMs."""
    dense = False
    if fused:
        n_out = net.weight_shapes()[layer][0] if neurons is None else neurons[1] - neurons[0]
        depth = n_out // lanes * net.weight_shapes()[layer][1]
        spec = MemorySpec("weights", depth, net.master_bits, lanes, "")
        dense = MemorySpec("weights", depth, net.master_bits, lanes, "", packed=True).bram_estimate
        dense = dense < spec.bram_estimate
    return CoreParams(
        net=net,
        layer=layer,
        lanes=lanes,
        lr_range=lr_range,
        neurons=neurons,
        linked=True,
        device=device,
        fused_grads=fused,
        dense_weights=dense,
    )


def _largest_divisor(n: int, at_most: int) -> int:
    """The largest divisor of ``n`` that is at most ``at_most``."""
    return max(d for d in range(1, min(n, at_most) + 1) if n % d == 0)


def _groups(net: SnnConfig, lanes: int) -> list[tuple[int, int]]:
    """``(P_l, n_out / P_l)`` of every layer: its lane count and number of lane groups."""
    out = []
    for n_out, _ in net.weight_shapes():
        p = _largest_divisor(n_out, lanes)
        out.append((p, n_out // p))
    return out


def _layer_slices(layer: int, p: int, groups: int, k: int, lanes: int) -> list[Slice]:
    """Layer ``layer``'s ``groups`` lane groups of ``p`` neurons in ``k`` contiguous slices."""
    base, extra = divmod(groups, k)
    slices, start = [], 0
    for i in range(k):
        stop = start + (base + (i < extra)) * p
        slices.append(Slice(layer, start, stop, _largest_divisor(stop - start, lanes)))
        start = stop
    return slices


def _check_args(net: SnnConfig, lanes: int, device: str, lr_range: int) -> None:
    if not isinstance(net, SnnConfig):
        raise TypeError(f"net must be an SnnConfig, not {net!r}")
    check_int("lanes", lanes, 1, 4096)
    check_int("lr_range", lr_range, 1, 16)
    ecp5_device(device)  # raises with the allowed names


class _Fit:
    """Whether a layer's slices fit the device, cached by slice size."""

    def __init__(self, net: SnnConfig, lanes: int, device: str, lr_range: int, fused: bool):
        self.net, self.lanes, self.device, self.lr_range = net, lanes, device, lr_range
        self.fused = fused
        self._cache: dict[tuple[int, int], ConfigError | None] = {}

    def error(self, layer: int, neurons: int) -> ConfigError | None:
        """The :class:`ConfigError` of a core of ``neurons`` neurons of ``layer``, or None if it
        is valid (the slice's position does not matter)."""
        if (layer, neurons) not in self._cache:
            full = neurons == self.net.weight_shapes()[layer][0]
            try:
                core_for(
                    self.net,
                    layer,
                    _largest_divisor(neurons, self.lanes),
                    None if full else (0, neurons),
                    device=self.device,
                    lr_range=self.lr_range,
                    fused=self.fused,
                )
                self._cache[layer, neurons] = None
            except ConfigError as e:
                self._cache[layer, neurons] = e
        return self._cache[layer, neurons]

    def split_error(self, layer: int, p: int, groups: int, k: int) -> ConfigError | None:
        """The first error of ``layer`` split into ``k`` slices (of ``groups // k`` or one more
        lane groups of ``p`` neurons), or None if they all fit."""
        base, extra = divmod(groups, k)
        sizes = [base + 1, base] if extra else [base]
        return next((e for g in sizes if g and (e := self.error(layer, g * p))), None)


def _min_per_layer(
    net: SnnConfig, lanes: int, device: str, lr_range: int, fused: bool = False
) -> list[int]:
    """The fewest cores of every layer whose slices all fit ``device``."""
    fit = _Fit(net, lanes, device, lr_range, fused)
    out = []
    for layer, ((n_out, n_in), (p, groups)) in enumerate(
        zip(net.weight_shapes(), _groups(net, lanes), strict=True)
    ):
        error = fit.split_error(layer, p, groups, groups)
        if error is not None:
            raise MappingError(
                f"layer {layer} ({n_out} x {n_in}) cannot be placed on ECP5 {device} even split "
                f"into {groups} cores of one {p}-neuron lane group each: {error}"
            ) from error
        out.append(
            next(k for k in range(1, groups + 1) if fit.split_error(layer, p, groups, k) is None)
        )
    return out


def max_cores(net: SnnConfig, *, lanes: int = 8) -> int:
    """The most cores :func:`map_network` can use: every layer split to one lane group per core.

    Parameters
    ----------
    net : SnnConfig
        The network.
    lanes : int
        Most lanes per core.

    Returns
    -------
    int
        ``sum_l n_out_l / P_l``.
    """
    _check_args(net, lanes, DEFAULT_DEVICE, 4)
    return sum(groups for _, groups in _groups(net, lanes))


def min_cores(
    net: SnnConfig,
    *,
    lanes: int = 8,
    device: str = DEFAULT_DEVICE,
    lr_range: int = 4,
    fused: bool = False,
) -> int:
    """The fewest cores :func:`map_network` can use: every layer split as little as fits.

    Parameters
    ----------
    net : SnnConfig
        The network.
    lanes : int
        Most lanes per core.
    device : str
        ECP5 device of every core.
    lr_range : int
        Learning-rate range of every core.
    fused : bool
        Cores with fused gradients (and dense weights where they help).

    Returns
    -------
    int
        The sum of the per-layer minimums.

    Raises
    ------
    MappingError
        If a layer does not fit the device even split into one lane group per core.
    """
    _check_args(net, lanes, device, lr_range)
    return sum(_min_per_layer(net, lanes, device, lr_range, fused))


def map_network(
    net: SnnConfig,
    cores: int,
    *,
    lanes: int = 8,
    device: str = DEFAULT_DEVICE,
    lr_range: int = 4,
    check_device: bool = True,
    fused: bool | None = False,
) -> Mapping:
    """Place ``net`` on exactly ``cores`` cores.

    Parameters
    ----------
    net : SnnConfig
        The network.
    cores : int
        Number of cores, at least one per weight layer and at most :func:`max_cores`.
    lanes : int
        Most lanes per core; each core uses the largest divisor of its slice size up to this.
    device : str
        ECP5 device every core must fit.
    lr_range : int
        Learning-rate range of every core.
    check_device : bool
        Check that the whole array's block RAMs fit one ``device`` (``False`` only to plan:
        the host stream or cycles of a network that does not fit yet).
    fused : bool or None
        ``True``: cores with fused gradients (no gradient memory) and dense weights where they
        save block RAMs (:func:`core_for`); ``None``: such cores only if the plain ones do not
        fit (the plain cores' error if neither does).

    Returns
    -------
    Mapping
        The slices in core order.

    Raises
    ------
    TypeError
        If ``cores`` is not an int.
    MappingError
        If ``cores`` is below 1, too few for the layers (or their block RAMs) or more than the
        layers can be split into; the message names the numbers.
    """
    if fused is None:
        kw = {"lanes": lanes, "device": device, "lr_range": lr_range, "check_device": check_device}
        try:
            return map_network(net, cores, **kw, fused=False)
        except MappingError as plain:
            try:
                return map_network(net, cores, **kw, fused=True)
            except MappingError:
                raise plain from None
    if not isinstance(fused, bool):
        raise TypeError(f"fused must be a bool or None, not {fused!r}")
    if isinstance(cores, bool) or not isinstance(cores, int):
        raise TypeError(f"cores must be an int >= 1, not {cores!r}")
    if cores < 1:
        raise MappingError(f"cores = {cores} is out of range: allowed at least 1")
    _check_args(net, lanes, device, lr_range)
    if not isinstance(check_device, bool):
        raise TypeError(f"check_device must be a bool, not {check_device!r}")
    shapes = net.weight_shapes()
    groups = _groups(net, lanes)
    k = _min_per_layer(net, lanes, device, lr_range, fused)
    need = sum(k)
    if cores < need:
        if need == net.n_layers:
            raise MappingError(
                f"network {net.layers} has {net.n_layers} weight layers: needs at least "
                f"{need} cores, got {cores} ({need - cores} short)"
            )
        split = ", ".join(
            f"layer {layer} ({n_out} x {n_in}) needs at least {k[layer]} cores"
            for layer, (n_out, n_in) in enumerate(shapes)
            if k[layer] > 1
        )
        raise MappingError(
            f"{split} on ECP5 {device}: the network needs {need} cores, got {cores} "
            f"({need - cores} short)"
        )
    most = sum(g for _, g in groups)
    if cores > most:
        raise MappingError(
            f"the network can use at most {most} cores (every layer split to one lane group "
            f"per core); got {cores} ({cores - most} too many)"
        )
    work = [n_out * n_in for n_out, n_in in shapes]
    for _ in range(cores - need):
        best = None
        for layer in range(net.n_layers):
            if k[layer] < groups[layer][1] and (
                best is None or work[layer] * k[best] > work[best] * k[layer]
            ):
                best = layer
        assert best is not None  # cores <= most leaves a layer to split
        k[best] += 1
    slices = [
        s
        for layer, (p, g) in enumerate(groups)
        for s in _layer_slices(layer, p, g, k[layer], lanes)
    ]
    mapping = Mapping(net=net, slices=tuple(slices), device=device, lr_range=lr_range, fused=fused)
    if check_device:
        _check_device(mapping)
    return mapping


def _check_device(mapping: Mapping) -> None:
    """A :class:`MappingError` unless the array's block RAMs fit one device; the message names
    the memories that take them."""
    brams = ecp5_device(mapping.device).brams
    total = mapping.bram_estimate
    if total > brams:
        parts = ", ".join(f"{name} {n}" for name, n in mapping.bram_by_memory().items() if n)
        raise MappingError(
            f"network {mapping.net.layers} on {mapping.cores} cores needs about {total} block "
            f"RAMs ({parts}) but one ECP5 {mapping.device} has {brams}: it does not fit this "
            "device at these widths"
        )


def array_table(table: Any, where: str = "the config") -> dict[str, Any]:
    """The keys of an ``[array]`` table (:func:`map_network`'s arguments), their types checked.

    Parameters
    ----------
    table : dict
        The table as read (:func:`~spikeforge.sw.config.read_config_toml`) or given.
    where : str
        Where it comes from, for the messages (e.g. ``"network file 'net.toml'"``).

    Returns
    -------
    dict
        A copy; the ranges are checked by :func:`map_network`.

    Raises
    ------
    MappingError
        If ``table`` is not a table, has a key outside :data:`ARRAY_KEYS` (the message lists
        the allowed keys) or a value of the wrong type.
    """
    if not isinstance(table, dict):
        raise MappingError(f"array in {where} must be an [array] table, not {table!r}")
    unknown = sorted(set(table) - set(ARRAY_KEYS))
    if unknown:
        raise MappingError(
            f"unknown [array] key(s) {', '.join(unknown)} in {where}; allowed keys: "
            f"{', '.join(ARRAY_KEYS)}"
        )
    for key, value in table.items():
        if key == "fused":
            if value is not None and not isinstance(value, bool):
                raise MappingError(f"[array] fused in {where} must be true or false, not {value!r}")
            continue
        want = str if key == "device" else int
        if isinstance(value, bool) or not isinstance(value, want):
            raise MappingError(
                f"[array] {key} in {where} must be {'a string' if want is str else 'an int'}, "
                f"not {value!r}"
            )
    return dict(table)
