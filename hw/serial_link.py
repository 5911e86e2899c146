"""The chip's end of the serial link: frames of bytes to and from a core's host port.

:class:`SerialLink` sits between a byte link (a UART's streams) and one core's host port and
implements the frames of :mod:`spikeforge.hw.serial_protocol`: SLIP framing, CRC-32, sequence
numbers, the retry rules (a retry of a read-only command runs again; of any other command, the
stored answer is sent again).

**Command side.** Bytes are unescaped and checked as they arrive; the payload's words go to
the core as soon as the next word (or the frame's end) shows they are not the last, so a frame
needs no buffer. The last word waits for the ``END`` byte: it goes out with ``last``, and with
``abandon`` when the frame was damaged (bad CRC, bad escape, a length that is not whole words,
no room), so the core drops a damaged packet without running or writing anything; its answer
to that is dropped here. A frame the link does not forward (a retry of a command that changed
state, or one that arrives when the word FIFO has no room for it) sends nothing to the core.

**Answer side.** Each answer packet of the core becomes one frame with its command's ``seq``
(a small FIFO of tags keeps the order: one answer per forwarded packet); the last answer of a
state-changing command (its status word) is kept for a retry.

Counters (``frames``, ``damaged``, ``retries``, ``overflows``; 16 bits, saturating) say what
the link has seen; they are ports, for a board's LEDs or a debug core.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from spikeforge.hw.protocol import BUS_BITS, CommandWord, command_signature, response_signature
from spikeforge.hw.serial_protocol import CRC, END, ESC, ESC_END, ESC_ESC, READ_ONLY

__all__ = ["COUNTER_BITS", "SerialLink"]

COUNTER_BITS = 16
WORD_BYTES = BUS_BITS // 8
Tag = data.StructLayout({"seq": 8, "keep": 1, "read_only": 1})
"""What the answer side needs to know of a forwarded packet."""


def _saturating_increment(m: Module, counter: Signal, when) -> None:
    with m.If(when & (counter != (1 << len(counter)) - 1)):
        m.d.sync += counter.eq(counter + 1)


class SerialLink(wiring.Component):
    """Frames on a byte link to and from one core's host port.

    Parameters
    ----------
    depth : int
        Command words the link can hold while the core is busy (at least 4). A host that waits
        for each answer (as the protocol wants) never needs more than one packet's first word.

    Ports
    -----
    rx : In(stream of bytes)
        From the line (``ready`` is always high: a UART cannot wait).
    tx : Out(stream of bytes)
        To the line.
    cmd : Out(command stream), rsp : In(response stream)
        The core's host port.
    frames, damaged, retries, overflows : Out(16)
        Intact frames, damaged frames, retries answered from the stored answer or run again,
        frames dropped for want of room.
    """

    def __init__(self, *, depth: int = 16):
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 4:
            raise ValueError(f"depth must be an int >= 4, not {depth!r}")
        self._depth = depth
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

    def elaborate(self, platform):
        m = Module()
        depth = self._depth
        m.submodules.words = words = SyncFIFOBuffered(width=BUS_BITS + 2, depth=depth)
        m.submodules.tags = tags = SyncFIFOBuffered(width=Tag.size, depth=depth)
        m.submodules.rx_crc = rx_crc = CRC.create()
        m.submodules.tx_crc = tx_crc = CRC.create()

        # The last accepted command frame, and the stored answer for a retry.
        last_seq = Signal(8)
        have_last = Signal()
        last_read_only = Signal()
        stored = Signal(BUS_BITS)
        stored_seq = Signal(8)
        replay = Signal()  # a retry's stored answer is to be sent

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
        first_word = Signal()  # the next word completed is the packet's command word
        read_only = Signal()
        room = Signal()
        # One place kept for a packet's last word; a tag for every packet forwarded.
        m.d.comb += room.eq((words.level < depth - 1) & tags.w_rdy)

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
                forward.eq(~is_dup & room),
                tail_n.eq(0),
                acc_n.eq(0),
                hold_valid.eq(0),
                first_word.eq(1),
                read_only.eq(0),
            ]
            _saturating_increment(m, self.overflows, ~is_dup & ~room)
        with m.Elif(is_data):
            m.d.sync += tail.eq(Cat(tail[8:], byte))
            with m.If(tail_n != 4):
                m.d.sync += tail_n.eq(tail_n + 1)
            with m.Else():  # the oldest tail byte is payload
                word = Cat(acc[8:], tail[:8])
                m.d.sync += [acc.eq(word), acc_n.eq(acc_n + 1)]
                with m.If(acc_n == WORD_BYTES - 1):
                    with m.If(first_word):
                        opcode = CommandWord(word).opcode
                        m.d.sync += [
                            first_word.eq(0),
                            read_only.eq(Cat(*(opcode == op for op in sorted(READ_ONLY))).any()),
                        ]
                    m.d.sync += [hold.eq(word), hold_valid.eq(1)]
                    with m.If(forward & hold_valid):
                        with m.If(room):
                            m.d.comb += [push.eq(1), push_data.eq(hold)]
                        with m.Else():
                            m.d.sync += bad.eq(1)

        frame_end = self.rx.valid & (self.rx.payload == END)
        with m.If(frame_end & started):
            intact = ~bad & ~esc & rx_crc.match_detected & (acc_n == 0) & hold_valid
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
                    tags.w_data.eq(Cat(seq, intact, read_only)),
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
        ]
        crc_n = Signal(range(4))
        with m.FSM():
            with m.State("IDLE"):
                with m.If(tags.r_rdy):
                    m.d.comb += tags.r_en.eq(1)
                    m.d.sync += tag.eq(tags.r_data)
                    m.next = "ANSWER"
                with m.Elif(replay):
                    m.d.sync += [
                        replay.eq(0),
                        tag.eq(Cat(stored_seq, 1, 0)),
                        word.eq(stored),
                        word_last.eq(1),
                    ]
                    m.next = "REPLAY_START"
            with m.State("ANSWER"):
                with m.If(~tag.keep):
                    m.next = "DROP"
                with m.Else():
                    m.next = "START"
            with m.State("DROP"):  # the answer to a damaged packet
                m.d.comb += self.rsp.ready.eq(1)
                with m.If(self.rsp.valid & self.rsp.payload.last):
                    m.next = "IDLE"
            with m.State("START"):
                m.d.comb += [out_valid.eq(1), out_end.eq(1)]
                with m.If(out_taken):
                    m.next = "SEQ"
            with m.State("REPLAY_START"):
                m.d.comb += [out_valid.eq(1), out_end.eq(1)]
                with m.If(out_taken):
                    m.next = "REPLAY_SEQ"
            with m.State("SEQ"):
                m.d.comb += [out.eq(tag.seq), out_valid.eq(1), tx_crc.start.eq(1)]
                with m.If(out_taken):
                    m.next = "FETCH"
            with m.State("REPLAY_SEQ"):
                m.d.comb += [out.eq(tag.seq), out_valid.eq(1), tx_crc.start.eq(1)]
                with m.If(out_taken):
                    m.d.sync += nbyte.eq(0)
                    m.next = "BYTES"
            with m.State("FETCH"):
                m.d.comb += self.rsp.ready.eq(1)
                with m.If(self.rsp.valid):
                    m.d.sync += [
                        word.eq(self.rsp.payload.data),
                        word_last.eq(self.rsp.payload.last),
                        nbyte.eq(0),
                    ]
                    with m.If(self.rsp.payload.last & ~tag.read_only):
                        m.d.sync += [stored.eq(self.rsp.payload.data), stored_seq.eq(tag.seq)]
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
                    m.next = "IDLE"
        return m
