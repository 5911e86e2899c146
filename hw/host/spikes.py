"""The spike loader: LOAD_SPIKES packets into the spare bank of the event memories.

Payload per timestep ``t = 0 .. T-1``: a count ``c`` (at most ``n_in``; a count word with
reserved bits set is above it), then ``c`` input indices, ascending, each below ``n_in``
(address-event representation). The events of ``t`` are written to the event memory and their
``(start, count)`` to the event header of ``t`` -- always in the bank the engines do not read.
Only a packet whose ``last`` word is exactly its final index (or final count) flips the banks,
so the engines see every spike of a right packet and nothing of a wrong one.

Timing: one word per cycle, ``1 + words`` cycles from the command word to ``done``.
``done`` is combinational, on the word that decides the outcome; the banks flip at its end.
Timestep ``t``'s header is written in the cycle its count word is taken (the count is known
then; a packet that turns out wrong later is never used: the banks do not flip, and a FORWARD
streamed with it stops). ``avail`` counts the timesteps whose header is written, from the cycle
after their count word (``T`` while no LOAD_SPIKES runs); ``written`` counts the events of this
load written so far (each one checked: below ``n_in``, ascending), from the cycle after its
index word; it keeps its value after the load. A FORWARD streamed with the load
(:data:`~spikeforge.hw.protocol.LOAD_FORWARD`) reads timestep ``t``'s header once
``avail > t`` and event ``k`` of the bank once ``written > k``: a write reaches the block RAM
the cycle after the loader's, and so does the engine's read address, so the engine's read
comes a cycle after the write, never in the same one.

On a core with the rate encoder, a LOAD_INPUTS packet (``start`` with ``inputs``) goes to the
:class:`~spikeforge.hw.host.encoder.RateEncoder`, which writes the spare bank the same way; the
banks flip the same way, on its ``OK``.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from spikeforge.hw import rw_check
from spikeforge.hw.datapath import drive_write_ports, write_port_members
from spikeforge.hw.host.encoder import RateEncoder
from spikeforge.hw.params import CoreParams
from spikeforge.hw.protocol import Status, command_signature

__all__ = ["SpikeLoader"]


class SpikeLoader(wiring.Component):
    """Parse, check and write LOAD_SPIKES payloads; ``bank`` is the bank the engines read.

    Ports
    -----
    start : In(1)
        A LOAD_SPIKES begins (its payload follows on ``beat``); with ``inputs`` a LOAD_INPUTS.
    inputs : In(1)
        (Cores with the rate encoder.)
    beat : In(command stream)
    done, status, ended : Out
        The packet is decided (pulse), with ``OK``, ``BAD_LENGTH`` or ``BAD_SPIKES``; its last
        word was taken (else the framer drains the rest).
    bank : Out(1)
        The event bank the FP and WG engines read.
    avail : Out
        Timesteps of the running LOAD_SPIKES whose header is written; ``T`` when idle.
    written : Out
        Events of the latest LOAD_SPIKES written (and checked) so far, within the bank.
    ev_*, hdr_* : Out
        Writes of the event and event-header memories (bank offset included).
    """

    def __init__(self, params: CoreParams):
        self._p = p = CoreParams.checked(params)
        if not p.loads_spikes:
            raise ValueError("a core fed by a spike link has no spike loader")
        mem = p.memory_map
        super().__init__(
            {
                "start": In(1),
                "inputs": In(1),
                "beat": In(command_signature()),
                "done": Out(1),
                "status": Out(Status),
                "ended": Out(1),
                "bank": Out(1),
                "avail": Out(range(p.timesteps + 1)),
                "written": Out(p.event_ptr_bits + 1),
                **write_port_members("ev", mem["events"]),
                **write_port_members("hdr", mem["event_heads"]),
                **(rw_check.members() if p.rate_encoder else {}),
            }
        )

    def elaborate(self, platform):
        m = Module()
        p = self._p
        T, n_in = p.timesteps, p.n_in
        pb = p.event_ptr_bits
        ib = max(1, (n_in - 1).bit_length())
        cb = max(1, n_in.bit_length())  # the header's count field
        ptr = Signal(pb + 1)
        t = Signal(range(T + 1))  # COUNT: the timestep whose count comes; INDEX: the one after
        remaining = Signal(range(n_in + 1))
        prev = Signal(ib)
        first = Signal()
        beat = self.beat.payload
        word = beat.data
        spare = ~self.bank
        m.d.comb += [
            self.ev_waddr.eq(Mux(spare, T * n_in, 0) + ptr),
            self.ev_wdata.eq(word[:ib]),
            self.hdr_waddr.eq(Mux(spare, T, 0) + t),
            self.hdr_wdata.eq(Cat(ptr[:pb], word[:cb])),
            self.written.eq(ptr),
        ]
        if p.rate_encoder:
            self._encoder(m)

        def finish(status, ended):
            m.d.comb += [self.done.eq(1), self.status.eq(status), self.ended.eq(ended)]
            m.next = "IDLE"

        def next_timestep(final):
            """The timestep's last word was taken and right: the next count, or the end."""
            with m.If(final & ~beat.last):
                finish(Status.BAD_LENGTH, 0)  # complete, but the packet goes on
            with m.Elif(~final & beat.last):
                finish(Status.BAD_LENGTH, 1)
            with m.Elif(final):
                m.d.sync += self.bank.eq(spare)
                finish(Status.OK, 1)
            with m.Else():
                m.next = "COUNT"

        with m.FSM() as fsm:
            m.d.comb += self.avail.eq(Mux(fsm.ongoing("IDLE"), T, t))
            with m.State("IDLE"):
                with m.If(self.start & ~self.inputs):
                    m.d.sync += [ptr.eq(0), t.eq(0)]
                    m.next = "COUNT"
            with m.State("COUNT"):
                m.d.comb += self.beat.ready.eq(1)
                with m.If(self.beat.valid):
                    m.d.sync += [remaining.eq(word), first.eq(1)]
                    with m.If(beat.abandon):
                        finish(Status.BAD_LENGTH, 1)
                    with m.Elif(word > n_in):
                        finish(Status.BAD_SPIKES, beat.last)
                    with m.Else():
                        # The header now: the count is known, and the events follow at ptr.
                        m.d.comb += self.hdr_wen.eq(1)
                        m.d.sync += t.eq(t + 1)
                        with m.If(word != 0):
                            with m.If(beat.last):
                                finish(Status.BAD_LENGTH, 1)
                            with m.Else():
                                m.next = "INDEX"
                        with m.Else():
                            next_timestep(t == T - 1)
            with m.State("INDEX"):
                m.d.comb += self.beat.ready.eq(1)
                with m.If(self.beat.valid):
                    ascending = first | (word[:ib] > prev)
                    with m.If(beat.abandon):
                        finish(Status.BAD_LENGTH, 1)
                    with m.Elif((word >= n_in) | ~ascending):
                        finish(Status.BAD_SPIKES, beat.last)
                    with m.Else():
                        m.d.comb += self.ev_wen.eq(1)
                        m.d.sync += [
                            ptr.eq(ptr + 1),
                            prev.eq(word[:ib]),
                            first.eq(0),
                            remaining.eq(remaining - 1),
                        ]
                        with m.If(remaining != 1):
                            with m.If(beat.last):
                                finish(Status.BAD_LENGTH, 1)
                        with m.Else():
                            next_timestep(t == T)
        return m

    def _encoder(self, m: Module) -> None:
        """The rate encoder, sharing the payload, the memory ports and the outcome."""
        m.submodules.encoder = enc = RateEncoder(self._p)
        encoding = Signal()
        with m.If(self.start):
            m.d.sync += encoding.eq(self.inputs)
        m.d.comb += [
            enc.start.eq(self.start & self.inputs),
            enc.spare.eq(~self.bank),
            enc.beat.payload.eq(self.beat.payload),
        ]
        with m.If(encoding):
            m.d.comb += [
                enc.beat.valid.eq(self.beat.valid),
                self.beat.ready.eq(enc.beat.ready),
                self.done.eq(enc.done),
                self.status.eq(enc.status),
                self.ended.eq(enc.ended),
            ]
            drive_write_ports(m, self, enc, "ev", "hdr")
            with m.If(enc.done & (enc.status == Status.OK)):
                m.d.sync += self.bank.eq(~self.bank)
        if rw_check.enabled():
            m.d.comb += self.rw_checked.eq(enc.rw_checked)
