"""Host controller: decodes the AXI4-Stream command words and answers on the response stream.

It owns the generic value walker that reads and writes any quantity of
:data:`~spikeforge.hw.protocol.QUANTITIES` in wire order (outer x inner values; the neuron index
``j`` splits into group ``j // P`` -- part of the word address -- and lane ``j % P``), the AER
spike loader, the engine start/finish handshakes and the cycle counters.

Responses go through a small FIFO; reads are issued only while it has room for every read in
flight, so backpressure on ``m_axis`` never loses or duplicates a word. A READ returns one value
per cycle while ``m_axis_tready`` is high.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from spikeforge.hw.datapath import READ_LATENCY, delay_line, index_range, write_port_members
from spikeforge.hw.params import BUS_BITS, CoreParams
from spikeforge.hw.protocol import COUNTERS, MAGIC, Opcode, Quantity, Status

__all__ = ["RESPONSE_DEPTH", "HostController", "quantity_layout"]

RESPONSE_DEPTH = 16

READABLE = {
    Quantity.WEIGHTS: "weights",
    Quantity.MEMBRANES: "membranes",
    Quantity.SPIKES: "membranes",
    Quantity.DELTAS: "deltas",
    Quantity.EPREV: "eprev",
    Quantity.GRADS: "grads",
    Quantity.ERRORS: "errors",
    Quantity.LFSR: "lfsr",
    Quantity.COUNTS: "counts",
}
WRITABLE = {
    Quantity.WEIGHTS: "weights",
    Quantity.GRADS: "grads",
    Quantity.ERRORS: "errors",
    Quantity.LFSR: "lfsr",
}
UNSIGNED = {Quantity.SPIKES, Quantity.LFSR, Quantity.COUNTS}


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


class HostController(wiring.Component):
    """Command decoder and response writer of a :class:`~spikeforge.hw.core.SpikingCore`."""

    def __init__(self, params: CoreParams):
        CoreParams.checked(params)
        self._p = p = params
        specs = p.memory_map
        self._readable = {q: n for q, n in READABLE.items() if n in specs}
        members = {
            "s_axis_tdata": In(BUS_BITS),
            "s_axis_tvalid": In(1),
            "s_axis_tready": Out(1),
            "m_axis_tdata": Out(BUS_BITS),
            "m_axis_tvalid": Out(1),
            "m_axis_tready": In(1),
            "m_axis_tlast": Out(1),
            "addr": Out(max(s.addr_bits for s in specs.values())),
            "lane": Out(index_range(p.lanes)),
            "wdata": Out(BUS_BITS),
            **write_port_members("ev", specs["events"]),
            **write_port_members("hdr", specs["event_heads"]),
            "fp_start": Out(1),
            "bp_start": Out(1),
            "wg_start": Out(1),
            "upd_start": Out(1),
            "fp_busy": In(1),
            "bp_busy": In(1),
            "wg_busy": In(1),
            "upd_busy": In(1),
            "lane_work": In(1),
            "label": Out(index_range(p.layer_neurons)),
            "ext_error": Out(1),
            "u_sel": Out(index_range(p.lr_range)),
        }
        for name in WRITABLE.values():
            members[f"wen_{name}"] = Out(1)
        for name in sorted(set(self._readable.values())):
            members[f"rd_{name}"] = In(specs[name].word_bits)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        p = self._p
        net = p.net
        P = p.lanes
        specs = p.memory_map
        m.submodules.resp = resp = SyncFIFOBuffered(width=BUS_BITS + 1, depth=RESPONSE_DEPTH)
        m.d.comb += [
            self.m_axis_tdata.eq(resp.r_data[:BUS_BITS]),
            self.m_axis_tlast.eq(resp.r_data[BUS_BITS]),
            self.m_axis_tvalid.eq(resp.r_rdy),
            resp.r_en.eq(self.m_axis_tready),
        ]

        op = Signal(8)
        arg = Signal(24)
        status = Signal(8)
        q = Signal(4)
        word = self.s_axis_tdata

        # -- value walker ----------------------------------------------------------------------
        big = max(p.n_out, p.n_in, p.timesteps) + 1
        n_o, n_i = Signal(range(big)), Signal(range(big))
        s_o, s_i = Signal(range(max(p.n_in, p.groups) + 1)), Signal(range(2))
        o_j, i_j = Signal(), Signal()
        oc, ic = Signal(range(big)), Signal(range(big))
        op_, ip_ = Signal(index_range(P)), Signal(index_range(P))
        obase, ibase = Signal.like(self.addr), Signal.like(self.addr)
        m.d.comb += [
            self.addr.eq(obase + ibase),
            self.lane.eq(Mux(o_j, op_, Mux(i_j, ip_, 0))),
        ]
        walk_last = Signal()
        m.d.comb += walk_last.eq((ic == n_i - 1) & (oc == n_o - 1))

        def walk_setup(qv):
            with m.Switch(qv):
                for qq in self._readable:
                    lay = quantity_layout(p, qq)
                    with m.Case(int(qq)):
                        m.d.sync += [
                            n_o.eq(lay[0]),
                            o_j.eq(lay[1]),
                            s_o.eq(lay[2]),
                            n_i.eq(lay[3]),
                            i_j.eq(lay[4]),
                            s_i.eq(lay[5]),
                        ]
            m.d.sync += [oc.eq(0), ic.eq(0), op_.eq(0), ip_.eq(0), obase.eq(0), ibase.eq(0)]

        def walk_step():
            with m.If(ic == n_i - 1):
                m.d.sync += [ic.eq(0), ip_.eq(0), ibase.eq(0), oc.eq(oc + 1)]
                with m.If(~o_j | (op_ == P - 1)):
                    m.d.sync += [op_.eq(0), obase.eq(obase + s_o)]
                with m.Else():
                    m.d.sync += op_.eq(op_ + 1)
            with m.Else():
                m.d.sync += ic.eq(ic + 1)
                with m.If(~i_j | (ip_ == P - 1)):
                    m.d.sync += [ip_.eq(0), ibase.eq(ibase + s_i)]
                with m.Else():
                    m.d.sync += ip_.eq(ip_ + 1)

        # -- read pipeline: address (0) -> memory word (RL) -> its lane, per memory (RL+1) ->
        #    the quantity's value (RL+2) -> FIFO. Selecting the lane next to each memory keeps
        #    only narrow values travelling to the one quantity multiplexer.
        RL = READ_LATENCY
        issue = Signal()
        valid = delay_line(m, issue, RL + 2, "hv")
        lane_rl = delay_line(m, self.lane, RL, "hlane")[-1]
        fields = {}
        for name in sorted(set(self._readable.values())):
            width = specs[name].width
            fields[name] = Signal(width, name=f"hsel_{name}")
            m.d.sync += fields[name].eq(getattr(self, f"rd_{name}").word_select(lane_rl, width))
        val = Signal(BUS_BITS)
        with m.Switch(q):
            for qq, name in self._readable.items():
                field = fields[name]
                with m.Case(int(qq)):
                    if qq == Quantity.SPIKES:
                        m.d.sync += val.eq(field.as_signed() >= net.theta)
                    elif qq in UNSIGNED:
                        m.d.sync += val.eq(field)
                    else:
                        m.d.sync += val.eq(field.as_signed())
        inflight = Signal(range(RL + 3))
        m.d.sync += inflight.eq(inflight + issue - valid[RL + 2])
        # Room for one more read, registered: one cycle stale, so two words of margin (one read
        # issued and one word pushed meanwhile) keep it conservative.
        room = Signal()
        m.d.sync += room.eq(resp.level + inflight < RESPONSE_DEPTH - 3)

        push_data = Signal(BUS_BITS)
        push_last = Signal()
        push = Signal()
        m.d.comb += [resp.w_data.eq(Cat(push_data, push_last)), resp.w_en.eq(push)]
        with m.If(valid[RL + 2]):
            m.d.comb += [push.eq(1), push_data.eq(val)]

        # -- counters ----------------------------------------------------------------------------
        counters = {name: Signal(32, name=f"cyc_{name}") for name in COUNTERS}
        in_backward = Signal()
        m.d.sync += [
            counters["forward"].eq(counters["forward"] + self.fp_busy),
            counters["lanes_busy"].eq(counters["lanes_busy"] + self.lane_work),
            counters["bp"].eq(counters["bp"] + self.bp_busy),
            counters["wg"].eq(counters["wg"] + self.wg_busy),
            counters["update"].eq(counters["update"] + self.upd_busy),
            counters["backward"].eq(counters["backward"] + in_backward),
        ]
        index = Signal(range(max(len(COUNTERS), 3) + 1))

        # -- write values: saturate to the quantity's width ---------------------------------------
        value = word.as_signed()
        wval = Signal(BUS_BITS)
        wbad = Signal()
        with m.Switch(q):
            for qq, name in WRITABLE.items():
                width = specs[name].width
                with m.Case(int(qq)):
                    if qq == Quantity.LFSR:
                        m.d.comb += [wval.eq(Mux(word == 0, 1, word)), wbad.eq(word == 0)]
                    else:
                        lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
                        m.d.comb += [
                            wval.eq(Mux(value > hi, hi, Mux(value < lo, lo, value))),
                            wbad.eq((value > hi) | (value < lo)),
                        ]
        m.d.comb += self.wdata.eq(wval)

        # -- AER spike loader state --------------------------------------------------------------
        pb = p.event_ptr_bits
        ptr = Signal(pb + 1)
        start = Signal(pb + 1)
        t_ld = Signal(range(p.timesteps + 1))
        remaining = Signal(24)
        written = Signal(range(p.n_in + 1))
        prev = Signal(signed(max(p.n_in.bit_length(), 1) + 2))
        m.d.comb += [
            self.ev_waddr.eq(ptr),
            self.ev_wdata.eq(word[: specs["events"].word_bits]),
            self.hdr_waddr.eq(t_ld),
            self.hdr_wdata.eq(Cat(start[:pb], written)),
        ]

        def finish(code=None):
            if code is not None:
                m.d.sync += status.eq(code)
            m.next = "STATUS"

        m.d.sync += [
            self.fp_start.eq(0),
            self.bp_start.eq(0),
            self.wg_start.eq(0),
            self.upd_start.eq(0),
        ]
        with m.FSM():
            with m.State("COMMAND"):
                m.d.comb += self.s_axis_tready.eq(1)
                with m.If(self.s_axis_tvalid):
                    m.d.sync += [op.eq(word[24:]), arg.eq(word[:24]), status.eq(Status.OK)]
                    m.d.sync += q.eq(word[:4])
                    m.next = "DISPATCH"
            with m.State("DISPATCH"):
                with m.Switch(op):
                    with m.Case(Opcode.INFO):
                        m.d.sync += index.eq(0)
                        m.next = "INFO"
                    with m.Case(Opcode.WRITE):
                        walk_setup(q)
                        writable = [int(x) for x in WRITABLE]
                        with m.If((arg < 16) & Cat(*[q == x for x in writable]).any()):
                            m.next = "WRITE"
                        with m.Else():
                            finish(Status.BAD_ARG)
                    with m.Case(Opcode.READ):
                        walk_setup(q)
                        readable = [int(x) for x in self._readable]
                        with m.If((arg < 16) & Cat(*[q == x for x in readable]).any()):
                            m.next = "READ"
                        with m.Else():
                            finish(Status.BAD_ARG)
                    with m.Case(Opcode.LOAD_SPIKES):
                        m.d.sync += [ptr.eq(0), t_ld.eq(0)]
                        m.next = "SPIKE_COUNT"
                    with m.Case(Opcode.FORWARD):
                        m.d.sync += self.fp_start.eq(1)
                        m.d.sync += [counters["forward"].eq(0), counters["lanes_busy"].eq(0)]
                        m.next = "LAUNCH_FORWARD"
                    with m.Case(Opcode.SET_LABEL):
                        with m.If(arg < p.layer_neurons):
                            m.d.sync += self.label.eq(arg)
                            finish()
                        with m.Else():
                            finish(Status.BAD_ARG)
                    with m.Case(Opcode.BACKWARD):
                        m.d.sync += [self.bp_start.eq(1), self.wg_start.eq(1)]
                        m.d.sync += [
                            self.ext_error.eq(arg[1]),
                            in_backward.eq(1),
                            counters["bp"].eq(0),
                            counters["wg"].eq(0),
                            counters["update"].eq(0),
                            counters["backward"].eq(0),
                        ]
                        m.next = "LAUNCH_BACKWARD"
                    with m.Case(Opcode.UPDATE):
                        m.d.sync += [self.upd_start.eq(1), counters["update"].eq(0)]
                        m.next = "LAUNCH_UPDATE"
                    with m.Case(Opcode.SET_LR):
                        with m.If((arg >= p.lr_min) & (arg <= p.lr_max)):
                            m.d.sync += self.u_sel.eq(arg - p.lr_min)
                            finish()
                        with m.Else():
                            finish(Status.BAD_ARG)
                    with m.Case(Opcode.COUNTERS):
                        m.d.sync += index.eq(0)
                        m.next = "COUNTERS"
                    with m.Default():
                        finish(Status.BAD_OPCODE)
            with m.State("INFO"):
                h = int(p.core_hash, 16)
                words = [MAGIC, h & 0xFFFFFFFF, h >> 32]
                with m.If(resp.w_rdy):
                    m.d.comb += push.eq(1)
                    with m.Switch(index):
                        for n, w in enumerate(words):
                            with m.Case(n):
                                m.d.comb += push_data.eq(w)
                    m.d.sync += index.eq(index + 1)
                    with m.If(index == len(words) - 1):
                        finish()
            with m.State("COUNTERS"):
                with m.If(resp.w_rdy):
                    m.d.comb += push.eq(1)
                    with m.Switch(index):
                        for n, name in enumerate(COUNTERS):
                            with m.Case(n):
                                m.d.comb += push_data.eq(counters[name])
                    m.d.sync += index.eq(index + 1)
                    with m.If(index == len(COUNTERS) - 1):
                        finish()
            with m.State("WRITE"):
                m.d.comb += self.s_axis_tready.eq(1)
                with m.If(self.s_axis_tvalid):
                    for qq, name in WRITABLE.items():
                        m.d.comb += getattr(self, f"wen_{name}").eq(q == int(qq))
                    with m.If(wbad):
                        m.d.sync += status.eq(Status.OUT_OF_RANGE)
                    walk_step()
                    with m.If(walk_last):
                        m.next = "STATUS"
            with m.State("READ"):
                with m.If(room):
                    m.d.comb += issue.eq(1)
                    walk_step()
                    with m.If(walk_last):
                        m.next = "READ_DRAIN"
            with m.State("READ_DRAIN"):
                with m.If(inflight == 0):
                    m.next = "STATUS"
            with m.State("SPIKE_COUNT"):
                m.d.comb += self.s_axis_tready.eq(1)
                with m.If(self.s_axis_tvalid):
                    m.d.sync += [
                        remaining.eq(word[:24]),
                        written.eq(0),
                        start.eq(ptr),
                        prev.eq(-1),
                    ]
                    with m.If(word[24:] != 0):
                        m.d.sync += status.eq(Status.OUT_OF_RANGE)
                    with m.If(word[:24] == 0):
                        m.next = "SPIKE_HEAD"
                    with m.Else():
                        m.next = "SPIKE_INDEX"
            with m.State("SPIKE_INDEX"):
                m.d.comb += self.s_axis_tready.eq(1)
                with m.If(self.s_axis_tvalid):
                    ok = (word < p.n_in) & (word.as_signed() > prev) & (written < p.n_in)
                    with m.If(ok):
                        m.d.comb += self.ev_wen.eq(1)
                        m.d.sync += [ptr.eq(ptr + 1), written.eq(written + 1), prev.eq(word)]
                    with m.Else():
                        m.d.sync += status.eq(Status.OUT_OF_RANGE)
                    m.d.sync += remaining.eq(remaining - 1)
                    with m.If(remaining == 1):
                        m.next = "SPIKE_HEAD"
            with m.State("SPIKE_HEAD"):
                m.d.comb += self.hdr_wen.eq(1)
                m.d.sync += t_ld.eq(t_ld + 1)
                with m.If(t_ld == p.timesteps - 1):
                    m.next = "STATUS"
                with m.Else():
                    m.next = "SPIKE_COUNT"
            # Engine starts are registered (off the decode path); the engine sees start in the
            # LAUNCH cycle and is busy from the next one, when WAIT begins.
            for phase in ("FORWARD", "BACKWARD", "UPDATE"):
                with m.State(f"LAUNCH_{phase}"):
                    m.next = f"WAIT_{phase}"
            with m.State("WAIT_FORWARD"):
                with m.If(~self.fp_busy):
                    m.next = "STATUS"
            with m.State("WAIT_BACKWARD"):
                with m.If(~self.bp_busy & ~self.wg_busy):
                    with m.If(arg[0]):
                        m.d.sync += self.upd_start.eq(1)
                        m.next = "LAUNCH_UPDATE"
                    with m.Else():
                        m.d.sync += in_backward.eq(0)
                        m.next = "STATUS"
            with m.State("WAIT_UPDATE"):
                with m.If(~self.upd_busy):
                    m.d.sync += in_backward.eq(0)
                    m.next = "STATUS"
            with m.State("STATUS"):
                with m.If(resp.w_rdy):
                    m.d.comb += [
                        push.eq(1),
                        push_data.eq(Cat(Const(0, 16), status, op)),
                        push_last.eq(1),
                    ]
                    m.next = "COMMAND"
        return m
