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
from spikeforge.hw.lfsr_jump import lfsr_jump
from spikeforge.hw.params import CoreParams

__all__ = ["UPDATE_DRAIN", "UpdateEngine", "update_cycles"]

UPDATE_DEPTH = READ_LATENCY + 4
UPDATE_DRAIN = UPDATE_DEPTH + 1


def update_cycles(p: CoreParams) -> int:
    return p.groups * (p.n_in + 2 + READ_LATENCY) + UPDATE_DRAIN


class UpdateEngine(wiring.Component):
    """The update engine; ``u_sel = U - u_min`` selects the update shift in force."""

    def __init__(self, params: CoreParams):
        self._p = p = CoreParams.checked(params)
        mem = p.memory_map

        super().__init__(
            {
                "start": In(1),
                "busy": Out(1),
                "u_sel": In(index_range(p.lr_range)),
                **read_port_members("w", mem["weights"]),
                **write_port_members("w", mem["weights"]),
                **read_port_members("gr", mem["grads"]),
                "gr_waddr": Out(mem["grads"].addr_bits),
                "gr_wen": Out(1),
                **read_port_members("lf", mem["lfsr"]),
                **write_port_members("lf", mem["lfsr"]),
            }
        )

    def elaborate(self, platform):
        m = Module()
        p = self._p
        net = p.net
        P, G, n_in = p.lanes, p.groups, p.n_in
        mb, ab_ = net.master_bits, net.acc_bits
        shifts = list(range(p.u_min, p.u_max + 1))
        stochastic = net.rounding == "stochastic"

        g = Signal(range(G + 1))
        gbase = Signal(range(G * n_in + 1))
        i = Signal(range(n_in + 1))
        drain = Signal(range(UPDATE_DRAIN + 1))
        issue = Signal()
        states = [Signal(32, name=f"lfsr_{q}") for q in range(P)]

        m.d.comb += [
            self.w_raddr.eq(gbase + i),
            self.gr_raddr.eq(gbase + i),
            self.lf_raddr.eq(g),
            self.lf_waddr.eq(g),
            self.w_ren.eq(issue),  # live reads: an issue's weight and gradient
            self.gr_ren.eq(issue),
        ]
        for q in range(P):
            m.d.comb += self.lf_wdata[q * 32 : (q + 1) * 32].eq(states[q])

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [self.busy.eq(1), g.eq(0), gbase.eq(0)]
                    m.next = "LOAD"
            for wait in range(READ_LATENCY):  # address out; its data READ_LATENCY later
                with m.State(f"LOAD{wait}" if wait else "LOAD"):
                    if wait == 0:
                        m.d.comb += self.lf_ren.eq(1)  # the LFSR states LOAD_LATCH takes
                    m.next = f"LOAD{wait + 1}" if wait + 1 < READ_LATENCY else "LOAD_LATCH"
            with m.State("LOAD_LATCH"):
                for q in range(P):
                    m.d.sync += states[q].eq(lane(self.lf_rdata, q, 32, is_signed=False))
                m.d.sync += i.eq(0)
                m.next = "ISSUE"
            with m.State("ISSUE"):
                m.d.comb += issue.eq(1)
                m.d.sync += i.eq(i + 1)
                with m.If(i == n_in - 1):
                    m.next = "WRITEBACK"
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

        valid = delay_line(m, issue, UPDATE_DEPTH, "uv")
        addrs = delay_line(m, gbase + i, UPDATE_DEPTH, "uaddr")
        u_sel = self.u_sel
        rbits = max(1, p.u_max)
        sum_bits = max(ab_, rbits + 1) + 1  # G + r (or + 2**(U-1)) exactly
        for q in range(P):
            # c0: draw r = step^U(R) & (2**U - 1) for this weight.
            if stochastic:
                r1 = Signal(rbits, name=f"ur1_{q}")
                nxt = lfsr_jump(m, states[q], u_sel, shifts)
                with m.If(issue):
                    m.d.sync += states[q].eq(nxt)
                with m.Switch(u_sel):
                    for index, u in enumerate(shifts):
                        with m.Case(index):
                            m.d.sync += r1.eq(nxt[:u] if u else 0)
                r1 = delay_line(m, r1, READ_LATENCY - 1, f"ur{q}")[-1]  # align with the data
            # RL: data and r valid; RL+1: sum; RL+2: shift; RL+3: subtract; RL+4: saturate.
            w2 = Signal(signed(mb), name=f"uw2_{q}")
            s2 = Signal(signed(sum_bits), name=f"us2_{q}")
            gq = lane(self.gr_rdata, q, ab_)
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
            self.gr_wen.eq(valid[UPDATE_DEPTH]),
            self.gr_waddr.eq(addrs[UPDATE_DEPTH]),
        ]
        return m
