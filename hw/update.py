"""Update engine: ``Wm = sat(Wm - R(G))`` and ``G = 0`` (docs/arithmetic.md section 5.2).

Per neuron group ``g`` the engine loads the ``P`` row LFSRs of rows ``gP .. gP+P-1`` into the
lanes, walks ``i = 0 .. n_in-1`` (so every row draws in the golden model's order), and per
weight word computes, in five pipelined stages::

    stochastic: dW = (G + draw(R_j, U)) >> U      nearest: dW = (G + 2**(U-1)) >> U
    Wm = sat_(w_bits + frac_bits)(Wm - dW)        G = 0

``U = L - frac_bits`` comes from the runtime ``L`` register (``u_sel`` indexes the allowed
values). The LFSRs step ``U`` times per weight through one unrolled XOR network per allowed
``U`` and are written back after the group.

Cycles::

    update cycles = G * (n_in + 2 + READ_LATENCY) + UPDATE_DRAIN

**Fused gradients** (:attr:`~spikeforge.hw.params.CoreParams.fused_grads`): there is no gradient
memory; the engine forms ``G[j][i]`` itself. First it builds the input mask (memory ``mask``,
word ``i`` = the bits ``x[t][i]``) from the event memory the FORWARD read: it clears the ``n_in``
words, then per timestep reads the event header and sets bit ``t`` of every active input's word
(read, OR, write; a word written while its read was in flight is forwarded, a read that meets
a write of its address is not used). The mask comes from the events, not from the event loaders
or the spike link: one place builds it, whatever filled the events, and ABORT cannot leave it
half written for a later update. Then per group it loads ``delta[0 .. T-1]`` of the group (``T``
reads) into registers and, per input ``i``, runs the mask word through a chain of ``T``
saturating adders per lane, one per stage::

    G = 0;  for t = T-1 .. 0:  G = sat_Ba(G + (x[t][i] ? delta[t][j] : 0))

exactly the golden accumulation of one sample (docs/arithmetic.md section 5.1), one weight word
per cycle. The weight is read ``T`` cycles after its mask word, when its ``G`` leaves the
chain, and the update proceeds as above. Cycles, for ``a_t`` active inputs per timestep::

    fused update cycles = n_in + T * (READ_LATENCY + 1) + sum_t a_t + SET_DRAIN
                          + G * (n_in + 2T + READ_LATENCY + 1) + UPDATE_DRAIN
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
from spikeforge.hw.lfsr_jump import lfsr_jump
from spikeforge.hw.params import CoreParams

__all__ = ["SET_DRAIN", "UPDATE_DRAIN", "UpdateEngine", "update_cycles", "update_formula"]

UPDATE_DEPTH = READ_LATENCY + 4
UPDATE_DRAIN = UPDATE_DEPTH + 1
SET_DRAIN = 2 * READ_LATENCY + 1
"""Fused gradients: cycles after the last mask token, so its write is done before the walk."""


def update_cycles(p: CoreParams, active: Sequence[int] | None = None) -> int:
    """Busy cycles of one update. A fused core (:attr:`CoreParams.fused_grads`) also builds its
    input mask from the sample's ``active[t]`` input spikes (default: every input, the most)."""
    if not p.fused_grads:
        return p.groups * (p.n_in + 2 + READ_LATENCY) + UPDATE_DRAIN
    T = p.timesteps
    if active is None:
        active = [p.n_in] * T
    if len(active) != T:
        raise ValueError(f"active must have {T} entries (one per timestep), not {len(active)}")
    build = p.n_in + T * (READ_LATENCY + 1) + sum(active) + SET_DRAIN
    return build + p.groups * (p.n_in + 2 * T + READ_LATENCY + 1) + UPDATE_DRAIN


def update_formula(p: CoreParams) -> str:
    """The update's cycle formula as the manifest states it."""
    if not p.fused_grads:
        return f"G*(n_in + {2 + READ_LATENCY}) + {UPDATE_DRAIN}"
    return (
        f"n_in + T*{READ_LATENCY + 1} + sum_t a_t + {SET_DRAIN} "
        f"+ G*(n_in + 2T + {READ_LATENCY + 1}) + {UPDATE_DRAIN}"
    )


class UpdateEngine(wiring.Component):
    """The update engine; ``u_sel = U - u_min`` selects the update shift in force."""

    def __init__(self, params: CoreParams):
        self._p = p = CoreParams.checked(params)
        mem = p.memory_map
        if p.fused_grads:
            grads = {
                **read_port_members("d", mem["deltas"]),
                **read_port_members("hdr", mem["event_heads"]),
                **read_port_members("ev", mem["events"]),
                **read_port_members("mk", mem["mask"]),
                **write_port_members("mk", mem["mask"]),
            }
        else:
            grads = {
                **read_port_members("gr", mem["grads"]),
                "gr_waddr": Out(mem["grads"].addr_bits),
                "gr_wen": Out(1),
            }
        super().__init__(
            {
                "start": In(1),
                "busy": Out(1),
                "u_sel": In(index_range(p.lr_range)),
                **read_port_members("w", mem["weights"]),
                **write_port_members("w", mem["weights"]),
                **grads,
                **read_port_members("lf", mem["lfsr"]),
                **write_port_members("lf", mem["lfsr"]),
            }
        )

    def elaborate(self, platform):
        m = Module()
        p = self._p
        net = p.net
        P, G, n_in, T = p.lanes, p.groups, p.n_in, p.timesteps
        mb, ab_ = net.master_bits, net.acc_bits
        shifts = list(range(p.u_min, p.u_max + 1))
        stochastic = net.rounding == "stochastic"
        fused = p.fused_grads
        RL = READ_LATENCY

        g = Signal(range(G + 1))
        gbase = Signal(range(G * n_in + 1))
        i = Signal(range(n_in + 1))
        drain = Signal(range(max(UPDATE_DRAIN, SET_DRAIN) + 1))
        issue = Signal()
        states = [Signal(32, name=f"lfsr_{q}") for q in range(P)]
        latch = Signal()  # the LFSR states of the group arrive

        if fused:
            # The weight of a mask word is read T cycles later, as its G leaves the chain.
            w_issue = delay_line(m, issue, T, "uwi")[-1]
            w_addr = delay_line(m, gbase + i, T, "uwa")[-1]
        else:
            w_issue, w_addr = issue, gbase + i
            m.d.comb += [self.gr_raddr.eq(gbase + i), self.gr_ren.eq(issue)]
        m.d.comb += [
            self.w_raddr.eq(w_addr),
            self.lf_raddr.eq(g),
            self.lf_waddr.eq(g),
            self.w_ren.eq(w_issue),  # live reads: an issue's weight (and gradient)
        ]
        for q in range(P):
            m.d.comb += self.lf_wdata[q * 32 : (q + 1) * 32].eq(states[q])
        with m.If(latch):
            for q in range(P):
                m.d.sync += states[q].eq(lane(self.lf_rdata, q, 32, is_signed=False))

        def writeback():
            with m.State("WRITEBACK"):
                m.d.comb += self.lf_wen.eq(1)
                m.d.sync += [g.eq(g + 1), gbase.eq(gbase + n_in)]
                with m.If(g == G - 1):
                    m.d.sync += drain.eq(UPDATE_DRAIN - 1)
                    m.next = "DRAIN"
                with m.Else():
                    m.next = "LOAD"
            with m.State("DRAIN"):
                m.d.sync += drain.eq(drain - 1)
                with m.If(drain == 0):
                    m.d.sync += self.busy.eq(0)
                    m.next = "IDLE"

        if not fused:
            m.d.comb += latch.eq(0)
            with m.FSM():
                with m.State("IDLE"):
                    with m.If(self.start):
                        m.d.sync += [self.busy.eq(1), g.eq(0), gbase.eq(0)]
                        m.next = "LOAD"
                for wait in range(RL):  # address out; its data READ_LATENCY later
                    with m.State(f"LOAD{wait}" if wait else "LOAD"):
                        if wait == 0:
                            m.d.comb += self.lf_ren.eq(1)  # the LFSR states LOAD_LATCH takes
                        m.next = f"LOAD{wait + 1}" if wait + 1 < RL else "LOAD_LATCH"
                with m.State("LOAD_LATCH"):
                    m.d.comb += latch.eq(1)
                    m.d.sync += i.eq(0)
                    m.next = "ISSUE"
                with m.State("ISSUE"):
                    m.d.comb += issue.eq(1)
                    m.d.sync += i.eq(i + 1)
                    with m.If(i == n_in - 1):
                        m.next = "WRITEBACK"
                writeback()
            gqs = [lane(self.gr_rdata, q, ab_) for q in range(P)]
        else:
            gqs = self._fused(m, g, gbase, i, issue, latch, drain, writeback)

        valid = delay_line(m, w_issue, UPDATE_DEPTH, "uv")
        addrs = delay_line(m, w_addr, UPDATE_DEPTH, "uaddr")
        u_sel = self.u_sel
        rbits = max(1, p.u_max)
        sum_bits = max(ab_, rbits + 1) + 1  # G + r (or + 2**(U-1)) exactly
        for q in range(P):
            # c0: draw r = step^U(R) & (2**U - 1) for this weight.
            if stochastic:
                r1 = Signal(rbits, name=f"ur1_{q}")
                nxt = lfsr_jump(m, states[q], u_sel, shifts)
                with m.If(w_issue):
                    m.d.sync += states[q].eq(nxt)
                with m.Switch(u_sel):
                    for index, u in enumerate(shifts):
                        with m.Case(index):
                            m.d.sync += r1.eq(nxt[:u] if u else 0)
                r1 = delay_line(m, r1, RL - 1, f"ur{q}")[-1]  # align with the data
            # RL: data and r valid; RL+1: sum; RL+2: shift; RL+3: subtract; RL+4: saturate.
            w2 = Signal(signed(mb), name=f"uw2_{q}")
            s2 = Signal(signed(sum_bits), name=f"us2_{q}")
            gq = gqs[q]
            m.d.sync += w2.eq(lane(self.w_rdata, q, mb))
            with m.Switch(u_sel):
                for index, u in enumerate(shifts):
                    with m.Case(index):
                        if stochastic:
                            m.d.sync += s2.eq(gq + r1)
                        else:
                            m.d.sync += s2.eq(gq + ((1 << (u - 1)) if u else 0))
            d3 = Signal(signed(sum_bits), name=f"ud3_{q}")
            with m.Switch(u_sel):
                for index, u in enumerate(shifts):
                    with m.Case(index):
                        m.d.sync += d3.eq(s2 >> u)
            w3 = Signal(signed(mb), name=f"uw3_{q}")
            m.d.sync += w3.eq(w2)
            n4 = Signal(signed(max(mb, sum_bits) + 1), name=f"un4_{q}")
            m.d.sync += n4.eq(w3 - d3)
            n5 = Signal(signed(mb), name=f"un5_{q}")
            m.d.sync += n5.eq(sat(n4, mb))
            m.d.comb += self.w_wdata[q * mb : (q + 1) * mb].eq(n5)
        m.d.comb += [
            self.w_wen.eq(valid[UPDATE_DEPTH]),
            self.w_waddr.eq(addrs[UPDATE_DEPTH]),
        ]
        if not fused:
            m.d.comb += [
                self.gr_wen.eq(valid[UPDATE_DEPTH]),
                self.gr_waddr.eq(addrs[UPDATE_DEPTH]),
            ]
        return m

    def _fused(self, m, g, gbase, i, issue, latch, drain, writeback) -> list:
        """The fused-gradient FSM (mask build, delta load, walk) and the adder chain; returns
        each lane's ``G`` as it leaves the chain (aligned with the weight's read data)."""
        p = self._p
        net = p.net
        P, G, n_in, T = p.lanes, p.groups, p.n_in, p.timesteps
        gb, ab_ = net.g_bits, net.acc_bits
        RL = READ_LATENCY
        pb = p.event_ptr_bits

        t = Signal(index_range(T))
        ev_ptr = Signal(pb + 1)
        count = Signal(max(1, n_in.bit_length()) + 1)
        k = Signal.like(count)
        dl = Signal(index_range(T))
        daddr = Signal(range(T * G + 1))
        wait = Signal(range(max(RL, T) + 1))
        set_issue = Signal()
        m.d.comb += [
            self.hdr_raddr.eq(t),
            self.ev_raddr.eq(ev_ptr),
            self.ev_ren.eq(set_issue),
            self.d_raddr.eq(daddr),
        ]

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [self.busy.eq(1), g.eq(0), gbase.eq(0), i.eq(0), t.eq(0)]
                    m.next = "CLEAR"
            with m.State("CLEAR"):  # mask = 0
                m.d.comb += [self.mk_wen.eq(1), self.mk_waddr.eq(i), self.mk_wdata.eq(0)]
                m.d.sync += i.eq(i + 1)
                with m.If(i == n_in - 1):
                    m.next = "HEAD"

            def next_timestep():
                with m.If(t == T - 1):
                    m.d.sync += drain.eq(SET_DRAIN - 1)
                    m.next = "SET_DRAIN"
                with m.Else():
                    m.d.sync += t.eq(t + 1)
                    m.next = "HEAD"

            for n in range(RL):  # the event header of t
                with m.State(f"HEAD{n}" if n else "HEAD"):
                    if n == 0:
                        m.d.comb += self.hdr_ren.eq(1)
                    m.next = f"HEAD{n + 1}" if n + 1 < RL else "HEAD_LATCH"
            with m.State("HEAD_LATCH"):
                m.d.sync += [
                    ev_ptr.eq(self.hdr_rdata[:pb]),
                    count.eq(self.hdr_rdata[pb:]),
                    k.eq(0),
                ]
                with m.If(self.hdr_rdata[pb:] == 0):
                    next_timestep()
                with m.Else():
                    m.next = "SET"
            with m.State("SET"):  # one event per cycle: set bit t of its mask word
                m.d.comb += set_issue.eq(1)
                m.d.sync += [ev_ptr.eq(ev_ptr + 1), k.eq(k + 1)]
                with m.If(k == count - 1):
                    next_timestep()
            with m.State("SET_DRAIN"):
                m.d.sync += drain.eq(drain - 1)
                with m.If(drain == 0):
                    m.d.sync += [dl.eq(0), daddr.eq(0)]
                    m.next = "LOAD"
            with m.State("LOAD"):  # delta[t] of group g, t = 0 .. T-1; the LFSR states
                m.d.comb += [self.d_ren.eq(1), self.lf_ren.eq(dl == 0)]
                m.d.sync += [dl.eq(dl + 1), daddr.eq(daddr + G)]
                with m.If(dl == T - 1):
                    m.d.sync += wait.eq(RL - 1)
                    m.next = "LOAD_WAIT"
            with m.State("LOAD_WAIT"):
                m.d.sync += wait.eq(wait - 1)
                with m.If(wait == 0):
                    m.d.sync += i.eq(0)
                    m.next = "ISSUE"
            with m.State("ISSUE"):
                m.d.comb += issue.eq(1)
                m.d.sync += i.eq(i + 1)
                with m.If(i == n_in - 1):
                    m.d.sync += wait.eq(T - 1)
                    m.next = "FLUSH"
            with m.State("FLUSH"):  # the group's last weights leave the chain
                m.d.sync += wait.eq(wait - 1)
                with m.If(wait == 0):
                    m.d.sync += [dl.eq(0), daddr.eq(g + 1)]
                    m.next = "WRITEBACK"
            writeback()

        m.d.comb += latch.eq(delay_line(m, self.lf_ren, RL, "ulf")[-1])

        # -- mask build: read, OR bit t, write; forward what is in flight --------------------
        sv = delay_line(m, set_issue, 2 * RL, "msv")
        st = delay_line(m, t, 2 * RL, "mst")
        at_rl = sv[RL]  # the event's index arrives: read its mask word
        ev_i = self.ev_rdata
        hit = Signal()  # the read would meet a write of its address: do not use it
        m.d.comb += hit.eq(self.mk_wen & (self.mk_waddr == ev_i))
        m.d.comb += [
            self.mk_raddr.eq(Mux(at_rl, ev_i, i)),
            self.mk_ren.eq(Mux(at_rl, ~hit, issue)),
        ]
        used = delay_line(m, at_rl & ~hit, RL, "mused")[-1]
        w_i = delay_line(m, ev_i, RL, "mi")[-1]
        hist_en = delay_line(m, self.mk_wen & sv[2 * RL], RL + 1, "mhe")
        hist_a = delay_line(m, self.mk_waddr, RL + 1, "mha")
        hist_d = delay_line(m, self.mk_wdata, RL + 1, "mhd")
        word = Mux(used, self.mk_rdata, 0) | (1 << st[2 * RL])[:T]
        for n in range(1, RL + 2):
            word = word | Mux(hist_en[n] & (hist_a[n] == w_i), hist_d[n], 0)
        with m.If(sv[2 * RL]):
            m.d.comb += [self.mk_wen.eq(1), self.mk_waddr.eq(w_i), self.mk_wdata.eq(word)]

        # -- the group's deltas: shifted in as they arrive (t = 0 first) -------------------
        deltas = [Signal(P * gb, name=f"ud_{n}") for n in range(T)]
        with m.If(delay_line(m, self.d_ren, RL, "udr")[-1]):
            m.d.sync += deltas[T - 1].eq(self.d_rdata)
            for n in range(T - 1):
                m.d.sync += deltas[n].eq(deltas[n + 1])

        # -- the chain: stage s adds timestep T - s ----------------------------------------
        x = self.mk_rdata
        accs = [None] * P
        for s in range(1, T + 1):
            tt = T - s
            for q in range(P):
                d_q = lane(deltas[tt], q, gb)
                add = Mux(x[tt], d_q, 0)
                acc = Signal(signed(ab_), name=f"uacc{s}_{q}")
                m.d.sync += acc.eq(add if accs[q] is None else sat(accs[q] + add, ab_))
                accs[q] = acc
            if s < T:
                x_next = Signal(T, name=f"umask{s}")
                m.d.sync += x_next.eq(x)
                x = x_next
        return accs
