"""The value writer: a WRITE packet is staged whole, checked, and only then written.

While the packet arrives, every value is saturated to its quantity's width (an LFSR state of 0
becomes 1; either sets ``clipped``) and stored in the staging buffer (a block RAM of
``write_buffer`` words). The packet is right when its ``last`` word ends a row and it holds at
most :meth:`~spikeforge.hw.protocol.CoreRules.chunk_rows` rows, none past the quantity's last
row; then ``commit`` walks the packet's rows (``rows``) with the
:class:`~spikeforge.hw.host.walker.ValueWalker` and writes one value per cycle.
A short, long or abandoned packet never reaches a memory: a WRITE writes every value of its
packet or none.

Timing: ``done`` is combinational, on the packet's last word (or on the word that should have
been its last). A word passes two register stages (the word; whether it is out of range and
what replaces it) before it is stored, which keeps the comparisons off the host port's and the
block RAM's paths, so the commit starts two cycles after ``commit``, when the last value is in
the buffer: the walker's set-up and row skip, one cycle per value and
:data:`STAGE_LATENCY` cycles to drain; ``committed`` pulses with the last write. WEIGHTS on a
core with :attr:`~spikeforge.hw.params.CoreParams.dense_weights` go through a read-merge-write
in the core; when a word comes back sooner than every
:data:`~spikeforge.hw.params.RMW_SPACING` values (``n_in`` below it), the commit steps once per
``RMW_SPACING`` cycles.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from spikeforge.hw import rw_check
from spikeforge.hw.datapath import delay_line, index_range
from spikeforge.hw.params import RMW_SPACING, CoreParams
from spikeforge.hw.protocol import (
    BUS_BITS,
    CoreRules,
    Quantity,
    WriteArg,
    command_signature,
)

__all__ = ["STAGE_LATENCY", "ValueWriter"]

STAGE_LATENCY = 2
"""Cycles from a staging-buffer address to its word: the block RAM and a register behind it."""


class ValueWriter(wiring.Component):
    """Staging buffer, length check and commit of WRITE packets.

    Ports
    -----
    start : In(1)
        A WRITE begins; ``arg`` is its (checked) argument.
    beat : In(command stream)
        The packet's payload words (always taken).
    done, ok, ended, clipped, rows : Out
        The packet is over (pulse); its length was right; its last word was taken (else the
        framer drains the rest); a value was saturated; the whole rows it carries.
    commit : In(1)
        Write the staged values (after ``ok``).
    walk_* : Out / In
        The walker during a commit: set-up, step; its ready, address, lane and last.
    wen, waddr, wlane, wdata, committed : Out
        One value's write; the last one was written (pulse).
    """

    def __init__(self, params: CoreParams):
        self._p = p = CoreParams.checked(params)
        self._rules = CoreRules.of(p)
        spec = p.memory_map["stage"]
        self._spec = spec
        addr_bits = max(s.addr_bits for s in p.memories if s.owner == "core")
        super().__init__(
            {
                "start": In(1),
                "arg": In(WriteArg),
                "beat": In(command_signature()),
                "done": Out(1),
                "ok": Out(1),
                "ended": Out(1),
                "clipped": Out(1),
                "rows": Out(range(max(map(self._rules.chunk_rows, self._rules.writable)) + 1)),
                "commit": In(1),
                "walk_setup": Out(1),
                "walk_step": Out(1),
                "walk_ready": In(1),
                "walk_addr": In(addr_bits),
                "walk_lane": In(index_range(p.lanes)),
                "walk_last": In(1),
                "wen": Out(1),
                "waddr": Out(addr_bits),
                "wlane": Out(index_range(p.lanes)),
                "wdata": Out(BUS_BITS),
                "committed": Out(1),
                **rw_check.members(),
            }
        )

    def elaborate(self, platform):
        m = Module()
        rules = self._rules
        depth = self._spec.depth
        m.submodules.stage = stage = Memory(shape=BUS_BITS, depth=max(depth, 2), init=[])
        wr, rd = stage.write_port(), stage.read_port()

        # -- staging --------------------------------------------------------------------------
        q = Signal(Quantity)
        count = Signal(range(depth + 1))  # values taken: the staging address
        # The packet's length as rows x row length, counted without a multiplier: the rows it
        # carries (fewer than chunk_rows at the end of the quantity) and the position in a row.
        big_row = max(max(shape[1] for shape in rules.shapes.values()), 2)
        rows = Signal(range(max(rules.chunk_rows(q) for q in rules.writable) + 1))
        row_len = Signal(range(big_row + 1))
        rows_seen = self.rows  # whole rows taken so far
        col = Signal(range(big_row + 1))
        m.d.comb += self.beat.ready.eq(1)
        # Two register stages between the host port and the buffer: the word (A), then whether
        # it is out of range and what replaces it (B); the buffer takes the result (C).
        word = Signal(BUS_BITS)
        replace = Signal()
        replacement = Signal(BUS_BITS)
        word_b = Signal(BUS_BITS)
        store = Signal()  # a word is taken this cycle
        stores = Signal(2)  # a word in stage A, in stage B
        where_a, where_b = Signal.like(count), Signal.like(count)
        with m.Switch(q):
            for quantity in rules.writable:
                with m.Case(quantity):
                    if quantity == Quantity.LFSR:  # a zero state would never step: 1
                        m.d.sync += [replace.eq(word == 0), replacement.eq(1)]
                    else:
                        lo, hi = rules.value_range(quantity)
                        signed = word.as_signed()
                        m.d.sync += [
                            replace.eq((signed > hi) | (signed < lo)),
                            replacement.eq(Mux(signed > hi, hi, lo)),
                        ]
        m.d.sync += [
            word.eq(self.beat.payload.data),
            word_b.eq(word),
            where_a.eq(count),
            where_b.eq(where_a),
            stores.eq(Cat(store, stores[0])),
        ]
        m.d.comb += [
            wr.addr.eq(where_b),
            wr.data.eq(Mux(replace, replacement, word_b)),
            wr.en.eq(stores[1]),
        ]
        with m.If(stores[1] & replace):
            m.d.sync += self.clipped.eq(1)
        with m.If(self.start):
            with m.Switch(self.arg.quantity):
                for quantity in rules.writable:
                    outer, inner = rules.shapes[quantity]
                    chunk = rules.chunk_rows(quantity)
                    with m.Case(quantity):
                        left = outer - self.arg.row  # >= 1: the argument was checked
                        m.d.sync += [rows.eq(Mux(left >= chunk, chunk, left)), row_len.eq(inner)]
            m.d.sync += [
                q.eq(self.arg.quantity),
                count.eq(0),
                rows_seen.eq(0),
                col.eq(0),
                self.clipped.eq(0),
            ]
        with m.Elif(self.beat.valid):
            m.d.comb += store.eq(1)
            m.d.sync += [count.eq(count + 1), col.eq(col + 1)]
            with m.If(col == row_len - 1):
                m.d.sync += [col.eq(0), rows_seen.eq(rows_seen + 1)]
            stop = self.beat.payload.last | self.beat.payload.abandon
            full = (col == row_len - 1) & (rows_seen == rows - 1)
            with m.If(stop | full):
                m.d.comb += [
                    self.done.eq(1),
                    self.ok.eq(
                        self.beat.payload.last & (col == row_len - 1) & ~self.beat.payload.abandon
                    ),
                    self.ended.eq(stop),
                ]

        # -- commit: walk the rows, write one staged value per cycle -------------------------
        walking = Signal()
        index = Signal(range(depth + 1))
        # ``commit`` two cycles late: the packet's last value is in the buffer by then.
        begin = delay_line(m, self.commit, 2, "wbegin")[-1]
        p = self._p
        step_ok = Signal(init=1)  # pacing of a dense weight memory's read-merge-writes
        m.d.comb += [
            self.walk_setup.eq(begin),
            self.walk_step.eq(walking & self.walk_ready & step_ok),
            rd.addr.eq(index),
        ]
        if p.dense_weights and p.n_in < RMW_SPACING and Quantity.WEIGHTS in rules.writable:
            # A word comes back every n_in values: one value per RMW_SPACING cycles.
            pace = Signal(range(RMW_SPACING))
            m.d.comb += step_ok.eq((pace == 0) | (q != Quantity.WEIGHTS))
            with m.If(self.walk_step):
                m.d.sync += pace.eq(RMW_SPACING - 1)
            with m.Elif(pace != 0):
                m.d.sync += pace.eq(pace - 1)
        with m.If(begin):
            m.d.sync += [walking.eq(1), index.eq(0)]
        with m.Elif(self.walk_step):
            m.d.sync += index.eq(index + 1)
            with m.If(self.walk_last):
                m.d.sync += walking.eq(0)
        data = Signal(BUS_BITS)
        m.d.sync += data.eq(rd.data)
        valid = delay_line(m, self.walk_step, STAGE_LATENCY, "wv")[-1]
        last = delay_line(m, self.walk_step & self.walk_last, STAGE_LATENCY, "wl")[-1]
        addr = delay_line(m, self.walk_addr, STAGE_LATENCY, "wa")[-1]
        lane = delay_line(m, self.walk_lane, STAGE_LATENCY, "wln")[-1]
        m.d.comb += [
            self.wen.eq(valid),
            self.waddr.eq(addr),
            self.wlane.eq(lane),
            self.wdata.eq(data),
            self.committed.eq(last),
        ]
        if rw_check.enabled():  # the commit reads what the packet stored, never both at once
            checks = rw_check.RwChecks(m, "writer")
            checks.memory("stage", rd.addr, self.walk_step, wr.addr, wr.en)
            checks.count(self.rw_checked)
        return m
