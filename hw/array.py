"""The multi-core array: linked cores, the spike and error interconnect, one host port.

``CoreArray(cores)`` takes one :class:`~spikeforge.hw.params.CoreParams` per core (``linked``,
layer-major, each layer's slices in neuron order; :func:`layer_groups` checks the tiling) and
builds:

* the cores, each a :class:`~spikeforge.hw.core.SpikingCore` with stream links;
* per layer boundary ``l -> l+1`` a :class:`~spikeforge.hw.links.SpikeMerge` (the spikes of
  layer ``l``'s cores, merged per timestep, to every core of layer ``l+1``) and a
  :class:`~spikeforge.hw.links.ErrorReduce` (the ``e_prev`` of layer ``l+1``'s cores, reduced,
  rounded and saturated once, each value to the core of layer ``l`` that owns it);
* the host port (``cmd``/``rsp`` streams): a :class:`~spikeforge.hw.router.PacketRouter` that
  sends each host packet to the cores its route word names
  (:func:`~spikeforge.hw.protocol.route`) and a :class:`~spikeforge.hw.router.ResponseMerger`
  that forwards whole response packets, tagging each status word with the core's index, with
  the watchdog that answers for a stuck core;
* ABORT: a core's ``abort`` pulse also clears the merge and the reducer on both of its layer
  boundaries, so no spike or error of an aborted step is left on a link.

Schedule (docs/array.md): the host broadcasts FORWARD to every core; each core runs its
timesteps as soon as the previous layer's spikes of that timestep have arrived, so layer ``l+1``
integrates timestep ``t`` while layer ``l`` integrates ``t+1``. BACKWARD likewise: layer ``l``
starts ``t = T-1`` as soon as layer ``l+1`` has sent ``e[T-1]``. Every core still sees exactly
the inputs of the sequential algorithm in the same order, so the result is bit-exact.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from amaranth.hdl import Cat, Module, ResetInserter
from amaranth.lib import wiring

from spikeforge.hw import rw_check
from spikeforge.hw.core import SpikingCore, host_port_members
from spikeforge.hw.links import STALL_STEPS, ErrorReduce, SpikeMerge, StallGate
from spikeforge.hw.params import CoreParams
from spikeforge.hw.protocol import MAX_ARRAY_CORES
from spikeforge.hw.router import PacketRouter, ResponseMerger, default_timeout

__all__ = ["CoreArray", "array_hash", "layer_groups"]


def layer_groups(cores: Sequence[CoreParams], *, linked: bool = False) -> list[list[int]]:
    """Core indices per layer, in neuron order, after checking that the cores compute one
    network whose every layer they tile exactly once (and, with ``linked``, that they are
    linked and listed layer-major in neuron order, as :class:`CoreArray` needs)."""
    cores = list(cores)
    if not cores:
        raise ValueError("cores must name at least one CoreParams, not an empty sequence")
    for n, p in enumerate(cores):
        if not isinstance(p, CoreParams):
            raise TypeError(f"cores[{n}] must be a CoreParams, not {p!r}")
    net = cores[0].net
    for n, p in enumerate(cores):
        if p.net != net:
            raise ValueError(f"cores[{n}] computes another network than cores[0]")
        if linked and not p.linked:
            raise ValueError(f"cores[{n}] must be linked (CoreParams(linked=True)) in an array")
    groups: list[list[int]] = [[] for _ in range(net.n_layers)]
    for n, p in enumerate(cores):
        groups[p.layer].append(n)
    for layer, group in enumerate(groups):
        group.sort(key=lambda n: cores[n].neuron_offset)
        if not group:
            raise ValueError(f"no core computes layer {layer}")
        end = 0
        for n in group:
            if cores[n].neuron_offset != end:
                raise ValueError(
                    f"layer {layer}: neurons {end}..{cores[n].neuron_offset - 1} have no core "
                    "or two cores overlap"
                )
            end += cores[n].n_out
        if end != cores[group[0]].layer_neurons:
            raise ValueError(
                f"layer {layer}: cores cover {end} of {cores[group[0]].layer_neurons} neurons"
            )
        if layer > 0 and not all(cores[n].emits_error for n in group):
            raise ValueError(
                f"every core of layer {layer} must emit W^T.delta for layer {layer - 1}"
            )
    if linked and [n for g in groups for n in g] != list(range(len(cores))):
        raise ValueError("cores must be listed layer by layer, each layer's slices in order")
    return groups


def array_hash(
    cores: Sequence[CoreParams], *, link_stall: int = 0, timeout: int | None = None
) -> str:
    """16 hex digits of SHA-256 over the cores' hashes in core order (and the link stall gates
    and a watchdog reset value other than the default, if any): identifies the generated array
    without elaborating it."""
    extra = {}
    if link_stall:
        extra["link_stall"] = link_stall
    if timeout is not None and timeout != default_timeout(cores):
        extra["timeout"] = timeout
    hashes = [p.core_hash for p in cores]
    canonical = json.dumps([*hashes, extra] if extra else hashes)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


class CoreArray(wiring.Component):
    """Linked cores behind one AXI4-Stream host port.

    Parameters
    ----------
    cores : sequence of CoreParams
        Linked cores, layer-major, each layer's slices in neuron order (at most
        :data:`~spikeforge.hw.protocol.MAX_ARRAY_CORES`).
    link_stall : int
        Verification only: block every link (both ends of every merge and reduction) on about
        ``link_stall / 16`` of the cycles, pseudo-randomly
        (:class:`~spikeforge.hw.links.StallGate`); 0 (default) builds no gates.
    timeout : int or None
        The watchdog's cycles at reset (:mod:`spikeforge.hw.router`; the host changes them with
        SET_TIMEOUT). Default: :func:`~spikeforge.hw.router.default_timeout`.
    """

    def __init__(
        self, cores: Sequence[CoreParams], *, link_stall: int = 0, timeout: int | None = None
    ):
        cores = tuple(cores)
        self._groups = layer_groups(cores, linked=True)
        if len(cores) > MAX_ARRAY_CORES:
            raise ValueError(f"an array holds at most {MAX_ARRAY_CORES} cores, not {len(cores)}")
        if isinstance(link_stall, bool) or not isinstance(link_stall, int):
            raise TypeError(f"link_stall must be an int, not {link_stall!r}")
        if not 0 <= link_stall < STALL_STEPS:
            raise ValueError(f"link_stall must be in [0, {STALL_STEPS - 1}], not {link_stall}")
        self._stall = link_stall
        self._cores = cores
        self._timeout = default_timeout(cores) if timeout is None else timeout
        self._duts = [SpikingCore(p) for p in cores]
        super().__init__({**host_port_members(), **rw_check.members()})

    @property
    def cores(self) -> tuple[CoreParams, ...]:
        return self._cores

    @property
    def duts(self) -> tuple[SpikingCore, ...]:
        """The core components, in core order."""
        return tuple(self._duts)

    @property
    def layers(self) -> list[list[int]]:
        """Core indices of each layer, in neuron order."""
        return [list(g) for g in self._groups]

    @property
    def name(self) -> str:
        """Module name of the generated Verilog top."""
        return "spikeforge_array"

    @property
    def link_stall(self) -> int:
        return self._stall

    @property
    def timeout(self) -> int:
        """The watchdog's cycles at reset."""
        return self._timeout

    @property
    def array_hash(self) -> str:
        """:func:`array_hash` of this array."""
        return array_hash(self._cores, link_stall=self._stall, timeout=self._timeout)

    def _link(self, m: Module, source, sink, name: str) -> None:
        """Connect a link's two ends, through a :class:`StallGate` when ``link_stall`` is set."""
        if not self._stall:
            wiring.connect(m, source, sink)
            return
        seed = 1 + (int(hashlib.sha256(name.encode()).hexdigest(), 16) % 0xFFFF)
        gate = StallGate(source.signature, stall=self._stall, seed=seed)
        m.submodules[f"stall_{name}"] = gate
        wiring.connect(m, source, gate.i)
        wiring.connect(m, gate.o, sink)

    def elaborate(self, platform):
        m = Module()
        C = len(self._cores)
        for n, dut in enumerate(self._duts):
            m.submodules[f"core{n}"] = dut

        # -- interconnect ------------------------------------------------------------------------
        for layer in range(len(self._groups) - 1):
            lower, upper = self._groups[layer], self._groups[layer + 1]
            merge = SpikeMerge(
                neurons=self._cores[lower[0]].layer_neurons, sources=len(lower), sinks=len(upper)
            )
            reduce = ErrorReduce(
                sources=[self._cores[n] for n in upper],
                sinks=[self._cores[n].neuron_range for n in lower],
            )
            # ABORT of any core on either side clears the boundary's links.
            cleared = Cat(*[self._duts[n].abort for n in lower + upper]).any()
            m.submodules[f"spikes{layer}"] = ResetInserter(cleared)(merge)
            m.submodules[f"errors{layer}"] = ResetInserter(cleared)(reduce)
            for s, n in enumerate(lower):
                self._link(m, self._duts[n].spk_o, getattr(merge, f"i{s}"), f"spk_o{n}")
                self._link(m, getattr(reduce, f"o{s}"), self._duts[n].err_i, f"err_i{n}")
            for d, n in enumerate(upper):
                self._link(m, getattr(merge, f"o{d}"), self._duts[n].spk_i, f"spk_i{n}")
                self._link(m, self._duts[n].err_o, getattr(reduce, f"i{d}"), f"err_o{n}")

        # -- host port: the router, the response merger and their watchdog ---------------------
        m.submodules.router = router = PacketRouter(
            C, timeout=self._timeout, array_hash=self.array_hash
        )
        m.submodules.merger = merger = ResponseMerger(C)
        wiring.connect(m, wiring.flipped(self.cmd), router.i)
        wiring.connect(m, merger.o, wiring.flipped(self.rsp))
        wiring.connect(m, router.own, merger.own)
        for n, dut in enumerate(self._duts):
            wiring.connect(m, getattr(router, f"o{n}"), dut.cmd)
            wiring.connect(m, dut.rsp, getattr(merger, f"i{n}"))
        m.d.comb += [
            merger.timeout.eq(router.timeout),
            merger.delivered.eq(router.delivered),
            merger.gave_up.eq(router.gave_up),
            merger.partial.eq(router.partial),
            merger.op.eq(router.op),
            router.pending.eq(merger.pending),
        ]
        if rw_check.enabled():  # every core's checked read-during-write accesses
            counts = [dut.rw_checked for dut in self._duts]
            m.d.comb += self.rw_checked.eq(sum(counts[1:], start=counts[0]))
        return m
