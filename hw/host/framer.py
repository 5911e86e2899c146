"""The command framer: one packet at a time, checked before anything runs, one status word each.

It reads the command word, checks it against the core's :class:`~spikeforge.hw.protocol.CoreRules`
(the same rule objects the software check uses) and either rejects the packet -- it drains the
rest up to ``last`` and answers ``BAD_OPCODE``, ``BAD_ARG`` or ``BAD_LENGTH`` -- or runs the
command: it lends the rest of the packet to the value writer (WRITE) or the spike loader
(LOAD_SPIKES, LOAD_INPUTS), walks a READ, starts and waits for the engines, or pushes INFO and
COUNTERS words.
Every packet ends with exactly one status word.

LOAD_SPIKES with :data:`~spikeforge.hw.protocol.LOAD_FORWARD` starts the FP engine with the
load (on the bank being loaded; the loader's ``avail`` tells it how far it may go) and answers
once FORWARD is done; a bad payload pulses ``abort`` and answers the load's status.

While a command runs (an engine, or a READ), the framer takes the next packet's first word into
a one-word holding register (``cmd.ready`` depends only on registers, never on the word): an
ABORT packet there pulses ``abort`` the next cycle (every engine and the core's links back to
idle), and the running command answers ``ABORTED`` before ABORT answers ``OK``. Any other
packet waits there until the command is done; the rest of its words wait on the stream.

Timing (cycles from the command word's handshake): the argument rules are evaluated as the
word is taken and registered; the decision takes one cycle (``DISPATCH``);
an engine sees its registered start one cycle later (``LAUNCH``) and is busy from the next; the
status word enters the response FIFO the cycle after the engines are done.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from spikeforge.hw.datapath import index_range
from spikeforge.hw.params import CoreParams
from spikeforge.hw.protocol import (
    BUS_BITS,
    COUNTERS,
    MAGIC,
    CommandBeat,
    CommandWord,
    CoreRules,
    Opcode,
    Payload,
    Status,
    StatusWord,
    WriteArg,
    command,
    command_signature,
    response_signature,
)

__all__ = ["CommandFramer", "engine_members"]


def engine_members(p: CoreParams) -> dict:
    """The engines' control, as the framer drives it: registered start pulses, busy flags, the
    ABORT pulse and the registers the engines read (``fp_spare``: the FORWARD started is
    streamed with a LOAD_SPIKES and reads the bank being loaded)."""
    return {
        "fp_start": Out(1),
        "fp_spare": Out(1),
        "bp_start": Out(1),
        "wg_start": Out(1),
        "upd_start": Out(1),
        "fp_busy": In(1),
        "bp_busy": In(1),
        "wg_busy": In(1),
        "upd_busy": In(1),
        "abort": Out(1),
        "label": Out(index_range(p.layer_neurons)),
        "ext_error": Out(1),
        "u_sel": Out(index_range(p.lr_range)),
    }


def _length_ok(spec, single):
    """A command's packet length rule: one word without payload, more with one."""
    return single if spec.payload is Payload.NONE else ~single


class CommandFramer(wiring.Component):
    """Packet framing, argument and length checks, command sequencing and status words.

    Ports
    -----
    cmd : In(command stream)
        The host's packets.
    words : Out(response stream)
        Data words of INFO and COUNTERS and every status word (to the responder).
    wr_*, ld_* : the value writer's and the spike loader's control, and the payload lent to them.
    arg, chunk, walk_*, issue, room, idle : the READ walk and the WRITE commit's walker set-up.
    *_start, *_busy : engine handshakes; ``abort`` pulses when an ABORT packet is taken.
    label, ext_error, u_sel : registers the engines read.
    clear_*, in_backward, select, counter : the cycle counters.
    """

    def __init__(self, params: CoreParams):
        self._p = p = CoreParams.checked(params)
        self._rules = CoreRules.of(p)
        super().__init__(
            {
                "cmd": In(command_signature()),
                "words": Out(response_signature()),
                # payload consumers
                "wr_beat": Out(command_signature()),
                "wr_start": Out(1),
                "wr_done": In(1),
                "wr_ok": In(1),
                "wr_ended": In(1),
                "wr_clipped": In(1),
                "wr_commit": Out(1),
                "wr_committed": In(1),
                "ld_beat": Out(command_signature()),
                "ld_start": Out(1),
                "ld_inputs": Out(1),
                "ld_done": In(1),
                "ld_status": In(Status),
                "ld_ended": In(1),
                # READ
                "arg": Out(WriteArg),
                "chunk": Out(1),
                "walk_setup": Out(1),
                "walk_step": Out(1),
                "walk_ready": In(1),
                "walk_last": In(1),
                "issue": Out(1),
                "room": In(1),
                "idle": In(1),
                **engine_members(p),
                # counters
                "clear_forward": Out(1),
                "clear_backward": Out(1),
                "clear_update": Out(1),
                "in_backward": Out(1),
                "select": Out(range(len(COUNTERS))),
                "counter": In(BUS_BITS),
            }
        )

    def elaborate(self, platform):
        m = Module()
        rules = self._rules
        beat = self.cmd.payload
        cmd = Signal(CommandWord)
        single = Signal()  # the command word was the packet's last word
        abandoned = Signal()
        status = Signal(Status)
        then_abort = Signal()  # after this status, ABORT's own OK
        update_after = Signal()
        streamed = Signal()  # a LOAD_SPIKES with LOAD_FORWARD: FORWARD runs beside the load
        self._streamed = streamed
        index = Signal(range(max(len(COUNTERS), 3) + 1))
        arg_ok = {code: Signal(name=f"arg_ok_{code.name}") for code in rules.commands}
        op, arg = cmd.opcode, cmd.arg
        m.d.comb += [self.arg.eq(arg), self.chunk.eq(op == Opcode.WRITE)]
        answer = Signal(StatusWord)  # the status word of this packet (a core leaves core = 0)
        m.d.comb += [answer.opcode.eq(op), answer.status.eq(status), answer.core.eq(0)]
        # While a command runs, the next packet's first word is taken into ``held`` (so
        # ``cmd.ready`` never depends on the word); an ABORT packet there stops the command.
        held = Signal()
        held_beat = Signal(CommandBeat)
        held_abort = Signal()  # the held word is an intact one-word ABORT packet (registered
        # with it, so the 32-bit comparison stays off the paths ``aborting`` stops)
        aborting = held & held_abort
        m.d.sync += [
            self.fp_start.eq(0),
            self.bp_start.eq(0),
            self.wg_start.eq(0),
            self.upd_start.eq(0),
            self.abort.eq(0),
        ]
        for consumer in (self.wr_beat, self.ld_beat):
            m.d.comb += consumer.payload.eq(beat)

        def lend(consumer):
            m.d.comb += [consumer.valid.eq(self.cmd.valid), self.cmd.ready.eq(consumer.ready)]

        def end(code, ended):
            """Answer ``code``; first drain the packet unless its last word is ``ended``."""
            m.d.sync += status.eq(code)
            with m.If(ended):
                m.next = "STATUS"
            with m.Else():
                m.next = "DRAIN"

        def abortable(after: str):
            """Hold the next packet's first word; an ABORT packet stops the running command,
            which answers ABORTED before ABORT answers OK."""
            m.d.comb += self.cmd.ready.eq(~held)
            with m.If(self.cmd.valid & ~held):
                m.d.sync += [
                    held.eq(1),
                    held_beat.eq(beat),
                    held_abort.eq((beat.data == command(Opcode.ABORT)) & beat.last & ~beat.abandon),
                ]
            with m.If(aborting):
                m.d.sync += [
                    held.eq(0),
                    self.abort.eq(1),
                    status.eq(Status.ABORTED),
                    then_abort.eq(1),
                    self.in_backward.eq(0),
                ]
                m.next = after

        span_ok = Signal()  # READ's span check, registered from the command word during
        # DISPATCH for READ_SPAN: keeps the adder off the path from the arriving word
        if Opcode.READ in rules.commands:
            m.d.sync += span_ok.eq(rules.commands[Opcode.READ].arg.span_ok(arg))

        with m.FSM():
            with m.State("HEADER"):
                first = Signal(CommandBeat)  # the packet's first word: held, or arriving now
                word = Signal(CommandWord)
                m.d.comb += [
                    self.cmd.ready.eq(~held),
                    first.eq(Mux(held, held_beat, beat)),
                    word.eq(first.data),
                ]
                with m.If(held | self.cmd.valid):
                    m.d.sync += [
                        held.eq(0),
                        cmd.eq(first.data),
                        single.eq(first.last | first.abandon),
                        abandoned.eq(first.abandon),
                        status.eq(Status.OK),
                    ]
                    # Every command's argument rule on this word, registered for DISPATCH;
                    # READ's span (an adder) is checked from the registered word in READ_SPAN.
                    for code, spec in rules.commands.items():
                        head = spec.arg.head_ok if code == Opcode.READ else spec.arg.ok
                        m.d.sync += arg_ok[code].eq(head(word.arg))
                    m.next = "DISPATCH"
            with m.State("DISPATCH"):
                with m.If(abandoned):
                    end(Status.BAD_LENGTH, 1)
                with m.Else():
                    with m.Switch(op):
                        for code, spec in rules.commands.items():
                            with m.Case(code):
                                length_ok = _length_ok(spec, single)
                                with m.If(~arg_ok[code]):
                                    end(Status.BAD_ARG, single)
                                if code == Opcode.READ:  # its span and length next
                                    with m.Else():
                                        m.next = "READ_SPAN"
                                else:
                                    with m.Elif(~length_ok):
                                        end(Status.BAD_LENGTH, single)
                                    with m.Else():
                                        self._start(m, code, arg, index, update_after)
                        with m.Default():
                            end(Status.BAD_OPCODE, single)
            if Opcode.READ in rules.commands:
                with m.State("READ_SPAN"):
                    with m.If(~span_ok):
                        end(Status.BAD_ARG, single)
                    with m.Elif(~_length_ok(rules.commands[Opcode.READ], single)):
                        end(Status.BAD_LENGTH, single)
                    with m.Else():
                        self._start(m, Opcode.READ, arg, index, update_after)
            with m.State("DRAIN"):
                m.d.comb += self.cmd.ready.eq(1)
                with m.If(self.cmd.valid & (beat.last | beat.abandon)):
                    m.next = "STATUS"
            with m.State("STAGE"):
                lend(self.wr_beat)
                with m.If(self.wr_done):
                    with m.If(self.wr_ok):
                        m.d.comb += self.wr_commit.eq(1)
                        m.next = "COMMIT"
                    with m.Else():
                        end(Status.BAD_LENGTH, self.wr_ended)
            with m.State("COMMIT"):
                with m.If(self.wr_committed):
                    with m.If(self.wr_clipped):
                        m.d.sync += status.eq(Status.OUT_OF_RANGE)
                    m.next = "STATUS"
            with m.State("LOAD"):
                lend(self.ld_beat)
                with m.If(self.ld_done & streamed):
                    # One answer once the forward pass is done. A bad payload stops it as ABORT
                    # would (the engines, the core's links and, in an array, the links on both
                    # of its layer boundaries), so none of its spikes are left on a link.
                    m.d.sync += status.eq(self.ld_status)
                    with m.If(self.ld_status != Status.OK):
                        m.d.sync += self.abort.eq(1)
                    with m.If(self.ld_ended):
                        m.next = "WAIT_FORWARD"
                    with m.Else():
                        m.next = "DRAIN_FORWARD"
                with m.Elif(self.ld_done):
                    end(self.ld_status, self.ld_ended)
            with m.State("DRAIN_FORWARD"):
                m.d.comb += self.cmd.ready.eq(1)
                with m.If(self.cmd.valid & (beat.last | beat.abandon)):
                    m.next = "WAIT_FORWARD"
            with m.State("READ"):
                abortable("READ_DRAIN")
                with m.If(~aborting & self.room & self.walk_ready):
                    m.d.comb += [self.issue.eq(1), self.walk_step.eq(1)]
                    with m.If(self.walk_last):
                        m.next = "READ_DRAIN"
            with m.State("READ_DRAIN"):
                with m.If(self.idle):
                    m.next = "STATUS"
            for name, data in (
                ("INFO", [MAGIC, *self._hash_words()]),
                ("COUNTERS", [self.counter] * len(COUNTERS)),
            ):
                with m.State(name):
                    m.d.comb += [self.words.valid.eq(1), self.select.eq(index)]
                    with m.Switch(index):
                        for n, word in enumerate(data):
                            with m.Case(n):
                                m.d.comb += self.words.payload.data.eq(word)
                    with m.If(self.words.ready):
                        m.d.sync += index.eq(index + 1)
                        with m.If(index == len(data) - 1):
                            m.next = "STATUS"
            for phase in ("FORWARD", "BACKWARD", "UPDATE"):
                with m.State(f"LAUNCH_{phase}"):
                    abortable("STATUS")
                    with m.If(~aborting):
                        m.next = f"WAIT_{phase}"
            with m.State("WAIT_FORWARD"):
                abortable("STATUS")
                with m.If(~aborting & ~self.fp_busy):
                    m.next = "STATUS"
            with m.State("WAIT_BACKWARD"):
                abortable("STATUS")
                with m.If(~aborting & ~self.bp_busy & ~self.wg_busy):
                    with m.If(update_after):
                        m.d.sync += self.upd_start.eq(1)
                        m.next = "LAUNCH_UPDATE"
                    with m.Else():
                        m.d.sync += self.in_backward.eq(0)
                        m.next = "STATUS"
            with m.State("WAIT_UPDATE"):
                abortable("STATUS")
                with m.If(~aborting & ~self.upd_busy):
                    m.d.sync += self.in_backward.eq(0)
                    m.next = "STATUS"
            with m.State("STATUS"):
                m.d.comb += [
                    self.words.valid.eq(1),
                    self.words.payload.data.eq(answer),
                    self.words.payload.last.eq(1),
                ]
                with m.If(self.words.ready):
                    with m.If(then_abort):
                        m.d.sync += [
                            cmd.opcode.eq(Opcode.ABORT),
                            status.eq(Status.OK),
                            then_abort.eq(0),
                        ]
                    with m.Else():
                        m.next = "HEADER"
        return m

    def _hash_words(self) -> list[int]:
        h = int(self._p.core_hash, 16)
        return [h & 0xFFFFFFFF, h >> 32]

    def _start(self, m, code, arg, index, update_after):
        p = self._p
        if code in (Opcode.INFO, Opcode.COUNTERS):
            m.d.sync += index.eq(0)
            m.next = code.name
        elif code == Opcode.WRITE:
            m.d.comb += self.wr_start.eq(1)
            m.next = "STAGE"
        elif code == Opcode.READ:
            m.d.comb += self.walk_setup.eq(1)
            m.next = "READ"
        elif code in (Opcode.LOAD_SPIKES, Opcode.LOAD_INPUTS):
            m.d.comb += [self.ld_start.eq(1), self.ld_inputs.eq(code == Opcode.LOAD_INPUTS)]
            stream = arg[0] if code == Opcode.LOAD_SPIKES else 0  # LOAD_FORWARD
            m.d.sync += [
                self._streamed.eq(stream),
                self.fp_start.eq(stream),
                self.fp_spare.eq(stream),
            ]
            m.d.comb += self.clear_forward.eq(stream)
            m.next = "LOAD"
        elif code == Opcode.FORWARD:
            m.d.sync += [self.fp_start.eq(1), self.fp_spare.eq(0)]
            m.d.comb += self.clear_forward.eq(1)
            m.next = "LAUNCH_FORWARD"
        elif code == Opcode.SET_LABEL:
            m.d.sync += self.label.eq(arg)
            m.next = "STATUS"
        elif code == Opcode.BACKWARD:
            m.d.sync += [
                self.bp_start.eq(1),
                self.wg_start.eq(1),
                # bit 2: the error link where the core has one (a build-time constant)
                self.ext_error.eq(arg[1] | (arg[2] & int(self._p.errors_in))),
                update_after.eq(arg[0]),
                self.in_backward.eq(1),
            ]
            m.d.comb += self.clear_backward.eq(1)
            m.next = "LAUNCH_BACKWARD"
        elif code == Opcode.UPDATE:
            m.d.sync += self.upd_start.eq(1)
            m.d.comb += self.clear_update.eq(1)
            m.next = "LAUNCH_UPDATE"
        elif code == Opcode.SET_LR:
            m.d.sync += self.u_sel.eq(arg - p.lr_min)
            m.next = "STATUS"
        elif code == Opcode.ABORT:
            m.d.sync += self.abort.eq(1)
            m.next = "STATUS"
        else:
            raise AssertionError(f"no action for {code!r}")
