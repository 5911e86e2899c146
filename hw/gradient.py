"""WG engine: event-driven weight-gradient accumulation (docs/arithmetic.md section 5.1).

For ``t = T-1 .. 0``, as soon as the BP engine has written ``delta[t]`` (its ``ready`` has
reached ``t``), the engine walks the active input spikes ``i`` of timestep ``t`` and, per
*nonzero* neuron group ``g`` of ``t`` (the BP engine's list, memory ``nonzero``), adds
``delta[t][gP .. gP+P-1]`` to the accumulators ``G[gP .. gP+P-1][i]`` (adds only, saturating to
``acc_bits`` at every add, in exactly the golden model's order). A skipped group's delta is 0:
``sat(acc + 0) = acc`` for an accumulator already in range, so skipping it changes nothing. It
runs while the BP engine computes ``e_prev[t]`` and ``delta[t-1]``.

Each token reads its event and its list word (which group) together; the delta and the
accumulator are read once both are known, so the pipeline is as deep as without the list.

Cycles for ``a_t`` active inputs and ``K[t]`` nonzero groups, when it never waits for the BP
engine::

    wg cycles = 1 + sum_t ( WG_TIMESTEP_OVERHEAD + a_t * K[t] ) + [sum_t a_t K[t] > 0] * WG_DRAIN

plus the cycles spent waiting for ``delta[t]``; :func:`wg_schedule` models both engines'
schedule exactly. There is no drain between timesteps and no wait state when ``delta[t-1]`` is
already there: the last token of ``t`` checks BP's ``ready`` and the header of ``t - 1`` is read
in the next cycle, so the next timestep's first token reads its accumulator
``WG_TIMESTEP_OVERHEAD + READ_LATENCY + 1`` cycles after the last token of the one before, one
cycle after that token's write (``WG_DEPTH`` cycles after it); each token carries its own
timestep's delta address. Only the last timestep drains, so that every accumulator is written
before ``busy`` drops.
"""

from __future__ import annotations

from collections.abc import Sequence

from amaranth.hdl import Module, Mux, Signal, signed
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

__all__ = [
    "WG_DRAIN",
    "WG_TIMESTEP_OVERHEAD",
    "GradientEngine",
    "gradient_cycles",
    "wg_schedule",
]

WG_DEPTH = 2 * READ_LATENCY + 2
"""Cycles from a token to its accumulator write."""
WG_DRAIN = WG_DEPTH + 1
WG_TIMESTEP_OVERHEAD = 1 + READ_LATENCY
"""Event header and ``K[t]`` fetch (READ_LATENCY) and latch; the first timestep, and one whose
``delta`` is not there when the one before ends, spends one more cycle (at least) waiting."""


def wg_schedule(first: int, visible: Sequence[int], tokens: Sequence[int]) -> int:
    """The cycle after the WG engine's last busy cycle: it waits from cycle ``first`` (the
    cycle after its start); ``visible[j]`` is the first cycle BP's ``ready`` lets it take the
    ``j``-th timestep it works on (``t = T-1-j``), ``tokens[j]`` that timestep's ``a_t K[t]``.

    The first timestep's header is read the cycle after its ``WAIT`` sees ``delta`` there; a
    later one's in the cycle after the previous timestep's last token (or empty header) when
    ``delta`` was there in that cycle, else the cycle after a ``WAIT`` that sees it. Tokens
    follow ``READ_LATENCY + 1`` cycles after the header; after the last timestep the pipeline
    drains (nothing when no token issued)."""
    cur = first
    for j, (vis, n) in enumerate(zip(visible, tokens, strict=True)):
        head = cur if j and cur - 1 >= vis else max(cur, vis) + 1
        cur = head + WG_TIMESTEP_OVERHEAD + n
    return cur + (WG_DRAIN if any(tokens) else 0)


def gradient_cycles(p: CoreParams, active: Sequence[int], nonzero: Sequence[int]) -> int:
    """Busy cycles of the WG engine in a BACKWARD, waiting for the BP engine included.

    Both engines start together. BP's timestep ``t`` begins ``1 +`` the BP cycles of the
    timesteps ``T-1 .. t+1`` after the start and makes ``delta[t]`` visible ``G +
    BP_DELTA_DRAIN`` cycles later; WG follows :func:`wg_schedule` with ``a_t * K[t]`` tokens per
    timestep. ``nonzero[t] = K[t]`` (:func:`~spikeforge.hw.backward.nonzero_groups`).
    """
    from spikeforge.hw.backward import BP_DELTA_DRAIN, _checked_groups, bp_timestep_cycles

    ks = _checked_groups(p, nonzero)
    visible = []
    begin = 1  # BP's timestep t begins here
    for t in reversed(range(p.timesteps)):
        visible.append(begin + p.groups + BP_DELTA_DRAIN)
        begin += bp_timestep_cycles(p, ks[t])
    tokens = [active[t] * ks[t] for t in reversed(range(p.timesteps))]
    return wg_schedule(1, visible, tokens) - 1


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
                **read_port_members("nz", mem["nonzero"]),
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
        zbase = Signal(range(T * (G + 1) + 1))  # t * (G + 1): BP's nonzero list of t
        kk = Signal(range(G + 1))  # position in the list
        nzk = Signal(range(G + 1))  # K[t]
        k = Signal(range(n_in + 1))
        ev_ptr = Signal(pb + 1)
        count = Signal(cnt_w + 1)
        drain = Signal(range(WG_DRAIN + 1))
        issue = Signal()
        issued = Signal()  # a token has issued in this BACKWARD
        head = Signal()

        m.d.comb += [
            self.hdr_raddr.eq(t),
            self.ev_raddr.eq(ev_ptr),
            # A token reads its list word; HEAD reads K[t] beside the header.
            self.nz_raddr.eq(zbase + Mux(issue, kk, G)),
            self.ev_ren.eq(issue),  # live reads: an issue's event and list word, K[t]
            self.nz_ren.eq(issue | head),
        ]

        def end_timestep():
            # No drain between timesteps: a token's delta address and accumulator address
            # travel with it, and the next timestep's first accumulator read comes at least
            # WG_TIMESTEP_OVERHEAD + RL + 1 cycles after the last token, after its write
            # (WG_DEPTH cycles after it). After the last timestep, the writes in flight land
            # before busy drops (the update reads the accumulators next).
            with m.If(t == 0):
                with m.If(issued | issue):
                    m.d.sync += drain.eq(WG_DRAIN - 1)
                    m.next = "DRAIN"
                with m.Else():
                    m.d.sync += self.busy.eq(0)
                    m.next = "IDLE"
            with m.Else():
                m.d.sync += [t.eq(t - 1), tbase.eq(tbase - G), zbase.eq(zbase - (G + 1))]
                with m.If(self.ready < t):  # delta[t-1] is there: its header next cycle
                    m.next = "HEAD"
                with m.Else():
                    m.next = "WAIT"

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [
                        self.busy.eq(1),
                        issued.eq(0),
                        t.eq(T - 1),
                        tbase.eq((T - 1) * G),
                        zbase.eq((T - 1) * (G + 1)),
                    ]
                    m.next = "WAIT"
            with m.State("WAIT"):
                with m.If(self.ready <= t):
                    m.next = "HEAD"
            for wait in range(READ_LATENCY):  # address out; its data READ_LATENCY later
                with m.State(f"HEAD{wait}" if wait else "HEAD"):
                    if wait == 0:
                        m.d.comb += [self.hdr_ren.eq(1), head.eq(1)]  # what HEAD_LATCH takes
                    m.next = f"HEAD{wait + 1}" if wait + 1 < READ_LATENCY else "HEAD_LATCH"
            with m.State("HEAD_LATCH"):
                m.d.sync += [
                    ev_ptr.eq(self.hdr_rdata[:pb]),
                    count.eq(self.hdr_rdata[pb:]),
                    nzk.eq(self.nz_rdata),
                    k.eq(0),
                    kk.eq(0),
                ]
                with m.If((self.hdr_rdata[pb:] == 0) | (self.nz_rdata == 0)):
                    end_timestep()
                with m.Else():
                    m.next = "ISSUE"
            with m.State("ISSUE"):
                m.d.comb += issue.eq(1)
                m.d.sync += issued.eq(1)
                with m.If(kk == nzk - 1):
                    m.d.sync += [kk.eq(0), k.eq(k + 1), ev_ptr.eq(ev_ptr + 1)]
                    with m.If(k == count - 1):
                        end_timestep()
                with m.Else():
                    m.d.sync += kk.eq(kk + 1)
            with m.State("DRAIN"):  # after the last timestep only: the last writes land
                m.d.sync += drain.eq(drain - 1)
                with m.If(drain == 0):
                    m.d.sync += self.busy.eq(0)
                    m.next = "IDLE"

        valid = delay_line(m, issue, WG_DEPTH, "wv")
        RL = READ_LATENCY
        # RL: event index and group arrive; RL+1: delta and accumulator addresses; 2RL+1:
        # delta and accumulators arrive; 2RL+2: the saturated sums are written back.
        grp = self.nz_rdata[: max(1, (G - 1).bit_length())]
        i_ev = Signal(index_range(n_in), name="wi")
        gbase = Signal(range(G * n_in + 1), name="wgb")
        d_addr = Signal(range(T * G + 1), name="wdaddr")
        tbases = delay_line(m, tbase, RL, "wtb")  # t * G of the token's own timestep
        m.d.sync += [i_ev.eq(self.ev_rdata), gbase.eq(grp * n_in), d_addr.eq(tbases[RL] + grp)]
        addr = Signal.like(self.gr_raddr, name="waddr")
        m.d.comb += [
            addr.eq(gbase + i_ev),
            self.gr_raddr.eq(addr),
            self.gr_ren.eq(valid[RL + 1]),  # the accumulator an issue adds to
            self.d_raddr.eq(d_addr),
            self.d_ren.eq(valid[RL + 1]),  # and its delta
        ]
        addrs = delay_line(m, addr, RL + 1, "waddr")
        for q in range(P):
            acc = Signal(signed(ab_), name=f"wacc_{q}")
            d_b = lane(self.d_rdata, q, gb)
            m.d.sync += acc.eq(sat(lane(self.gr_rdata, q, ab_) + d_b, ab_))
            m.d.comb += self.gr_wdata[q * ab_ : (q + 1) * ab_].eq(acc)
        m.d.comb += [self.gr_wen.eq(valid[WG_DEPTH]), self.gr_waddr.eq(addrs[-1])]
        return m
