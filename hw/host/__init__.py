"""The host controller of a core: the host port's packets in, the core's answers out.

It is built from parts with one job each:

* :class:`~spikeforge.hw.host.framer.CommandFramer` -- packets, checks, command sequencing,
  ABORT, status words;
* :class:`~spikeforge.hw.host.walker.ValueWalker` -- the address and lane of every value of a
  quantity, in wire order (READ, and the WRITE commit);
* :class:`~spikeforge.hw.host.writer.ValueWriter` -- WRITE packets staged whole, then committed;
* :class:`~spikeforge.hw.host.spikes.SpikeLoader` -- LOAD_SPIKES into the spare event bank;
* :class:`~spikeforge.hw.host.responder.Responder` -- the response FIFO and the READ pipeline;
* :class:`~spikeforge.hw.host.counters.CycleCounters` -- the COUNTERS command's counters.

The protocol is :mod:`spikeforge.hw.protocol`; the memories and engines are the core's.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from spikeforge.hw import rw_check
from spikeforge.hw.datapath import drive_write_ports, index_range, write_port_members
from spikeforge.hw.host.counters import CycleCounters
from spikeforge.hw.host.framer import CommandFramer, engine_members
from spikeforge.hw.host.responder import RESPONSE_DEPTH, Responder, readable_memories
from spikeforge.hw.host.spikes import SpikeLoader
from spikeforge.hw.host.walker import ValueWalker, quantity_layout
from spikeforge.hw.host.writer import ValueWriter
from spikeforge.hw.params import CoreParams
from spikeforge.hw.protocol import (
    BUS_BITS,
    QUANTITIES,
    CoreRules,
    Quantity,
    ReadArg,
    command_signature,
    response_signature,
)

__all__ = ["RESPONSE_DEPTH", "HostController", "quantity_layout", "readable_memories"]


class HostController(wiring.Component):
    """The host side of a :class:`~spikeforge.hw.core.SpikingCore`.

    Ports
    -----
    cmd, rsp : the host port (streams of :data:`~spikeforge.hw.protocol.CommandBeat` and
        :data:`~spikeforge.hw.protocol.ResponseBeat`).
    raddr : the word address of a READ (every memory's shared read port, while engines idle).
    waddr, wlane, wdata, wen_<memory> : one committed WRITE value.
    ev_*, hdr_*, bank : LOAD_SPIKES writes and the event bank the engines read (cores that load
        their spikes).
    fp_avail, fp_written : the timesteps of a running LOAD_SPIKES whose header is written
        (``T`` when none runs) and the events of the latest one written so far: how far a
        FORWARD streamed with it (``fp_spare``) may go.
    *_start, *_busy, lane_work, label, ext_error, u_sel, abort : the engines' control.
    rd_<memory> : the read words of every memory a quantity lives in.
    ren_<memory> : a READ uses the word at ``raddr`` this cycle (the read-during-write checks).
    rw_checked : (simulation builds) the checked accesses of the staging buffer and the rate
        encoder's memory.
    """

    def __init__(self, params: CoreParams):
        self._p = p = CoreParams.checked(params)
        specs = p.memory_map
        addr_bits = max(s.addr_bits for s in p.memories if s.owner == "core")
        members = {
            "cmd": In(command_signature()),
            "rsp": Out(response_signature()),
            "raddr": Out(addr_bits),
            "waddr": Out(addr_bits),
            "wlane": Out(index_range(p.lanes)),
            "wdata": Out(BUS_BITS),
            **engine_members(p),
            "lane_work": In(1),
            **{f"wen_{QUANTITIES[q].memory}": Out(1) for q in CoreRules.of(p).writable},
            **{f"rd_{n}": In(specs[n].word_bits) for n in readable_memories(p)},
            **{f"ren_{n}": Out(1) for n in readable_memories(p)},
            **rw_check.members(),
        }
        if p.loads_spikes:
            members |= {
                **write_port_members("ev", specs["events"]),
                **write_port_members("hdr", specs["event_heads"]),
                "bank": Out(1),
                "fp_avail": Out(range(p.timesteps + 1)),
                "fp_written": Out(p.event_ptr_bits + 1),
            }
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        p = self._p
        m.submodules.framer = framer = CommandFramer(p)
        m.submodules.walker = walker = ValueWalker(p)
        m.submodules.writer = writer = ValueWriter(p)
        m.submodules.responder = responder = Responder(p)
        m.submodules.counters = counters = CycleCounters()

        wiring.connect(m, wiring.flipped(self.cmd), framer.cmd)
        wiring.connect(m, responder.rsp, wiring.flipped(self.rsp))
        wiring.connect(m, framer.words, responder.words)
        wiring.connect(m, framer.wr_beat, writer.beat)

        # The walker: a READ's (framer) or a WRITE commit's (writer); never both at once.
        read_arg = data.View(ReadArg, framer.arg.as_value())
        m.d.comb += [
            walker.setup.eq(framer.walk_setup | writer.walk_setup),
            walker.step.eq(framer.walk_step | writer.walk_step),
            walker.q.eq(framer.arg.quantity),
            walker.row.eq(Mux(framer.chunk, framer.arg.row, read_arg.row)),
            walker.rows.eq(Mux(framer.chunk, writer.rows, read_arg.rows)),
            framer.walk_ready.eq(walker.ready),
            framer.walk_last.eq(walker.last),
            writer.walk_ready.eq(walker.ready),
            writer.walk_last.eq(walker.last),
            writer.walk_addr.eq(walker.addr),
            writer.walk_lane.eq(walker.lane),
            self.raddr.eq(walker.addr),
        ]
        # READ: the responder reads the value the walker points at.
        m.d.comb += [
            responder.issue.eq(framer.issue),
            responder.q.eq(framer.arg.quantity),
            responder.lane.eq(walker.lane),
            framer.room.eq(responder.room),
            framer.idle.eq(responder.idle),
        ]
        for name in readable_memories(p):
            m.d.comb += getattr(responder, f"rd_{name}").eq(getattr(self, f"rd_{name}"))
            read_here = [q for q in CoreRules.of(p).shapes if QUANTITIES[q].memory == name]
            here = Cat(*(framer.arg.quantity == q for q in read_here)).any()
            live = framer.issue & here
            if name == "weights" and p.dense_weights:  # the read of a read-merge-write
                live |= writer.walk_step & (framer.arg.quantity == Quantity.WEIGHTS)
            m.d.comb += getattr(self, f"ren_{name}").eq(live)
        # WRITE: stage, then commit the value the walker points at.
        m.d.comb += [
            writer.start.eq(framer.wr_start),
            writer.arg.eq(framer.arg),
            writer.commit.eq(framer.wr_commit),
            framer.wr_done.eq(writer.done),
            framer.wr_ok.eq(writer.ok),
            framer.wr_ended.eq(writer.ended),
            framer.wr_clipped.eq(writer.clipped),
            framer.wr_committed.eq(writer.committed),
            self.waddr.eq(writer.waddr),
            self.wlane.eq(writer.wlane),
            self.wdata.eq(writer.wdata),
        ]
        for q in CoreRules.of(p).writable:
            wen = getattr(self, f"wen_{QUANTITIES[q].memory}")
            m.d.comb += wen.eq(writer.wen & (framer.arg.quantity == q))
        # LOAD_SPIKES (cores that load their own spikes).
        if p.loads_spikes:
            m.submodules.loader = loader = SpikeLoader(p)
            wiring.connect(m, framer.ld_beat, loader.beat)
            m.d.comb += [
                loader.start.eq(framer.ld_start),
                loader.inputs.eq(framer.ld_inputs),
                framer.ld_done.eq(loader.done),
                framer.ld_status.eq(loader.status),
                framer.ld_ended.eq(loader.ended),
                self.bank.eq(loader.bank),
                self.fp_avail.eq(loader.avail),
                self.fp_written.eq(loader.written),
            ]
            drive_write_ports(m, self, loader, "ev", "hdr")
        # Engines (the framer's control, passed through) and counters.
        for name, member in engine_members(p).items():
            outer, inner = getattr(self, name), getattr(framer, name)
            m.d.comb += inner.eq(outer) if member.flow == In else outer.eq(inner)
        m.d.comb += [
            counters.fp_busy.eq(self.fp_busy),
            counters.lane_work.eq(self.lane_work),
            counters.bp_busy.eq(self.bp_busy),
            counters.wg_busy.eq(self.wg_busy),
            counters.upd_busy.eq(self.upd_busy),
            counters.in_backward.eq(framer.in_backward),
            counters.clear_forward.eq(framer.clear_forward),
            counters.clear_backward.eq(framer.clear_backward),
            counters.clear_update.eq(framer.clear_update),
            counters.select.eq(framer.select),
            framer.counter.eq(counters.value),
        ]
        if rw_check.enabled():
            parts = [writer.rw_checked]
            if p.loads_spikes and p.rate_encoder:
                parts.append(loader.rw_checked)
            m.d.comb += self.rw_checked.eq(sum(parts[1:], start=parts[0]))
        return m
