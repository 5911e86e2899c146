"""The value walker: the memory address and lane of every value of a quantity, in wire order.

A quantity is ``outer x inner`` values, row-major (:data:`~spikeforge.hw.protocol.QUANTITIES`).
A neuron index ``j`` splits into group ``j // P`` -- part of the word address -- and lane
``j % P``; any other index adds ``index * stride`` to the address. A READ walks the rows its
argument names (all by default); a WRITE commit walks the rows of its packet, from the packet's
first row.

Timing: ``setup`` (one cycle) loads the quantity's layout; the walker is ``ready`` the next cycle
when the first row is 0, else after one cycle per skipped row. Each ``step`` moves to the next
value in the next cycle; ``last`` marks the final value of the walk.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from spikeforge.hw.datapath import index_range
from spikeforge.hw.params import CoreParams
from spikeforge.hw.protocol import CoreRules, Quantity

__all__ = ["ValueWalker", "quantity_layout"]


def quantity_layout(p: CoreParams, q: Quantity) -> tuple[int, bool, int, int, bool, int]:
    """``(n_outer, outer_is_neuron, outer_stride, n_inner, inner_is_neuron, inner_stride)``.

    A neuron index ``j`` adds ``(j // P) * stride`` to the word address and selects lane
    ``j % P``; any other index adds ``index * stride``.
    """
    T, n_in, n_out, G = p.timesteps, p.n_in, p.n_out, p.groups
    if q in (Quantity.WEIGHTS, Quantity.GRADS):
        return n_out, True, n_in, n_in, False, 1
    if q in (Quantity.MEMBRANES, Quantity.SPIKES, Quantity.DELTAS, Quantity.ERRORS):
        return T, False, G, n_out, True, 1
    if q == Quantity.EPREV:
        return T, False, n_in, n_in, False, 1
    return n_out, True, 1, 1, False, 0  # LFSR, COUNTS


class ValueWalker(wiring.Component):
    """Addresses and lanes of one quantity's values.

    Ports
    -----
    setup : In(1)
        Load quantity ``q`` and start at row ``row``; the walk ends after ``rows`` rows
        (0: at the quantity's last row; never past it).
    step : In(1)
        Move to the next value.
    ready, addr, lane, last : Out
        The walk is at a value (after the skipped rows); its word address and lane; it is the
        walk's last value.
    """

    def __init__(self, params: CoreParams):
        self._p = p = CoreParams.checked(params)
        self._rules = CoreRules.of(p)
        specs = [s for s in p.memories if s.owner == "core"]
        big = max(p.n_out, p.n_in, p.timesteps) + 1
        super().__init__(
            {
                "setup": In(1),
                "q": In(Quantity),
                "row": In(range(big)),
                "rows": In(range(big)),
                "step": In(1),
                "ready": Out(1),
                "addr": Out(max(s.addr_bits for s in specs)),
                "lane": Out(index_range(p.lanes)),
                "last": Out(1),
            }
        )

    def elaborate(self, platform):
        m = Module()
        p, rules = self._p, self._rules
        P = p.lanes
        big = max(p.n_out, p.n_in, p.timesteps) + 1
        n_o, n_i = Signal(range(big)), Signal(range(big))
        n_rows, walked = Signal(range(big)), Signal(range(big))  # rows to walk (0: all), done
        s_o, s_i = Signal(range(max(p.n_in, p.groups) + 1)), Signal(range(2))
        o_j, i_j = Signal(), Signal()
        oc, ic, row0 = Signal(range(big)), Signal(range(big)), Signal(range(big))
        op_, ip_ = Signal(index_range(P)), Signal(index_range(P))
        obase, ibase = Signal.like(self.addr), Signal.like(self.addr)
        seeking = Signal()
        m.d.comb += [
            self.addr.eq(obase + ibase),
            self.lane.eq(Mux(o_j, op_, Mux(i_j, ip_, 0))),
            self.ready.eq(~seeking),
            self.last.eq(
                (ic == n_i - 1) & ((oc == n_o - 1) | ((n_rows != 0) & (walked == n_rows - 1)))
            ),
        ]

        def next_row():
            m.d.sync += [ic.eq(0), ip_.eq(0), ibase.eq(0), oc.eq(oc + 1)]
            with m.If(~o_j | (op_ == P - 1)):
                m.d.sync += [op_.eq(0), obase.eq(obase + s_o)]
            with m.Else():
                m.d.sync += op_.eq(op_ + 1)

        with m.If(self.setup):
            with m.Switch(self.q):
                for q in rules.shapes:
                    n_outer, outer_j, outer_s, n_inner, inner_j, inner_s = quantity_layout(p, q)
                    with m.Case(q):
                        m.d.sync += [
                            n_o.eq(n_outer),
                            o_j.eq(outer_j),
                            s_o.eq(outer_s),
                            n_i.eq(n_inner),
                            i_j.eq(inner_j),
                            s_i.eq(inner_s),
                        ]
            m.d.sync += [oc.eq(0), ic.eq(0), op_.eq(0), ip_.eq(0), obase.eq(0), ibase.eq(0)]
            m.d.sync += [row0.eq(self.row), seeking.eq(self.row != 0)]
            m.d.sync += [n_rows.eq(self.rows), walked.eq(0)]
        with m.Elif(seeking):
            next_row()
            with m.If(oc + 1 == row0):
                m.d.sync += seeking.eq(0)
        with m.Elif(self.step):
            with m.If(ic == n_i - 1):
                next_row()
                m.d.sync += walked.eq(walked + 1)
            with m.Else():
                m.d.sync += ic.eq(ic + 1)
                with m.If(~i_j | (ip_ == P - 1)):
                    m.d.sync += [ip_.eq(0), ibase.eq(ibase + s_i)]
                with m.Else():
                    m.d.sync += ip_.eq(ip_ + 1)
        return m
