"""Stream links between cores: spikes forward, errors backward, with flow control on every link.

Core side (inside a linked :class:`~spikeforge.hw.core.SpikingCore`):

* :class:`SpikeEmitter` -- the FP engine pushes each integrated neuron group's spike mask; the
  emitter sends the index of every spiking neuron (its index in the layer), lowest first, and a
  ``last`` word after each timestep's last group. The FP engine issues only while the emitter
  has room for every group in flight, so a stalled link stalls the engine, never loses a spike.
* :class:`SpikeReceiver` -- writes incoming indices as the core's input events (the same memory
  layout as the LOAD_SPIKES command) and counts the timesteps whose events are in place; the FP
  engine starts timestep ``t`` only when ``avail > t``.
* :class:`ErrorEmitter` -- a FIFO behind the BP engine's ``e_prev`` writes (``T-1`` first,
  inputs ascending); BP issues only while it has room.
* :class:`ErrorReceiver` -- writes ``e[t][j]`` of the core's neurons into its error memory; the
  BP engine starts timestep ``t`` only when the error of ``t`` is in place.

Array side (:class:`~spikeforge.hw.array.CoreArray`):

* :class:`SpikeMerge` -- the spikes of a layer's cores (in neuron order) merged per timestep:
  all of core 0's indices of ``t``, then core 1's, ..., then one ``last`` word. Indices stay
  ascending. Every word goes to every core of the next layer (a broadcast that advances when all
  of them have taken it).
* :class:`ErrorReduce` -- joins the ``e_prev`` streams of a layer's cores word by word, adds the
  exact partial sums of a split layer and rounds and saturates once (``sat_g(rnd(sum, Q))``,
  docs/arithmetic.md 4.4), and sends input ``i``'s error to the core of the previous layer that
  owns neuron ``i``.

Receivers are armed by their engine's start (FORWARD or BACKWARD command); until then they hold
``ready`` low, so a fast upstream core simply waits. Every timestep is complete on the wire with
its ``last`` word (spikes) or its ``n`` values (errors), so nothing can be lost or duplicated.
"""

from __future__ import annotations

from collections.abc import Sequence

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from spikeforge.hw.datapath import delay_line, index_range, rnd, sat, write_port_members
from spikeforge.hw.params import CoreParams

__all__ = [
    "LINK_FIFO_DEPTH",
    "STALL_STEPS",
    "ErrorEmitter",
    "ErrorReceiver",
    "ErrorReduce",
    "SpikeEmitter",
    "SpikeMerge",
    "SpikeReceiver",
    "StallGate",
    "error_signature",
    "spike_layout",
    "spike_signature",
]

LINK_FIFO_DEPTH = 32
"""Entries of each emitter's FIFO (spike groups or ``e_prev`` values)."""
LANDED = 2
"""Cycles from a receiver's last write request of a timestep until ``avail`` counts it: the
registered write port, then the memory write itself."""


STALL_STEPS = 16
"""A :class:`StallGate` blocks ``stall`` of every :data:`STALL_STEPS` cycles on average."""


class StallGate(wiring.Component):
    """Verification only: passes a stream on pseudo-random cycles and blocks it on the others.

    A 16-bit Fibonacci LFSR (taps 16, 14, 13, 11; ``seed`` must not be 0) steps every cycle; the
    stream moves only when its low four bits are at least ``stall``, i.e. it is blocked on about
    ``stall / 16`` of the cycles, in both directions (``valid`` and ``ready``). Put between two
    ends of a link, it exercises the flow control the way a random backpressure inserter does.
    A word once offered stays offered until it is taken (AXI4-Stream: ``valid`` is never
    withdrawn; ``make formal`` proves it).
    """

    def __init__(self, signature: stream.Signature, *, stall: int, seed: int):
        if not 0 < stall < STALL_STEPS:
            raise ValueError(f"stall must be in [1, {STALL_STEPS - 1}], not {stall!r}")
        if not 0 < seed < 1 << 16:
            raise ValueError(f"seed must be in [1, 65535], not {seed!r}")
        self._stall, self._seed = stall, seed
        super().__init__({"i": In(signature), "o": Out(signature)})

    def elaborate(self, platform):
        m = Module()
        lfsr = Signal(16, init=self._seed)
        feedback = lfsr[15] ^ lfsr[13] ^ lfsr[12] ^ lfsr[10]
        m.d.sync += lfsr.eq(Cat(feedback, lfsr[:15]))
        go = Signal()
        offered = Signal()  # a word was offered and not taken: keep offering it
        m.d.sync += offered.eq(self.o.valid & ~self.o.ready)
        m.d.comb += [
            go.eq(lfsr[:4] >= self._stall),
            self.o.payload.eq(self.i.payload),
            self.o.valid.eq(self.i.valid & (go | offered)),
            self.i.ready.eq(self.o.ready & (go | offered)),
        ]
        return m


def spike_layout(neurons: int) -> data.StructLayout:
    """A spike-link word: the neuron's index in its layer, or ``last`` (end of a timestep)."""
    return data.StructLayout({"index": unsigned(max(1, (neurons - 1).bit_length())), "last": 1})


def spike_signature(neurons: int) -> stream.Signature:
    return stream.Signature(spike_layout(neurons))


def error_signature(bits: int) -> stream.Signature:
    return stream.Signature(signed(bits))


def _checked_margin(margin: int) -> int:
    """An emitter's free-entry margin: at least one entry, less than the whole FIFO."""
    if not 0 < margin < LINK_FIFO_DEPTH:
        raise ValueError(f"margin must be in [1, {LINK_FIFO_DEPTH - 1}], not {margin!r}")
    return margin


class SpikeEmitter(wiring.Component):
    """FIFO of integrated groups ``(mask, group, last)`` and the serializer behind it.

    One word per spike plus one ``last`` word per timestep; a group without spikes costs one
    cycle. ``room`` is registered and keeps ``margin`` entries free for groups in flight.
    """

    def __init__(self, params: CoreParams, *, margin: int):
        self._p = p = CoreParams.checked(params)
        self._margin = _checked_margin(margin)
        super().__init__(
            {
                "push": In(1),
                "mask": In(p.lanes),
                "group": In(index_range(p.groups)),
                "last": In(1),
                "room": Out(1),
                "o": Out(spike_signature(p.layer_neurons)),
            }
        )

    def elaborate(self, platform):
        m = Module()
        p = self._p
        P = p.lanes
        gbits = len(self.group)
        m.submodules.fifo = fifo = SyncFIFOBuffered(width=P + gbits + 1, depth=LINK_FIFO_DEPTH)
        m.d.comb += [
            fifo.w_data.eq(Cat(self.mask, self.group, self.last)),
            fifo.w_en.eq(self.push),
        ]
        m.d.sync += self.room.eq(fifo.level < LINK_FIFO_DEPTH - self._margin)

        have = Signal()
        mask = Signal(P)
        group = Signal(gbits)
        last = Signal()
        lowest = Signal(range(P))
        for q in reversed(range(P)):
            with m.If(mask[q]):
                m.d.comb += lowest.eq(q)
        m.d.comb += [
            self.o.payload.index.eq(p.neuron_offset + group * P + lowest),
            self.o.payload.last.eq(mask == 0),
            self.o.valid.eq(have & ((mask != 0) | last)),
        ]
        rest = Signal(P)
        m.d.comb += rest.eq(mask & (mask - 1))
        with m.If(~have):
            m.d.comb += fifo.r_en.eq(1)
            with m.If(fifo.r_rdy):
                m.d.sync += [
                    have.eq(1),
                    mask.eq(fifo.r_data[:P]),
                    group.eq(fifo.r_data[P : P + gbits]),
                    last.eq(fifo.r_data[P + gbits]),
                ]
        with m.Elif(mask == 0):
            with m.If(~last | self.o.ready):
                m.d.sync += have.eq(0)
        with m.Elif(self.o.ready):
            m.d.sync += mask.eq(rest)
            with m.If((rest == 0) & ~last):
                m.d.sync += have.eq(0)
        return m


class SpikeReceiver(wiring.Component):
    """Input events from the ``i`` link, written like LOAD_SPIKES writes them.

    ``arm`` (the FORWARD start) restarts at timestep 0; ``avail`` counts the timesteps whose
    header and events are in memory (:data:`LANDED` cycles after the ``last`` word).
    """

    def __init__(self, params: CoreParams):
        self._p = p = CoreParams.checked(params)
        mem = p.memory_map
        super().__init__(
            {
                "i": In(spike_signature(p.n_in)),
                "arm": In(1),
                "avail": Out(range(p.timesteps + 1)),
                "active": Out(1),
                **write_port_members("ev", mem["events"]),
                **write_port_members("hdr", mem["event_heads"]),
            }
        )

    def elaborate(self, platform):
        m = Module()
        p = self._p
        T = p.timesteps
        pb = p.event_ptr_bits
        ptr = Signal(pb + 1)
        start = Signal(pb + 1)
        written = Signal(range(p.n_in + 1))
        t = Signal(range(T + 1))
        m.d.comb += [
            self.i.ready.eq(self.active),
            self.ev_waddr.eq(ptr),
            self.ev_wdata.eq(self.i.payload.index),
            self.hdr_waddr.eq(t),
            self.hdr_wdata.eq(Cat(start[:pb], written)),
        ]
        done = Signal()
        landed = delay_line(m, done, LANDED, "spk_landed")[-1]
        with m.If(landed):
            m.d.sync += self.avail.eq(self.avail + 1)
        with m.If(self.arm):
            m.d.sync += [
                self.active.eq(1),
                ptr.eq(0),
                start.eq(0),
                written.eq(0),
                t.eq(0),
                self.avail.eq(0),
            ]
        with m.Elif(self.active & self.i.valid):
            with m.If(self.i.payload.last):
                m.d.comb += [self.hdr_wen.eq(1), done.eq(1)]
                m.d.sync += [t.eq(t + 1), start.eq(ptr), written.eq(0)]
                with m.If(t == T - 1):
                    m.d.sync += self.active.eq(0)
            with m.Else():
                m.d.comb += self.ev_wen.eq(1)
                m.d.sync += [ptr.eq(ptr + 1), written.eq(written + 1)]
        return m


class ErrorEmitter(wiring.Component):
    """FIFO behind the BP engine's ``e_prev`` writes; ``room`` keeps ``margin`` entries free."""

    def __init__(self, params: CoreParams, *, margin: int):
        self._p = p = CoreParams.checked(params)
        self._margin = _checked_margin(margin)
        super().__init__(
            {
                "push": In(1),
                "value": In(signed(p.eprev_bits)),
                "room": Out(1),
                "o": Out(error_signature(p.eprev_bits)),
            }
        )

    def elaborate(self, platform):
        m = Module()
        bits = self._p.eprev_bits
        m.submodules.fifo = fifo = SyncFIFOBuffered(width=bits, depth=LINK_FIFO_DEPTH)
        m.d.comb += [
            fifo.w_data.eq(self.value),
            fifo.w_en.eq(self.push),
            self.o.payload.eq(fifo.r_data),
            self.o.valid.eq(fifo.r_rdy),
            fifo.r_en.eq(self.o.ready),
        ]
        m.d.sync += self.room.eq(fifo.level < LINK_FIFO_DEPTH - self._margin)
        return m


class ErrorReceiver(wiring.Component):
    """``e[t][j]`` from the ``i`` link (``t = T-1 .. 0``, ``j`` ascending) into the error memory.

    ``arm`` (a BACKWARD start that uses the external error) restarts at ``T-1``; ``avail`` counts
    the timesteps in memory, so BP may start timestep ``t`` when ``avail >= T - t``.
    """

    def __init__(self, params: CoreParams):
        self._p = p = CoreParams.checked(params)
        spec = p.memory_map["errors"]
        super().__init__(
            {
                "i": In(error_signature(p.net.g_bits)),
                "arm": In(1),
                "avail": Out(range(p.timesteps + 1)),
                "active": Out(1),
                "wen": Out(1),
                "addr": Out(spec.addr_bits),
                "lane": Out(index_range(p.lanes)),
                "data": Out(signed(p.net.g_bits)),
            }
        )

    def elaborate(self, platform):
        m = Module()
        p = self._p
        P, G, T = p.lanes, p.groups, p.timesteps
        t = Signal(range(T + 1))
        tbase = Signal(range(T * G + 1))
        g = Signal(range(G + 1))
        q = Signal(index_range(P))
        j_last = (g == G - 1) & (q == P - 1)
        m.d.comb += [
            self.i.ready.eq(self.active),
            self.addr.eq(tbase + g),
            self.lane.eq(q),
            self.data.eq(self.i.payload),
        ]
        done = Signal()
        landed = delay_line(m, done, LANDED, "err_landed")[-1]
        with m.If(landed):
            m.d.sync += self.avail.eq(self.avail + 1)
        with m.If(self.arm):
            m.d.sync += [
                self.active.eq(1),
                t.eq(T - 1),
                tbase.eq((T - 1) * G),
                g.eq(0),
                q.eq(0),
                self.avail.eq(0),
            ]
        with m.Elif(self.active & self.i.valid):
            m.d.comb += self.wen.eq(1)
            with m.If(q == P - 1):
                m.d.sync += [q.eq(0), g.eq(g + 1)]
            with m.Else():
                m.d.sync += q.eq(q + 1)
            with m.If(j_last):
                m.d.comb += done.eq(1)
                m.d.sync += [g.eq(0), t.eq(t - 1), tbase.eq(tbase - G)]
                with m.If(t == 0):
                    m.d.sync += self.active.eq(0)
        return m


class SpikeMerge(wiring.Component):
    """Spikes of ``sources`` cores (one layer, neuron order) to every one of ``sinks`` cores.

    Per timestep: source 0's indices up to its ``last`` word, source 1's, ..., and one ``last``
    word. A word moves when every sink has taken it (each sink's ``valid`` drops once it has).
    """

    def __init__(self, *, neurons: int, sources: int, sinks: int):
        if sources < 1 or sinks < 1:
            raise ValueError(f"sources and sinks must be >= 1, not {sources!r}, {sinks!r}")
        self._k, self._n = sources, sinks
        sig = spike_signature(neurons)
        super().__init__(
            {
                **{f"i{s}": In(sig) for s in range(sources)},
                **{f"o{d}": Out(sig) for d in range(sinks)},
            }
        )

    def elaborate(self, platform):
        m = Module()
        k, n = self._k, self._n
        src = Signal(index_range(k))
        ins = [getattr(self, f"i{s}") for s in range(k)]
        outs = [getattr(self, f"o{d}") for d in range(n)]
        valid = Signal()
        last = Signal()
        word = Signal.like(ins[0].payload)
        with m.Switch(src):
            for s, i in enumerate(ins):
                with m.Case(s):
                    m.d.comb += [valid.eq(i.valid), word.eq(i.payload)]
        m.d.comb += last.eq(word.last)
        # A source's own `last` word is dropped unless it is the last source's.
        drop = last & (src != k - 1)
        taken = Signal(n)
        all_taken = Signal()
        m.d.comb += all_taken.eq(Cat(*[taken[d] | o.ready for d, o in enumerate(outs)]).all())
        for d, o in enumerate(outs):
            m.d.comb += [o.payload.eq(word), o.valid.eq(valid & ~drop & ~taken[d])]
        accept = Signal()
        m.d.comb += accept.eq(valid & (drop | all_taken))
        with m.Switch(src):
            for s, i in enumerate(ins):
                with m.Case(s):
                    m.d.comb += i.ready.eq(accept)
        with m.If(accept):
            m.d.sync += taken.eq(0)
            with m.If(last):
                m.d.sync += src.eq(Mux(src == k - 1, 0, src + 1))
        with m.Elif(valid & ~drop):
            m.d.sync += taken.eq(taken | Cat(*[o.ready for o in outs]))
        return m


class ErrorReduce(wiring.Component):
    """``e[t][i]`` of a layer from the ``e_prev`` streams of the next layer's cores.

    Parameters
    ----------
    sources : sequence of CoreParams
        The next layer's cores (their ``eprev_bits`` give the input widths). With one unsplit
        core the values are already rounded and saturated and pass through.
    sinks : sequence of (start, stop)
        The neuron slice of each core of this layer, in order, tiling ``0 .. n``.
    """

    def __init__(self, *, sources: Sequence[CoreParams], sinks: Sequence[tuple[int, int]]):
        self._src = tuple(CoreParams.checked(p) for p in sources)
        self._sinks = tuple(sinks)
        net = self._src[0].net
        self._n = self._src[0].n_in
        if not self._sinks or self._sinks[0][0] != 0 or self._sinks[-1][1] != self._n:
            raise ValueError(f"sinks {self._sinks!r} must tile 0 .. {self._n}")
        self._net = net
        super().__init__(
            {
                **{f"i{s}": In(error_signature(p.eprev_bits)) for s, p in enumerate(self._src)},
                **{f"o{d}": Out(error_signature(net.g_bits)) for d in range(len(self._sinks))},
            }
        )

    def elaborate(self, platform):
        m = Module()
        net = self._net
        ins = [getattr(self, f"i{s}") for s in range(len(self._src))]
        outs = [getattr(self, f"o{d}") for d in range(len(self._sinks))]
        reduce = len(ins) > 1 or self._src[0].split
        bits = max(p.eprev_bits for p in self._src) + max(1, (len(ins) - 1).bit_length())
        total = Signal(signed(bits))
        m.d.comb += total.eq(sum(i.payload for i in ins))
        value = Signal(signed(net.g_bits))
        m.d.comb += value.eq(sat(rnd(total, net.bp_shift), net.g_bits) if reduce else total)
        valid = Signal()
        m.d.comb += valid.eq(Cat(*[i.valid for i in ins]).all())
        i_idx = Signal(range(self._n + 1))
        sink = Signal(index_range(len(outs)))
        ready = Signal()
        with m.Switch(sink):
            for d, o in enumerate(outs):
                with m.Case(d):
                    m.d.comb += [o.valid.eq(valid), ready.eq(o.ready)]
        for o in outs:
            m.d.comb += o.payload.eq(value)
        for i in ins:
            m.d.comb += i.ready.eq(valid & ready)
        with m.If(valid & ready):
            with m.If(i_idx == self._n - 1):
                m.d.sync += [i_idx.eq(0), sink.eq(0)]
            with m.Else():
                m.d.sync += i_idx.eq(i_idx + 1)
                stops = [stop for _, stop in self._sinks[:-1]]
                with m.If(Cat(*[i_idx + 1 == stop for stop in stops]).any() if stops else 0):
                    m.d.sync += sink.eq(sink + 1)
        return m
