"""The serial link's frames: host packets over a byte link, with framing, a CRC and a sequence.

One definition for both ends: the hardware (:class:`~spikeforge.hw.serial_link.SerialLink`)
builds its CRC from :data:`CRC` and its escapes from the constants here; a host encodes and
decodes with :func:`encode_frame` and :class:`FrameReader`.

A frame is SLIP-framed (RFC 1055) -- ``END`` before and after it, ``END`` and ``ESC`` inside it
escaped as ``ESC ESC_END`` and ``ESC ESC_ESC`` -- and carries::

    seq (1 byte) | words (4 bytes each, little-endian) | CRC-32 of seq and words (4 bytes, LE)

Host to chip: one command packet (its last word ends the packet). Chip to host: one response
packet, with the ``seq`` of the command it answers.

**Exactly once.** The chip keeps the ``seq`` of the last command frame it accepted. A frame
whose CRC or length is wrong is dropped without an answer (the host sends it again when its
wait ends). A frame with the last accepted ``seq`` is a retry of a command whose answer was
lost: a command that changes nothing (:data:`READ_ONLY`: INFO, READ, COUNTERS) runs again; any
other is not run again, and the chip sends its stored answer once more. So a damaged, lost or
repeated byte costs a retry, never a command run twice or a wrong value written. A host starts
every session with a read-only command, which sets the chip's ``seq`` to its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from amaranth.lib import crc

from spikeforge.hw.protocol import Opcode

__all__ = [
    "CRC",
    "END",
    "ESC",
    "ESC_END",
    "ESC_ESC",
    "FRAME_WORDS",
    "READ_ONLY",
    "SEQ_MODULO",
    "FrameReader",
    "encode_frame",
    "escape",
    "frame_body",
]

END, ESC, ESC_END, ESC_ESC = 0xC0, 0xDB, 0xDC, 0xDD
CRC = crc.catalog.CRC32_ISO_HDLC(data_width=8)
"""The frames' CRC (the Ethernet/zlib CRC-32), appended little-endian: the hardware checks a
frame by the residue of its bytes and CRC together."""
CRC_BYTES = 4
SEQ_MODULO = 256
READ_ONLY = frozenset({Opcode.INFO, Opcode.READ, Opcode.COUNTERS})
"""Commands that change no state: a retry of one runs it again."""
FRAME_WORDS = 128
"""Values a host puts in one WRITE frame or asks of one READ by default (whole rows; about
600 bytes, 0.2 ms at 3 Mbaud): a frame's chance to arrive intact falls with its length."""


def frame_body(seq: int, words: Sequence[int]) -> bytes:
    """The unescaped bytes of a frame: ``seq``, the words, the CRC."""
    if not 0 <= seq < SEQ_MODULO:
        raise ValueError(f"seq must be in [0, {SEQ_MODULO - 1}], not {seq}")
    if not words:
        raise ValueError("a frame carries at least one word")
    body = bytes([seq]) + b"".join(int(w).to_bytes(4, "little") for w in words)
    return body + CRC.compute(body).to_bytes(CRC_BYTES, "little")


def escape(body: bytes) -> bytes:
    """SLIP: ``END`` + the body with ``END``/``ESC`` escaped + ``END``."""
    out = bytearray([END])
    for b in body:
        if b == END:
            out += bytes([ESC, ESC_END])
        elif b == ESC:
            out += bytes([ESC, ESC_ESC])
        else:
            out.append(b)
    out.append(END)
    return bytes(out)


def encode_frame(seq: int, words: Sequence[int]) -> bytes:
    """The bytes on the line for one packet of ``words`` with sequence number ``seq``."""
    return escape(frame_body(seq, words))


class FrameReader:
    """Frames out of a byte stream: :meth:`feed` bytes as they come, get ``(seq, words)`` of
    every complete, intact frame. Damaged frames (bad escape, bad length, bad CRC) are counted
    in :attr:`damaged` and skipped; the next ``END`` starts over."""

    def __init__(self):
        self._buf = bytearray()
        self._esc = False
        self._bad = False
        self.damaged = 0

    def feed(self, data: Iterable[int]) -> list[tuple[int, list[int]]]:
        frames = []
        for b in data:
            if b == END:
                if self._buf or self._bad:
                    got = self._finish()
                    if got is not None:
                        frames.append(got)
                self._buf.clear()
                self._esc = self._bad = False
            elif self._esc:
                self._esc = False
                if b == ESC_END:
                    self._buf.append(END)
                elif b == ESC_ESC:
                    self._buf.append(ESC)
                else:
                    self._bad = True
            elif b == ESC:
                self._esc = True
            else:
                self._buf.append(b)
        return frames

    def _finish(self) -> tuple[int, list[int]] | None:
        body = bytes(self._buf)
        n_words, rest = divmod(len(body) - 1 - CRC_BYTES, 4)
        if self._bad or n_words < 1 or rest:
            self.damaged += 1
            return None
        data, check = body[:-CRC_BYTES], int.from_bytes(body[-CRC_BYTES:], "little")
        if CRC.compute(data) != check:
            self.damaged += 1
            return None
        words = [int.from_bytes(data[1 + 4 * i : 5 + 4 * i], "little") for i in range(n_words)]
        return data[0], words
