"""FP engine: the event-driven forward pass of one core (docs/arithmetic.md section 3).

Per timestep ``t`` and neuron group ``g`` (``P`` neurons, one memory word), the engine issues
one *accumulate* token per active input spike ``i`` of ``t`` (the ``P`` lanes add the weights
``W[gP .. gP+P-1][i]``) and then one *integrate* token (the lanes form
``u[t] = sat(leak(u[t-1]) + I - theta s[t-1])`` or the zero-reset form, write ``u[t]`` to the
membrane history and add ``s[t] = [u[t] >= theta]`` to the spike counts).

Latency and cycles (``a_t`` active inputs at ``t``, ``G = n_out / P`` groups)::

    forward cycles = sum_t ( G * (a_t + 1) + FP_TIMESTEP_OVERHEAD )

``FP_TIMESTEP_OVERHEAD`` = 2 cycles to fetch the timestep's event header plus the
:data:`FP_DEPTH`-cycle pipeline drain before ``t + 1`` may read ``u[t]``. The lanes work on
``G * (a_t + 1)`` of those cycles.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from spikeforge.hw.datapath import addr_bits, lane, leak, sat
from spikeforge.hw.params import CoreParams

__all__ = ["FP_DEPTH", "FP_TIMESTEP_OVERHEAD", "ForwardEngine", "forward_cycles"]

FP_DEPTH = 7
"""Cycles from issuing a token to its membrane write, plus one."""

FP_TIMESTEP_OVERHEAD = 2 + FP_DEPTH


def forward_cycles(p: CoreParams, active: list[int]) -> int:
    """Cycles of one FORWARD for ``active[t]`` input spikes per timestep (engine start to done)."""
    return sum(p.groups * (a + 1) + FP_TIMESTEP_OVERHEAD for a in active)


class ForwardEngine(wiring.Component):
    """The FP engine; memories live in the core, the engine drives their ports.

    Ports: ``start`` (pulse) begins ``T`` timesteps; ``busy`` is high until the last membrane is
    written; ``lane_work`` marks the cycles on which a token enters the lanes.
    """

    def __init__(self, params: CoreParams):
        if not isinstance(params, CoreParams):
            raise TypeError(f"params must be a CoreParams, not {params!r}")
        self._p = p = params
        mem = {m.name: m for m in p.memories}

        def ab(name: str) -> int:
            return addr_bits(mem[name].depth)

        super().__init__(
            {
                "start": In(1),
                "busy": Out(1),
                "lane_work": Out(1),
                "hdr_addr": Out(ab("event_heads")),
                "hdr_data": In(mem["event_heads"].word_bits),
                "ev_addr": Out(ab("events")),
                "ev_data": In(mem["events"].word_bits),
                "w_addr": Out(ab("weights")),
                "w_data": In(mem["weights"].word_bits),
                "u_raddr": Out(ab("membranes")),
                "u_rdata": In(mem["membranes"].word_bits),
                "u_waddr": Out(ab("membranes")),
                "u_wdata": Out(mem["membranes"].word_bits),
                "u_wen": Out(1),
                "cnt_raddr": Out(ab("counts")),
                "cnt_rdata": In(mem["counts"].word_bits),
                "cnt_waddr": Out(ab("counts")),
                "cnt_wdata": Out(mem["counts"].word_bits),
                "cnt_wen": Out(1),
            }
        )

    def elaborate(self, platform):
        m = Module()
        p = self._p
        net = p.net
        P, G, T, n_in = p.lanes, p.groups, p.timesteps, p.n_in
        wb, mb, vb, cb = net.w_bits, net.master_bits, net.v_bits, p.count_bits
        theta, k = net.theta, net.leak_shift
        cnt_w = max(1, (n_in).bit_length())

        # -- issue: counters -------------------------------------------------------------------
        t = Signal(range(T + 1))
        g = Signal(range(G + 1))
        k_ev = Signal(range(n_in + 2))
        ev_ptr = Signal(p.event_ptr_bits + 1)
        ev_start = Signal(p.event_ptr_bits + 1)
        ev_count = Signal(cnt_w + 1)
        gbase = Signal(range(G * n_in + 1))  # g * n_in
        tbase = Signal(range(T * G + 1))  # t * G
        pbase = Signal(range(T * G + 1))  # (t - 1) * G
        drain = Signal(range(FP_DEPTH + 1))

        issue_acc = Signal()
        issue_lif = Signal()
        m.d.comb += [
            self.hdr_addr.eq(t),
            self.ev_addr.eq(ev_ptr),
            self.u_raddr.eq(pbase + g),
            self.cnt_raddr.eq(g),
            self.lane_work.eq(issue_acc | issue_lif),
        ]

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [t.eq(0), tbase.eq(0), pbase.eq(0), self.busy.eq(1)]
                    m.next = "HEAD"
            with m.State("HEAD"):  # hdr_addr = t presented this cycle
                m.next = "HEAD2"
            with m.State("HEAD2"):
                m.d.sync += [
                    ev_start.eq(self.hdr_data[: p.event_ptr_bits]),
                    ev_ptr.eq(self.hdr_data[: p.event_ptr_bits]),
                    ev_count.eq(self.hdr_data[p.event_ptr_bits :]),
                    g.eq(0),
                    gbase.eq(0),
                    k_ev.eq(0),
                ]
                m.next = "ISSUE"
            with m.State("ISSUE"):
                with m.If(k_ev < ev_count):
                    m.d.comb += issue_acc.eq(1)
                    m.d.sync += [k_ev.eq(k_ev + 1), ev_ptr.eq(ev_ptr + 1)]
                with m.Else():
                    m.d.comb += issue_lif.eq(1)
                    m.d.sync += [k_ev.eq(0), ev_ptr.eq(ev_start), g.eq(g + 1)]
                    m.d.sync += gbase.eq(gbase + n_in)
                    with m.If(g == G - 1):
                        m.d.sync += drain.eq(FP_DEPTH - 1)
                        m.next = "DRAIN"
            with m.State("DRAIN"):
                m.d.sync += drain.eq(drain - 1)
                with m.If(drain == 0):
                    m.d.sync += [t.eq(t + 1), tbase.eq(tbase + G), pbase.eq(tbase)]
                    with m.If(t == T - 1):
                        m.d.sync += self.busy.eq(0)
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "HEAD"

        # -- pipeline --------------------------------------------------------------------------
        # c1: event index, previous membrane and count arrive from the memories.
        v1, lif1, g1, gb1, first1 = (
            Signal(),
            Signal(),
            Signal(range(G + 1)),
            Signal(range(G * n_in + 1)),
            Signal(),
        )
        m.d.sync += [
            v1.eq(issue_acc | issue_lif),
            lif1.eq(issue_lif),
            g1.eq(g),
            gb1.eq(gbase),
            first1.eq(t == 0),
        ]
        # c2: weight address; leak and previous spike of each lane.
        v2, lif2, g2 = Signal(), Signal(), Signal(range(G + 1))
        idx2 = Signal(range(G * n_in + 1))
        cnt2 = Signal(P * cb)
        u2 = [Signal(signed(vb), name=f"u2_{q}") for q in range(P)]
        m.d.sync += [v2.eq(v1), lif2.eq(lif1), g2.eq(g1), idx2.eq(gb1 + self.ev_data)]
        m.d.sync += cnt2.eq(Mux(first1, 0, self.cnt_rdata))
        for q in range(P):
            m.d.sync += u2[q].eq(Mux(first1, 0, lane(self.u_rdata, q, vb)))
        m.d.comb += self.w_addr.eq(idx2)
        # c3: weights arrive; leaked membrane with the reset of s[t-1].
        v3, lif3, g3 = Signal(), Signal(), Signal(range(G + 1))
        cnt3 = Signal(P * cb)
        lu3 = [Signal(signed(vb + 1), name=f"lu3_{q}") for q in range(P)]
        m.d.sync += [v3.eq(v2), lif3.eq(lif2), g3.eq(g2), cnt3.eq(cnt2)]
        for q in range(P):
            leaked = leak(u2[q], k)
            spiked = u2[q] >= theta
            if net.reset == "subtract":
                m.d.sync += lu3[q].eq(Mux(spiked, leaked - theta, leaked))
            else:
                m.d.sync += lu3[q].eq(Mux(spiked, 0, leaked))
        # c4: the lanes accumulate (accumulate token) or take the current (integrate token).
        v4, lif4, g4 = Signal(), Signal(), Signal(range(G + 1))
        cnt4 = Signal(P * cb)
        w4 = [Signal(signed(wb), name=f"w4_{q}") for q in range(P)]
        lu4 = [Signal(signed(vb + 1), name=f"lu4_{q}") for q in range(P)]
        m.d.sync += [v4.eq(v3), lif4.eq(lif3), g4.eq(g3), cnt4.eq(cnt3)]
        for q in range(P):
            m.d.sync += [
                w4[q].eq(lane(self.w_data, q, mb)[mb - wb :].as_signed()),
                lu4[q].eq(lu3[q]),
            ]
        acc = [Signal(signed(p.current_bits), name=f"acc_{q}") for q in range(P)]
        v5, g5 = Signal(), Signal(range(G + 1))
        cnt5 = Signal(P * cb)
        pre5 = [Signal(signed(max(vb + 1, p.current_bits) + 1), name=f"pre5_{q}") for q in range(P)]
        m.d.sync += [v5.eq(v4 & lif4), g5.eq(g4), cnt5.eq(cnt4)]
        for q in range(P):
            with m.If(v4 & ~lif4):
                m.d.sync += acc[q].eq(acc[q] + w4[q])
            with m.If(v4 & lif4):
                m.d.sync += [acc[q].eq(0), pre5[q].eq(lu4[q] + acc[q])]
        # c6: saturate to v_bits.
        v6, g6 = Signal(), Signal(range(G + 1))
        cnt6 = Signal(P * cb)
        u6 = [Signal(signed(vb), name=f"u6_{q}") for q in range(P)]
        m.d.sync += [v6.eq(v5), g6.eq(g5), cnt6.eq(cnt5)]
        for q in range(P):
            m.d.sync += u6[q].eq(sat(pre5[q], vb))
        # c7: write u[t] and the spike counts.
        m.d.comb += [
            self.u_wen.eq(v6),
            self.u_waddr.eq(tbase + g6),
            self.cnt_wen.eq(v6),
            self.cnt_waddr.eq(g6),
        ]
        for q in range(P):
            m.d.comb += self.u_wdata[q * vb : (q + 1) * vb].eq(u6[q])
            old = cnt6[q * cb : (q + 1) * cb]
            m.d.comb += self.cnt_wdata[q * cb : (q + 1) * cb].eq(old + (u6[q] >= theta))
        return m
