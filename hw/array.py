"""The multi-core array: linked cores, the spike and error interconnect, one host port.

``CoreArray(cores)`` takes one :class:`~spikeforge.hw.params.CoreParams` per core (``linked``,
layer-major, each layer's slices in neuron order; :func:`layer_groups` checks the tiling) and
builds:

* the cores, each a :class:`~spikeforge.hw.core.SpikingCore` with stream links;
* per layer boundary ``l -> l+1`` a :class:`~spikeforge.hw.links.SpikeMerge` (the spikes of
  layer ``l``'s cores, merged per timestep, to every core of layer ``l+1``) and a
  :class:`~spikeforge.hw.links.ErrorReduce` (the ``e_prev`` of layer ``l+1``'s cores, reduced,
  rounded and saturated once, each value to the core of layer ``l`` that owns it);
* the host port (``s_axis_*``/``m_axis_*``): a router that sends each host packet to the cores
  its route word names (:func:`~spikeforge.hw.protocol.route`) and a response merger that
  forwards whole response packets, tagging each status word with the core's index.

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

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring

from spikeforge.hw.core import SpikingCore, host_port_members
from spikeforge.hw.datapath import index_range
from spikeforge.hw.links import STALL_STEPS, ErrorReduce, SpikeMerge, StallGate
from spikeforge.hw.params import BUS_BITS, CoreParams
from spikeforge.hw.protocol import ARRAY_TAG, MAX_ARRAY_CORES, ROUTE, Status

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


def array_hash(cores: Sequence[CoreParams], *, link_stall: int = 0) -> str:
    """16 hex digits of SHA-256 over the cores' hashes in core order (and the link stall
    gates, if any): identifies the generated array without elaborating it."""
    hashes = [p.core_hash for p in cores]
    canonical = json.dumps([*hashes, {"link_stall": link_stall}] if link_stall else hashes)
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
    """

    def __init__(self, cores: Sequence[CoreParams], *, link_stall: int = 0):
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
        self._duts = [SpikingCore(p) for p in cores]
        super().__init__(host_port_members())

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
    def array_hash(self) -> str:
        """:func:`array_hash` of this array."""
        return array_hash(self._cores, link_stall=self._stall)

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
            m.submodules[f"spikes{layer}"] = merge
            m.submodules[f"errors{layer}"] = reduce
            for s, n in enumerate(lower):
                self._link(m, self._duts[n].spk_o, getattr(merge, f"i{s}"), f"spk_o{n}")
                self._link(m, getattr(reduce, f"o{s}"), self._duts[n].err_i, f"err_i{n}")
            for d, n in enumerate(upper):
                self._link(m, getattr(merge, f"o{d}"), self._duts[n].spk_i, f"spk_i{n}")
                self._link(m, self._duts[n].err_o, getattr(reduce, f"i{d}"), f"err_o{n}")

        # -- router: host packets to the cores their route word names ------------------------------
        targets = Signal(C)
        all_ready = Signal()
        m.d.comb += all_ready.eq(
            Cat(*[~targets[n] | dut.s_axis_tready for n, dut in enumerate(self._duts)]).all()
        )
        word = self.s_axis_tdata
        first, count = word[12:24], word[:12]
        reply = Signal()  # the array's own BAD_ARG answer is pending
        reply_op = Signal(8)
        for dut in self._duts:
            m.d.comb += [
                dut.s_axis_tdata.eq(word),
                dut.s_axis_tlast.eq(self.s_axis_tlast),
            ]
        with m.FSM(name="router"):
            with m.State("HEADER"):
                m.d.comb += self.s_axis_tready.eq(~reply)
                with m.If(self.s_axis_tvalid & ~reply):
                    good = (word[24:] == ROUTE) & (count != 0) & (first + count <= C)
                    with m.If(good):
                        m.d.sync += targets.eq(
                            Cat(*[(first <= n) & (n < first + count) for n in range(C)])
                        )
                        with m.If(~self.s_axis_tlast):
                            m.next = "ROUTE"
                    with m.Else():
                        m.d.sync += reply_op.eq(word[24:])
                        with m.If(self.s_axis_tlast):
                            m.d.sync += reply.eq(1)
                        with m.Else():
                            m.next = "DRAIN"
            with m.State("ROUTE"):
                m.d.comb += self.s_axis_tready.eq(all_ready)
                for n, dut in enumerate(self._duts):
                    m.d.comb += dut.s_axis_tvalid.eq(self.s_axis_tvalid & targets[n] & all_ready)
                with m.If(self.s_axis_tvalid & all_ready & self.s_axis_tlast):
                    m.next = "HEADER"
            with m.State("DRAIN"):
                m.d.comb += self.s_axis_tready.eq(1)
                with m.If(self.s_axis_tvalid & self.s_axis_tlast):
                    m.d.sync += reply.eq(1)
                    m.next = "HEADER"

        # -- response merger: whole packets, the lowest waiting source first ----------------------
        # Source C is the array itself (its one-word BAD_ARG answer).
        sources = [
            (dut.m_axis_tvalid, dut.m_axis_tdata, dut.m_axis_tlast) for dut in self._duts
        ] + [(reply, Cat(Const(0, 16), Const(Status.BAD_ARG, 8), reply_op), Const(1))]
        locked = Signal()
        sel = Signal(index_range(C + 1))
        pick = Signal(index_range(C + 1))
        for n in reversed(range(C + 1)):
            with m.If(sources[n][0]):
                m.d.comb += pick.eq(n)
        any_valid = Cat(*[s[0] for s in sources]).any()
        with m.If(~locked & any_valid):
            m.d.sync += [locked.eq(1), sel.eq(pick)]
        valid, tdata, tlast = Signal(), Signal(BUS_BITS), Signal()
        with m.Switch(sel):
            for n, (v, d, last) in enumerate(sources):
                with m.Case(n):
                    tag = ARRAY_TAG if n == C else n
                    m.d.comb += [
                        valid.eq(v),
                        tdata.eq(Mux(last, d | tag, d)),
                        tlast.eq(last),
                    ]
        m.d.comb += [
            self.m_axis_tvalid.eq(locked & valid),
            self.m_axis_tdata.eq(tdata),
            self.m_axis_tlast.eq(tlast),
        ]
        take = locked & valid & self.m_axis_tready
        for n, dut in enumerate(self._duts):
            m.d.comb += dut.m_axis_tready.eq(take & (sel == n))
        with m.If(take & tlast):
            m.d.sync += locked.eq(0)
            with m.If(sel == C):
                m.d.sync += reply.eq(0)
        return m
