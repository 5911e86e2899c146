"""The rate encoder: LOAD_INPUTS packets (a key and input intensities) into rate-coded spikes in
the spare event bank, bit-exact with :func:`spikeforge.sw.encoders.rate_encode`.

Input ``i`` of the sample with key ``k`` owns the LFSR stream ``s_i = seed_state(encoder_seed,
k, i) = nz(h(h(h(encoder_seed) ^ k) ^ i))`` (``h`` is lowbias32, ``nz`` turns 0 into 1); at
timestep ``t`` it steps the LFSR ``in_bits`` times and spikes iff the state's low ``in_bits``
bits are below its intensity (docs/arithmetic.md, section 6). ``h(encoder_seed)`` is a
constant of the core; ``h`` runs in a :data:`HASH_LATENCY`-stage pipeline.

Two phases, both into a memory of one word per input (LFSR state and intensity):

* **take** -- the key word, then the packed intensities (:func:`~spikeforge.hw.protocol.
  input_words`); each word is checked (reserved bits, length) as it comes, its intensities are
  hashed one per cycle and stored with their seeds. A wrong packet stops here (``BAD_SPIKES``
  for a reserved bit, ``BAD_LENGTH`` for a short, long or abandoned one) and loads nothing.
* **draw** -- for ``t = 0 .. T-1``, every input in order: its state steps ``in_bits`` times
  (one XOR network), a spike writes the input's index to the event memory, and the timestep's
  header ``(start, count)`` follows -- the layout LOAD_SPIKES writes, so indices ascend.

Cycles from the cycle of ``start`` to the cycle of ``done`` (OK), the payload arriving without
gaps: ``3 + 2 * HASH_LATENCY + words + n_in + T * (n_in + 2)`` (one cycle per intensity word
taken, one per input hashed, one per input and timestep drawn, two per timestep for the last
draw and the header): 359 for 64 inputs, 8-bit intensities (16 words) and ``T = 4``.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from spikeforge.hw import rw_check
from spikeforge.hw.datapath import delay_line, write_port_members
from spikeforge.hw.lfsr_jump import lfsr_step
from spikeforge.hw.params import CoreParams
from spikeforge.hw.protocol import CoreRules, Status, command_signature, input_packing
from spikeforge.sw.lfsr_spec import lowbias32

__all__ = ["HASH_LATENCY", "RateEncoder", "encode_cycles"]

HASH_LATENCY = 6
"""Cycles of the lowbias32 pipeline: the first xor-shift, each 32-bit constant multiplication
in two (16 x 16 partial products, then their sum), the second xor-shift."""
MUL1, MUL2 = 0x7FEB352D, 0x846CA68B


def encode_cycles(params: CoreParams) -> int:
    """Cycles of a right LOAD_INPUTS packet from its command word to ``done`` (the module
    docstring's formula)."""
    words, n_in = CoreRules.of(params).input_words, params.n_in
    return 3 + 2 * HASH_LATENCY + words + n_in + params.timesteps * (n_in + 2)


class RateEncoder(wiring.Component):
    """LOAD_INPUTS payloads into rate-coded spikes in the bank ``spare`` points at.

    Ports
    -----
    start : In(1)
        A LOAD_INPUTS begins (its payload follows on ``beat``).
    beat : In(command stream)
    spare : In(1)
        The bank to fill (the one the engines do not read).
    done, status, ended : Out
        As :class:`~spikeforge.hw.host.spikes.SpikeLoader`'s: decided (pulse), with ``OK``,
        ``BAD_LENGTH`` or ``BAD_SPIKES``; the packet's last word was taken.
    ev_*, hdr_* : Out
        Writes of the event and event-header memories (bank offset included).
    """

    def __init__(self, params: CoreParams):
        self._p = p = CoreParams.checked(params)
        if not p.rate_encoder:
            raise ValueError("the core has no rate encoder (rate_encoder=False)")
        mem = p.memory_map
        super().__init__(
            {
                "start": In(1),
                "beat": In(command_signature()),
                "spare": In(1),
                "done": Out(1),
                "status": Out(Status),
                "ended": Out(1),
                **write_port_members("ev", mem["events"]),
                **write_port_members("hdr", mem["event_heads"]),
                **rw_check.members(),
            }
        )

    def elaborate(self, platform):
        m = Module()
        p, rules = self._p, CoreRules.of(self._p)
        T, n_in, bits = p.timesteps, p.n_in, p.net.in_bits
        slot, per = input_packing(bits)
        words = rules.input_words
        pb = p.event_ptr_bits
        ib = max(1, (n_in - 1).bit_length())
        m.submodules.store = store = Memory(shape=32 + bits, depth=max(n_in, 2), init=[])
        wr, rd = store.write_port(), store.read_port()

        # -- lowbias32 in HASH_LATENCY stages; ``tag`` travels along: the key (-1) or an input
        h_in, h_valid, h_tag, h_x = Signal(32), Signal(), Signal(range(-1, n_in)), Signal(bits)
        a = Signal(32)
        m.d.sync += a.eq(h_in ^ (h_in >> 16))
        b = _mul32(m, a, MUL1, "m1")
        c = Signal(32)
        m.d.sync += c.eq(b ^ (b >> 15))
        d = _mul32(m, c, MUL2, "m2")
        hashed = d ^ (d >> 16)
        done_valid = delay_line(m, h_valid, HASH_LATENCY, "hv")[-1]
        done_tag = delay_line(m, h_tag, HASH_LATENCY, "ht")[-1]
        done_x = delay_line(m, h_x, HASH_LATENCY, "hx")[-1]
        key_hash = Signal(32)
        with m.If(done_valid & (done_tag == -1)):
            m.d.sync += key_hash.eq(hashed)
        m.d.comb += [
            wr.en.eq(done_valid & (done_tag != -1)),
            wr.addr.eq(done_tag.as_unsigned()[: len(wr.addr)]),
            wr.data.eq(Cat(Mux(hashed == 0, 1, hashed), done_x)),
        ]

        # -- events and headers, as the spike loader writes them ------------------------------
        ptr, start = Signal(pb + 1), Signal(pb + 1)
        t = Signal(range(T + 1))
        written = Signal(range(n_in + 1))
        m.d.comb += [
            self.hdr_waddr.eq(Mux(self.spare, T, 0) + t),
            self.hdr_wdata.eq(Cat(start[:pb], written)),
            self.ev_waddr.eq(Mux(self.spare, T * n_in, 0) + ptr),
        ]

        beat = self.beat.payload
        word = Signal(32)
        w = Signal(range(words + 1))  # intensity words taken
        k = Signal(range(per + 1))  # the slot issued next
        i = Signal(range(n_in + 1))  # the input issued next
        wait = Signal(range(HASH_LATENCY + 2))
        slots = [word[n * slot : n * slot + bits] for n in range(per)]
        final = w == words - 1
        reserved = Mux(final, rules.input_reserved(True), rules.input_reserved(False))

        # draw: the read of input ``j`` one cycle, its state and intensity the next
        j = Signal(range(n_in + 1))
        drawing = Signal()  # input j's state is read (and used the next cycle)
        pend, pend_j = Signal(), Signal(range(n_in))
        state, x = rd.data[:32], rd.data[32:]
        stepped = lfsr_step(state, bits)
        spike = stepped[:bits] < x
        m.d.comb += [rd.addr.eq(j), self.ev_wdata.eq(pend_j[:ib])]
        with m.If(pend):
            m.d.comb += [wr.en.eq(1), wr.addr.eq(pend_j), wr.data.eq(Cat(stepped, x))]
            with m.If(spike):
                m.d.comb += self.ev_wen.eq(1)
                m.d.sync += [ptr.eq(ptr + 1), written.eq(written + 1)]
        m.d.sync += pend.eq(0)

        def finish(status, ended):
            m.d.comb += [self.done.eq(1), self.status.eq(status), self.ended.eq(ended)]
            m.next = "IDLE"

        m.d.sync += h_valid.eq(0)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    m.next = "KEY"
            with m.State("KEY"):
                m.d.comb += self.beat.ready.eq(1)
                with m.If(self.beat.valid):
                    with m.If(beat.abandon | beat.last):
                        finish(Status.BAD_LENGTH, 1)
                    with m.Else():
                        m.d.sync += [
                            h_in.eq(Const(lowbias32(p.net.encoder_seed), 32) ^ beat.data),
                            h_valid.eq(1),
                            h_tag.eq(-1),
                            wait.eq(HASH_LATENCY + 1),
                            w.eq(0),
                            i.eq(0),
                        ]
                        m.next = "KEY_HASH"
            with m.State("KEY_HASH"):
                m.d.sync += wait.eq(wait - 1)
                with m.If(wait == 1):
                    m.next = "WORD"
            with m.State("WORD"):
                m.d.comb += self.beat.ready.eq(1)
                with m.If(self.beat.valid):
                    m.d.sync += [word.eq(beat.data), k.eq(0), w.eq(w + 1)]
                    with m.If(beat.abandon):
                        finish(Status.BAD_LENGTH, 1)
                    with m.Elif((beat.data & reserved) != 0):
                        finish(Status.BAD_SPIKES, beat.last)
                    with m.Elif(beat.last & ~final):
                        finish(Status.BAD_LENGTH, 1)
                    with m.Elif(~beat.last & final):
                        finish(Status.BAD_LENGTH, 0)
                    with m.Else():
                        m.next = "ISSUE"
            with m.State("ISSUE"):  # one intensity of ``word`` per cycle into the hash
                m.d.sync += [
                    h_in.eq(key_hash ^ i),
                    h_valid.eq(1),
                    h_tag.eq(i),
                    h_x.eq(_pick(slots, k)),
                    i.eq(i + 1),
                    k.eq(k + 1),
                ]
                with m.If(i == n_in - 1):
                    m.d.sync += wait.eq(HASH_LATENCY + 1)
                    m.next = "DRAIN"
                with m.Elif(k == per - 1):
                    m.next = "WORD"
            with m.State("DRAIN"):  # the last seeds reach the memory
                m.d.sync += wait.eq(wait - 1)
                with m.If(wait == 1):
                    m.d.sync += [t.eq(0), ptr.eq(0), start.eq(0), written.eq(0), j.eq(0)]
                    m.next = "DRAW"
            with m.State("DRAW"):
                m.d.comb += drawing.eq(1)
                m.d.sync += [pend.eq(1), pend_j.eq(j), j.eq(j + 1)]
                with m.If(j == n_in - 1):
                    m.next = "TAIL"
            with m.State("TAIL"):  # the last input's spike of this timestep
                m.next = "HEAD"
            with m.State("HEAD"):
                m.d.comb += self.hdr_wen.eq(1)
                m.d.sync += [t.eq(t + 1), start.eq(ptr), written.eq(0), j.eq(0)]
                with m.If(t == T - 1):
                    finish(Status.OK, 1)
                with m.Else():
                    m.next = "DRAW"
        if rw_check.enabled():  # a draw reads input j and writes back j - 1
            checks = rw_check.RwChecks(m, "encoder")
            checks.memory("store", rd.addr, drawing, wr.addr, wr.en)
            checks.count(self.rw_checked)
        return m


def _mul32(m: Module, x: Signal, k: int, name: str) -> Signal:
    """``(x * k) mod 2**32`` two cycles after ``x``: three 16 x 16 partial products (one DSP
    each), registered, then ``lo + ((mid1 + mid2) mod 2**16 << 16)``, registered."""
    k_lo, k_hi = k & 0xFFFF, k >> 16
    lo, mid1, mid2 = (
        Signal(32, name=f"{name}_lo"),
        Signal(16, name=f"{name}_m1"),
        Signal(16, name=f"{name}_m2"),
    )
    m.d.sync += [
        lo.eq(x[:16] * k_lo),
        mid1.eq((x[:16] * k_hi)[:16]),
        mid2.eq((x[16:] * k_lo)[:16]),
    ]
    out = Signal(32, name=f"{name}_out")
    m.d.sync += out.eq((lo + Cat(Const(0, 16), (mid1 + mid2)[:16]))[:32])
    return out


def _pick(slots: list[Value], k: Signal) -> Value:
    out = slots[0]
    for n, s in enumerate(slots[1:], start=1):
        out = Mux(k == n, s, out)
    return out
