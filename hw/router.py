"""The host side of a core array: packets to the cores, answers back, and the watchdog.

* :class:`PacketRouter` reads each host packet's route word
  (:data:`~spikeforge.hw.protocol.RouteWord`) and hands the rest of the packet to the cores it
  names, every word to all of them in the same cycle. Packets to the array itself (``count =
  0``: INFO, SET_TIMEOUT) and packets it rejects (a bad route word, a route word alone) it
  answers itself, once each.
* :class:`ResponseMerger` forwards whole response packets, the lowest waiting source first, and
  writes the core's index into each status word.

**The watchdog** (``timeout`` cycles; 0 switches it off; SET_TIMEOUT sets it, the default comes
from :func:`default_timeout`) keeps one stuck core from blocking the others:

* *delivery*: a word that waits ``timeout`` cycles for some addressed cores is given to the
  others; the cores that did not take it are answered ``TIMEOUT`` (by the array, with their
  index) and get nothing more of that packet. A core that had already taken part of it gets,
  before its next packet, one word with ``last`` and ``abandon`` that closes the broken packet;
  its answer to that is dropped.
* *answer*: a core that owes an answer and sends no word for ``timeout`` cycles is answered
  ``TIMEOUT`` by the array (in the middle of its answer: the array ends the packet with the
  ``TIMEOUT`` status word), and its own late answer is dropped when it comes.

So every packet draws exactly one answer from each core it addresses, and one core's answers
keep the order of its packets. A packet for a core whose ``TIMEOUT`` answer has not been sent
yet waits (not counted by the watchdog) until it has: a host reads answers while it sends.
"""

from __future__ import annotations

from collections.abc import Sequence

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from spikeforge.hw.backward import backward_cycles, dense_groups
from spikeforge.hw.datapath import index_range
from spikeforge.hw.forward import forward_cycles
from spikeforge.hw.gradient import gradient_cycles
from spikeforge.hw.host import RESPONSE_DEPTH
from spikeforge.hw.params import CoreParams
from spikeforge.hw.protocol import (
    ARRAY_TAG,
    BUS_BITS,
    MAGIC,
    ROUTE,
    ArrayRules,
    CommandWord,
    Opcode,
    Payload,
    RouteWord,
    Status,
    StatusWord,
    command_signature,
    response_signature,
)
from spikeforge.hw.update import update_cycles

__all__ = [
    "DROP_BITS",
    "PacketRouter",
    "ResponseMerger",
    "default_timeout",
    "route_answers",
    "route_kind",
    "watchdog",
]

TIMEOUT_BITS = 32
DROP_BITS = 4
"""Late answers a core may owe the merger's drop counter (it saturates there)."""


def watchdog(m: Module, running, timeout, name: str):
    """A countdown of ``timeout`` cycles while ``running`` is high, restarted whenever it is low;
    returns ``fire``, high on the ``timeout``-th running cycle in a row (never for 0). A down-
    counter and an equality to 1 keep the check off carry chains; a new ``timeout`` counts from
    the next restart."""
    left = Signal(TIMEOUT_BITS, name=f"{name}_left")
    fire = Signal(name=f"{name}_fire")
    m.d.comb += fire.eq(running & (left == 1))
    with m.If(running & (left > 1)):
        m.d.sync += left.eq(left - 1)
    with m.Else():
        m.d.sync += left.eq(timeout)
    return fire


def route_kind(view, cores: int):
    """``(routed, itself, mask)`` of a route word (a :data:`RouteWord` view): it addresses
    cores (all of them within the array's ``cores``; ``mask`` has a bit per core), or the array
    itself. Neither: a bad word. The hardware twin of :meth:`ArrayRules.targets
    <spikeforge.hw.protocol.ArrayRules.targets>`.

    Only the low bits that can name a core are added and compared (a word with any higher bit
    set in ``first`` or ``count`` addresses no core): short carry chains on the packet path.
    """
    bits = cores.bit_length()
    first, count = view.first[:bits], view.count[:bits]
    small = (view.first[bits:] == 0) & (view.count[bits:] == 0)
    end = first + count  # bits + 1 wide: no overflow
    routed = (view.tag == ROUTE) & (count != 0) & small & (end <= cores)
    itself = (view.tag == ROUTE) & (view.count == 0) & (view.first == 0)
    mask = Cat(*[(first <= n) & (n < end) for n in range(cores)])
    return routed, itself, mask


def route_answers(view, alone, cores: int):
    """The answer packets an array sends to a packet that starts with the route word ``view``
    (``alone``: the route word is the whole packet): one from each core it addresses, else one
    from the array itself (its own command, or the rejection of a bad packet). The hardware
    twin of :meth:`ArrayRules.answers <spikeforge.hw.protocol.ArrayRules.answers>`."""
    routed, _, _ = route_kind(view, cores)
    return Mux(routed & ~alone, view.count, 1)


def default_timeout(cores: Sequence[CoreParams]) -> int:
    """The watchdog's cycles at reset: 4x the longest a training step can keep a core busy
    (every core's dense FORWARD, BACKWARD -- every delta group nonzero -- and update one after
    another, as if nothing ran in parallel), rounded up to a power of two and at least 2**16."""
    total = 0
    for p in cores:
        dense, groups = [p.n_in] * p.timesteps, dense_groups(p)
        total += forward_cycles(p, dense)
        wg = 0 if p.fused_grads else gradient_cycles(p, dense, groups)
        total += max(backward_cycles(p, groups), wg)
        total += update_cycles(p)  # fused: with every input active, the most
    return max(1 << 16, 1 << (4 * total - 1).bit_length())


class PacketRouter(wiring.Component):
    """Route words, delivery to the addressed cores, the array's own commands.

    Ports
    -----
    i : In(command stream)
        The host's packets.
    o<n> : Out(command stream)
        To core ``n`` (the same word to every addressed core, in the same cycle).
    own : Out(response stream)
        The array's own answers (status word core index :data:`ARRAY_TAG`).
    timeout : Out(32)
        The watchdog's cycles (0: off).
    delivered, gave_up, partial, op : Out
        Pulses for the merger: the packet's last word went to these cores; these cores are to
        be answered ``TIMEOUT`` for it (``partial``: they had taken part of it); its opcode.
    pending : In(C)
        Cores whose ``TIMEOUT`` answer waits to be sent: hold their packets.
    """

    def __init__(self, cores: int, *, timeout: int, array_hash: str):
        if not 1 <= cores <= ARRAY_TAG:
            raise ValueError(f"cores must be in [1, {ARRAY_TAG}], not {cores!r}")
        if not 0 <= timeout < 1 << TIMEOUT_BITS:
            raise ValueError(f"timeout must be in [0, {(1 << TIMEOUT_BITS) - 1}], not {timeout}")
        self._cores, self._timeout, self._hash = cores, timeout, int(array_hash, 16)
        self._rules = ArrayRules(cores)
        super().__init__(
            {
                "i": In(command_signature()),
                **{f"o{n}": Out(command_signature()) for n in range(cores)},
                "own": Out(response_signature()),
                "timeout": Out(TIMEOUT_BITS, init=timeout),
                "delivered": Out(cores),
                "gave_up": Out(cores),
                "partial": Out(1),
                "op": Out(8),
                "pending": In(cores),
            }
        )

    def elaborate(self, platform):
        m = Module()
        C = self._cores
        outs = [getattr(self, f"o{n}") for n in range(C)]
        beat = self.i.payload
        word = Signal(RouteWord)
        cmd = Signal(CommandWord)
        m.d.comb += [word.eq(beat.data), cmd.eq(beat.data)]
        targets = Signal(C)  # the cores that still get the current packet
        owe = Signal(C)  # cores left inside a packet: close it before their next one
        first = Signal()  # the next word is the packet's command word
        op = Signal(8)
        m.d.comb += self.op.eq(Mux(first, cmd.opcode, op))
        with m.If(self.i.valid & self.i.ready & first):
            m.d.sync += op.eq(cmd.opcode)

        # -- the array's own answer: a status word, after INFO's data words -------------------
        owed = Signal()  # the array's own answer waits to be sent
        code = Signal(Status)
        code_op = Signal(8)
        info = Signal()
        index = Signal(range(6))
        data = [MAGIC, self._hash & 0xFFFFFFFF, self._hash >> 32, C, self.timeout]
        status = Signal(StatusWord)
        m.d.comb += [status.opcode.eq(code_op), status.status.eq(code)]
        m.d.comb += status.core.eq(ARRAY_TAG)
        m.d.comb += self.own.valid.eq(owed)
        with m.If(info & (index < len(data))):
            with m.Switch(index):
                for n, value in enumerate(data):
                    with m.Case(n):
                        m.d.comb += self.own.payload.data.eq(value)
        with m.Else():
            m.d.comb += [self.own.payload.data.eq(status), self.own.payload.last.eq(1)]
        with m.If(self.own.valid & self.own.ready):
            m.d.sync += index.eq(index + 1)
            with m.If(self.own.payload.last):
                m.d.sync += owed.eq(0)

        def answer(status_code, opcode, with_info=False):
            m.d.sync += [
                owed.eq(1),
                code.eq(status_code),
                code_op.eq(opcode),
                info.eq(with_info),
                index.eq(0),
            ]

        # -- the watchdog on delivery -----------------------------------------------------------
        waiting = Signal()  # a word is offered and some addressed core has not taken it
        fire = watchdog(m, waiting, self.timeout, "delivery")

        closing = Signal()  # the word offered is a closing word (CLOSE)
        for o in outs:
            m.d.comb += [
                o.payload.data.eq(beat.data),
                o.payload.last.eq(beat.last | closing),
                o.payload.abandon.eq(beat.abandon | closing),
            ]

        had = Signal(C)  # cores of the group that took the current word in an earlier cycle

        def deliver(group, valid):
            """Offer the word to every core of ``group`` (``valid`` never waits for ``ready``:
            a core that has the word drops out); the word is delivered when all have it. After
            ``timeout`` cycles the router gives up on those that still do not. Returns
            (delivered, the cores that do not have it, the cores that take it this cycle)."""
            takes = Cat(*[o.valid & o.ready for o in outs])
            lacking = group & ~had & ~takes
            for n, o in enumerate(outs):
                m.d.comb += o.valid.eq(valid & group[n] & ~had[n])
            m.d.comb += waiting.eq(valid & (lacking != 0))
            with m.If(valid & (lacking == 0)):
                m.d.sync += had.eq(0)
            with m.Elif(valid):
                m.d.sync += had.eq(had | takes)
            return valid & (lacking == 0), lacking, takes

        with m.FSM(name="router"):
            with m.State("HEADER"):
                m.d.comb += self.i.ready.eq(~owed)
                with m.If(self.i.valid & self.i.ready):
                    view = word
                    routed, itself, mask = route_kind(view, C)
                    with m.If(beat.last & (routed | itself)):
                        answer(Status.BAD_LENGTH, view.tag)  # a route word alone
                    with m.Elif(routed):
                        m.d.sync += [targets.eq(mask), first.eq(1), had.eq(0)]
                        with m.If((mask & self.pending) != 0):
                            m.next = "HOLD"
                        with m.Elif((mask & owe) != 0):
                            m.next = "CLOSE"
                        with m.Else():
                            m.next = "ROUTE"
                    with m.Elif(itself):
                        m.next = "ARRAY"
                    with m.Else():
                        answer(Status.BAD_ARG, view.tag)
                        with m.If(~beat.last):
                            m.next = "DRAIN"
            with m.State("HOLD"):  # until the addressed cores' TIMEOUT answers are sent
                with m.If((targets & self.pending) == 0):
                    with m.If((targets & owe) != 0):
                        m.next = "CLOSE"
                    with m.Else():
                        m.next = "ROUTE"
            with m.State("CLOSE"):  # one closing word to the cores left inside a packet
                # The host's next word with ``last`` and ``abandon`` set: a core drops an
                # abandoned packet whatever it holds. The host's word itself is not taken.
                group = targets & owe
                m.d.comb += closing.eq(1)
                taken, unready, takes = deliver(group, self.i.valid)
                m.d.sync += owe.eq(owe & ~takes)
                with m.If(taken):
                    m.next = "ROUTE"
                with m.Elif(fire):
                    self._give_up(m, targets, unready, partial=False)
                    with m.If((targets & ~unready) == 0):
                        m.next = "DRAIN"
            with m.State("ROUTE"):
                taken, unready, _ = deliver(targets, self.i.valid)
                m.d.comb += self.i.ready.eq(taken)
                with m.If(taken):
                    m.d.sync += first.eq(0)
                    with m.If(beat.last | beat.abandon):
                        m.d.comb += self.delivered.eq(targets)
                        m.next = "HEADER"
                with m.Elif(fire):
                    self._give_up(m, targets, unready, partial=~first)
                    with m.If(~first):
                        m.d.sync += owe.eq(owe | unready)
                    with m.If((targets & ~unready) == 0):
                        m.next = "DRAIN"
            with m.State("ARRAY"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(self.i.valid):
                    m.d.sync += op.eq(cmd.opcode)
                    self._array_command(m, cmd, beat, answer)
            with m.State("SET_TIMEOUT"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(self.i.valid):
                    with m.If(beat.last & ~beat.abandon):
                        m.d.sync += self.timeout.eq(beat.data)
                        answer(Status.OK, Opcode.SET_TIMEOUT)
                        m.next = "HEADER"
                    with m.Else():
                        answer(Status.BAD_LENGTH, Opcode.SET_TIMEOUT)
                        with m.If(beat.last):
                            m.next = "HEADER"
                        with m.Else():
                            m.next = "DRAIN"
            with m.State("DRAIN"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(self.i.valid & (beat.last | beat.abandon)):
                    m.next = "HEADER"
        return m

    def _give_up(self, m, targets, unready, *, partial):
        m.d.comb += [self.gave_up.eq(targets & unready), self.partial.eq(partial)]
        m.d.sync += targets.eq(targets & ~unready)

    def _array_command(self, m, cmd, beat, answer):
        """The array's own command word (after a route word with ``count = 0``)."""
        done = beat.last | beat.abandon

        def reject(status):
            answer(status, cmd.opcode)
            with m.If(done):
                m.next = "HEADER"
            with m.Else():
                m.next = "DRAIN"

        with m.Switch(cmd.opcode):
            for code, spec in self._rules.commands.items():
                with m.Case(code):
                    payload = spec.payload is not Payload.NONE
                    with m.If(~spec.arg.ok(cmd.arg)):
                        reject(Status.BAD_ARG)
                    with m.Elif(beat.abandon | (done if payload else ~done)):
                        reject(Status.BAD_LENGTH)
                    with m.Else():
                        if code == Opcode.SET_TIMEOUT:
                            m.next = "SET_TIMEOUT"
                        elif code == Opcode.INFO:
                            answer(Status.OK, code, with_info=True)
                            m.next = "HEADER"
                        else:
                            raise AssertionError(f"no action for the array's {code!r}")
            with m.Default():
                reject(Status.BAD_OPCODE)


class ResponseMerger(wiring.Component):
    """Whole response packets to the host, the lowest waiting source first, and the answer
    watchdog.

    Sources, in priority order: the cores, the router's own answers, the array's ``TIMEOUT``
    answers. A core's status word gets its index in the low 16 bits. ``delivered``, ``gave_up``,
    ``partial`` and ``op`` come from the :class:`PacketRouter`; ``pending`` goes back to it.
    """

    def __init__(self, cores: int):
        self._cores = cores
        super().__init__(
            {
                **{f"i{n}": In(response_signature()) for n in range(cores)},
                "own": In(response_signature()),
                "o": Out(response_signature()),
                "timeout": In(TIMEOUT_BITS),
                "delivered": In(cores),
                "gave_up": In(cores),
                "partial": In(1),
                "op": In(8),
                "pending": Out(cores),
            }
        )

    def elaborate(self, platform):
        m = Module()
        C = self._cores
        ins = [getattr(self, f"i{n}") for n in range(C)]
        late = Signal(C)  # answer timed out: TIMEOUT to send, before the core's next answer
        skipped = Signal(C)  # packet not delivered: TIMEOUT to send after the core's answers
        late_op = [Signal(8, name=f"late_op{n}") for n in range(C)]
        skip_op = [Signal(8, name=f"skip_op{n}") for n in range(C)]
        owing = [Signal(range(RESPONSE_DEPTH + 2), name=f"owing{n}") for n in range(C)]
        drop = [Signal(DROP_BITS, name=f"drop{n}") for n in range(C)]
        m.d.comb += self.pending.eq(late | skipped)

        # -- arbitration: sources 0..C-1 cores, C the router's answers, C+1 TIMEOUT answers ---
        due = Cat(*[late[n] | (skipped[n] & (owing[n] == 0)) for n in range(C)])
        eligible = Cat(
            *[ins[n].valid & (drop[n] == 0) & ~late[n] for n in range(C)],
            self.own.valid,
            due != 0,
        )
        locked = Signal()
        sel = Signal(index_range(C + 2))
        pick = Signal.like(sel)
        for n in reversed(range(C + 2)):
            with m.If(eligible[n]):
                m.d.comb += pick.eq(n)
        victim = Signal(index_range(C))  # the core a TIMEOUT answer is for
        lowest = Signal.like(victim)
        for n in reversed(range(C)):
            with m.If(due[n]):
                m.d.comb += lowest.eq(n)
        cut = Signal()  # the locked core's answer is being ended with TIMEOUT
        # The cut answer's opcode, kept apart: the same core's watchdog may fire again (its
        # next packet) while the cut word waits for the host, and that sets ``late_op``.
        cut_op = Signal(8)
        # Pipelined lock: in the cycle a packet's last word leaves, the next answer of a core
        # or the router is locked (the lowest other waiting source), so back-to-back one-word
        # answers take one cycle each. The source just answered is left out (its ``valid`` is
        # that word's), and so are TIMEOUT answers: they are picked between packets only, so
        # their victim's state cannot change under a word that waits for the host.
        others = Signal(C + 1)
        m.d.comb += others.eq(eligible[: C + 1] & ~Cat(*[sel == n for n in range(C + 1)]))
        then = Signal.like(sel)
        for n in reversed(range(C + 1)):
            with m.If(others[n]):
                m.d.comb += then.eq(n)
        with m.If(~locked & (eligible != 0)):
            m.d.sync += [locked.eq(1), sel.eq(pick), victim.eq(lowest)]

        valid, data, last = Signal(), Signal(BUS_BITS), Signal()
        timeout_word = Signal(StatusWord)
        timeout_op = Signal(8)
        with m.Switch(victim):
            for n in range(C):
                with m.Case(n):
                    m.d.comb += timeout_op.eq(
                        Mux(cut, cut_op, Mux(late[n], late_op[n], skip_op[n]))
                    )
        m.d.comb += [
            timeout_word.opcode.eq(timeout_op),
            timeout_word.status.eq(Status.TIMEOUT),
            timeout_word.core.eq(victim),
        ]
        with m.If(cut):
            m.d.comb += [valid.eq(1), data.eq(timeout_word), last.eq(1)]
        with m.Else():
            with m.Switch(sel):
                for n, src in enumerate([*ins, self.own]):
                    tag = ARRAY_TAG if n == C else n
                    with m.Case(n):
                        beat = src.payload
                        m.d.comb += [
                            valid.eq(src.valid),
                            data.eq(Mux(beat.last, beat.data | tag, beat.data)),
                            last.eq(beat.last),
                        ]
                with m.Case(C + 1):
                    m.d.comb += [valid.eq(1), data.eq(timeout_word), last.eq(1)]
        m.d.comb += [
            self.o.valid.eq(locked & valid),
            self.o.payload.data.eq(data),
            self.o.payload.last.eq(last),
        ]
        take = locked & valid & self.o.ready
        with m.If(take & last):
            m.d.sync += [locked.eq(others != 0), cut.eq(0), sel.eq(then)]
        m.d.comb += self.own.ready.eq(take & (sel == C) & ~cut)
        with m.If(take & (sel == C + 1)):
            with m.Switch(victim):
                for n in range(C):
                    with m.Case(n):
                        with m.If(late[n]):
                            m.d.sync += late[n].eq(0)
                        with m.Else():
                            m.d.sync += skipped[n].eq(0)

        # -- per core: answers owed, the answer watchdog, late answers to drop ----------------
        for n, src in enumerate(ins):
            mine = locked & (sel == n) & ~cut  # its answer is being forwarded
            forwarded = take & mine
            dropping = drop[n] != 0
            m.d.comb += src.ready.eq(Mux(mine, take, dropping))
            # Silent: owing an answer, sending nothing, no TIMEOUT of it waiting to be sent.
            silent = (owing[n] != 0) & ~src.valid & ~late[n]
            fire = watchdog(m, silent, self.timeout, f"answer{n}")
            # A silent core has answered everything but the command it runs and, at most, the
            # packet it holds for afterwards (its framer's one-word hold): the oldest of those
            # two delivered last is the one that timed out.
            latest = Signal(8, name=f"latest_op{n}")
            before = Signal(8, name=f"before_op{n}")
            with m.If(self.delivered[n]):
                m.d.sync += [latest.eq(self.op), before.eq(latest)]
            with m.If(self.gave_up[n]):
                m.d.sync += [skipped[n].eq(1), skip_op[n].eq(self.op)]
            with m.If(fire):
                timed_out = Mux(owing[n] >= 2, before, latest)
                m.d.sync += late_op[n].eq(timed_out)
                with m.If(locked & (sel == n) & ~cut):
                    m.d.sync += [cut.eq(1), victim.eq(n), cut_op.eq(timed_out)]
                with m.Else():
                    m.d.sync += late[n].eq(1)
            answered = (forwarded & last) | fire
            m.d.sync += owing[n].eq(owing[n] + self.delivered[n] - answered)
            more = fire | (self.gave_up[n] & self.partial)
            less = ~mine & dropping & src.valid & src.payload.last
            with m.If(more & ~less & (drop[n] != (1 << DROP_BITS) - 1)):
                m.d.sync += drop[n].eq(drop[n] + 1)
            with m.Elif(less & ~more):
                m.d.sync += drop[n].eq(drop[n] - 1)
        return m
