"""FP engine: the event-driven forward pass of one core (docs/arithmetic.md section 3).

Per timestep ``t`` and neuron group ``g`` (``P`` neurons, one memory word), the engine issues
one *accumulate* token per active input spike ``i`` of ``t`` (the ``P`` lanes add the weights
``W[gP .. gP+P-1][i]``) and then one *integrate* token (the lanes form
``u[t] = sat(leak(u[t-1]) + I - theta s[t-1])`` or the zero-reset form, decide
``s[t] = [u[t] >= theta]`` once, write both to the membrane history and add ``s[t]`` to the spike
counts). The stored ``s[t-1]`` is the reset's spike bit: every later use of a spike reads it.

Latency and cycles (``a_t`` active inputs at ``t``, ``G = n_out / P`` groups)::

    forward cycles = sum_t ( READ_LATENCY + 1 + G * (a_t + 1) + stalls_t ) + FP_DEPTH

``READ_LATENCY + 1`` cycles fetch each timestep's event header after the last token of the one
before; there is no drain between timesteps: a hazard check holds group ``g``'s integrate token
of ``t + 1`` until ``FP_DEPTH`` cycles after its integrate of ``t`` (it must not read ``u[t]``
or the counts before they are written; ``stalls_t`` such cycles, none once ``(G - 1)(a_t + 1)
+ a_{t+1} + READ_LATENCY + 1 >= FP_DEPTH``); the pipeline drains once, after the last timestep
(:func:`forward_schedule`). The lanes work on ``G * (a_t + 1)`` of those cycles.

A linked core (:mod:`spikeforge.hw.links`), or a FORWARD streamed with its LOAD_SPIKES
(:data:`~spikeforge.hw.protocol.LOAD_FORWARD`), may wait on top of that: timestep ``t``'s
header is read only when it is in place (``avail > t``: on a linked core once all of ``t``'s
input events have landed, on a streamed FORWARD once the loader has taken ``t``'s count word),
an accumulate token only when its event is written (``ev_avail`` above its event pointer: the
loader's ``written`` on a streamed FORWARD, every event otherwise), and tokens only while the
spike emitter has ``room``.
Each integrated group's spike mask goes to the emitter (``spk_*``).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from spikeforge.hw.datapath import (
    READ_LATENCY,
    delay_line,
    lane,
    leak,
    membrane_lane,
    read_port_members,
    sat,
    write_port_members,
)
from spikeforge.hw.params import CoreParams

__all__ = ["FP_DEPTH", "FP_IN_FLIGHT", "ForwardEngine", "forward_cycles", "forward_schedule"]

FP_DEPTH = 2 * READ_LATENCY + 5
"""Cycles from issuing a token to its membrane write, plus one."""
FP_IN_FLIGHT = FP_DEPTH + 1
"""Integrate tokens that may still reach the spike emitter after it reports no room."""


def forward_cycles(
    p: CoreParams,
    active: list[int],
    avail: list[int] | None = None,
    events: list[list[int]] | None = None,
) -> int:
    """Cycles of one FORWARD for ``active[t]`` input spikes per timestep (engine start to done);
    ``avail``: the first cycle, from the start, timestep ``t``'s header may be read (a linked
    core's receiver, or a FORWARD streamed with its LOAD_SPIKES; default: all at once);
    ``events``: the first cycle each event of ``t`` may be read (a streamed FORWARD; default:
    with the header). See :func:`forward_schedule`."""
    return forward_schedule(p, active, avail, events)[1]


def forward_schedule(
    p: CoreParams,
    active: list[int],
    avail: list[int] | None = None,
    events: list[list[int]] | None = None,
) -> tuple[list[list[int]], int]:
    """``(ints, busy)``: ``ints[t][g]``, the cycle group ``g`` of timestep ``t`` integrates
    (its last token), and the engine's busy cycles, when the header of ``t`` may be read from
    cycle ``avail[t]`` and its event ``k`` from cycle ``events[t][k]`` (cycles from the start;
    default 0: a linked core's receiver counts a timestep once all its events have landed).

    Timestep ``t``'s header is read once it is in place and the last token of ``t - 1`` has
    left (``HEAD``, from cycle 1 for ``t = 0``), ``READ_LATENCY + 1`` cycles before its first
    token; group ``g`` then issues ``a_t`` accumulate tokens (token ``k`` not before
    ``events[t][k]``: a FORWARD streamed with its load reads an event only once the loader has
    written it) and its integrate, which waits until ``FP_DEPTH`` cycles after group ``g``'s
    integrate of ``t - 1`` (the hazard check: that one's membrane and count writes must land
    first). After the last timestep the pipeline drains: ``busy = ints[T-1][G-1] + FP_DEPTH``."""
    G = p.groups
    ints: list[list[int]] = []
    cycle = 1  # HEAD: the cycle after the start
    for t, a in enumerate(active):
        head = max(cycle, avail[t] if avail is not None else 0)
        cur = head + READ_LATENCY + 1
        row = []
        for g in range(G):
            if events is None:
                cur += a  # the accumulate tokens
            else:
                for k in range(a):  # each one once its event is written
                    cur = max(cur, events[t][k]) + 1
            if ints:
                cur = max(cur, ints[-1][g] + FP_DEPTH)
            row.append(cur)
            cur += 1
        ints.append(row)
        cycle = cur  # the cycle after the last token
    return ints, ints[-1][-1] + FP_DEPTH


class ForwardEngine(wiring.Component):
    """The FP engine; memories live in the core, the engine drives their ports.

    Ports: ``start`` (pulse) begins ``T`` timesteps; ``busy`` is high until the last membrane is
    written; ``lane_work`` marks the cycles on which a token enters the lanes; ``avail`` counts
    the timesteps whose event header is in place (``T`` when all are), ``ev_avail`` the events
    of the bank, from its first, that may be read (all of them unless a load streams them).
    """

    def __init__(self, params: CoreParams):
        self._p = p = CoreParams.checked(params)
        mem = p.memory_map

        super().__init__(
            {
                "start": In(1),
                "busy": Out(1),
                "lane_work": Out(1),
                **read_port_members("hdr", mem["event_heads"]),
                **read_port_members("ev", mem["events"]),
                **read_port_members("w", mem["weights"]),
                **read_port_members("u", mem["membranes"]),
                **write_port_members("u", mem["membranes"]),
                **read_port_members("cnt", mem["counts"]),
                **write_port_members("cnt", mem["counts"]),
                "avail": In(range(p.timesteps + 1)),
                "ev_avail": In(p.event_ptr_bits + 1),
                **(
                    {
                        "spk_room": In(1),
                        "spk_push": Out(1),
                        "spk_mask": Out(p.lanes),
                        "spk_group": Out(range(max(p.groups, 2))),
                        "spk_last": Out(1),
                    }
                    if p.spikes_out
                    else {}
                ),
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
        head_t = Signal(range(T + 1))  # the timestep whose event header is being fetched

        issue_acc = Signal()
        issue_lif = Signal()
        # Linked or streamed: timestep t waits for its header, an accumulate for its event (a
        # streamed load); issue waits for emitter room.
        avail = self.avail
        room = self.spk_room if p.spikes_out else Const(1)
        hazard = Signal()  # an integrate of group g is still in the pipeline (below)
        m.d.comb += [
            self.hdr_raddr.eq(head_t),
            self.ev_raddr.eq(ev_ptr),
            self.u_raddr.eq(pbase + g),
            self.cnt_raddr.eq(g),
            self.lane_work.eq(issue_acc | issue_lif),
            # Live reads: the events of an accumulate; u[t-1] and the counts of a group's
            # integrate (both unused, read as 0, at t = 0).
            self.ev_ren.eq(issue_acc),
            self.u_ren.eq(issue_lif & (t != 0)),
            self.cnt_ren.eq(issue_lif & (t != 0)),
        ]

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [t.eq(0), head_t.eq(0), tbase.eq(0), pbase.eq(0)]
                    m.d.sync += self.busy.eq(1)
                    m.next = "HEAD"
            for wait in range(READ_LATENCY):  # address out; its data READ_LATENCY later
                with m.State(f"HEAD{wait}" if wait else "HEAD"):
                    with m.If((avail > head_t) if wait == 0 else Const(1)):
                        if wait == 0:
                            m.d.comb += self.hdr_ren.eq(1)  # the header HEAD_LATCH takes
                        m.next = f"HEAD{wait + 1}" if wait + 1 < READ_LATENCY else "HEAD_LATCH"

            def latch_header():
                m.d.sync += [
                    ev_start.eq(self.hdr_rdata[: p.event_ptr_bits]),
                    ev_ptr.eq(self.hdr_rdata[: p.event_ptr_bits]),
                    ev_count.eq(self.hdr_rdata[p.event_ptr_bits :]),
                    g.eq(0),
                    gbase.eq(0),
                    k_ev.eq(0),
                ]
                m.next = "ISSUE"

            with m.State("HEAD_LATCH"):
                latch_header()
            with m.State("ISSUE"):
                with m.If(~room):
                    pass
                with m.Elif((k_ev >= ev_count) & hazard):
                    pass  # group g's u[t-1] and counts are still being written
                with m.Elif(k_ev < ev_count):
                    with m.If(ev_ptr < self.ev_avail):  # the event is written (and checked)
                        m.d.comb += issue_acc.eq(1)
                        m.d.sync += [k_ev.eq(k_ev + 1), ev_ptr.eq(ev_ptr + 1)]
                with m.Else():
                    m.d.comb += issue_lif.eq(1)
                    m.d.sync += [k_ev.eq(0), ev_ptr.eq(ev_start), g.eq(g + 1)]
                    m.d.sync += gbase.eq(gbase + n_in)
                    with m.If(g == G - 1):
                        with m.If(t == T - 1):
                            # Drain the pipeline: busy until the last membrane is written.
                            m.d.sync += drain.eq(FP_DEPTH - 1)
                            m.next = "DRAIN"
                        with m.Else():
                            # The next timestep at once: its header (once it is in
                            # place); the hazard check keeps each group's integrate behind the
                            # writes of the same group's previous one.
                            m.d.sync += [t.eq(t + 1), tbase.eq(tbase + G), pbase.eq(tbase)]
                            m.d.sync += head_t.eq(t + 1)
                            m.next = "HEAD"
            with m.State("DRAIN"):
                m.d.sync += drain.eq(drain - 1)
                with m.If(drain == 0):
                    m.d.sync += self.busy.eq(0)
                    m.next = "IDLE"

        # -- pipeline (stage n = n cycles after issue; memory data arrive RL after the address) --
        RL = READ_LATENCY
        A = RL  # event index, previous membrane and counts arrive
        C = A + 1 + RL  # weights arrive
        D = C + 1  # lanes accumulate or integrate
        F = D + 2  # saturated membrane written
        valid = delay_line(m, issue_acc | issue_lif, F, "fv")
        lif = delay_line(m, issue_lif, F, "fl")
        gs = delay_line(m, g, F, "fg")
        tbs = delay_line(m, tbase, F, "ftb")  # the row u[t] of the token is written to
        # An integrate of group g issued k < FP_DEPTH cycles ago has not yet written u and the
        # counts that group g's next integrate reads (the write lands FP_DEPTH cycles after).
        m.d.comb += hazard.eq(
            Cat(*(valid[k] & lif[k] & (gs[k] == g) for k in range(1, FP_DEPTH))).any()
        )
        gbs = delay_line(m, gbase, A, "fgb")
        first = delay_line(m, t == 0, A, "ff")
        # A: weight address; previous membrane (zero at t = 0) and counts.
        idx = Signal(range(G * n_in + 1))
        cnt_b = Signal(P * cb)
        m.d.sync += [idx.eq(gbs[A] + self.ev_rdata), cnt_b.eq(Mux(first[A], 0, self.cnt_rdata))]
        m.d.comb += [self.w_raddr.eq(idx), self.w_ren.eq(valid[A + 1] & ~lif[A + 1])]
        cnts = delay_line(m, cnt_b, F - A - 1, "fcnt")
        accs = [Signal(signed(p.current_bits), name=f"acc_{q}") for q in range(P)]
        pre_bits = max(vb + 1, p.current_bits) + 1
        spikes = []  # s[t] of each lane, at F
        for q in range(P):
            # A+1: u[t-1] and this engine's own spike bit s[t-1] (both 0 at t = 0).
            prev = membrane_lane(self.u_rdata, q, vb)
            u_b = Signal(signed(vb), name=f"fu_{q}")
            spiked = Signal(name=f"fs_{q}")
            m.d.sync += [
                u_b.eq(Mux(first[A], 0, prev.u)),
                spiked.eq(~first[A] & prev.s),
            ]
            # A+2: leaked membrane with the reset of s[t-1] applied.
            lu = Signal(signed(vb + 1), name=f"flu_{q}")
            leaked = leak(u_b, k)
            if net.reset == "subtract":
                m.d.sync += lu.eq(Mux(spiked, leaked - theta, leaked))
            else:
                m.d.sync += lu.eq(Mux(spiked, 0, leaked))
            lus = delay_line(m, lu, D - (A + 2), f"flu{q}")
            # C+1 = D: the weight of lane q, top w_bits of the master weight.
            w = Signal(signed(wb), name=f"fw_{q}")
            m.d.sync += w.eq(lane(self.w_rdata, q, mb)[mb - wb :].as_signed())
            # D: accumulate, or take the current and start the next group at zero.
            pre = Signal(signed(pre_bits), name=f"fpre_{q}")
            with m.If(valid[D] & ~lif[D]):
                m.d.sync += accs[q].eq(accs[q] + w)
            with m.If(valid[D] & lif[D]):
                m.d.sync += [accs[q].eq(0), pre.eq(lus[-1] + accs[q])]
            # D+1: saturate; F: decide s[t] once, write it beside u[t], count it (and send it).
            u_new = Signal(signed(vb), name=f"fun_{q}")
            s_new = Signal(name=f"fsn_{q}")
            m.d.sync += u_new.eq(sat(pre, vb))
            m.d.comb += s_new.eq(u_new >= theta)
            spikes.append(s_new)
            out = membrane_lane(self.u_wdata, q, vb)
            m.d.comb += [out.u.eq(u_new), out.s.eq(s_new)]
            old = cnts[-1][q * cb : (q + 1) * cb]
            m.d.comb += self.cnt_wdata[q * cb : (q + 1) * cb].eq(old + s_new)
        if p.spikes_out:
            m.d.comb += [
                self.spk_push.eq(valid[F] & lif[F]),
                self.spk_mask.eq(Cat(*spikes)),
                self.spk_group.eq(gs[F]),
                self.spk_last.eq(gs[F] == G - 1),
            ]
        m.d.comb += [
            self.u_wen.eq(valid[F] & lif[F]),
            self.u_waddr.eq(tbs[F] + gs[F]),
            self.cnt_wen.eq(valid[F] & lif[F]),
            self.cnt_waddr.eq(gs[F]),
        ]
        return m
