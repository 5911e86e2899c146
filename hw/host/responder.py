"""The responder: every word a core sends to the host goes through its response FIFO.

Two writers share the FIFO, never at the same time: the READ pipeline (one value per cycle) and
the ``words`` stream (INFO and COUNTERS data words, status words). The READ pipeline::

    address (0) -> memory word (READ_LATENCY) -> its lane, per memory (+1) -> the value (+2)

Selecting the lane next to each memory keeps only narrow values travelling to the one quantity
multiplexer. ``room`` says the FIFO can take one more read with every read in flight; it is
registered, so it is one cycle stale, and two words of margin (one read issued and one word
pushed meanwhile) keep it conservative: backpressure on ``rsp`` never loses or duplicates a word.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import data, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from spikeforge.hw.datapath import READ_LATENCY, delay_line, index_range, membrane_layout
from spikeforge.hw.params import CoreParams
from spikeforge.hw.protocol import BUS_BITS, QUANTITIES, CoreRules, Quantity, response_signature

__all__ = ["READ_IN_FLIGHT", "RESPONSE_DEPTH", "Responder", "readable_memories"]

RESPONSE_DEPTH = 16
"""Words of the response FIFO."""
READ_IN_FLIGHT = READ_LATENCY + 2
"""Cycles from issuing a read to its value entering the FIFO."""


def readable_memories(p: CoreParams) -> list[str]:
    """The memories some readable quantity of ``p`` lives in (sorted)."""
    return sorted({QUANTITIES[q].memory for q in CoreRules.of(p).shapes})


class Responder(wiring.Component):
    """Response FIFO, READ pipeline and word pushes of a core's host controller.

    Ports
    -----
    rsp : Out(response stream)
        To the host.
    words : In(response stream)
        Data and status words (taken whenever the FIFO has a free entry and no read value
        arrives in the same cycle).
    issue, q, lane : In
        Read the value at the memory address issued this cycle: quantity ``q`` (held while
        reads are in flight), lane ``lane``.
    rd_<memory> : In
        The memories' read words (``READ_LATENCY`` after the address).
    room, idle : Out
        The FIFO can take one more read; no read is in flight.
    """

    def __init__(self, params: CoreParams):
        self._p = p = CoreParams.checked(params)
        specs = p.memory_map
        super().__init__(
            {
                "rsp": Out(response_signature()),
                "words": In(response_signature()),
                "issue": In(1),
                "q": In(Quantity),
                "lane": In(index_range(p.lanes)),
                "room": Out(1),
                "idle": Out(1),
                **{f"rd_{n}": In(specs[n].word_bits) for n in readable_memories(p)},
            }
        )

    def elaborate(self, platform):
        m = Module()
        p = self._p
        specs = p.memory_map
        m.submodules.fifo = fifo = SyncFIFOBuffered(width=BUS_BITS + 1, depth=RESPONSE_DEPTH)
        m.d.comb += [
            self.rsp.payload.eq(fifo.r_data),
            self.rsp.valid.eq(fifo.r_rdy),
            fifo.r_en.eq(self.rsp.ready),
        ]

        RL = READ_LATENCY
        valid = delay_line(m, self.issue, READ_IN_FLIGHT, "hv")
        lane_rl = delay_line(m, self.lane, RL, "hlane")[-1]
        fields = {}
        for name in readable_memories(p):
            width = specs[name].width
            fields[name] = Signal(width, name=f"hsel_{name}")
            m.d.sync += fields[name].eq(getattr(self, f"rd_{name}").word_select(lane_rl, width))
        value = Signal(BUS_BITS)
        with m.Switch(self.q):
            for q in CoreRules.of(p).shapes:
                info = QUANTITIES[q]
                field = fields[info.memory]
                with m.Case(q):
                    if info.part is not None:  # a field of the membrane history's lanes
                        part = data.View(membrane_layout(p.net.v_bits), field)[info.part]
                        m.d.sync += value.eq(part)
                    elif info.signed:
                        m.d.sync += value.eq(field.as_signed())
                    else:
                        m.d.sync += value.eq(field)
        inflight = Signal(range(READ_IN_FLIGHT + 1))
        m.d.sync += inflight.eq(inflight + self.issue - valid[-1])
        m.d.comb += self.idle.eq(inflight == 0)
        m.d.sync += self.room.eq(fifo.level + inflight < RESPONSE_DEPTH - 3)

        with m.If(valid[-1]):
            m.d.comb += [fifo.w_en.eq(1), fifo.w_data.eq(Cat(value, 0))]
        with m.Else():
            m.d.comb += [
                self.words.ready.eq(fifo.w_rdy),
                fifo.w_en.eq(self.words.valid),
                fifo.w_data.eq(self.words.payload),
            ]
        return m
