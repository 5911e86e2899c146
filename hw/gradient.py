"""WG engine: event-driven weight-gradient accumulation (docs/arithmetic.md section 5.1).

For ``t = T-1 .. 0``, as soon as the BP engine has written ``delta[t]`` (its ``ready`` has
reached ``t``), the engine walks the active input spikes ``i`` of timestep ``t`` and, per neuron
group ``g``, adds ``delta[t][gP .. gP+P-1]`` to the accumulators ``G[gP .. gP+P-1][i]``
(adds only, saturating to ``acc_bits`` at every add, in exactly the golden model's order).
It runs while the BP engine computes ``e_prev[t]`` and ``delta[t-1]``.

Cycles for ``a_t`` active inputs, when it never waits for the BP engine::

    wg cycles = sum_t ( WG_TIMESTEP_OVERHEAD + a_t * G + [a_t > 0] * WG_DRAIN )

plus the cycles spent waiting for ``delta[t]``; :func:`gradient_cycles` models both engines'
schedule exactly.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from spikeforge.hw.datapath import (
    READ_LATENCY,
    delay_line,
    index_range,
    lane,
    read_port_members,
    sat,
    write_port_members,
)
from spikeforge.hw.params import CoreParams

__all__ = ["WG_DRAIN", "WG_TIMESTEP_OVERHEAD", "GradientEngine", "gradient_cycles"]

WG_DEPTH = 2 * READ_LATENCY + 2
"""Cycles from a token to its accumulator write."""
WG_DRAIN = WG_DEPTH + 1
WG_TIMESTEP_OVERHEAD = 2 + READ_LATENCY
"""Wait-for-delta check, event header fetch (READ_LATENCY) and latch."""


def gradient_cycles(p: CoreParams, active: list[int]) -> int:
    """Busy cycles of the WG engine in a BACKWARD, waiting for the BP engine included.

    Both engines start together. BP's timestep ``k = T-1-t`` begins ``1 + k * bp_per_t`` cycles
    after the start and makes ``delta[t]`` visible ``G + BP_DELTA_DRAIN`` cycles later; WG
    spends at least one cycle in WAIT per timestep, then fetches the event header
    (``READ_LATENCY + 1``), issues ``a_t * G`` tokens and drains.
    """
    from spikeforge.hw.backward import BP_DELTA_DRAIN, bp_timestep_cycles

    per_t = bp_timestep_cycles(p)
    cur = 1
    for k, t in enumerate(reversed(range(p.timesteps))):
        visible = 1 + k * per_t + p.groups + BP_DELTA_DRAIN
        cur = max(cur, visible) + 1 + READ_LATENCY + 1
        a = active[t]
        cur += a * p.groups + (WG_DRAIN if a else 0)
    return cur - 1


class GradientEngine(wiring.Component):
    """The WG engine; ``ready`` comes from the BP engine (lowest timestep with deltas)."""

    def __init__(self, params: CoreParams):
        self._p = p = CoreParams.checked(params)
        mem = p.memory_map

        super().__init__(
            {
                "start": In(1),
                "busy": Out(1),
                "ready": In(range(p.timesteps + 1)),
                **read_port_members("hdr", mem["event_heads"]),
                **read_port_members("ev", mem["events"]),
                **read_port_members("d", mem["deltas"]),
                **read_port_members("gr", mem["grads"]),
                **write_port_members("gr", mem["grads"]),
            }
        )

    def elaborate(self, platform):
        m = Module()
        p = self._p
        net = p.net
        P, G, T, n_in = p.lanes, p.groups, p.timesteps, p.n_in
        gb, ab_ = net.g_bits, net.acc_bits
        pb = p.event_ptr_bits
        cnt_w = max(1, n_in.bit_length())

        t = Signal(index_range(T))
        tbase = Signal(range(T * G + 1))
        g = Signal(range(G + 1))
        gbase = Signal(range(G * n_in + 1))
        k = Signal(range(n_in + 1))
        ev_ptr = Signal(pb + 1)
        count = Signal(cnt_w + 1)
        drain = Signal(range(WG_DRAIN + 1))
        issue = Signal()

        m.d.comb += [
            self.hdr_raddr.eq(t),
            self.ev_raddr.eq(ev_ptr),
            self.d_raddr.eq(tbase + g),
            self.ev_ren.eq(issue),  # live reads: an issue's event and delta
            self.d_ren.eq(issue),
        ]

        def next_timestep():
            with m.If(t == 0):
                m.d.sync += self.busy.eq(0)
                m.next = "IDLE"
            with m.Else():
                m.d.sync += [t.eq(t - 1), tbase.eq(tbase - G)]
                m.next = "WAIT"

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [self.busy.eq(1), t.eq(T - 1), tbase.eq((T - 1) * G)]
                    m.next = "WAIT"
            with m.State("WAIT"):
                with m.If(self.ready <= t):
                    m.next = "HEAD"
            for wait in range(READ_LATENCY):  # address out; its data READ_LATENCY later
                with m.State(f"HEAD{wait}" if wait else "HEAD"):
                    if wait == 0:
                        m.d.comb += self.hdr_ren.eq(1)  # the header HEAD_LATCH takes
                    m.next = f"HEAD{wait + 1}" if wait + 1 < READ_LATENCY else "HEAD_LATCH"
            with m.State("HEAD_LATCH"):
                m.d.sync += [
                    ev_ptr.eq(self.hdr_rdata[:pb]),
                    count.eq(self.hdr_rdata[pb:]),
                    k.eq(0),
                    g.eq(0),
                    gbase.eq(0),
                ]
                with m.If(self.hdr_rdata[pb:] == 0):
                    next_timestep()
                with m.Else():
                    m.next = "ISSUE"
            with m.State("ISSUE"):
                m.d.comb += issue.eq(1)
                with m.If(g == G - 1):
                    m.d.sync += [g.eq(0), gbase.eq(0), k.eq(k + 1), ev_ptr.eq(ev_ptr + 1)]
                    with m.If(k == count - 1):
                        m.d.sync += drain.eq(WG_DRAIN - 1)
                        m.next = "DRAIN"
                with m.Else():
                    m.d.sync += [g.eq(g + 1), gbase.eq(gbase + n_in)]
            with m.State("DRAIN"):
                m.d.sync += drain.eq(drain - 1)
                with m.If(drain == 0):
                    next_timestep()

        valid = delay_line(m, issue, WG_DEPTH, "wv")
        RL = READ_LATENCY
        gbs = delay_line(m, gbase, RL + 1, "wgb")
        # RL: event index and deltas arrive; RL+1: accumulator address; 2RL+1: accumulators
        # arrive; 2RL+2: the saturated sums are written back.
        i_ev = Signal(index_range(n_in), name="wi")
        m.d.sync += i_ev.eq(self.ev_rdata)
        addr = Signal.like(self.gr_raddr, name="waddr")
        m.d.comb += [
            addr.eq(gbs[RL + 1] + i_ev),
            self.gr_raddr.eq(addr),
            self.gr_ren.eq(valid[RL + 1]),  # the accumulator an issue adds to
        ]
        addrs = delay_line(m, addr, RL + 1, "waddr")
        for q in range(P):
            d_a = Signal(signed(gb), name=f"wd_{q}")
            m.d.sync += d_a.eq(lane(self.d_rdata, q, gb))
            d_b = delay_line(m, d_a, RL, f"wd{q}")[-1]
            acc = Signal(signed(ab_), name=f"wacc_{q}")
            m.d.sync += acc.eq(sat(lane(self.gr_rdata, q, ab_) + d_b, ab_))
            m.d.comb += self.gr_wdata[q * ab_ : (q + 1) * ab_].eq(acc)
        m.d.comb += [self.gr_wen.eq(valid[WG_DEPTH]), self.gr_waddr.eq(addrs[-1])]
        return m
