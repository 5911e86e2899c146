"""BP engine: delta through time and the error for the previous layer (arithmetic.md section 4).

For ``t = T-1 .. 0`` the engine runs two phases:

* **delta phase** -- one token per neuron group ``g``: read ``u[t]``, the error (external
  ``e[t]``, or ``sat((c - y) << E)`` from the spike counts and the label), ``delta[t+1]``; form
  the surrogate ``g[t]`` (boxcar gate or triangle), add ``m[t] leak(delta[t+1])`` in BPTT mode,
  saturate to ``g_bits`` and write ``delta[t]``. Then ``ready`` drops to ``t``: the WG engine
  may accumulate timestep ``t`` while this engine goes on. As each group's delta is written,
  a group with any nonzero lane is appended to the nonzero-group list of ``t`` (memory
  ``nonzero``, word ``(t, k)``); at the end of the phase its length ``K[t]`` goes to word
  ``(t, G)``. The list of every timestep stays, so the WG engine reads it while it lags behind.
* **error phase** (cores with ``emit_error``) -- one token per input ``i`` and *nonzero* group
  ``g`` of ``t`` (a zero group's products are all 0, so skipping it changes no sum): the ``P``
  lanes multiply ``W[gP + p][i] delta[t][gP + p]`` (transposed weight access: the weight word
  of group ``g`` and input ``i`` holds exactly those ``P`` weights), an adder tree sums them,
  the sum accumulates over the groups, and ``e_prev[t][i] = sat(rnd(sum, Q))``. With
  ``K[t] = 0`` one token per input still runs (group 0, whose delta is zero), so every
  ``e_prev[t][i]`` is written -- 0 -- and nothing of a previous sample survives. Each token is
  preceded by a read of the list (``BP_PREFETCH`` cycles: the list word, then the token's
  weight and delta addresses, registered).

A linked core may wait on top of the formula below: the delta phase of ``t`` starts only when
the link has delivered ``e[t]`` (``err_avail >= T - t``), and the error phase issues only while
the ``e_prev`` emitter has room.

Cycles (``G`` groups, ``n_in`` inputs, ``K[t]`` nonzero groups of timestep ``t``, from
:func:`nonzero_groups`)::

    bp cycles = sum_t (G + BP_DELTA_DRAIN
                       + [emit_error] * (n_in * max(1, K[t]) + bp_error_drain(P)))

with ``bp_error_drain(P) = BP_PREFETCH + 5 + READ_LATENCY + ceil(log2 P)``.
"""

from __future__ import annotations

from collections.abc import Sequence

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
    "BP_PREFETCH",
    "BackwardEngine",
    "backward_cycles",
    "bp_error_drain",
    "bp_timestep_cycles",
    "dense_groups",
    "nonzero_groups",
]

BP_DELTA_DEPTH = 7 + READ_LATENCY
"""Cycles from a delta-phase token to its delta write."""
BP_DELTA_DRAIN = BP_DELTA_DEPTH + 1
BP_PREFETCH = READ_LATENCY + 1
"""Cycles from an error-phase step to its token: the nonzero-group list word is read, then the
token's weight and delta addresses are registered."""


def _tree_levels(lanes: int) -> int:
    return max(0, (lanes - 1).bit_length())


def bp_error_drain(lanes: int) -> int:
    """Drain cycles after the last error-phase step: list read, operand read, multiply, tree,
    accumulate, round, saturate and write."""
    return BP_PREFETCH + 5 + READ_LATENCY + _tree_levels(lanes)


def nonzero_groups(p: CoreParams, delta) -> list[int]:
    """``K[t]``: how many of core ``p``'s neuron groups have a nonzero ``delta[t]`` lane.

    The one definition of the data the BP and WG engines skip by (every cycle model takes it).

    Parameters
    ----------
    p : CoreParams
        The core; its neurons ``p.neuron_range`` of the layer, in groups of ``p.lanes``.
    delta : sequence
        One sample's deltas of the whole layer, ``[T][n_layer]`` (nested sequences, or anything
        with ``tolist()``, such as the golden model's ``trace.delta[b]``).

    Returns
    -------
    list of int
        ``K[t]`` for ``t = 0 .. T-1``, each in ``[0, G]``.
    """
    rows = delta.tolist() if hasattr(delta, "tolist") else delta
    if len(rows) != p.timesteps:
        raise ValueError(f"delta must have {p.timesteps} timesteps, not {len(rows)}")
    j0, P = p.neuron_offset, p.lanes
    out = []
    for row in rows:
        if len(row) < p.neuron_range[1]:
            raise ValueError(f"a delta row has {len(row)} neurons, the core needs {p.neuron_range}")
        out.append(sum(any(row[j0 + g * P + q] != 0 for q in range(P)) for g in range(p.groups)))
    return out


def dense_groups(p: CoreParams) -> list[int]:
    """``K[t] = G`` at every timestep: the most the engines can take (a worst-case bound)."""
    return [p.groups] * p.timesteps


def _checked_groups(p: CoreParams, nonzero: Sequence[int]) -> list[int]:
    ks = [int(k) for k in nonzero]
    if len(ks) != p.timesteps or any(not 0 <= k <= p.groups for k in ks):
        raise ValueError(
            f"nonzero must have {p.timesteps} entries in [0, {p.groups}] (nonzero_groups), "
            f"not {list(nonzero)!r}"
        )
    return ks


def bp_timestep_cycles(p: CoreParams, k: int) -> int:
    """Cycles of the BP engine in a timestep with ``k`` nonzero groups: delta phase and drain,
    error phase (``n_in * max(1, k)`` tokens) and drain."""
    per_t = p.groups + BP_DELTA_DRAIN
    if p.emits_error:
        per_t += p.n_in * max(1, k) + bp_error_drain(p.lanes)
    return per_t


def backward_cycles(p: CoreParams, nonzero: Sequence[int]) -> int:
    """Cycles of the BP engine for one sample (start to done); ``nonzero[t] = K[t]``
    (:func:`nonzero_groups`)."""
    return sum(bp_timestep_cycles(p, k) for k in _checked_groups(p, nonzero))


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
            **write_port_members("nz", mem["nonzero"]),
            **read_port_members("w", mem["weights"]),
        }
        if p.emits_error:
            ports |= {
                **read_port_members("nz", mem["nonzero"]),
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
        RL = READ_LATENCY

        t = Signal(index_range(T))
        g = Signal(range(G + 1))
        jbase = Signal(range(p.n_out + P + 1))  # g * P
        tbase = Signal(range(T * G + 1))  # t * G
        nbase = Signal(range(T * G + 1))  # (t + 1) * G
        zbase = Signal(range(T * (G + 1) + 1))  # t * (G + 1): the nonzero list of t
        nzk = Signal(range(G + 1))  # nonzero groups of t found so far (K[t] after the phase)
        i = Signal(range(n_in + 1))
        k = Signal(range(G + 1))  # position in the nonzero list
        klast = Signal(range(G + 1))  # max(1, K[t]) - 1
        ebase = Signal(range(T * n_in + 1))  # t * n_in
        drain = Signal(range(max(BP_DELTA_DRAIN, bp_error_drain(P)) + 1))
        issue_d = Signal()
        step_e = Signal()  # an error-phase step: the list read of its token
        issue_e = Signal()  # the token itself, BP_PREFETCH cycles later
        count_w = Signal()  # K[t] is written
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
            # Live reads: a delta issue's membrane, error and count, delta[t+1] in BPTT below
            # the last timestep; an error issue's delta and weight.
            self.u_ren.eq(issue_d),
            self.err_ren.eq(issue_d & self.ext_error),
            self.cnt_ren.eq(issue_d & ~self.ext_error),
            self.d_ren.eq(
                issue_e | (issue_d & ((t != T - 1) if p.net.bptt == "bptt" else Const(0)))
            ),
        ]

        def next_timestep():
            with m.If(t == 0):
                m.d.sync += self.busy.eq(0)
                m.next = "IDLE"
            with m.Else():
                m.d.sync += [t.eq(t - 1), nbase.eq(tbase), tbase.eq(tbase - G)]
                m.d.sync += [ebase.eq(ebase - n_in), g.eq(0), jbase.eq(0)]
                m.d.sync += [zbase.eq(zbase - (G + 1)), nzk.eq(0)]
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
                        zbase.eq((T - 1) * (G + 1)),
                        nzk.eq(0),
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
                    # The last delta was written a cycle ago: nzk is K[t].
                    m.d.comb += count_w.eq(1)
                    m.d.sync += self.ready.eq(t)
                    if p.emits_error:
                        m.d.sync += [k.eq(0), i.eq(0), klast.eq(Mux(nzk == 0, 0, nzk - 1))]
                        m.next = "ERROR"
                    else:
                        next_timestep()
            if p.emits_error:
                with m.State("ERROR"):
                    with m.If(ep_room):
                        m.d.comb += step_e.eq(1)
                        with m.If(k == klast):
                            m.d.sync += [k.eq(0), i.eq(i + 1)]
                            with m.If(i == n_in - 1):
                                m.d.sync += drain.eq(bp_error_drain(P) - 1)
                                m.next = "ERROR_DRAIN"
                        with m.Else():
                            m.d.sync += k.eq(k + 1)
                with m.State("ERROR_DRAIN"):
                    m.d.sync += drain.eq(drain - 1)
                    with m.If(drain == 0):
                        next_timestep()

        d_valid, d_group, d_nonzero = self._delta_pipeline(m, issue_d, g, jbase, t, tbase)
        # The nonzero-group list of t: each nonzero group as its delta is written, then K[t].
        listed = d_valid & d_nonzero
        with m.If(listed):
            m.d.sync += nzk.eq(nzk + 1)
        m.d.comb += [
            self.nz_wen.eq(listed | count_w),
            self.nz_waddr.eq(zbase + Mux(count_w, G, nzk)),
            self.nz_wdata.eq(Mux(count_w, nzk, d_group)),
        ]
        if not p.emits_error:
            m.d.comb += self.d_raddr.eq(nbase + g)
        else:
            # Step: read list word k (none when K[t] = 0: group 0, all zero, stands in).
            m.d.comb += [self.nz_raddr.eq(zbase + k), self.nz_ren.eq(step_e & (nzk != 0))]
            steps = delay_line(m, step_e, BP_PREFETCH, "es")
            m.d.comb += issue_e.eq(steps[BP_PREFETCH])
            firsts = delay_line(m, k == 0, BP_PREFETCH, "esf")
            lasts = delay_line(m, k == klast, BP_PREFETCH, "esl")
            idxs = delay_line(m, i, BP_PREFETCH, "esi")
            gsel = Mux(nzk == 0, 0, self.nz_rdata[: max(1, (G - 1).bit_length())])
            w_addr = Signal.like(self.w_raddr, name="ew_addr")
            d_addr = Signal(range(T * G + 1), name="ed_addr")
            m.d.sync += [w_addr.eq(gsel * n_in + idxs[RL]), d_addr.eq(tbase + gsel)]
            m.d.comb += [
                self.w_raddr.eq(w_addr),
                self.w_ren.eq(issue_e),
                self.d_raddr.eq(Mux(issue_e, d_addr, nbase + g)),
            ]
            self._error_pipeline(
                m, issue_e, firsts[BP_PREFETCH], lasts[BP_PREFETCH], idxs[BP_PREFETCH], ebase
            )
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
        nonzero = Signal(name="dnz")
        m.d.comb += nonzero.eq(self.d_wdata.any())
        return valid[BP_DELTA_DEPTH], gs[BP_DELTA_DEPTH], nonzero

    def _error_pipeline(self, m, issue, first_tok, last_tok, i, ebase):
        p = self._p
        net = p.net
        gb, wb, mb = net.g_bits, net.w_bits, net.master_bits
        P, G = p.lanes, p.groups
        levels = _tree_levels(P)
        depth = READ_LATENCY + 2 + levels  # operands, products, tree: the sum is valid here
        valid = delay_line(m, issue, depth + 3, "ev")
        first = delay_line(m, first_tok, depth, "ef")
        last = delay_line(m, last_tok, depth, "el")
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
