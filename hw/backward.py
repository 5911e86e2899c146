"""BP engine: delta through time and the error for the previous layer (arithmetic.md section 4).

For ``t = T-1 .. 0`` the engine runs two phases:

* **delta phase** -- one token per neuron group ``g``: read ``u[t]``, the error (external
  ``e[t]``, or ``sat((c - y) << E)`` from the spike counts and the label), ``delta[t+1]``; form
  the surrogate ``g[t]`` (boxcar gate or triangle), add ``m[t] leak(delta[t+1])`` in BPTT mode,
  saturate to ``g_bits`` and write ``delta[t]``. Then ``ready`` drops to ``t``: the WG engine
  may accumulate timestep ``t`` while this engine goes on.
* **error phase** (cores with ``emit_error``) -- one token per input ``i`` and group ``g``: the
  ``P`` lanes multiply ``W[gP + p][i] delta[t][gP + p]`` (transposed weight access: the weight
  word of group ``g`` and input ``i`` holds exactly those ``P`` weights), an adder tree sums
  them, the sum accumulates over the ``G`` groups, and ``e_prev[t][i] = sat(rnd(sum, Q))``.

A linked core may wait on top of the formula below: the delta phase of ``t`` starts only when
the link has delivered ``e[t]`` (``err_avail >= T - t``), and the error phase issues only while
the ``e_prev`` emitter has room.

Cycles (``G`` groups, ``n_in`` inputs)::

    bp cycles = T * (G + BP_DELTA_DRAIN + [emit_error] * (n_in * G + bp_error_drain(P)))
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from spikeforge.hw.datapath import (
    READ_LATENCY,
    delay_line,
    index_range,
    lane,
    leak,
    membrane_lane,
    read_port_members,
    rnd,
    sat,
    write_port_members,
)
from spikeforge.hw.params import CoreParams

__all__ = [
    "BP_DELTA_DRAIN",
    "BackwardEngine",
    "backward_cycles",
    "bp_error_drain",
    "bp_timestep_cycles",
]

BP_DELTA_DEPTH = 7 + READ_LATENCY
"""Cycles from a delta-phase token to its delta write."""
BP_DELTA_DRAIN = BP_DELTA_DEPTH + 1


def _tree_levels(lanes: int) -> int:
    return max(0, (lanes - 1).bit_length())


def bp_error_drain(lanes: int) -> int:
    """Drain cycles after the last error-phase token: read, multiply, tree, accumulate, round,
    saturate and write."""
    return 5 + READ_LATENCY + _tree_levels(lanes)


def bp_timestep_cycles(p: CoreParams) -> int:
    """Cycles of the BP engine per timestep: delta phase and drain, error phase and drain."""
    per_t = p.groups + BP_DELTA_DRAIN
    if p.emits_error:
        per_t += p.n_in * p.groups + bp_error_drain(p.lanes)
    return per_t


def backward_cycles(p: CoreParams) -> int:
    """Cycles of the BP engine for one sample (start to done)."""
    return p.timesteps * bp_timestep_cycles(p)


class BackwardEngine(wiring.Component):
    """The BP engine; ``ready`` is the lowest timestep whose deltas are all written (``T``
    before the first), ``label`` and ``ext_error`` select the output error."""

    def __init__(self, params: CoreParams):
        self._p = p = CoreParams.checked(params)
        mem = p.memory_map

        ports = {
            "start": In(1),
            "busy": Out(1),
            "ready": Out(range(p.timesteps + 1)),
            "label": In(index_range(p.layer_neurons)),
            "ext_error": In(1),
            **read_port_members("u", mem["membranes"]),
            **read_port_members("err", mem["errors"]),
            **read_port_members("cnt", mem["counts"]),
            **read_port_members("d", mem["deltas"]),
            **write_port_members("d", mem["deltas"]),
            **read_port_members("w", mem["weights"]),
        }
        if p.emits_error:
            ports |= {
                **write_port_members("ep", mem["eprev"]),
            }
        if p.errors_in:
            ports["err_avail"] = In(range(p.timesteps + 1))
        if p.errors_out:
            ports["ep_room"] = In(1)
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        p = self._p
        P, G, T, n_in = p.lanes, p.groups, p.timesteps, p.n_in

        t = Signal(index_range(T))
        g = Signal(range(G + 1))
        jbase = Signal(range(p.n_out + P + 1))  # g * P
        tbase = Signal(range(T * G + 1))  # t * G
        nbase = Signal(range(T * G + 1))  # (t + 1) * G
        i = Signal(range(n_in + 1))
        gbase = Signal(range(G * n_in + 1))  # g * n_in
        ebase = Signal(range(T * n_in + 1))  # t * n_in
        drain = Signal(range(max(BP_DELTA_DRAIN, bp_error_drain(P)) + 1))
        issue_d = Signal()
        issue_e = Signal()
        # Linked cores: timestep t waits for its external error from the link (when BACKWARD
        # uses it); the error phase issues only while the e_prev emitter has room.
        err_ok = Const(1)
        if p.errors_in:
            err_ok = ~self.ext_error | (self.err_avail > T - 1 - t)
        ep_room = self.ep_room if p.errors_out else Const(1)

        m.d.comb += [
            self.u_raddr.eq(tbase + g),
            self.err_raddr.eq(tbase + g),
            self.cnt_raddr.eq(g),
            self.d_raddr.eq(Mux(issue_e, tbase + g, nbase + g)),
            self.w_raddr.eq(gbase + i),
            # Live reads: a delta issue's membrane, error and count, delta[t+1] in BPTT below
            # the last timestep; an error issue's delta and weight.
            self.u_ren.eq(issue_d),
            self.err_ren.eq(issue_d & self.ext_error),
            self.cnt_ren.eq(issue_d & ~self.ext_error),
            self.d_ren.eq(
                issue_e | (issue_d & ((t != T - 1) if p.net.bptt == "bptt" else Const(0)))
            ),
            self.w_ren.eq(issue_e),
        ]

        def next_timestep():
            with m.If(t == 0):
                m.d.sync += self.busy.eq(0)
                m.next = "IDLE"
            with m.Else():
                m.d.sync += [t.eq(t - 1), nbase.eq(tbase), tbase.eq(tbase - G)]
                m.d.sync += [ebase.eq(ebase - n_in), g.eq(0), jbase.eq(0)]
                m.next = "DELTA"

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [
                        self.busy.eq(1),
                        self.ready.eq(T),
                        t.eq(T - 1),
                        tbase.eq((T - 1) * G),
                        nbase.eq(T * G),
                        ebase.eq((T - 1) * n_in),
                        g.eq(0),
                        jbase.eq(0),
                    ]
                    m.next = "DELTA"
            with m.State("DELTA"):
                with m.If(err_ok):
                    m.d.comb += issue_d.eq(1)
                    m.d.sync += [g.eq(g + 1), jbase.eq(jbase + P)]
                    with m.If(g == G - 1):
                        m.d.sync += drain.eq(BP_DELTA_DRAIN - 1)
                        m.next = "DELTA_DRAIN"
            with m.State("DELTA_DRAIN"):
                m.d.sync += drain.eq(drain - 1)
                with m.If(drain == 0):
                    m.d.sync += self.ready.eq(t)
                    if p.emits_error:
                        m.d.sync += [g.eq(0), gbase.eq(0), i.eq(0)]
                        m.next = "ERROR"
                    else:
                        next_timestep()
            if p.emits_error:
                with m.State("ERROR"):
                    with m.If(ep_room):
                        m.d.comb += issue_e.eq(1)
                        with m.If(g == G - 1):
                            m.d.sync += [g.eq(0), gbase.eq(0), i.eq(i + 1)]
                            with m.If(i == n_in - 1):
                                m.d.sync += drain.eq(bp_error_drain(P) - 1)
                                m.next = "ERROR_DRAIN"
                        with m.Else():
                            m.d.sync += [g.eq(g + 1), gbase.eq(gbase + n_in)]
                with m.State("ERROR_DRAIN"):
                    m.d.sync += drain.eq(drain - 1)
                    with m.If(drain == 0):
                        next_timestep()

        self._delta_pipeline(m, issue_d, g, jbase, t, tbase)
        if p.emits_error:
            self._error_pipeline(m, issue_e, g, i, ebase)
        return m

    def _delta_pipeline(self, m, issue, g, jbase, t, tbase):
        p = self._p
        net = p.net
        P, T = p.lanes, p.timesteps
        gb, vb, cb = net.g_bits, net.v_bits, p.count_bits
        theta, k, S = net.theta, net.leak_shift, net.surrogate_shift
        width = 1 << S
        valid = delay_line(m, issue, BP_DELTA_DEPTH, "dv")
        gs = delay_line(m, g, BP_DELTA_DEPTH, "dg")
        js = delay_line(m, jbase, READ_LATENCY + 1, "dj")
        # delta[t+1] joins in BPTT mode below the last timestep (t is fixed during the phase).
        use_next = (t != T - 1) if net.bptt == "bptt" else Const(0, 1)
        for q in range(P):
            # c1: memory data, registered.
            u1 = Signal(signed(vb), name=f"bu1_{q}")
            ee1 = Signal(signed(gb), name=f"be1_{q}")
            c1 = Signal(cb, name=f"bc1_{q}")
            dn1 = Signal(signed(gb), name=f"bdn1_{q}")
            s1 = Signal(name=f"bs1_{q}")
            stored = membrane_lane(self.u_rdata, q, vb)
            m.d.sync += [
                u1.eq(stored.u),
                s1.eq(stored.s),
                ee1.eq(lane(self.err_rdata, q, gb)),
                c1.eq(lane(self.cnt_rdata, q, cb, is_signed=False)),
                dn1.eq(Mux(use_next, lane(self.d_rdata, q, gb), 0)),
            ]
            # c2: output error, distance to theta, leaked next delta.
            e2 = Signal(signed(gb), name=f"be2_{q}")
            diff2 = Signal(signed(vb + 1), name=f"bdiff2_{q}")
            s2 = Signal(name=f"bs2_{q}")
            lk2 = Signal(signed(gb + 1), name=f"blk2_{q}")
            is_label = js[READ_LATENCY + 1] + (p.neuron_offset + q) == self.label
            target = Mux(is_label, net.target_hi, net.target_lo)
            from_label = sat((c1 - target) << net.err_shift, gb)
            m.d.sync += [
                e2.eq(Mux(self.ext_error, ee1, from_label)),
                diff2.eq(u1 - theta),
                s2.eq(s1),  # the forward engine's own spike bit
                lk2.eq(leak(dn1, k)),
            ]
            # c3: |u - theta|, temporal term m[t] leak(delta[t+1]).
            e3 = Signal(signed(gb), name=f"be3_{q}")
            dist3 = Signal(vb + 1, name=f"bdist3_{q}")
            tmp3 = Signal(signed(gb + 1), name=f"btmp3_{q}")
            m.d.sync += [e3.eq(e2), dist3.eq(Mux(diff2 < 0, -diff2, diff2))]
            if net.reset == "subtract":
                m.d.sync += tmp3.eq(lk2)
            else:
                m.d.sync += tmp3.eq(Mux(s2, 0, lk2))
            # c4..c6: surrogate.
            e4 = Signal(signed(gb), name=f"be4_{q}")
            wd4 = Signal(S + 1, name=f"bwd4_{q}")
            inwin4 = Signal(name=f"bin4_{q}")
            m.d.sync += [
                e4.eq(e3),
                inwin4.eq(dist3 < width),
                wd4.eq(Mux(dist3 < width, width - dist3, 0)),
            ]
            prod5 = Signal(signed(gb + S + 2), name=f"bprod5_{q}")
            if net.surrogate == "boxcar":
                m.d.sync += prod5.eq(Mux(inwin4, e4, 0))
            else:
                m.d.sync += prod5.eq(e4 * wd4)
            g6 = Signal(signed(gb + S + 2), name=f"bg6_{q}")
            m.d.sync += g6.eq(prod5 if net.surrogate == "boxcar" else rnd(prod5, S))
            tmps = delay_line(m, tmp3, 3, f"btmp_{q}")
            # c7: delta = sat(g + temporal); written from the c7 register on the next cycle.
            d7 = Signal(signed(gb), name=f"bd7_{q}")
            m.d.sync += d7.eq(sat(g6 + tmps[3], gb))
            m.d.comb += self.d_wdata[q * gb : (q + 1) * gb].eq(d7)
        m.d.comb += [
            self.d_wen.eq(valid[BP_DELTA_DEPTH]),
            self.d_waddr.eq(tbase + gs[BP_DELTA_DEPTH]),
        ]

    def _error_pipeline(self, m, issue, g, i, ebase):
        p = self._p
        net = p.net
        gb, wb, mb = net.g_bits, net.w_bits, net.master_bits
        P, G = p.lanes, p.groups
        levels = _tree_levels(P)
        depth = READ_LATENCY + 2 + levels  # operands, products, tree: the sum is valid here
        valid = delay_line(m, issue, depth + 3, "ev")
        first = delay_line(m, g == 0, depth, "ef")
        last = delay_line(m, g == G - 1, depth, "el")
        idx = delay_line(m, i, depth + 3, "ei")
        prod_bits = wb + gb
        prods = []
        for q in range(P):
            w1 = Signal(signed(wb), name=f"ew1_{q}")
            d1 = Signal(signed(gb), name=f"ed1_{q}")
            m.d.sync += [
                w1.eq(lane(self.w_rdata, q, mb)[mb - wb :].as_signed()),
                d1.eq(lane(self.d_rdata, q, gb)),
            ]
            pr = Signal(signed(prod_bits), name=f"ep2_{q}")
            m.d.sync += pr.eq(w1 * d1)
            prods.append(pr)
        level = prods
        for lv in range(levels):
            nxt = []
            for a in range(0, len(level), 2):
                s = Signal(signed(prod_bits + lv + 1), name=f"et{lv}_{a // 2}")
                m.d.sync += s.eq(level[a] + level[a + 1] if a + 1 < len(level) else level[a])
                nxt.append(s)
            level = nxt
        tree = level[0]
        acc_bits = prod_bits + levels + max(1, (G - 1).bit_length()) + 1
        acc = Signal(signed(acc_bits), name="eacc")
        with m.If(valid[depth]):
            m.d.sync += acc.eq(Mux(first[depth], tree, acc + tree))
        # c(depth+1): acc holds the full sum when last; round; then saturate; then write. A
        # split core writes the exact partial sum instead (same latency): the reducer of all
        # slices rounds and saturates once.
        done1 = Signal(name="edone1")
        m.d.sync += done1.eq(valid[depth] & last[depth])
        r2 = Signal(signed(acc_bits), name="er2")
        done2 = Signal(name="edone2")
        m.d.sync += [r2.eq(acc if p.split else rnd(acc, net.bp_shift)), done2.eq(done1)]
        s3 = Signal(signed(p.eprev_bits), name="es3")
        done3 = Signal(name="edone3")
        m.d.sync += [s3.eq(r2 if p.split else sat(r2, gb)), done3.eq(done2)]
        m.d.comb += [
            self.ep_wen.eq(done3),
            self.ep_waddr.eq(ebase + idx[depth + 3]),
            self.ep_wdata.eq(s3),
        ]
