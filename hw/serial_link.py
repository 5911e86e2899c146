"""The chip's end of the serial link: frames of bytes to and from a host port.

:class:`SerialLink` sits between a byte link (a UART's streams) and the host port of one core
or of a core array and implements the frames of :mod:`spikeforge.hw.serial_protocol`: SLIP
framing, CRC-32, sequence numbers, the retry rules (a retry of a read-only command runs again;
of any other command, the stored answers are sent again).

**One packet at a time.** A frame that arrives while answers to an earlier one are still owed
is not forwarded (counted in ``overflows``; the host sends it again when its wait ends), so
every answer belongs to the one packet in flight -- on an array, whose cores answer in any
order, too. A host that waits for each command's answers (as the protocol wants) never meets
this. A retry of the packet in flight is the exception: see below.

**Behind an array** (``cores`` set) a frame's first word is its route word. The link counts
the answers the array will send exactly as the router decides them
(:func:`~spikeforge.hw.router.route_answers`: one per addressed core, else one from the array)
-- for a damaged frame too, whose route word the router reads as it came -- takes the opcode
from the frame's second word, and sends each answer in its own frame with the command's
``seq``; for a retry of a state-changing command it sends all of its stored answers again.

**Command side.** Bytes are unescaped and checked as they arrive; the payload's words go to
the core as soon as the next word (or the frame's end) shows they are not the last, so a frame
needs no buffer. The last word waits for the ``END`` byte: it goes out with ``last``, and with
``abandon`` when the frame was damaged (bad CRC, bad escape, a length that is not whole words,
no room), so the core drops a damaged packet without running or writing anything; its answer
to that is dropped here. A frame the link does not forward (a retry of a command that changed
state, one that comes while answers are owed, or when the word FIFO has no room for it) sends
nothing to the core.

**Answer side.** Each answer packet becomes one frame with its command's ``seq`` (a small
FIFO of tags keeps the order and the number of answers per forwarded packet); the answers of
a state-changing command (their status words; one per core on an array) are kept for a retry.

Counters (``frames``, ``damaged``, ``retries``, ``overflows``; 16 bits, saturating) say what
the link has seen; they are ports, for a board's LEDs or a debug core.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from spikeforge.hw import rw_check
from spikeforge.hw.protocol import (
    BUS_BITS,
    MAX_ARRAY_CORES,
    CommandWord,
    RouteWord,
    command_signature,
    response_signature,
)
from spikeforge.hw.router import route_answers
from spikeforge.hw.serial_protocol import CRC, END, ESC, ESC_END, ESC_ESC, READ_ONLY

__all__ = ["COUNTER_BITS", "SerialLink"]

COUNTER_BITS = 16
WORD_BYTES = BUS_BITS // 8


def tag_layout(cores: int) -> data.StructLayout:
    """What the answer side needs to know of a forwarded packet: its ``seq``, whether its
    answers go out (not for a damaged frame), whether it is read-only, how many answers."""
    return data.StructLayout({"seq": 8, "keep": 1, "read_only": 1, "answers": cores.bit_length()})


def _saturating_increment(m: Module, counter: Signal, when) -> None:
    with m.If(when & (counter != (1 << len(counter)) - 1)):
        m.d.sync += counter.eq(counter + 1)


class SerialLink(wiring.Component):
    """Frames on a byte link to and from one host port (a core's or an array's).

    Parameters
    ----------
    depth : int
        Command words the link can hold while the core is busy (at least 4).
    cores : int or None
        ``None`` (default): the port is one core's, a packet draws one answer. An int: the
        port is a :class:`~spikeforge.hw.array.CoreArray`'s of that many cores; packets start
        with a route word and draw the answers :func:`~spikeforge.hw.router.route_answers`
        counts.

    Ports
    -----
    rx : In(stream of bytes)
        From the line (``ready`` is always high: a UART cannot wait).
    tx : Out(stream of bytes)
        To the line.
    cmd : Out(command stream), rsp : In(response stream)
        The host port.
    frames, damaged, retries, overflows : Out(16)
        Intact frames, damaged frames, retries answered from the stored answers or run again,
        frames not forwarded (no room, or answers to an earlier frame still owed).
    """

    def __init__(self, *, depth: int = 16, cores: int | None = None):
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 4:
            raise ValueError(f"depth must be an int >= 4, not {depth!r}")
        if cores is not None and (
            isinstance(cores, bool) or not isinstance(cores, int) or cores < 1
        ):
            raise ValueError(f"cores must be None or an int >= 1, not {cores!r}")
        if cores is not None and cores > MAX_ARRAY_CORES:
            raise ValueError(f"cores must be at most {MAX_ARRAY_CORES}, not {cores}")
        self._depth, self._cores = depth, cores
        super().__init__(
            {
                "rx": In(stream.Signature(8)),
                "tx": Out(stream.Signature(8)),
                "cmd": Out(command_signature()),
                "rsp": In(response_signature()),
                "frames": Out(COUNTER_BITS),
                "damaged": Out(COUNTER_BITS),
                "retries": Out(COUNTER_BITS),
                "overflows": Out(COUNTER_BITS),
            }
        )

    @property
    def cores(self) -> int | None:
        return self._cores

    def elaborate(self, platform):
        m = Module()
        depth = self._depth
        array = self._cores is not None
        answers_max = self._cores if array else 1
        Tag = tag_layout(answers_max)
        m.submodules.words = words = SyncFIFOBuffered(width=BUS_BITS + 2, depth=depth)
        # (depths of at least 2 in the FIFO inside, the store: no zero-width addresses)
        m.submodules.tags = tags = SyncFIFOBuffered(width=Tag.size, depth=3)
        m.submodules.rx_crc = rx_crc = CRC.create()
        m.submodules.tx_crc = tx_crc = CRC.create()
        # The answers of the last state-changing command, for a retry.
        m.submodules.stored = stored = Memory(shape=BUS_BITS, depth=max(2, answers_max), init=[])
        store = stored.write_port()
        fetch = stored.read_port()

        # The last accepted command frame, and the stored answers' seq and number.
        last_seq = Signal(8)
        have_last = Signal()
        last_read_only = Signal()
        stored_seq = Signal(8)
        stored_n = Signal(range(answers_max + 1))
        replay = Signal()  # a retry's stored answers are to be sent
        owed = Signal()  # answers to a forwarded frame are still to be sent

        # -- command side -------------------------------------------------------------------
        m.d.comb += [
            self.rx.ready.eq(1),
            self.cmd.payload.data.eq(words.r_data[:BUS_BITS]),
            self.cmd.payload.last.eq(words.r_data[BUS_BITS]),
            self.cmd.payload.abandon.eq(words.r_data[BUS_BITS + 1]),
            self.cmd.valid.eq(words.r_rdy),
            words.r_en.eq(self.cmd.ready),
        ]
        started = Signal()  # the frame's seq byte is in
        esc = Signal()
        bad = Signal()  # a bad escape or no room: the frame is damaged
        forward = Signal()  # this frame's words go to the core
        again = Signal()  # its seq is the last accepted one's: a retry
        dup = Signal()  # a retry of a command that changed state: answer from the store
        seq = Signal(8)
        tail = Signal(8 * 4)  # the last 4 bytes: the CRC, until more bytes come
        tail_n = Signal(range(5))
        acc = Signal(BUS_BITS)
        acc_n = Signal(range(WORD_BYTES))
        hold = Signal(BUS_BITS)  # the newest word: the packet's last, unless another comes
        hold_valid = Signal()
        # Words of the frame completed so far, up to the one that holds the opcode (the first;
        # the second behind an array, after the route word).
        op_index = 1 if array else 0
        n_words = Signal(range(op_index + 2))
        route_word = Signal(RouteWord)  # an array's: the frame's first word
        read_only = Signal()
        room = Signal()
        accept = Signal()  # room, and nothing owed to an earlier frame: a new one may go on
        # One place kept for a packet's last word. Registered (off the FIFO's level adder and
        # the answer FSM): words complete at least 4 bytes apart and a frame's seq byte comes
        # at least 2 bytes after the last frame's end, so the value one cycle old is exact.
        m.d.sync += [
            room.eq((words.level < depth - 1) & tags.w_rdy),
            accept.eq((words.level < depth - 1) & tags.w_rdy & ~owed),
        ]

        byte = Signal(8)
        is_data = Signal()
        with m.If(self.rx.valid):
            b = self.rx.payload
            with m.If(b == END):
                pass
            with m.Elif(esc):
                m.d.comb += [is_data.eq(1), byte.eq(Mux(b == ESC_END, END, ESC))]
                with m.If((b != ESC_END) & (b != ESC_ESC)):
                    m.d.sync += bad.eq(1)
                m.d.sync += esc.eq(0)
            with m.Elif(b == ESC):
                m.d.sync += esc.eq(1)
            with m.Else():
                m.d.comb += [is_data.eq(1), byte.eq(b)]

        m.d.comb += [
            rx_crc.data.eq(byte),
            rx_crc.valid.eq(is_data),
            rx_crc.start.eq(is_data & ~started),
        ]
        push = Signal()
        push_data = Signal(BUS_BITS)
        push_last = Signal()
        push_abandon = Signal()
        m.d.comb += [
            words.w_data.eq(Cat(push_data, push_last, push_abandon)),
            words.w_en.eq(push),
        ]
        with m.If(is_data & ~started):
            is_again = have_last & (byte == last_seq)
            is_dup = is_again & ~last_read_only
            m.d.sync += [
                started.eq(1),
                seq.eq(byte),
                again.eq(is_again),
                dup.eq(is_dup),
                forward.eq(~is_dup & accept),
                tail_n.eq(0),
                acc_n.eq(0),
                hold_valid.eq(0),
                n_words.eq(0),
                read_only.eq(0),
            ]
            _saturating_increment(m, self.overflows, ~is_dup & ~accept)
        with m.Elif(is_data):
            m.d.sync += tail.eq(Cat(tail[8:], byte))
            with m.If(tail_n != 4):
                m.d.sync += tail_n.eq(tail_n + 1)
            with m.Else():  # the oldest tail byte is payload
                word = Cat(acc[8:], tail[:8])
                m.d.sync += [acc.eq(word), acc_n.eq(acc_n + 1)]
                with m.If(acc_n == WORD_BYTES - 1):
                    with m.If(n_words != op_index + 1):
                        m.d.sync += n_words.eq(n_words + 1)
                    with m.If(n_words == 0):
                        m.d.sync += route_word.eq(word)
                    with m.If(n_words == op_index):
                        opcode = CommandWord(word).opcode
                        m.d.sync += read_only.eq(
                            Cat(*(opcode == op for op in sorted(READ_ONLY))).any()
                        )
                    m.d.sync += [hold.eq(word), hold_valid.eq(1)]
                    with m.If(forward & hold_valid):
                        with m.If(room):
                            m.d.comb += [push.eq(1), push_data.eq(hold)]
                        with m.Else():
                            m.d.sync += bad.eq(1)

        intact = ~bad & ~esc & rx_crc.match_detected & (acc_n == 0) & hold_valid
        width = Tag["answers"].width
        if array:
            answers = route_answers(route_word, n_words == 1, self._cores)[:width]
        else:
            answers = Const(1, width)
        new_tag = Signal(Tag)
        # One assignment of the whole tag (a constant field alone would make an empty
        # ``always @*`` in the Verilog, which Verilator rejects).
        m.d.comb += new_tag.eq(Cat(seq, intact, read_only, answers))
        frame_end = self.rx.valid & (self.rx.payload == END)
        with m.If(frame_end & started):
            m.d.sync += [started.eq(0), bad.eq(0), esc.eq(0)]
            _saturating_increment(m, self.frames, intact)
            _saturating_increment(m, self.damaged, ~intact)
            with m.If(forward & hold_valid):
                m.d.comb += [
                    push.eq(1),
                    push_data.eq(hold),
                    push_last.eq(1),
                    push_abandon.eq(~intact),
                    tags.w_en.eq(1),
                    tags.w_data.eq(new_tag),
                ]
            with m.If(intact & forward):
                m.d.sync += [last_seq.eq(seq), have_last.eq(1), last_read_only.eq(read_only)]
            with m.If(intact & dup):
                m.d.sync += replay.eq(1)
            _saturating_increment(m, self.retries, intact & again)
        with m.Elif(frame_end):
            m.d.sync += [bad.eq(0), esc.eq(0)]

        # -- answer side --------------------------------------------------------------------
        tag = Signal(Tag)
        left = Signal(range(answers_max + 1))  # answers of the tag (or replay) still to send
        index = Signal(range(max(2, answers_max)))  # the answer being sent, among the tag's
        replaying = Signal()
        out = Signal(8)  # the byte to send, before escaping
        out_valid = Signal()
        out_end = Signal()  # send END instead
        out_taken = Signal()
        escaped = Signal()  # the first byte of an escape pair is out
        # SLIP: END as is; END/ESC in the frame as two bytes.
        special = ~out_end & ((out == END) | (out == ESC))
        m.d.comb += [
            self.tx.valid.eq(out_valid),
            self.tx.payload.eq(
                Mux(
                    out_end,
                    END,
                    Mux(special, Mux(escaped, Mux(out == END, ESC_END, ESC_ESC), ESC), out),
                )
            ),
            out_taken.eq(self.tx.ready & out_valid & (~special | escaped)),
        ]
        with m.If(self.tx.ready & out_valid & special):
            m.d.sync += escaped.eq(~escaped)

        word = Signal(BUS_BITS)
        word_last = Signal()
        nbyte = Signal(range(WORD_BYTES))
        m.d.comb += [
            tx_crc.data.eq(out),
            tx_crc.valid.eq(out_taken & ~out_end),
            fetch.addr.eq(index),
            store.addr.eq(index),
            store.data.eq(self.rsp.payload.data),
        ]
        crc_n = Signal(range(4))
        with m.FSM() as fsm:
            with m.State("IDLE"):
                m.d.sync += index.eq(0)
                with m.If(tags.r_rdy):
                    m.d.comb += tags.r_en.eq(1)
                    m.d.sync += [tag.eq(tags.r_data), replaying.eq(0)]
                    m.d.sync += left.eq(Tag(tags.r_data).answers)
                    m.next = "ANSWER"
                with m.Elif(replay & (stored_n != 0)):
                    m.d.sync += [
                        replay.eq(0),
                        replaying.eq(1),
                        tag.seq.eq(stored_seq),
                        left.eq(stored_n),
                    ]
                    m.next = "START"
                with m.Elif(replay):
                    m.d.sync += replay.eq(0)
            with m.State("ANSWER"):
                with m.If(~tag.keep):
                    m.next = "DROP"
                with m.Else():
                    m.next = "START"
            with m.State("DROP"):  # the answers to a damaged packet
                m.d.comb += self.rsp.ready.eq(1)
                with m.If(self.rsp.valid & self.rsp.payload.last):
                    m.d.sync += left.eq(left - 1)
                    with m.If(left == 1):
                        m.next = "IDLE"
            with m.State("START"):
                m.d.comb += [out_valid.eq(1), out_end.eq(1)]
                with m.If(out_taken):
                    m.next = "SEQ"
            with m.State("SEQ"):
                m.d.comb += [out.eq(tag.seq), out_valid.eq(1), tx_crc.start.eq(1)]
                with m.If(out_taken):
                    with m.If(replaying):  # the stored status word (read since START)
                        m.d.sync += [word.eq(fetch.data), word_last.eq(1), nbyte.eq(0)]
                        m.next = "BYTES"
                    with m.Else():
                        m.next = "FETCH"
            with m.State("FETCH"):
                m.d.comb += self.rsp.ready.eq(1)
                with m.If(self.rsp.valid):
                    m.d.sync += [
                        word.eq(self.rsp.payload.data),
                        word_last.eq(self.rsp.payload.last),
                        nbyte.eq(0),
                    ]
                    with m.If(self.rsp.payload.last & ~tag.read_only):
                        m.d.comb += store.en.eq(1)
                        m.d.sync += [stored_seq.eq(tag.seq), stored_n.eq(index + 1)]
                    m.next = "BYTES"
            with m.State("BYTES"):
                m.d.comb += [out.eq(word.word_select(nbyte, 8)), out_valid.eq(1)]
                with m.If(out_taken):
                    m.d.sync += nbyte.eq(nbyte + 1)
                    with m.If(nbyte == WORD_BYTES - 1):
                        with m.If(word_last):
                            m.d.sync += crc_n.eq(0)
                            m.next = "CRC"
                        with m.Else():
                            m.next = "FETCH"
            with m.State("CRC"):
                m.d.comb += [out.eq(tx_crc.crc.word_select(crc_n, 8)), out_valid.eq(1)]
                m.d.comb += tx_crc.valid.eq(0)
                with m.If(out_taken):
                    m.d.sync += crc_n.eq(crc_n + 1)
                    with m.If(crc_n == 3):
                        m.next = "END"
            with m.State("END"):
                m.d.comb += [out_valid.eq(1), out_end.eq(1)]
                with m.If(out_taken):
                    m.d.sync += left.eq(left - 1)
                    with m.If(left == 1):
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += index.eq(index + 1)
                        m.next = "START"
        m.d.comb += owed.eq(~fsm.ongoing("IDLE") | (tags.level != 0) | replay)
        if rw_check.enabled():  # a replay reads the stored answers; only FETCH writes them
            checks = rw_check.RwChecks(m, "link")
            live = replaying & (fsm.ongoing("START") | fsm.ongoing("SEQ"))
            checks.memory("stored", fetch.addr, live, store.addr, store.en)
        return m
